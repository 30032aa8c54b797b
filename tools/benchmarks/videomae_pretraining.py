"""Does VideoMAE pre-training help? On synthetic_motion, the tiny VideoMAE
(configs/videomae/pretrain.py:tiny) is pre-trained by masked video modelling, then the tiny
classifier (configs/videomae/finetune.py:tiny) is fine-tuned from it and, with the same
fine-tuning budget, from scratch, for each seed; the table gives the test top-1 of both. About 30
minutes on 2 CPU cores at the presets' step counts.

  python tools/benchmark.py videomae_pretraining [--seeds 0,1,...] [--finetune_split 'train[:10%]']
"""
import os
import re
import shutil

from absl import flags

from tools.benchmarks.common import options, results, runs

_PRETRAIN_STEPS = flags.DEFINE_integer('pretrain_steps', None, 'videomae_pretraining: '
                                       'pre-training steps (default: the tiny preset\'s).')
_FINETUNE_STEPS = flags.DEFINE_integer('finetune_steps', None, 'videomae_pretraining: '
                                       'fine-tuning steps of each arm (default: the preset\'s).')
_FINETUNE_SPLIT = flags.DEFINE_string(
    'finetune_split', None, "videomae_pretraining: the train split of both fine-tuning arms, e.g. "
    "'train[:10%]' (the low-label setting; results go to videomae_pretraining_train_10.*); "
    "default: the preset's.")
_PRETRAIN_WORKDIR = flags.DEFINE_string(
    'pretrain_workdir', None, 'videomae_pretraining: a finished pre-training workdir of the tiny '
    'preset to fine-tune from instead of pre-training anew (its time is then not measured).')


def run(workdir: str, out: str) -> dict:
  """Pre-train once, fine-tune from it and from scratch per seed; returns the result record."""
  pretrain = runs.preset('configs/videomae/pretrain.py', 'tiny')
  pretrain_steps = _PRETRAIN_STEPS.value or pretrain.train.num_steps
  pretrain.train.update(num_steps=pretrain_steps, eval_every_steps=max(pretrain_steps // 3, 1))
  pretrain_dir = _PRETRAIN_WORKDIR.value or os.path.join(workdir, 'pretrain')
  pt_results, pt_seconds = runs.timed_run(pretrain, pretrain_dir)  # A finished workdir: eval only.
  if _PRETRAIN_WORKDIR.value:
    pt_seconds = None
  pngs = sorted(os.listdir(os.path.join(pretrain_dir, 'reconstructions')))
  reconstruction = os.path.join(out, 'videomae_pretraining_reconstruction.png')
  shutil.copyfile(os.path.join(pretrain_dir, 'reconstructions', pngs[-1]), reconstruction)
  arms = []
  for seed in map(int, options.SEEDS.value):
    for init in ('pre-trained', 'scratch'):
      config = runs.preset('configs/videomae/finetune.py', 'tiny')
      finetune_steps = _FINETUNE_STEPS.value or config.train.num_steps
      config.seed = seed
      config.train.update(num_steps=finetune_steps, eval_every_steps=max(finetune_steps // 3, 1))
      config.dataset.train_split = _FINETUNE_SPLIT.value or config.dataset.train_split
      config.init_from.path = pretrain_dir if init == 'pre-trained' else ''
      run_dir = os.path.join(workdir, f'finetune_{init}_{seed}')
      final, seconds = runs.timed_run(config, run_dir)
      arms.append(dict(init=init, seed=seed, top1=final['eval/top1'],
                       top5=final['eval/top5'], loss=final['eval/loss'],
                       seconds=round(seconds, 1), eval_top1_curve=runs.eval_curve(run_dir)))
  split = _FINETUNE_SPLIT.value
  suffix = '_' + re.sub(r'\W+', '_', split).strip('_') if split else ''
  return dict(
      benchmark='videomae_pretraining' + suffix,
      dataset='synthetic_motion (10 classes, chance 0.1)',
      pretrain=dict(config='configs/videomae/pretrain.py:tiny', steps=pretrain_steps,
                    final_eval_loss=pt_results['eval/loss'],
                    seconds=None if pt_seconds is None else round(pt_seconds, 1),
                    eval_loss_curve=runs.eval_curve(pretrain_dir),
                    reconstruction=os.path.relpath(reconstruction, runs.REPO)),
      finetune=dict(config='configs/videomae/finetune.py:tiny', steps=finetune_steps,
                    train_split=config.dataset.train_split, arms=arms),
      machine=results.machine())


def table(record: dict) -> str:
  pt, ft = record['pretrain'], record['finetune']
  rows = ['| init | seed | test top-1 | test top-5 | test loss | fine-tuning time (s) |',
          '|---|---|---|---|---|---|']
  rows += [f"| {a['init']} | {a['seed']} | {a['top1']:.4f} | {a['top5']:.4f} | {a['loss']:.4f} | "
           f"{a['seconds']} |" for a in ft['arms']]
  means = {init: sum(a['top1'] for a in ft['arms'] if a['init'] == init) /
           sum(1 for a in ft['arms'] if a['init'] == init) for init in ('pre-trained', 'scratch')}
  split = ft.get('train_split', 'train')
  timing = 'an earlier run, reused' if pt['seconds'] is None else f"{pt['seconds']} s"
  flag = '' if split == 'train' else f" --finetune_split='{split}'"
  return '\n'.join([
      '# VideoMAE pre-training vs. training from scratch (synthetic_motion)', '',
      f"Pre-training: `{pt['config']}`, {pt['steps']} steps ({timing}), "
      f"final test reconstruction loss {pt['final_eval_loss']:.4f}; reconstructions: "
      f"`{pt['reconstruction']}`.",
      f"Fine-tuning: `{ft['config']}`, {ft['steps']} steps for each arm on "
      f"`{split}`; the 'scratch' arm is the same model and schedule from "
      f"a random initialisation.", '', *rows, '',
      f"Mean test top-1: pre-trained {means['pre-trained']:.4f}, scratch {means['scratch']:.4f} "
      f"(chance 0.1). Machine: {record['machine']}.",
      '', f"Regenerate: `python tools/benchmark.py videomae_pretraining{flag}`. Recipes tried "
      f"on the way: benchmarks/videomae_recipes.md.", ''])


def write(record: dict, out: str) -> str:
  return results.write(record, out, table(record))
