r"""MViT on Kinetics-400, trained from scratch: MViTv2-S 16x4 (default), MViTv2-B 32x3 (Li et al.,
CVPR 2022; PySlowFast configs/Kinetics/MVITv2_{S_16x4,B_32x3}.yaml) and MViTv1-B 16x4 as
PyTorchVideo ships it (Fan et al., ICCV 2021; pytorchvideo.models.hub.mvit_base_16x4, PySlowFast
configs/Kinetics/MVIT_B_16x4_CONV.yaml). The argument: `size=` S, B or B_v1, and `tiny`.

  python -m vivit_jax.main --config configs/mvit/k400.py:S --workdir runs/mvitv2_s
  python -m vivit_jax.main --config configs/mvit/k400.py:B --workdir runs/mvitv2_b
  python -m vivit_jax.main --config configs/mvit/k400.py:tiny --workdir runs/mvit_tiny

Model (vivit_jax/models/mvit.py): a 3x7x7 conv patch embedding (stride 2x4x4) to 96 channels,
a CLS token, multiscale blocks whose width and heads double at the stage starts (1, 3, 14 for
16 blocks; 2, 5, 21 for MViTv2-B's 24), where queries are pooled 1x2x2; keys and values pooled by
a 3x3x3 conv of stride 1x8x8 divided by each q stride; drop path, dropout 0.5 before the head.
v2: decomposed relative positions, residual pooling, widening inside attention, no absolute
positions. v1: separable space/time absolute positions, none of the v2 options.

  size  clip   published: params  GFLOPs x views  top-1          measured here: params  GFLOPs
  S     16x4              34.5M   64 x 1x5        81.0                   34,537,744     64.2
  B     32x3              51.2M   225 x 1x5       82.9                   51,230,128     224.5
  B_v1  16x4              36.6M   70.5 x 1x5      78.4 (78.85 PTV)       36,610,672     70.6

Published: the papers' Kinetics-400 tables (their FLOPs are multiply-adds, counted
by fvcore), PySlowFast's MODEL_ZOO (S 81.0, B 82.9, v1-B 78.4) and PyTorchVideo's model zoo
(MVIT_B_16x4.pyth: 78.85 top-1, 93.85 top-5, 70.80 GFLOPs x 1 x 5, 36.61M). Measured here with
jax.eval_shape (tests/models/test_mvit.py): parameters (B_v1 equal to PyTorchVideo's
mvit_base_16x4) and multiply-adds per view (flops.analytic_flops / 2). No Kinetics run here.
MVIT_B_16x4.pyth converts with vivit_jax.weights.pytorchvideo.mvit.mvit_variables (its
'model_state'; logits equal to PyTorchVideo's within 1e-6 on a small random-weight MViT).

Recipe (the yamls, PySlowFast defaults): AdamW (0.9, 0.999), weight decay 0.05 (not on 1-D
params), base lr 1e-4 at the released global batch 16, 30 warmup epochs then cosine to 1e-6 over
200 epochs, gradient clipping at norm 1, label smoothing 0.1, Mixup 0.8 + CutMix 1.0 (switch 0.5),
drop path 0.2 (S, v1-B) / 0.3 (B), dropout 0.5; random resized crops (area 0.08-1, aspect
3/4-4/3) of 224, horizontal flip, mean/std 0.45/0.225; testing 5 clips x 1 crop of frames
resized to short side 224. PySlowFast scales the lr by the number of machines
(BASE_LR_SCALE_NUM_SHARDS): on N machines use N x the batch and the lr.
Not yet supported, so different here: warmup from 1e-6 (here 0), RandAugment (rand-m7-n4),
random erasing 0.25, repeated augmentation (2 samples per video); here the q/k/v biases are
(heads, head_dim) arrays, so weight decay reaches them.
Tiny: the size's depth, stage starts, pooling and v1/v2 options, bfloat16, drop path and dropout as
the preset, at width 16 (1 head) on synthetic_motion 8 x 28 x 28 clips (2x4x4 patches -> a 4x7x7
grid, keys and values pooled 1x2x2), 300 steps, AdamW at lr 1e-3, no Mixup or CutMix.
"""
import os
import sys

import ml_collections

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position

BATCH_SIZE = 16  # The yamls' TRAIN.BATCH_SIZE (global, one machine of 8 GPUs).
EPOCHS, WARMUP_EPOCHS = 200, 30
LEARNING_RATE, END_LEARNING_RATE = 1e-4, 1e-6
V2 = dict(abs_pos_embed=False, rel_pos=True, residual_pooling=True, dim_mul_in_att=True,
          pool_q_every_block=True, pool_norm_eps=1e-6)
# PyTorchVideo's v1 pools with nn.LayerNorm's default eps 1e-5.
V1 = dict(abs_pos_embed=True, rel_pos=False, residual_pooling=False, dim_mul_in_att=False,
          pool_q_every_block=False, pool_norm_eps=1e-5)
# size -> (model fields, frames, sampling stride, drop path).
SIZES = {
    'S': (dict(depth=16, stage_starts=(1, 3, 14), **V2), 16, 4, 0.2),
    'B': (dict(depth=24, stage_starts=(2, 5, 21), **V2), 32, 3, 0.3),
    'B_v1': (dict(depth=16, stage_starts=(1, 3, 14), **V1), 16, 4, 0.2),
}
TINY = dict(embed_dim=16, patch_stride=(2, 4, 4), kv_stride=(1, 2, 2), num_classes=10)
TINY_LEARNING_RATE = 1e-3


def get_config(arg=None):
  """The preset of arg (the module docstring)."""
  args = common.parse_arg(arg, __file__, size=tuple(SIZES))
  fields, frames, stride, drop_path = SIZES[args.size]
  config = common.default_config()
  config.model = ml_collections.ConfigDict(dict(
      name='mvit', num_classes=400, embed_dim=96, num_heads=1, mlp_ratio=4.0,
      patch_kernel=(3, 7, 7), patch_stride=(2, 4, 4), pool_kernel=(3, 3, 3), q_stride=(1, 2, 2),
      kv_stride=(1, 8, 8), classifier='token', dropout_rate=0.5, stochastic_depth=drop_path,
      remat='none', dtype='bfloat16', param_dtype='float32', **fields))
  config.dataset.update(name='kinetics400', num_frames=frames, stride=stride, crop_size=224,
                        flip=True, mean=common.KINETICS_MEAN, std=common.KINETICS_STD,
                        train_crop='random_resized', eval_short_side=224, eval_clips=5,
                        eval_crops=1)
  steps_per_epoch = common.KINETICS400_TRAIN_CLIPS // BATCH_SIZE
  config.optimizer.update(name='adamw', learning_rate=LEARNING_RATE,
                          end_learning_rate=END_LEARNING_RATE, b1=0.9, b2=0.999,
                          weight_decay=0.05, grad_clip_norm=1.0, layer_decay=1.0,
                          warmup_steps=WARMUP_EPOCHS * steps_per_epoch)
  config.train.update(batch_size=BATCH_SIZE, eval_batch_size=64, num_steps=EPOCHS * steps_per_epoch,
                      label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0,
                      mixup_switch_prob=0.5, log_every_steps=100,
                      eval_every_steps=10 * steps_per_epoch)
  config.checkpoint.every_steps = 2000
  if not args.tiny:
    return config
  common.tiny_training(config)
  config.model.update(TINY)
  config.optimizer.learning_rate = TINY_LEARNING_RATE
  config.train.update(mixup_alpha=0.0, cutmix_alpha=0.0)
  return config
