r"""Multi-view evaluation of a trained workdir:

  python -m vivit_jax.evaluate --workdir DIR [--split S] [--out DIR/eval] \
      [--config.dataset.eval_clips=4 --config.dataset.eval_crops=3 ...]

Restores the latest checkpoint of --workdir with the config training saved there
(`saved.config`; `--config=configs/X.py` for older workdirs), runs every view (eval_clips clips x
eval_crops crops, `data.pipeline.eval_views`) of every video of the split, averages the softmax
over the views of each video (`tasks.ViewAverager`), and writes to --out:
  results.json          top-1 / top-5 per video, mean per-class accuracy, loss, counts, views
  per_class.csv         class, videos, top-1, top-5 (of the class's videos)
  confusion_matrix.png  rows = true class, columns = predicted class (top-1), each row normalised
and prints a summary. A classification workdir only. Workdir and --out may be any tf.io.gfile
path (gs://BUCKET/...). Every batch is checked on the host for NaN and infinite values
(`models.inputs.check_finite`); shapes, channels and dtypes are checked by the model.
"""
import csv
import functools
import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags, logging  # noqa: E402

from vivit_jax.saved import config as saved_config  # noqa: E402


def define_flags() -> dict:
  """The command-line flags (defined only when run as a program: importing defines none)."""
  defined = {
      **saved_config.define_workdir_flags(),
      'split': flags.DEFINE_string('split', None, 'Split to evaluate (default: config.dataset.'
                                   'eval_split); TFDS slices such as test[:100] work.'),
      'out': flags.DEFINE_string('out', None, 'Where the files go (default: WORKDIR/eval).')}
  return defined


MAX_LABELLED_CLASSES = 60  # Confusion matrices of more classes are drawn without class names.


def class_metrics(probs, labels, num_classes: int) -> dict:
  """Per-class results of view-averaged `probs` (N, K) with true `labels` (N,).

  Returns {'confusion': (K, K) int counts, rows true and columns top-1 predicted class;
  'videos', 'top1', 'top5': (K,) per class (accuracies NaN for a class without videos);
  'mean_class_accuracy': the mean top-1 over the classes that have videos}.
  """
  import numpy as np
  from vivit_jax.train import tasks
  ranks = tasks.ranking(probs)
  confusion = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(confusion, (labels, ranks[:, 0]), 1)
  videos = np.bincount(labels, minlength=num_classes)
  with np.errstate(invalid='ignore', divide='ignore'):
    top1, top5 = (np.bincount(labels, (ranks[:, :k] == labels[:, None]).any(1),
                              minlength=num_classes) / videos for k in (1, 5))
  return {'confusion': confusion, 'videos': videos, 'top1': top1, 'top5': top5,
          'mean_class_accuracy': float(np.nanmean(top1))}


def write_per_class(path: str, class_names, per_class: dict):
  """CSV: class, videos, top1, top5 (blank accuracies for a class without videos)."""
  import tensorflow as tf
  with tf.io.gfile.GFile(path, 'w') as f:
    writer = csv.writer(f)
    writer.writerow(['class', 'videos', 'top1', 'top5'])
    for name, n, top1, top5 in zip(class_names, per_class['videos'], per_class['top1'],
                                   per_class['top5']):
      writer.writerow([name, int(n)] + (['', ''] if n == 0 else [f'{top1:.4f}', f'{top5:.4f}']))


