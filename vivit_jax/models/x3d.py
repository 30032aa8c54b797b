"""X3D (Feichtenhofer, "X3D: Expanding Architectures for Efficient Video Recognition", CVPR 2020),
registered as 'x3d', built as PyTorchVideo's `pytorchvideo.models.x3d.create_x3d` builds it (the
same layers, widths and depths, so its state dicts convert leaf for leaf:
vivit_jax/weights/pytorchvideo/x3d.py).

On a clip (B, T, H, W, 3), with w = base_width (12 in the paper) and the expansion factors
width_factor (2.0), depth_factor (2.2 for XS/S/M, 5.0 for L), bottleneck_factor (2.25):

  stem        1x3x3 conv (stride 1x2x2) to round_width(w, width_factor) channels, 5x1x1
              depthwise temporal conv, BN, ReLU                         -> (B, T, H/2, W/2, 24)
  stage_1..4  X3DStage: blocks block_j, ceil(depth_factor x (1, 2, 5, 3)) inverted bottlenecks;
              stage s has C_s = round_width(w_s, width_factor) output and
              int(bottleneck_factor x C_s) inner channels, w_s = w, then doubled (rounded to 8)
              per stage; the first block strides 1x2x2              -> (B, T, H/32, W/32, C_4)
  head        1x1x1 conv `head_conv` to the last inner width (432), BN, ReLU, global average
              pool, `head_fc` (a 1x1x1 conv on the pooled vector, no bias) to head_width (2048),
              ReLU, dropout, zero-initialised Dense `head`                -> (B, num_classes)

X3D-M (w 12): C_s = 24, 48, 96, 192 (inner 54, 108, 216, 432), 3, 5, 11, 7 blocks. A block
(X3DBlock): 1x1x1 conv_a to the inner width, BN, ReLU; 3x3x3 depthwise conv_b (the stride), BN,
squeeze-excitation on blocks 0, 2, 4, ... of each stage (SqueezeExcite, reduced width
round_width(inner, se_ratio = 1/16)), swish; 1x1x1 conv_c, BN (scale 0 at init with
`zero_init_residual`, PySlowFast's ZERO_INIT_FINAL_BN); plus the shortcut, ReLU. The shortcut is
the identity, or a strided 1x1x1 conv where the shape changes, followed by a BN only where the
width changes (as create_x3d: stage 1's first block keeps 24 channels and has no shortcut BN).
PyTorchVideo's head average-pools with a fixed window (the training clip's T x H/32 x W/32) and
applies head_fc, ReLU and the classifier before a final average: the same as here on clips of
the training size.

Convs have no bias (the SE convs do), PyTorch's padding k // 2, He-normal fan-out initialisation;
BatchNorm, conv helpers and logical axis names ('conv_in', 'conv_out', 'classes') as in resnet.py
(a depthwise kernel is (kt, kh, kw, 1, C)).
"""
import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from vivit_jax.models import resnet
from vivit_jax.models.inputs import check_video
from vivit_jax.models.layers import Dtype, check_int

DEPTHS = (1, 2, 5, 3)  # Blocks per stage before depth_factor.
STAGE_WIDTH_RATIO = 2.0  # Width ratio of successive stages before width_factor.
STAGE_STRIDE = 2  # Spatial stride of each stage's first block (the stem strides 2 more).
STEM_TEMPORAL_KERNEL = 5
WIDTH_DIVISOR = 8


