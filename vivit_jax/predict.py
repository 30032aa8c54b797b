r"""Classify one video file with a trained workdir:

  python -m vivit_jax.predict --workdir DIR --video clip.mp4 [--num_clips 4 --num_crops 3] \
      [--fps 15] [--config.a.b=value ...]

Reads any file PyAV (FFmpeg) reads with `data.video_io.read_video`, at the frame rate (and short
side) the workdir's dataset was built with (a `video_folder` dataset's build report records them;
otherwise the file's own rate and size, or --fps), builds num_clips x num_crops views exactly as
the evaluation pipeline does (`data.pipeline`: eval_views, eval_short_side, normalisation; a
video shorter than a clip repeats its last frame), runs the model on them, averages the softmax
over the views and prints the top-5 class names with their probabilities.
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags, logging  # noqa: E402

from vivit_jax.train import workdir as workdir_lib  # noqa: E402


def define_flags() -> dict:
  """The command-line flags (defined only when run as a program: importing defines none)."""
  defined = {
      **workdir_lib.define_workdir_flags(),
      'video': flags.DEFINE_string('video', None,
                                   'Video file (any container and codec FFmpeg reads).'),
      'num_clips': flags.DEFINE_integer('num_clips', None, 'Clips uniformly spaced in time '
                                        '(default: config.dataset.eval_clips).'),
      'num_crops': flags.DEFINE_integer('num_crops', None, 'Crops per clip: 1 centre, 3 along '
                                        'the long side (default: config.dataset.eval_crops).'),
      'fps': flags.DEFINE_float('fps', None, "Frame rate to sample the video at (default: the "
                                "dataset's, else the file's).")}
  flags.mark_flags_as_required(['video'])
  return defined


TOP_K = 5


def stored_video_format(dataset_config) -> tuple[float | None, int | None]:
  """(fps, short side) the dataset's videos were stored at: a built `video_folder` dataset's
  build parameters; (None, None) for other datasets (the file's own rate and size)."""
  from vivit_jax.data import video_folder
  data_dir = dataset_config.data_dir or None
  if not video_folder.is_built(dataset_config.name, data_dir):
    return None, None
  params = video_folder.read_report(dataset_config.name, data_dir)['params']
  return params['fps'], params['short_side']


def views_from_frames(frames, dataset_config) -> dict:
  """uint8 (T, H, W, C) frames -> the evaluation views of the data pipeline, stacked:
  {'video': (V, T', S, S, C) float32, and 'flow' (V, T'-1, S, S, 2) with dataset_config.flow},
  V = eval_clips x eval_crops."""
  import tensorflow as tf
  import tensorflow_datasets as tfds
  from vivit_jax.data import pipeline
  frames = tf.convert_to_tensor(frames)
  feature = tfds.features.Tensor(shape=tuple(frames.shape), dtype=tf.uint8)  # Decodes as is.
  views = pipeline._eval_views(tf.constant(0, tf.int64), {'video': frames, 'label': 0},
                               feature=feature, dataset_config=dataset_config)
  return {k: v.numpy() for k, v in views.items() if k not in ('label', 'mask', 'video_id')}


def view_probabilities(exp, views: dict, batch_size: int):
  """Softmax probabilities (V, K) of the model of `exp` on each view, `batch_size` at a time."""
  import jax
  import numpy as np
  from vivit_jax import models
  variables = {'params': jax.device_get(exp.state.params)}
  if exp.state.batch_stats:
    variables['batch_stats'] = jax.device_get(exp.state.batch_stats)
  extra = models.extra_inputs(exp.model)
  apply = jax.jit(lambda variables, video, kwargs: jax.nn.softmax(exp.model.apply(
      variables, video, train=False, **kwargs).astype(np.float32)))
  n = len(views['video'])
  return np.concatenate([apply(variables, views['video'][i:i + batch_size],
                               {k: views[k][i:i + batch_size] for k in extra})
                         for i in range(0, n, batch_size)])


def predict(config, workdir: str, video: str, *, num_clips: int | None = None,
            num_crops: int | None = None, fps: float | None = None) -> list[tuple[str, float]]:
  """[(class name, probability)] of the TOP_K most probable classes of the file `video`, the
  softmax averaged over its views (see the module docstring).

  Raises:
    video_io.VideoReadError: `video` cannot be read.
    FileNotFoundError: `workdir` has no checkpoint.
  """
  import ml_collections
  import numpy as np
  from vivit_jax import data
  from vivit_jax.data import video_io
  from vivit_jax.train import loop, tasks
  if config.task != 'classification':
    raise ValueError(f"config.task='{config.task}': vivit_jax.predict needs a classifier.")
  config = ml_collections.ConfigDict(config.to_dict())  # An unlocked copy.
  ds = config.dataset
  ds.update(eval_clips=num_clips or ds.eval_clips, eval_crops=num_crops or ds.eval_crops)
  for name in ('eval_clips', 'eval_crops'):
    if ds[name] < 1:
      raise ValueError(f'--num_{name[5:]}={ds[name]} must be at least 1.')
  stored_fps, short_side = stored_video_format(ds)
  frames = video_io.read_video(video, fps=fps or stored_fps, short_side=short_side).frames
  exp = loop.restore_for_eval(config, workdir)
  probs = view_probabilities(exp, views_from_frames(frames, ds), config.train.eval_batch_size)
  mean = probs.astype(np.float64).mean(0)
  names = data.dataset_info(ds)['class_names']
  return [(names[k], float(mean[k])) for k in tasks.ranking(mean[None])[0, :TOP_K]]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}. Config fields are set with '
                         f'--config.FIELD=VALUE.')
  logging.set_verbosity(logging.WARNING)  # Libraries' INFO chatter (Orbax, TFDS) stays quiet.
  try:
    top = predict(workdir_lib.flag_config(_FLAGS['config']), _FLAGS['workdir'].value,
                  _FLAGS['video'].value, num_clips=_FLAGS['num_clips'].value,
                  num_crops=_FLAGS['num_crops'].value, fps=_FLAGS['fps'].value)
  except (ValueError, FileNotFoundError) as e:  # VideoReadError is a ValueError.
    if os.environ.get('VIVIT_TRACEBACK'):
      raise
    sys.exit(f'{type(e).__name__}: {e}')
  print(f"{_FLAGS['video'].value}:")
  for name, p in top:
    print(f'  {p:.4f}  {name}')


if __name__ == '__main__':
  _FLAGS = define_flags()
  app.run(main)
