r"""Shared parts of the ViViT Kinetics-400 presets (Arnab et al. 2021, arXiv:2103.15691) and of
their tiny CPU versions. Presets are loaded by file path, so they load this file with runpy.

Settings follow scenic's released configs (google-research/scenic,
scenic/projects/vivit/configs/kinetics400/{vivit_base_k400, vivit_base_factorised_encoder,
vivit_large_factorised_encoder}.py) and the paper (Sec. 4.1, Appendix): 32 frames at stride 2,
224x224 crops, 2x16x16 tubelets, ViT ImageNet-21k initialisation with the central-frame tubelet
kernel, synchronous SGD with momentum 0.9, batch 64, 30 epochs, cosine decay to 0 after 2.5
warmup epochs, gradient clipping at norm 1, no weight decay, and on Kinetics no dropout,
stochastic depth or label smoothing.

Training crops follow a short-side scale jitter (256 x [0.9, 1.33] = 230-341), testing takes 4
clips x 3 crops of frames resized to short side 256. Not yet supported by the pipeline, so absent
from the presets: colour augmentation (p=0.8, colour drop p=0.1); mixup and RandAugment (used by
the paper on Epic Kitchens and SSv2, not on Kinetics).
"""
import os
import runpy

import ml_collections

from vivit_jax.models import vivit

# scenic's KINETICS_400_TRAIN_SIZE: the clips still on YouTube (~240k at release); set yours.
KINETICS400_TRAIN_CLIPS = 214834
BATCH_SIZE = 64
EPOCHS = 30
WARMUP_EPOCHS = 2.5
STEPS_PER_EPOCH = KINETICS400_TRAIN_CLIPS // BATCH_SIZE
TINY_STEPS = 300
_CONFIGS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The config.model fields tiny() takes from configs/default.py: sizes only. dtype, param_dtype,
# remat, scan_layers, stochastic depth, dropout and attention_impl stay the preset's.
_TINY_SIZES = ('hidden_size', 'num_layers', 'num_heads', 'mlp_dim', 'num_classes')


def default_config():
  """configs/default.py's get_config()."""
  return runpy.run_path(os.path.join(_CONFIGS, 'default.py'))['get_config']()


def kinetics400(arg, *, variant: str, size: str, classifier: str, learning_rate: float,
                **model):
  """A ViViT `size`/16x2 K400 preset of `variant`; `model` sets further config.model fields.

  arg None or '' gives the paper's run, 'tiny' the same variant, tokenizer, classifier and
  optimizer at CPU size on synthetic_motion (see tiny()).
  """
  config = default_config()
  config.dataset.update(name='kinetics400', num_frames=32, stride=2, crop_size=224, flip=True,
                        train_crop='scale_jitter', short_side_range=(230, 341),
                        eval_short_side=256, eval_clips=4, eval_crops=3)
  config.model.update(variant=variant, classifier=classifier, num_classes=400,
                      patch_size=(2, 16, 16), stochastic_depth=0.0, dtype='bfloat16',
                      scan_layers=True, **vivit.size_preset(size), **model)
  set_sgd(config, learning_rate=learning_rate, epochs=EPOCHS, warmup_epochs=WARMUP_EPOCHS,
          steps_per_epoch=STEPS_PER_EPOCH, momentum=0.9, nesterov=False, weight_decay=0.0,
          grad_clip_norm=1.0)
  config.train.update(batch_size=BATCH_SIZE, label_smoothing=0.0, log_every_steps=100,
                      eval_every_steps=STEPS_PER_EPOCH)
  config.checkpoint.every_steps = 1000
  # ViT-{size}/16 ImageNet-21k, e.g. big_vision's / google-research/vision_transformer's
  # gs://vit_models/imagenet21k/ViT-B_16.npz (ViT-L_16.npz for L); '' trains from scratch.
  config.init_from.update(path='', kernel_init='central_frame')
  return with_arg(config, arg)


def set_sgd(config, *, learning_rate, epochs, warmup_epochs, steps_per_epoch, **sgd):
  """config.optimizer := SGD (`sgd`: momentum, nesterov, weight_decay, grad_clip_norm) with
  `warmup_epochs` of linear warmup, then cosine decay to 0 at `epochs`; config.train.num_steps
  to match."""
  config.optimizer = ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=learning_rate, end_learning_rate=0.0,
      warmup_steps=int(warmup_epochs * steps_per_epoch), **sgd))
  config.train.num_steps = epochs * steps_per_epoch


def with_arg(config, arg):
  """`config` for the preset argument: None or '' the paper's run, 'tiny' tiny(config)."""
  if arg in (None, ''):
    return config
  if arg == 'tiny':
    return tiny(config)
  raise ValueError(f"Unknown preset argument '{arg}' (configs/X.py:ARG); use none or 'tiny'.")


def tiny(config):
  """`config` at CPU size: configs/default.py's dataset (synthetic_motion, 8x28x28 clips), model
  sizes (width, depth, heads, patches; Model 2: 2 temporal layers), batch sizes and
  checkpointing, TINY_STEPS steps from scratch. Everything else stays the preset's: the variant,
  tokenizer, classifier, regularisation (dropout, stochastic depth), the speed options (dtype
  bfloat16 with float32 params, scan_layers, remat, attention_impl) and the optimizer with its
  peak learning rate, so a tiny run on CPU exercises the paper run's code paths."""
  small = default_config()
  config.dataset, config.checkpoint = small.dataset, small.checkpoint
  config.train.update({k: small.train[k] for k in ('batch_size', 'eval_batch_size',
                                                    'log_every_steps')})
  config.train.update(num_steps=TINY_STEPS, eval_every_steps=TINY_STEPS)
  config.optimizer.warmup_steps = small.optimizer.warmup_steps
  config.init_from.path = ''
  config.model.update({k: small.model[k] for k in _TINY_SIZES})
  if config.model.name == 'timesformer':
    config.model.update(num_frames=small.dataset.num_frames, image_size=small.dataset.crop_size,
                        patch_size=small.model.patch_size[-1])
  else:
    config.model.patch_size = small.model.patch_size
  if 'num_temporal_layers' in config.model:
    config.model.num_temporal_layers = 2
  return config
