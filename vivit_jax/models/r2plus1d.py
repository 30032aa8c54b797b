"""R(2+1)D and R3D (Tran et al. 2018, "A Closer Look at Spatiotemporal Convolutions for Action
Recognition", arXiv:1711.11248), registered as 'r2plus1d'.

ResNet-18/34 layouts (resnet.BasicBlock) on clips (B, T, H, W, C) with every 3x3x3 conv of the
residual blocks either full 3D (factorised=False: R3D) or factorised into a (2+1)D conv: a
1 x 3 x 3 spatial conv to M channels, BN, ReLU, a 3 x 1 x 1 temporal conv. M is chosen so that the
(2+1)D conv has the parameters of the 3D one (the paper's Sec. 3.5):

  M_i = floor(t d^2 N_{i-1} N_i / (d^2 N_{i-1} + t N_i)),   t = 3, d = 3

with N_{i-1}, N_i the conv's input and output widths. `mid_width_rule` 'per_conv' (default) gives
each conv its own M, as the authors' VMZ code; 'torchvision' gives both convs of a block the M of
its first (from the block's input width), as torchvision's r2plus1d_18 (`midplanes` of its
BasicBlock): the second conv of the first block of stages 2-4 then has M = 230, 460, 921 instead
of 288, 576, 1152 (31,505,325 parameters instead of 33,370,839 for R(2+1)D-18).
The stem is a 3 x 7 x 7 conv, stride 1 x 2 x 2 (R3D), or its (2+1)D version with M = 45 (the
released models' conv1_middle, not the formula's 83). No max pool; stages 2-4 halve T, H and W
(stride 2 x 2 x 2 in the first block, in the temporal conv of a (2+1)D conv). Then global average
pool, dropout, zero-initialised head.

Mixed convolutions (the paper's MC_x; `temporal_stages` < 4): only the stem and stages
1..temporal_stages have temporal kernels (3 x 3 x 3 or (2+1)D convs); the later stages have
1 x 3 x 3 convs, halve H and W only and keep T (their shortcut strided 1 x 2 x 2). torchvision's
mc3_18 is MC3: factorised=False, temporal_stages=1.

  stem  64 x T x H/2 x W/2, stage 1 64, stage 2 128 (T/2, H/4), stage 3 256 (T/4, H/8),
  stage 4 512 (T/8, H/16)    (T is halved only by the stages 2..temporal_stages)

Parameter paths: stem_conv (R(2+1)D: stem_conv/{conv_s, bn_s, conv_t}), stem_bn,
stage_{1..4}/block_j/{conv_a, bn_a, conv_b, bn_b, shortcut_conv, shortcut_bn}, where a factorised
conv_a/conv_b holds conv_s (spatial), bn_s and conv_t (temporal). BatchNorm, initialisation and
logical axis names as in resnet.py.
"""
import functools
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vivit_jax.models import resnet
from vivit_jax.models.inputs import check_video
from vivit_jax.models.layers import Dtype, check_int

DEPTHS = {d: resnet.DEPTHS[d] for d in (18, 34)}  # Basic-block ResNets.
STEM_MID_WIDTH = 45  # The (2+1)D stem's M at base_width 64 (VMZ, torchvision).
TEMPORAL_STRIDES = (1, 2, 2, 2)  # Per stage, like the spatial strides.
# How the (2+1)D convs of a block choose M (module docstring).
MID_WIDTH_RULES = ('per_conv', 'torchvision')


def mid_width(in_width: int, out_width: int, t: int = 3, d: int = 3) -> int:
  """The paper's M_i = floor(t d^2 N_{i-1} N_i / (d^2 N_{i-1} + t N_i)) for a t x d x d conv from
  N_{i-1} = in_width to N_i = out_width channels."""
  return (t * d * d * in_width * out_width) // (d * d * in_width + t * out_width)


class Conv2Plus1D(nn.Module):
  """A (2+1)D conv: (B, T, H, W, Cin) -> 1 x kh x kw conv `conv_s` (stride 1 x sh x sw) to
  mid_features -> BN `bn_s` -> ReLU -> kt x 1 x 1 conv `conv_t` (stride st x 1 x 1) to `features`.

  mid_features None: mid_width(Cin, features, kt, kh) (needs kh == kw).
  """
  features: int
  kernel: Sequence[int]  # (kt, kh, kw) of the 3D conv it replaces.
  strides: Sequence[int] = (1, 1, 1)
  mid_features: Optional[int] = None
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    (kt, kh, kw), (st, sh, sw) = self.kernel, self.strides
    mid = self.mid_features or mid_width(x.shape[-1], self.features, kt, kh)
    kw_ = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = resnet.conv(mid, (1, kh, kw), (1, sh, sw), name='conv_s', **kw_)(x)
    x = nn.relu(resnet.batch_norm(train, name='bn_s', **kw_)(x))
    return resnet.conv(self.features, (kt, 1, 1), (st, 1, 1), name='conv_t', **kw_)(x)


