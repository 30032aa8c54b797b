r"""TimeSformer-B, divided space-time attention, 8x224x224 clips (sampling stride 32) on
Kinetics-400 (Bertasius et al. 2021, arXiv:2102.05095, Sec. 4 and Table 1).

Source: facebookresearch/TimeSformer, configs/Kinetics/TimeSformer_divST_8x32_224.yaml (SGD,
momentum 0.9, Nesterov as PySlowFast's default, base learning rate 0.005, weight decay 1e-4,
batch 8, 15 epochs, no warmup) and timesformer/models/vit.py (vit_base_patch16_224: no dropout,
stochastic depth 0.1), PySlowFast's default mean/std 0.45/0.225.

Training crops follow a short-side scale jitter to [256, 320]; testing takes 1 clip x 3 crops
of frames resized to short side 224 (TEST_CROP_SIZE). Different, not yet supported: the step
schedule (x0.1 at epochs 11 and 14) is replaced by cosine decay over the 15 epochs. The yaml's
MODEL.DROPOUT_RATE 0.5 is not read by the ViT model.

  python -m vivit_jax.main --config configs/timesformer/base_8x224.py --workdir runs/tsf_b
  python -m vivit_jax.main --config configs/timesformer/base_8x224.py:tiny --workdir runs/tiny

Expect (the paper's Kinetics-400 comparison with the state of the art): top-1 78.0, top-5 93.7
(1 clip x 3 crops, ImageNet-21k initialisation). Not measured here: no Kinetics and no
accelerator.
The tiny version (configs/common.py tiny_transformer) shrinks the model and clips only: it keeps
bfloat16, scan_layers, stochastic depth 0.1 and the optimizer; 300 steps on synthetic_motion,
not run to the end here (one train step in tests/configs/).
"""
import os
import sys

import ml_collections

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position
from vivit_jax.models import vivit  # noqa: E402  pylint: disable=wrong-import-position

BATCH_SIZE = 8


def get_config(arg=None):
  """The preset; arg 'tiny' (configs/common.py) gives its CPU-sized version."""
  args = common.parse_arg(arg, __file__)
  config = common.default_config()
  config.dataset.update(name='kinetics400', num_frames=8, stride=32, crop_size=224, flip=True,
                        train_crop='scale_jitter', short_side_range=(256, 320),
                        eval_short_side=224, eval_clips=1, eval_crops=3,
                        mean=common.KINETICS_MEAN, std=common.KINETICS_STD)
  default = config.model
  config.model = ml_collections.ConfigDict(dict(
      name='timesformer', num_classes=400, num_frames=8, image_size=224, patch_size=16,
      **vivit.size_preset('B'), dropout_rate=0.0, attention_dropout_rate=0.0,
      stochastic_depth=0.1, attention_impl=default.attention_impl, dtype='bfloat16',
      param_dtype=default.param_dtype, scan_layers=True, remat=default.remat))
  steps_per_epoch = common.KINETICS400_TRAIN_CLIPS // BATCH_SIZE
  common.set_sgd(config, learning_rate=0.005, epochs=15, warmup_epochs=0,
                 steps_per_epoch=steps_per_epoch, momentum=0.9, nesterov=True,
                 weight_decay=1e-4, grad_clip_norm=common.NO_CLIPPING)
  config.train.update(batch_size=BATCH_SIZE, eval_batch_size=64, label_smoothing=0.0,
                      log_every_steps=100, eval_every_steps=5 * steps_per_epoch)
  config.checkpoint.every_steps = 5000
  # Image ViT-B/16, e.g. timm's vit_base_patch16_224 (ImageNet-21k, fine-tuned on 1k) as a Hugging
  # Face save_pretrained dir or big_vision's ViT-B_16.npz; '' trains from scratch.
  config.init_from.path = ''
  return common.tiny_transformer(config) if args.tiny else config
