r"""The recipe shared by the CNN presets (3D CNNs, fusion, two-stream, recurrent) and their tiny
CPU versions; how a preset's argument is read, the dataset constants and the SGD schedule are
configs/common.py's.

Every preset starts from configs/default.py (so it has every section the trainer reads), sets the
paper's dataset, model and SGD recipe, and with the argument 'tiny' becomes a CPU-size version on
the built-in synthetic_motion dataset: the same architecture family and choices (block kinds,
depth, temporal kernels, pooling, non-local blocks, dropout, optimizer and peak learning rate;
only C3D's and the fusion models' tiny versions raise their learning rate, see their presets) and
the same compute dtype (bfloat16, float32 parameters) at base_width TINY_BASE_WIDTH,
common.TINY_STEPS steps, default.py's batch sizes. The tiny accuracies and times quoted in the
presets' docstrings and benchmarks/motion_models.md were measured in float32, before the tiny
versions kept bfloat16; --config.model.dtype=float32 reproduces those runs.

Kinetics presets train on crops after short-side scale jitter and test on crops of frames
resized to a fixed short side (PySlowFast's TRAIN_JITTER_SCALES / TEST_CROP_SIZE). What the
pipeline and schedules cannot do yet, and the presets therefore leave out, is listed in each
preset's docstring (mostly: a test crop larger than the training crop, step-wise learning-rate
decay; the schedule here is always linear warmup + cosine).
"""
import ml_collections

from configs import common

TINY_BASE_WIDTH = 8  # base_width of the tiny versions (stem 8 channels, last stage 64 or 256).


def default_config():
  """configs/default.py's get_config(), with init_from.kernel_init 'average': a 2D ResNet given as
  config.init_from.path is inflated as I3D does (each kernel repeated over K_t, divided by K_t)."""
  config = common.default_config()
  config.init_from.kernel_init = 'average'
  return config


def model_config(name: str, **fields) -> ml_collections.ConfigDict:
  """config.model for models.build: `name` and the model's fields (dtype bfloat16, params f32)."""
  return ml_collections.ConfigDict(dict(name=name, dtype='bfloat16', param_dtype='float32',
                                        **fields))


def kinetics_sgd(config, *, num_frames: int, stride: int, batch_size: int, learning_rate: float,
                 epochs: int, warmup_epochs: int, nesterov: bool, crop_size: int = 224,
                 eval_crops: int = 3, grad_clip_norm: float = common.NO_CLIPPING,
                 eval_every_epochs: int = 10, short_side_range: tuple = (256, 320),
                 eval_short_side: int = 256):
  """The Kinetics-400 training shared by the 3D-CNN presets: `num_frames` at `stride`, crops of
  `crop_size` from frames whose short side is scaled to a random length in `short_side_range`
  (scale jitter), horizontal flip, mean/std 0.45/0.225 (PySlowFast), 10 clips x `eval_crops` crops
  of frames at short side `eval_short_side` at test; SGD momentum 0.9 (`nesterov`), weight decay
  1e-4, `warmup_epochs` then cosine over `epochs` at `batch_size`, no label smoothing; an
  evaluation every `eval_every_epochs`."""
  config.dataset.update(name='kinetics400', num_frames=num_frames, stride=stride,
                        crop_size=crop_size, flip=True, mean=common.KINETICS_MEAN,
                        std=common.KINETICS_STD, eval_clips=10, eval_crops=eval_crops,
                        train_crop='scale_jitter', short_side_range=short_side_range,
                        eval_short_side=eval_short_side)
  steps_per_epoch = common.KINETICS400_TRAIN_CLIPS // batch_size
  common.set_sgd(config, learning_rate=learning_rate, epochs=epochs,
                 warmup_epochs=warmup_epochs, steps_per_epoch=steps_per_epoch, momentum=0.9,
                 nesterov=nesterov, weight_decay=1e-4, grad_clip_norm=grad_clip_norm)
  config.train.update(batch_size=batch_size, eval_batch_size=batch_size, label_smoothing=0.0,
                      log_every_steps=100, eval_every_steps=eval_every_epochs * steps_per_epoch)
  config.checkpoint.every_steps = 2000


def tiny(config, *, num_frames: int = 8, stride: int = 2, crop_size: int = 28, **model):
  """`config` at CPU size (common.tiny_training) on synthetic_motion clips of num_frames x
  crop_size^2 at `stride` (no flip), 10 classes, base_width TINY_BASE_WIDTH, `model` further
  config.model fields; dtype and every other model choice stay the preset's."""
  common.tiny_training(config)
  config.dataset.update(num_frames=num_frames, stride=stride, crop_size=crop_size)
  config.model.update(num_classes=10, base_width=TINY_BASE_WIDTH, **model)
  return config


def tiny_adamw(config):
  """`config` (a tiny version) trained with configs/default.py's AdamW (peak lr 2e-3, weight decay
  0.05, gradients clipped at norm 1) after common.TINY_WARMUP_STEPS: the recurrent nets' tiny
  versions, which stay at chance in common.TINY_STEPS steps of SGD."""
  config.optimizer = common.default_config().optimizer
  config.optimizer.warmup_steps = common.TINY_WARMUP_STEPS
  return config