def round_width(width: float, multiplier: float, divisor: int = WIDTH_DIVISOR) -> int:
  """width x multiplier rounded to the nearest multiple of `divisor` (at least `divisor`, and not
  below 90% of the product): PySlowFast's / PyTorchVideo's round_width."""
  width *= multiplier
  rounded = max(divisor, int(width + divisor / 2) // divisor * divisor)
  return int(rounded + divisor if rounded < 0.9 * width else rounded)


def _check_positive(field: str, value, hint: str):
  """ValueError naming config.model.FIELD unless `value` is a number > 0 (bools refused)."""
  if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
    raise ValueError(f'config.model.{field}={value!r} must be a positive number ({hint}).')


class SqueezeExcite(nn.Module):
  """Squeeze-excitation (Hu et al. 2018; fvcore's SqueezeExcitation): x (B, T, H, W, C) times
  sigmoid(`expand`(ReLU(`reduce`(mean of x over T, H, W)))), `reduce` and `expand` 1x1x1 convs
  with bias to `reduced` and back to C channels."""
  reduced: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kw = dict(kernel=(1, 1, 1), use_bias=True, dtype=self.dtype, param_dtype=self.param_dtype)
    s = nn.relu(resnet.conv(self.reduced, name='reduce', **kw)(self.squeeze(x)))
    return x * nn.sigmoid(resnet.conv(x.shape[-1], name='expand', **kw)(s))

  def squeeze(self, x: jax.Array) -> jax.Array:
    """x (B, T, H, W, C) -> its mean (B, 1, 1, 1, C)."""
    return jnp.mean(x, axis=(1, 2, 3), keepdims=True)


class X3DBlock(resnet.Block):
  """X3D's inverted bottleneck (see the module docstring): (B, T, H, W, Cin) ->
  (B, T, H / stride, W / stride, width), a 3x3x3 depthwise conv at `inner_width` channels."""
  temporal_kernel: int = 3
  inner_width: int = 1
  se_width: int = 0  # Squeeze-excitation's reduced width; 0: no squeeze-excitation.

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    ones, inner = (1, 1, 1), self.inner_width
    y = self.conv(x, inner, ones, ones, train, 'conv_a')
    y = nn.relu(self.bn(y, train, 'bn_a'))
    y = self.conv(y, inner, (self.temporal_kernel, 3, 3), (1, self.stride, self.stride), train,
                  'conv_b', groups=inner)
    y = self.bn(y, train, 'bn_b')
    if self.se_width:
      y = self.excite(y)
    y = self.conv(nn.silu(y), self.width, ones, ones, train, 'conv_c')
    y = self.bn(y, train, 'bn_c', last=True)
    return self.residual(y, x, train)

  def excite(self, y: jax.Array) -> jax.Array:
    """The squeeze-excitation `se` of y."""
    return SqueezeExcite(self.se_width, name='se', dtype=self.dtype,
                         param_dtype=self.param_dtype)(y)

  def shortcut(self, x: jax.Array, train: bool) -> jax.Array:
    """resnet.Block's shortcut, without the BN where only the stride changes the shape."""
    if x.shape[-1] != self.width or self.stride == 1:
      return super().shortcut(x, train)
    return resnet.conv(self.width, (1, 1, 1), (1, self.stride, self.stride), dtype=self.dtype,
                       param_dtype=self.param_dtype, name='shortcut_conv')(x)


class X3DStage(nn.Module):
  """`depth` X3DBlocks `block_j` of `width` output and `inner_width` inner channels, the first
  strided by STAGE_STRIDE, squeeze-excitation (reduced width `se_width`, 0: none) on blocks 0, 2,
  4, ...: (B, T, H, W, Cin) -> (B, T, H / 2, W / 2, width)."""
  depth: int
  width: int
  inner_width: int
  se_width: int
  zero_init_last: bool = False
  temporal_padding: str = 'same'
  block: Callable[..., X3DBlock] = X3DBlock  # The continual X3D passes its twin.
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    for j in range(self.depth):
      x = self.block(self.width, STAGE_STRIDE if j == 0 else 1, inner_width=self.inner_width,
                     se_width=0 if j % 2 else self.se_width, zero_init_last=self.zero_init_last,
                     temporal_padding=self.temporal_padding, dtype=self.dtype,
                     param_dtype=self.param_dtype, name=f'block_{j}')(x, train=train)
    return x


class X3D(nn.Module):
  """X3D: video (B, T, H, W, 3) float32 -> logits (B, num_classes) float32, or the head_fc
  features (B, head_width) when num_classes == 0. Any T, H, W (the net strides space by 32).

  Presets (configs/cnn/x3d_k400.py): XS, S, M (depth_factor 2.2) and L (5.0) differ only in
  depth and in the clip they see (4 x 160^2, 13 x 160^2, 16 x 224^2, 16 x 312^2).
  """
  num_classes: int
  base_width: int = 12  # PySlowFast X3D.DIM_C1, create_x3d's stem_dim_in.
  width_factor: float = 2.0
  depth_factor: float = 2.2
  bottleneck_factor: float = 2.25
  head_width: int = 2048  # X3D.DIM_C5, create_x3d's head_dim_out.
  se_ratio: float = 0.0625  # 0: no squeeze-excitation.
  zero_init_residual: bool = False
  temporal_padding: str = 'same'  # resnet.TEMPORAL_PADDINGS; 'valid': T shrinks by 4 + 2 / block.
  dropout_rate: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    check_int('base_width', self.base_width, '12 in the paper')
    check_int('head_width', self.head_width, '2048 in the paper')
    _check_positive('width_factor', self.width_factor, '2.0 in the paper')
    _check_positive('depth_factor', self.depth_factor, '2.2 for X3D-XS/S/M, 5.0 for X3D-L')
    _check_positive('bottleneck_factor', self.bottleneck_factor, '2.25 in the paper')
    if not isinstance(self.se_ratio, (int, float)) or not 0 <= self.se_ratio < 1:
      raise ValueError(f'config.model.se_ratio={self.se_ratio!r} must be in [0, 1) (1/16 in the '
                       f'paper; 0 turns squeeze-excitation off).')
    resnet.check_temporal_padding(self.temporal_padding)
    super().__post_init__()

  def stem_width(self) -> int:
    return round_width(self.base_width, self.width_factor)

  def stages(self) -> tuple[tuple[int, int, int], ...]:
    """(blocks, output width, inner width) of each stage: X3D-M ((3, 24, 54), (5, 48, 108),
    (11, 96, 216), (7, 192, 432))."""
    out, width = [], self.base_width
    for s, depth in enumerate(DEPTHS):
      width = width if s == 0 else round_width(width, STAGE_WIDTH_RATIO)
      channels = round_width(width, self.width_factor)
      out.append((math.ceil(self.depth_factor * depth), channels,
                  max(1, int(self.bottleneck_factor * channels))))
    return tuple(out)

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    check_video(video, 'X3D')
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    stem = self.stem_width()
    x = resnet.conv(stem, (1, 3, 3), (1, 2, 2), name='stem_conv_s', **kw)(video)
    x = resnet.conv(stem, (STEM_TEMPORAL_KERNEL, 1, 1), groups=stem, name='stem_conv_t',
                    temporal_padding=self.temporal_padding, **kw)(x)
    x = nn.relu(resnet.batch_norm(train, name='stem_bn', **kw)(x))
    for s, (depth, width, inner) in enumerate(self.stages()):
      se_width = round_width(inner, self.se_ratio) if self.se_ratio else 0
      x = X3DStage(depth, width, inner, se_width, self.zero_init_residual, self.temporal_padding,
                   name=f'stage_{s + 1}', **kw)(x, train=train)
    x = resnet.conv(inner, (1, 1, 1), name='head_conv', **kw)(x)
    x = nn.relu(resnet.batch_norm(train, name='head_bn', **kw)(x))
    x = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    x = nn.relu(resnet.conv(self.head_width, (1, 1, 1), name='head_fc', **kw)(x))
    return resnet.classifier_head(x.reshape(x.shape[0], -1), self.num_classes, self.dropout_rate,
                                  train, **kw)