class R2Plus1DBlock(resnet.BasicBlock):
  """resnet.BasicBlock with 3 x 3 x 3 convs, each factorised into Conv2Plus1D if `factorised`
  (1 x 3 x 3 convs, temporal_kernel 1, stay plain)."""
  temporal_kernel: Optional[int] = 3
  temporal_kernel_b: int = 3
  factorised: bool = True
  mid_features: Optional[int] = None  # M of both (2+1)D convs; None: each its own mid_width.

  def conv(self, x, features, kernel, strides, train, name):
    if not self.factorised or kernel[0] == 1:
      return super().conv(x, features, kernel, strides, train, name)
    return Conv2Plus1D(features, tuple(kernel), tuple(strides), self.mid_features,
                       dtype=self.dtype, param_dtype=self.param_dtype, name=name)(x, train=train)


class R2Plus1D(nn.Module):
  """R(2+1)D-18/34 (or R3D with factorised=False): video (B, T, H, W, C) float32 -> logits
  (B, num_classes) float32, or the pooled features (B, 8 * base_width) when num_classes == 0.

  T should be a multiple of 8 (three temporal halvings, fewer with temporal_stages < 4, then the
  mean over what is left).
  """
  num_classes: int
  depth: int = 18  # 18 or 34.
  base_width: int = 64
  factorised: bool = True  # False: R3D (full 3 x 3 x 3 convs, 3 x 7 x 7 stem).
  stem_mid_width: Optional[int] = None  # (2+1)D stem's M; None: 45 * base_width / 64.
  mid_width_rule: str = 'per_conv'  # Or 'torchvision' (module docstring).
  temporal_stages: int = 4  # Stages with temporal kernels; fewer: mixed convolutions (MC).
  zero_init_residual: bool = False
  dropout_rate: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    if self.depth not in DEPTHS:
      raise ValueError(f'config.model.depth={self.depth} is not an R(2+1)D depth; use 18 or 34.')
    check_int('base_width', self.base_width, '64 in the paper')
    if self.stem_mid_width is not None:
      check_int('stem_mid_width', self.stem_mid_width, 'or None for 45 * base_width / 64')
    if self.mid_width_rule not in MID_WIDTH_RULES:
      raise ValueError(f"config.model.mid_width_rule='{self.mid_width_rule}' is not a rule; set "
                       f"one of {', '.join(MID_WIDTH_RULES)}.")
    if self.temporal_stages not in range(len(TEMPORAL_STRIDES) + 1):
      raise ValueError(f'config.model.temporal_stages={self.temporal_stages} is not a number of '
                       f'stages; set 0 to 4 (4: R3D / R(2+1)D, 1: MC3 as torchvision mc3_18).')
    super().__post_init__()

  @nn.nowrap
  def block(self, stage: int, **fields) -> R2Plus1DBlock:
    """The block of stage `stage` (0-based) with Stage's `fields` (width, stride, ...); not
    wrapped, so the Stage that calls it owns the block."""
    temporal = stage < self.temporal_stages
    if not temporal:
      fields.update(temporal_kernel=1, temporal_stride=1)
    # torchvision's M comes from the block's input width: width // stride in this net (the first
    # block of stages 2-4 halves H and W and doubles the width).
    mid = (mid_width(fields['width'] // fields['stride'], fields['width'])
           if self.mid_width_rule == 'torchvision' else None)
    return R2Plus1DBlock(factorised=self.factorised, zero_init_last=self.zero_init_residual,
                         temporal_kernel_b=3 if temporal else 1, mid_features=mid,
                         dtype=self.dtype, param_dtype=self.param_dtype, **fields)

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    check_video(video, 'R2Plus1D')
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    if self.factorised:
      mid = self.stem_mid_width or max(1, STEM_MID_WIDTH * self.base_width // 64)
      x = Conv2Plus1D(self.base_width, (3, 7, 7), (1, 2, 2), mid, name='stem_conv',
                      **kw)(video, train=train)
    else:
      x = resnet.conv(self.base_width, (3, 7, 7), (1, 2, 2), name='stem_conv', **kw)(video)
    x = nn.relu(resnet.batch_norm(train, name='stem_bn', **kw)(x))
    for s, n in enumerate(DEPTHS[self.depth][1]):
      x = resnet.Stage(functools.partial(self.block, s), self.base_width * 2 ** s,
                       resnet.STAGE_STRIDES[s], (3,) * n, TEMPORAL_STRIDES[s],
                       name=f'stage_{s + 1}', **kw)(x, train=train)
    x = jnp.mean(x, axis=(1, 2, 3))
    return resnet.classifier_head(x, self.num_classes, self.dropout_rate, train, **kw)
