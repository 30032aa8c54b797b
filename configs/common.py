r"""What every preset shares: one way to read its argument, configs/default.py as the starting
point, the dataset constants, the SGD recipe and the CPU-size (`tiny`) training.

A preset argument (`configs/X.py:ARG`) is a comma-separated list of `tiny` and the preset's
options, each `name=value` or just `value`; options left out take their first choice, e.g.
  configs/vivit/k400.py:factorised_encoder,L        (= :variant=factorised_encoder,size=L)
  configs/cnn/i3d_r50_k400.py:tiny,nonlocal         (the CPU-size I3D with non-local blocks)
`tiny` keeps the preset's model choices, dtypes and speed options (scan_layers, remat, stochastic
depth) and shrinks sizes only, so a CPU run exercises the code paths of the paper run.

Presets import this file as `configs.common` (not installed: they put the repo on sys.path).
"""
import os
import runpy
import types

import ml_collections

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Kinetics-400's training clips: the 240,436 of the full list still downloadable when the later
# papers ran (VideoMAE's and PySlowFast-era copies; CVDF's archive, which the kinetics400 builder
# of vivit_jax/data/standard_datasets.py reads, holds about as many). scenic's 214,834 (its
# KINETICS_400_TRAIN_SIZE) counted one older crawl that had lost more videos. It sets the steps
# per epoch only: put the count your build reports here.
KINETICS400_TRAIN_CLIPS = 240436
SSV2_TRAIN_CLIPS = 168913  # Something-Something v2's training videos.
KINETICS_MEAN, KINETICS_STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)  # PySlowFast DATA.MEAN/STD.
NO_CLIPPING = float('inf')  # grad_clip_norm of recipes that do not clip gradients.
# The tiny versions' training on synthetic_motion: steps and linear warmup steps.
TINY_STEPS = 300
TINY_WARMUP_STEPS = 60


def parse_arg(arg, config_file: str, **options: tuple[str, ...]) -> types.SimpleNamespace:
  """Preset argument `arg` of `config_file` -> namespace(tiny=bool, option=value for each of
  `options`, name -> its choices, the first the default). ValueError (one line, naming the valid
  arguments) for anything else."""
  chosen, tiny = {}, False
  for token in filter(None, (arg or '').split(',')):
    name, value = token.split('=', 1) if '=' in token else (None, token)
    if name is None and value == 'tiny':
      tiny = True
      continue
    if name is None:  # A bare value names its option.
      name = next((n for n, choices in options.items() if value in choices), None)
    if name not in options or value not in options[name] or name in chosen:
      raise ValueError(_unknown(token, arg, config_file, options))
    chosen[name] = value
  return types.SimpleNamespace(tiny=tiny, **{n: chosen.get(n, c[0]) for n, c in options.items()})


def _unknown(token: str, arg: str, config_file: str, options: dict) -> str:
  path = os.path.relpath(os.path.abspath(config_file), REPO)
  valid = ', '.join(['tiny'] + [f'{n}={"|".join(c)}' for n, c in options.items()])
  return (f"Unknown preset argument '{token}' in {path}:{arg}; use a comma-separated list of "
          f"{valid} (each option at most once; `name=` may be left out).")


def load(spec: str) -> ml_collections.ConfigDict:
  """The config of `spec`, 'configs/X.py[:ARG]' (relative to the repo, or absolute)."""
  path, _, arg = spec.partition(':')
  return runpy.run_path(os.path.join(REPO, path))['get_config'](arg or None)


def default_config() -> ml_collections.ConfigDict:
  """configs/default.py's get_config(): every section the trainer reads."""
  return load('configs/default.py')


def set_sgd(config, *, learning_rate: float, epochs: float, warmup_epochs: float,
            steps_per_epoch: int, **sgd):
  """config.optimizer := SGD (`sgd`: momentum, nesterov, weight_decay, grad_clip_norm) with
  `warmup_epochs` of linear warmup from 0, then cosine decay to 0 at `epochs`;
  config.train.num_steps to match."""
  config.optimizer = ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=learning_rate, end_learning_rate=0.0,
      warmup_steps=int(warmup_epochs * steps_per_epoch), **sgd))
  config.train.num_steps = int(epochs * steps_per_epoch)


def tiny_training(config, *, steps: int = TINY_STEPS):
  """`config` trained at CPU size: configs/default.py's dataset (synthetic_motion, 8 x 28 x 28
  clips), batch sizes and checkpointing, `steps` steps from scratch after TINY_WARMUP_STEPS of
  warmup, one evaluation at the end. The optimizer keeps its kind and peak learning rate; the
  model is left to the caller (sizes only)."""
  small = default_config()
  config.dataset, config.checkpoint = small.dataset, small.checkpoint
  config.train.update({k: small.train[k] for k in ('batch_size', 'eval_batch_size',
                                                    'log_every_steps')})
  config.train.update(num_steps=steps, eval_every_steps=steps)
  config.optimizer.warmup_steps = TINY_WARMUP_STEPS
  config.init_from.path = ''
  return config


def tiny_transformer(config):
  """`config` (a ViViT or TimeSformer preset) at CPU size: tiny_training, and configs/default.py's
  model sizes (width 64, 4 layers, 4 heads, MLP 256, 2x7x7 patches of its 8 x 28 x 28 clips),
  10 classes, 2 temporal layers where the preset has a temporal encoder. Everything else stays
  the preset's."""
  small = default_config()
  tiny_training(config)
  config.model.update({k: small.model[k] for k in (
      'hidden_size', 'num_layers', 'num_heads', 'mlp_dim', 'num_classes')})
  if config.model.name == 'timesformer':
    config.model.update(num_frames=small.dataset.num_frames, image_size=small.dataset.crop_size,
                        patch_size=small.model.patch_size[-1])
  else:
    config.model.patch_size = small.model.patch_size
  if 'num_temporal_layers' in config.model:
    config.model.num_temporal_layers = 2
  return config
