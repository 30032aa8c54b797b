r"""Benchmarks whose results are committed under benchmarks/ (NAME.json + NAME.md).

  python tools/benchmark.py videomae_pretraining [--workdir DIR] [--out benchmarks]

videomae_pretraining: does VideoMAE pre-training help? On synthetic_motion, the tiny VideoMAE
  (configs/videomae/pretrain_k400.py:tiny) is pre-trained by masked video modelling, then the
  tiny classifier (configs/videomae/finetune_k400.py:tiny) is fine-tuned from it and, with the same
  fine-tuning budget, from scratch, for each seed; the table gives the test top-1 of both.
  About 30 minutes on 2 CPU cores at the presets' step counts.
"""
import json
import os
import platform
import runpy
import shutil
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/vivit_jax_benchmarks',
                               'Scratch directory for the runs (its old contents are removed).')
_OUT = flags.DEFINE_string('out', os.path.join(REPO, 'benchmarks'), 'Where results go.')
_PRETRAIN_STEPS = flags.DEFINE_integer('pretrain_steps', None, 'videomae_pretraining: '
                                       'pre-training steps (default: the tiny preset\'s).')
_FINETUNE_STEPS = flags.DEFINE_integer('finetune_steps', None, 'videomae_pretraining: '
                                       'fine-tuning steps of each arm (default: the preset\'s).')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1'], 'videomae_pretraining: fine-tuning seeds.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: TFDS\'s).')


def _preset(path: str, arg: str):
  config = runpy.run_path(os.path.join(REPO, path))['get_config'](arg)
  if _DATA_DIR.value:
    config.dataset.data_dir = _DATA_DIR.value
  return config


def _eval_curve(workdir: str) -> list[tuple[int, float]]:
  """[(step, eval/top1 or eval/loss)] from a run's metrics.jsonl."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    lines = [json.loads(line) for line in f]
  key = 'eval/top1' if any('eval/top1' in l for l in lines) else 'eval/loss'
  return [(l['step'], l[key]) for l in lines if key in l]


def _timed_run(config, workdir: str) -> tuple[dict, float]:
  from vivit_jax.train import loop  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  results = loop.run(config, workdir)
  return results, time.perf_counter() - start


def videomae_pretraining(workdir: str, out: str) -> dict:
  """Pre-train once, fine-tune from it and from scratch per seed; returns the result record."""
  pretrain = _preset('configs/videomae/pretrain_k400.py', 'tiny')
  pretrain_steps = _PRETRAIN_STEPS.value or pretrain.train.num_steps
  pretrain.train.update(num_steps=pretrain_steps, eval_every_steps=max(pretrain_steps // 3, 1))
  pretrain_dir = os.path.join(workdir, 'pretrain')
  pt_results, pt_seconds = _timed_run(pretrain, pretrain_dir)
  pngs = sorted(os.listdir(os.path.join(pretrain_dir, 'reconstructions')))
  reconstruction = os.path.join(out, 'videomae_pretraining_reconstruction.png')
  shutil.copyfile(os.path.join(pretrain_dir, 'reconstructions', pngs[-1]), reconstruction)
  arms = []
  for seed in map(int, _SEEDS.value):
    for init in ('pre-trained', 'scratch'):
      config = _preset('configs/videomae/finetune_k400.py', 'tiny')
      finetune_steps = _FINETUNE_STEPS.value or config.train.num_steps
      config.seed = seed
      config.train.update(num_steps=finetune_steps, eval_every_steps=max(finetune_steps // 3, 1))
      config.init_from.path = pretrain_dir if init == 'pre-trained' else ''
      run_dir = os.path.join(workdir, f'finetune_{init}_{seed}')
      results, seconds = _timed_run(config, run_dir)
      arms.append(dict(init=init, seed=seed, top1=results['eval/top1'],
                       top5=results['eval/top5'], loss=results['eval/loss'],
                       seconds=round(seconds, 1), eval_top1_curve=_eval_curve(run_dir)))
  return dict(
      benchmark='videomae_pretraining', dataset='synthetic_motion (10 classes, chance 0.1)',
      pretrain=dict(config='configs/videomae/pretrain_k400.py:tiny', steps=pretrain_steps,
                    final_eval_loss=pt_results['eval/loss'], seconds=round(pt_seconds, 1),
                    eval_loss_curve=_eval_curve(pretrain_dir),
                    reconstruction=os.path.relpath(reconstruction, REPO)),
      finetune=dict(config='configs/videomae/finetune_k400.py:tiny', steps=finetune_steps,
                    arms=arms),
      machine=f'{platform.machine()}, {os.cpu_count()} CPUs (times are not comparable across '
              f'machines; accuracies are)')


def _videomae_pretraining_table(record: dict) -> str:
  pt, ft = record['pretrain'], record['finetune']
  rows = ['| init | seed | test top-1 | test top-5 | test loss | fine-tuning time (s) |',
          '|---|---|---|---|---|---|']
  rows += [f"| {a['init']} | {a['seed']} | {a['top1']:.4f} | {a['top5']:.4f} | {a['loss']:.4f} | "
           f"{a['seconds']} |" for a in ft['arms']]
  means = {init: sum(a['top1'] for a in ft['arms'] if a['init'] == init) /
           sum(1 for a in ft['arms'] if a['init'] == init) for init in ('pre-trained', 'scratch')}
  return '\n'.join([
      '# VideoMAE pre-training vs. training from scratch (synthetic_motion)', '',
      f"Pre-training: `{pt['config']}`, {pt['steps']} steps ({pt['seconds']} s), final test "
      f"reconstruction loss {pt['final_eval_loss']:.4f}; reconstructions: "
      f"`{pt['reconstruction']}`.",
      f"Fine-tuning: `{ft['config']}`, {ft['steps']} steps for each arm; the 'scratch' arm is the "
      f"same model and schedule from a random initialisation.", '', *rows, '',
      f"Mean test top-1: pre-trained {means['pre-trained']:.4f}, scratch {means['scratch']:.4f} "
      f"(chance 0.1). Machine: {record['machine']}.",
      '', 'Regenerate: `python tools/benchmark.py videomae_pretraining`.', ''])


BENCHMARKS = {'videomae_pretraining': (videomae_pretraining, _videomae_pretraining_table)}


def main(argv):
  if len(argv) != 2 or argv[1] not in BENCHMARKS:
    raise app.UsageError(f'Name one benchmark: {", ".join(BENCHMARKS)}.')
  name = argv[1]
  from vivit_jax import console  # pylint: disable=import-outside-toplevel
  console.show_progress()
  workdir = os.path.join(_WORKDIR.value, name)
  shutil.rmtree(workdir, ignore_errors=True)
  os.makedirs(_OUT.value, exist_ok=True)
  run, table = BENCHMARKS[name]
  record = run(workdir, _OUT.value)
  with open(os.path.join(_OUT.value, f'{name}.json'), 'w') as f:
    json.dump(record, f, indent=1)
  text = table(record)
  with open(os.path.join(_OUT.value, f'{name}.md'), 'w') as f:
    f.write(text)
  print(text)


if __name__ == '__main__':
  app.run(main)
