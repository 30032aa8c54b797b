r"""Shared parts of the 3D-CNN presets (I3D-R50, C3D, R(2+1)D) and of their tiny CPU versions.
Presets are loaded by file path, so they load this file with runpy.

Every preset starts from configs/default.py (so it has every section the trainer reads), sets the
paper's dataset, model and SGD recipe, and with the argument 'tiny' becomes a CPU-size version on
the built-in synthetic_motion dataset: the same architecture family and choices (block kinds,
depth, temporal kernels, pooling, non-local blocks, dropout, optimizer and peak learning rate;
only C3D's tiny version raises its learning rate, see its preset) and the same compute dtype
(bfloat16, float32 parameters) at base_width 8, TINY_STEPS steps, default.py's batch sizes. The
tiny accuracies and times quoted in the presets' docstrings and benchmarks/motion_models.md were
measured in float32, before the tiny versions kept bfloat16; --config.model.dtype=float32
reproduces those runs.

Kinetics presets train on crops after short-side scale jitter and test on crops of frames
resized to a fixed short side (PySlowFast's TRAIN_JITTER_SCALES / TEST_CROP_SIZE). What the
pipeline and schedules cannot do yet, and the presets therefore leave out, is listed in each
preset's docstring (mostly: a test crop larger than the training crop, step-wise learning-rate
decay; the schedule here is always linear warmup + cosine).
"""
import os
import runpy

import ml_collections

_CONFIGS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# K400 training clips of the full list (240,436; VideoMAE's and PySlowFast-era copies); set
# yours: it only sets the steps per epoch.
KINETICS400_TRAIN_CLIPS = 240436
KINETICS_MEAN, KINETICS_STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)  # PySlowFast DATA.MEAN/STD.
TINY_STEPS = 300
TINY_WARMUP_STEPS = 60
TINY_BASE_WIDTH = 8  # base_width of the tiny versions (stem 8 channels, last stage 64 or 256).
NO_CLIPPING = 1e9  # grad_clip_norm of recipes that do not clip gradients.


def default_config():
  """configs/default.py's get_config(), with init_from.kernel_init 'average': a 2D ResNet given as
  config.init_from.path is inflated as I3D does (each kernel repeated over K_t, divided by K_t)."""
  config = runpy.run_path(os.path.join(_CONFIGS, 'default.py'))['get_config']()
  config.init_from.kernel_init = 'average'
  return config


def model_config(name: str, **fields) -> ml_collections.ConfigDict:
  """config.model for models.build: `name` and the model's fields (dtype bfloat16, params f32)."""
  return ml_collections.ConfigDict(dict(name=name, dtype='bfloat16', param_dtype='float32',
                                        **fields))


def set_sgd(config, *, learning_rate: float, epochs: float, warmup_epochs: float,
            steps_per_epoch: int, **sgd):
  """config.optimizer := SGD (`sgd`: momentum, nesterov, weight_decay, grad_clip_norm) with
  `warmup_epochs` of linear warmup from 0, then cosine decay to 0 at `epochs`;
  config.train.num_steps to match."""
  config.optimizer = ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=learning_rate, end_learning_rate=0.0,
      warmup_steps=int(warmup_epochs * steps_per_epoch), **sgd))
  config.train.num_steps = int(epochs * steps_per_epoch)


def kinetics_sgd(config, *, num_frames: int, stride: int, batch_size: int, learning_rate: float,
                 epochs: int, warmup_epochs: int, nesterov: bool, crop_size: int = 224,
                 eval_crops: int = 3, grad_clip_norm: float = NO_CLIPPING,
                 eval_every_epochs: int = 10, short_side_range: tuple = (256, 320),
                 eval_short_side: int = 256):
  """The Kinetics-400 training shared by the 3D-CNN presets: `num_frames` at `stride`, crops of
  `crop_size` from frames whose short side is scaled to a random length in `short_side_range`
  (scale jitter), horizontal flip, mean/std 0.45/0.225 (PySlowFast), 10 clips x `eval_crops` crops
  of frames at short side `eval_short_side` at test; SGD momentum 0.9 (`nesterov`), weight decay
  1e-4, `warmup_epochs` then cosine over `epochs` at `batch_size`, no label smoothing; an
  evaluation every `eval_every_epochs`."""
  config.dataset.update(name='kinetics400', num_frames=num_frames, stride=stride,
                        crop_size=crop_size, flip=True, mean=KINETICS_MEAN, std=KINETICS_STD,
                        eval_clips=10, eval_crops=eval_crops, train_crop='scale_jitter',
                        short_side_range=short_side_range, eval_short_side=eval_short_side)
  steps_per_epoch = KINETICS400_TRAIN_CLIPS // batch_size
  set_sgd(config, learning_rate=learning_rate, epochs=epochs, warmup_epochs=warmup_epochs,
          steps_per_epoch=steps_per_epoch, momentum=0.9, nesterov=nesterov, weight_decay=1e-4,
          grad_clip_norm=grad_clip_norm)
  config.train.update(batch_size=batch_size, eval_batch_size=batch_size, label_smoothing=0.0,
                      log_every_steps=100, eval_every_steps=eval_every_epochs * steps_per_epoch)
  config.checkpoint.every_steps = 2000


def parse_arg(arg, variants=()) -> tuple[str, bool]:
  """Preset argument -> (variant, tiny): '' or None -> ('', False), 'tiny' -> ('', True),
  V -> (V, False), 'tiny_V' -> (V, True) for V in `variants`."""
  arg = arg or ''
  tiny = arg == 'tiny' or arg.startswith('tiny_')
  variant = arg[len('tiny_'):] if arg.startswith('tiny_') else ('' if arg == 'tiny' else arg)
  if variant and variant not in variants:
    names = ['none', 'tiny'] + [f'{p}{v}' for v in variants for p in ('', 'tiny_')]
    raise ValueError(f"Unknown preset argument '{arg}' (configs/cnn/X.py:ARG); use one of "
                     f"{', '.join(names)}.")
  return variant, tiny


def tiny(config, *, num_frames: int = 8, stride: int = 2, crop_size: int = 28, **model):
  """`config` at CPU size on synthetic_motion (clips num_frames x crop_size^2 at `stride`, no
  flip), 10 classes, base_width TINY_BASE_WIDTH (dtype stays the preset's), `model` further
  config.model fields;
  TINY_STEPS steps from scratch with default.py's batch sizes and checkpointing. The optimizer
  keeps its kind and peak learning rate; its warmup becomes TINY_WARMUP_STEPS."""
  small = default_config()
  config.dataset = small.dataset
  config.dataset.update(num_frames=num_frames, stride=stride, crop_size=crop_size)
  config.checkpoint = small.checkpoint
  config.train.update({k: small.train[k] for k in ('batch_size', 'eval_batch_size',
                                                    'log_every_steps')})
  config.train.update(num_steps=TINY_STEPS, eval_every_steps=TINY_STEPS)
  config.optimizer.warmup_steps = TINY_WARMUP_STEPS
  config.init_from.path = ''
  config.model.update(num_classes=10, base_width=TINY_BASE_WIDTH, **model)
  return config


def tiny_adamw(config):
  """`config` (a tiny version) trained with configs/default.py's AdamW (peak lr 2e-3, weight decay
  0.05, gradients clipped at norm 1) after TINY_WARMUP_STEPS: the recurrent nets' tiny versions,
  which stay at chance in TINY_STEPS steps of SGD."""
  config.optimizer = default_config().optimizer
  config.optimizer.warmup_steps = TINY_WARMUP_STEPS
  return config