def plot_confusion(path: str, confusion, class_names, title: str):
  """PNG of `confusion` (K, K) counts, each row (true class) normalised to sum 1."""
  import numpy as np
  import tensorflow as tf
  from matplotlib.figure import Figure
  k = len(class_names)
  rows = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
  side = min(max(6.0, 0.3 * k + 2), 16.0)
  fig = Figure(figsize=(side, side), layout='constrained')
  ax = fig.add_subplot()
  image = ax.imshow(rows, cmap='Blues', vmin=0, vmax=1)
  fig.colorbar(image, ax=ax, shrink=0.8, label='fraction of the true class')
  if k <= MAX_LABELLED_CLASSES:
    ax.set_xticks(range(k), class_names, rotation=90, fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
  ax.set(xlabel='predicted class (top-1)', ylabel='true class')
  fig.suptitle(title)
  with tf.io.gfile.GFile(path, 'wb') as f:
    fig.savefig(f, format='png', dpi=100)


def evaluate(config, workdir: str, split: str | None = None, out: str | None = None) -> dict:
  """Multi-view evaluation of `workdir`'s latest checkpoint on `split` (default
  config.dataset.eval_split); writes the files of the module docstring to `out` (default
  WORKDIR/eval) on process 0 and returns the results.json record."""
  import jax
  import ml_collections
  import tensorflow as tf
  from vivit_jax import data
  from vivit_jax.models import inputs
  from vivit_jax.saved import checkpoints as saved_checkpoints
  from vivit_jax.train import loop, tasks
  if config.task != 'classification':
    raise ValueError(f"config.task='{config.task}': vivit_jax.evaluate evaluates classifiers; "
                     f"a masked_video_modeling workdir is looked at with tools/visualize_mae.py.")
  config = ml_collections.ConfigDict(config.to_dict())  # An unlocked copy.
  if split:
    config.dataset.eval_split = split
  exp = loop.restore_for_eval(config, workdir)
  eval_step = exp.eval_step()
  averager = tasks.ViewAverager()
  check = functools.partial(inputs.check_finite, source=f'An eval batch of {config.dataset.name} '
                            f'{config.dataset.eval_split}')
  results = loop.evaluate(eval_step, exp.state, config, exp.batch_sharding, transform=check,
                          evaluator=averager)
  _, probs, labels = averager.per_video()
  class_names = data.dataset_info(config.dataset)['class_names']
  per_class = class_metrics(probs, labels, len(class_names))
  ds = config.dataset
  record = {'workdir': saved_checkpoints.absolute(workdir), 'step': int(exp.state.step),
            'dataset': ds.name, 'split': ds.eval_split, 'videos': int(results['eval/count']),
            'views_per_video': int(results['eval/views']), 'eval_clips': ds.eval_clips,
            'eval_crops': ds.eval_crops, 'top1': results['eval/top1'],
            'top5': results['eval/top5'], 'mean_class_accuracy': per_class['mean_class_accuracy'],
            'loss': results['eval/loss']}
  out = out or os.path.join(workdir, 'eval')
  if jax.process_index() == 0:
    tf.io.gfile.makedirs(out)
    with tf.io.gfile.GFile(os.path.join(out, 'results.json'), 'w') as f:
      json.dump(record, f, indent=1)
    write_per_class(os.path.join(out, 'per_class.csv'), class_names, per_class)
    plot_confusion(os.path.join(out, 'confusion_matrix.png'), per_class['confusion'],
                   class_names, f"{ds.name} {ds.eval_split}: top-1 {record['top1']:.4f} "
                   f"({record['videos']} videos)")
  return record


def summary(record: dict, out: str) -> str:
  return (f"Step {record['step']} on {record['dataset']} {record['split']}: {record['videos']} "
          f"videos x {record['views_per_video']:g} views ({record['eval_clips']} clips x "
          f"{record['eval_crops']} crops): top-1 {record['top1']:.4f}, top-5 "
          f"{record['top5']:.4f}, mean per-class accuracy {record['mean_class_accuracy']:.4f}, "
          f"loss {record['loss']:.4f}. Wrote results.json, per_class.csv, "
          f"confusion_matrix.png to {out}.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}. Config fields are set with '
                         f'--config.FIELD=VALUE.')
  logging.set_verbosity(logging.WARNING)  # Libraries' INFO chatter (Orbax, TFDS) stays quiet.
  workdir = _FLAGS['workdir'].value
  out = _FLAGS['out'].value or os.path.join(workdir, 'eval')
  try:
    record = evaluate(saved_config.flag_config(_FLAGS['config']), workdir, _FLAGS['split'].value,
                      out)
  except (ValueError, FileNotFoundError) as e:
    if os.environ.get('VIVIT_TRACEBACK'):
      raise
    sys.exit(f'{type(e).__name__}: {e}')
  print(summary(record, out))


if __name__ == '__main__':
  _FLAGS = define_flags()
  app.run(main)
