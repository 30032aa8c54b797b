r"""TimeSformer-B, divided space-time attention, 8x224x224 clips (sampling stride 32) on
Kinetics-400 (Bertasius et al. 2021, arXiv:2102.05095, Sec. 4 and Table 1).

Source: facebookresearch/TimeSformer, configs/Kinetics/TimeSformer_divST_8x32_224.yaml (SGD,
momentum 0.9, Nesterov as PySlowFast's default, base learning rate 0.005, weight decay 1e-4,
batch 8, 15 epochs, no warmup) and timesformer/models/vit.py (vit_base_patch16_224: no dropout,
stochastic depth 0.1), PySlowFast's default mean/std 0.45/0.225.

Training crops follow a short-side scale jitter to [256, 320]; testing takes 1 clip x 3 crops
of frames resized to short side 224 (TEST_CROP_SIZE). Different, not yet supported: the step
schedule (x0.1 at epochs 11 and 14) is replaced by cosine decay over the 15 epochs. The yaml's MODEL.DROPOUT_RATE 0.5 is not
read by the ViT model.

  python -m vivit_jax.main --config configs/timesformer/base_8x224.py --workdir runs/tsf_b
  python -m vivit_jax.main --config configs/timesformer/base_8x224.py:tiny --workdir runs/tiny

The tiny version (configs/vivit/common.py tiny()) shrinks the model and clips only: it keeps
bfloat16, scan_layers, stochastic depth 0.1 and the optimizer.
"""
import os
import runpy

import ml_collections

_COMMON = runpy.run_path(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                      'vivit', 'common.py'))
BATCH_SIZE = 8


def get_config(arg=None):
  """The preset; arg 'tiny' gives its CPU-sized version."""
  config = _COMMON['default_config']()
  config.dataset.update(name='kinetics400', num_frames=8, stride=32, crop_size=224, flip=True,
                        train_crop='scale_jitter', short_side_range=(256, 320),
                        eval_short_side=224, eval_clips=1, eval_crops=3,
                        mean=(0.45,) * 3, std=(0.225,) * 3)
  default = config.model
  config.model = ml_collections.ConfigDict(dict(
      name='timesformer', num_classes=400, num_frames=8, image_size=224, patch_size=16,
      **_COMMON['vivit'].size_preset('B'), dropout_rate=0.0, attention_dropout_rate=0.0,
      stochastic_depth=0.1, attention_impl=default.attention_impl, dtype='bfloat16',
      param_dtype=default.param_dtype, scan_layers=True, remat=default.remat))
  steps_per_epoch = _COMMON['KINETICS400_TRAIN_CLIPS'] // BATCH_SIZE
  _COMMON['set_sgd'](config, learning_rate=0.005, epochs=15, warmup_epochs=0,
                     steps_per_epoch=steps_per_epoch, momentum=0.9, nesterov=True,
                     weight_decay=1e-4, grad_clip_norm=float('inf'))  # No clipping.
  config.train.update(batch_size=BATCH_SIZE, eval_batch_size=64, label_smoothing=0.0,
                      log_every_steps=100, eval_every_steps=5 * steps_per_epoch)
  config.checkpoint.every_steps = 5000
  # Image ViT-B/16, e.g. timm's vit_base_patch16_224 (ImageNet-21k, fine-tuned on 1k) as a Hugging
  # Face save_pretrained dir or big_vision's ViT-B_16.npz; '' trains from scratch.
  config.init_from.path = ''
  return _COMMON['with_arg'](config, arg)
