"""Which models learn motion? Each tiny preset of the convolutional and recurrent family
(MOTION_PRESETS) is trained on synthetic_motion for the same budget (configs/common.py's
TINY_STEPS steps of its batch, each with its preset's optimizer) and evaluated on the test clips
and on the same clips with every frame replaced by the middle one
(tools/static_frame_probe.py): a model that uses motion scores well on clips and near chance on
static clips; the single-frame baseline can only reach what one frame tells (chance 0.1). About
5-10 minutes per model on 2 CPU cores.

  python tools/benchmark.py motion_models [--models single_frame,i3d,...] [--steps N]
"""
import os

from absl import app

from tools.benchmarks.common import options, results, runs

# Name -> tiny preset.
MOTION_PRESETS = {
    'single_frame': 'configs/cnn/single_frame.py:tiny',
    'late_fusion': 'configs/cnn/late_fusion.py:tiny',
    'early_fusion': 'configs/cnn/early_fusion.py:tiny',
    'i3d': 'configs/cnn/i3d_r50_k400.py:tiny',
    'slowfast': 'configs/cnn/slowfast_r50_k400.py:tiny',
    'cnn_lstm': 'configs/cnn/cnn_lstm.py:tiny',
    'conv_gru': 'configs/cnn/conv_gru.py:tiny',
}
DEFAULT_MODELS = ('single_frame', 'i3d', 'slowfast', 'cnn_lstm')


def run(workdir: str, out: str) -> dict:
  """Trains each model of --models for the same budget; returns the result record, also written
  to `out` after each model (a long run that stops keeps the models it finished)."""
  from vivit_jax.data import probes  # pylint: disable=import-outside-toplevel
  from vivit_jax.train import loop  # pylint: disable=import-outside-toplevel
  names = options.MODELS.value or list(DEFAULT_MODELS)
  unknown = sorted(set(names) - set(MOTION_PRESETS))
  if unknown:
    raise app.UsageError(f'Unknown --models {unknown}; choose from {", ".join(MOTION_PRESETS)}.')
  rows = []
  for name in names:
    config = runs.preset(*MOTION_PRESETS[name].split(':'))
    if options.STEPS.value:
      config.train.update(num_steps=options.STEPS.value, eval_every_steps=options.STEPS.value)
    run_dir = os.path.join(workdir, name)
    final, seconds = runs.timed_run(config, run_dir)
    exp = loop.restore_for_eval(config, run_dir)
    eval_step = exp.eval_step()
    static = loop.evaluate(eval_step, exp.state, config, exp.batch_sharding,
                           transform=probes.repeat_middle_frame)
    clip = config.dataset
    opt = config.optimizer
    rows.append(dict(model=name, config=MOTION_PRESETS[name], name=config.model.name,
                     optimizer=f'{opt.name} lr {opt.learning_rate}',
                     clip=f'{clip.num_frames}x{clip.crop_size}x{clip.crop_size} / {clip.stride}',
                     steps=config.train.num_steps, batch=config.train.batch_size,
                     top1=final['eval/top1'], top5=final['eval/top5'],
                     static_top1=static['eval/top1'], seconds=round(seconds, 1)))
    record = dict(benchmark='motion_models', dataset='synthetic_motion (10 classes, chance 0.1)',
                  rows=rows, machine=results.machine())
    write(record, out)
  return record


def table(record: dict) -> str:
  rows = ['| model | config | clip (T x S^2 / stride) | steps x batch | optimizer | test top-1 '
          '| test top-5 | top-1, static clips | train time (s) |',
          '|---|---|---|---|---|---|---|---|---|']
  rows += [f"| {r['model']} | `{r['config']}` | {r['clip']} | {r['steps']} x {r['batch']} | "
           f"{r['optimizer']} | "
           f"{r['top1']:.4f} | {r['top5']:.4f} | {r['static_top1']:.4f} | {r['seconds']} |"
           for r in record['rows']]
  return '\n'.join([
      '# Which models learn motion? (synthetic_motion)', '',
      'Every model is its tiny preset, trained from scratch for the same budget (steps x batch) '
      'with its preset\'s optimizer (warmup then cosine decay); evaluated on the 1280 test clips, '
      'and on the same clips with every frame replaced by the middle one '
      '("static clips", `tools/static_frame_probe.py`). The classes are motions, so one frame '
      'tells nothing: chance is 0.1.', '', *rows, '', f"Machine: {record['machine']}.", '',
      'Regenerate: `python tools/benchmark.py motion_models --models ' +
      ','.join(r['model'] for r in record['rows']) + '`.', ''])


def write(record: dict, out: str) -> str:
  return results.write(record, out, table(record))
