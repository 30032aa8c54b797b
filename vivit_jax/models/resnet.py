"""ResNets for frames and clips: `ResNet2D` ('resnet2d') and the inflated `ResNet3D` ('resnet3d').

One block code serves both: a block built with `temporal_kernel=None` is 2D (kernels
(kh, kw, Cin, Cout) on (N, H, W, C)), with an int it is 3D (kernels (kt, kh, kw, Cin, Cout) on
(N, T, H, W, C)). The two nets have the same parameter tree paths:

  stem_conv, stem_bn                         7x7 (3D: kt x 7 x 7) conv, stride 2, BN, ReLU, then
                                             a 3x3 (1x3x3) max pool, stride 2
  stage_{1..4}/block_{j}/conv_a, bn_a, ...   residual blocks; a projection shortcut
                                             (shortcut_conv, shortcut_bn) where shapes change
  stage_{s}/nonlocal_{j}                     3D only: a non-local block after block j
  head                                       global average pool, dropout, zero-initialised Dense

so a 2D checkpoint inflates to 3D by giving each kernel a leading temporal axis (repeat over kt,
divide by kt, as PySlowFast and mmaction2 do) and copying everything else. Blocks follow PySlowFast
(facebookresearch/SlowFast, slowfast/models/resnet_helper.py, STRIDE_1X1=False):
  BasicBlock  conv_a kt x 3 x 3 (spatial stride here), conv_b 1 x 3 x 3 (depth 10, 18, 34)
  Bottleneck  conv_a kt x 1 x 1, conv_b 1 x 3 x 3 (spatial stride here), conv_c 1 x 1 x 1 to
              4x the width (depth 50, 101, 152)
  Bottleneck2Plus1D  Bottleneck with conv_b factorised, temporal first: conv_b_t 3 x 1 x 1
              (temporal stride), bn_b_t, ReLU, conv_b 1 x 3 x 3 (ResNet3D factorised=True:
              PyTorchVideo's R(2+1)D-R50)
where kt is the block's temporal kernel (`ResNet3D.temporal_kernels`). Convs have no bias and
PyTorch's symmetric padding k // 2 (so converted weights give the same outputs), He-normal fan-out
initialisation (PySlowFast's c2_msra_fill); BatchNorm uses momentum 0.9 (PyTorch's 0.1) and eps
1e-5, and with `zero_init_residual` the last BN of each block starts with scale 0, so every block
starts as the identity (PySlowFast's ZERO_INIT_FINAL_BN). Stages have widths base_width x
(1, 2, 4, 8) (x 4 at the output of bottlenecks) and spatial strides (1, 2, 2, 2).

Logical axis names: conv kernels (..., 'conv_in', 'conv_out'), BN scale/bias ('conv_out',), the
head ('conv_out', 'classes'). The default config.sharding_rules split 'conv_in' over 'fsdp' and
'conv_out' over 'model' (as a Dense layer's 'embed' and 'mlp'); names missing from the rules
replicate.
"""
import functools
from typing import Callable, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from vivit_jax.models import attention, inputs
from vivit_jax.models.layers import Dtype, check_int, partitioned

BN_MOMENTUM = 0.9  # Flax's momentum: running = 0.9 running + 0.1 batch (PyTorch momentum 0.1).
BN_EPSILON = 1e-5
# He normal, fan-out (PyTorch kaiming_normal_(mode='fan_out', nonlinearity='relu')).
CONV_INIT = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
NUM_STAGES = 4
# depth -> (block kind, blocks per stage).
DEPTHS = {
    10: ('basic', (1, 1, 1, 1)),  # 3D ResNet-10 (Hara et al. 2018); small tests.
    18: ('basic', (2, 2, 2, 2)),
    34: ('basic', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)),
    152: ('bottleneck', (3, 8, 36, 3)),
}
STAGE_STRIDES = (1, 2, 2, 2)  # Spatial stride of the first block of each stage.
# 'same': PyTorch's padding kt // 2 keeps T; 'valid': no temporal padding, a kt-tap conv shortens
# T by kt - 1 and residuals crop their shortcut's centre (the clip a continual model equals).
TEMPORAL_PADDINGS = ('same', 'valid')


def _conv3d_as_2d(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
                  padding: Sequence[tuple[int, int]], precision) -> jax.Array:
  """The 3D convolution x (N, T, H, W, C) * kernel (kt, kh, kw, C, O) -> (N, T', H', W', O) as one
  2D convolution: a kt x 1 x 1 kernel slides over the (T, H * W) plane; otherwise the kt
  (strided) temporal taps of the padded clip are stacked along the channels, (N * T', H, W,
  kt * C), for a kh x kw kernel of kt * C input channels."""
  kt, kh, kw, c, o = kernel.shape
  (st, sh, sw), (pt, ph, pw) = strides, padding
  n, t, h, w, _ = x.shape
  conv2d = functools.partial(lax.conv_general_dilated, dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                             precision=precision)
  if (kh, kw, sh, sw) == (1, 1, 1, 1) and tuple(ph) == tuple(pw) == (0, 0):
    y = conv2d(x.reshape(n, t, h * w, c), kernel.reshape(kt, 1, c, o), (st, 1), (pt, (0, 0)))
    return y.reshape(n, -1, h, w, o)
  x = jnp.pad(x, ((0, 0), pt, (0, 0), (0, 0), (0, 0)))
  t_out = (x.shape[1] - kt) // st + 1
  x = jnp.concatenate([x[:, i:i + st * (t_out - 1) + 1:st] for i in range(kt)], axis=-1)
  y = conv2d(x.reshape(n * t_out, h, w, kt * c),
             kernel.transpose(1, 2, 0, 3, 4).reshape(kh, kw, kt * c, o), (sh, sw), (ph, pw))
  return y.reshape(n, t_out, *y.shape[1:])


def _conv3d(x: jax.Array, kernel: jax.Array, window_strides, padding, *, lhs_dilation,
            rhs_dilation, dimension_numbers, feature_group_count, precision) -> jax.Array:
  """nn.Conv's `conv_general_dilated` for the 3D convs of `conv` (channels-last, no dilation): on
  CPU `_conv3d_as_2d` for ungrouped convs (XLA:CPU runs 3D convolutions and their gradients
  10-50x slower than 2D ones: the tiny SlowFast train step 0.72 s -> 0.15 s, I3D 0.27 s ->
  0.07 s), elsewhere, and for grouped (depthwise) convs, lax's 3D convolution (XLA:CPU's grouped
  2D convolution is slower still: a depthwise 3x3x3 conv's gradient 4-15x)."""
  del lhs_dilation, rhs_dilation  # All 1 in `conv`.
  native = functools.partial(lax.conv_general_dilated, window_strides=window_strides,
                             padding=padding, dimension_numbers=dimension_numbers,
                             feature_group_count=feature_group_count, precision=precision)
  if feature_group_count > 1:
    return native(x, kernel)
  as_2d = functools.partial(_conv3d_as_2d, strides=window_strides, padding=padding,
                            precision=precision)
  return lax.platform_dependent(x, kernel, cpu=as_2d, default=native)


def conv(features: int, kernel: Sequence[int], strides: Optional[Sequence[int]] = None, *,
         dtype: Dtype, param_dtype: Dtype, name: str, use_bias: bool = False,
         kernel_init: nn.initializers.Initializer = CONV_INIT, groups: int = 1,
         temporal_padding: str = 'same') -> nn.Conv:
  """A 2D or 3D convolution (by len(kernel)) with PyTorch's padding k // 2 on each side (none in
  time for a 3D kernel with temporal_padding='valid'); kernel (*kernel, Cin / groups, features)
  named (None, ..., 'conv_in', 'conv_out'); groups = Cin = features makes it depthwise.
  Ungrouped 3D ones run as 2D convolutions on CPU (`_conv3d`), the same numbers."""
  kernel = tuple(kernel)
  valid_time = len(kernel) == 3 and temporal_padding == 'valid'
  return nn.Conv(features, kernel, tuple(strides or (1,) * len(kernel)),
                 padding=[(0, 0) if valid_time and i == 0 else (k // 2, k // 2)
                          for i, k in enumerate(kernel)], feature_group_count=groups,
                 use_bias=use_bias, dtype=dtype, param_dtype=param_dtype,
                 kernel_init=partitioned(kernel_init,
                                         (None,) * len(kernel) + ('conv_in', 'conv_out')),
                 bias_init=partitioned(nn.initializers.zeros, ('conv_out',)), name=name,
                 conv_general_dilated=_conv3d if len(kernel) == 3 else None)


def batch_norm(train: bool, *, dtype: Dtype, param_dtype: Dtype, name: str,
               zero_scale: bool = False) -> nn.BatchNorm:
  """BatchNorm over the last (channel) axis, momentum 0.9, eps 1e-5; batch statistics in training,
  running averages (collection 'batch_stats') otherwise. `zero_scale` starts the scale at 0."""
  return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                      dtype=dtype, param_dtype=param_dtype,
                      scale_init=partitioned(nn.initializers.zeros if zero_scale
                                             else nn.initializers.ones, ('conv_out',)),
                      bias_init=partitioned(nn.initializers.zeros, ('conv_out',)), name=name)


def check_temporal_padding(value: str):
  """ValueError naming config.model.temporal_padding unless it is one of TEMPORAL_PADDINGS."""
  if value not in TEMPORAL_PADDINGS:
    raise ValueError(f'config.model.temporal_padding={value!r} must be one of '
                     f'{TEMPORAL_PADDINGS} (same: the clip keeps its length; valid: no temporal '
                     f'padding, as the continual models see it).')


def crop_time(x: jax.Array, length: int) -> jax.Array:
  """The central `length` steps of x (N, T, ...) along T (x itself for images or T == length)."""
  if x.ndim < 5 or x.shape[1] == length:
    return x
  start = (x.shape[1] - length) // 2
  return x[:, start:start + length]


def dims(temporal: Optional[int], spatial: int, is_3d: bool) -> tuple[int, ...]:
  """A kernel or stride: (temporal, spatial, spatial) if `is_3d`, else (spatial, spatial)."""
  return (temporal, spatial, spatial) if is_3d else (spatial, spatial)


def classifier_head(features: jax.Array, num_classes: int, dropout_rate: float, train: bool, *,
                    dtype: Dtype, param_dtype: Dtype) -> jax.Array:
  """Pooled features (B, D) -> dropout -> zero-initialised Dense 'head' -> logits (B, num_classes)
  float32; the features themselves (float32) when num_classes == 0. Call inside a compact
  method: the Dense is created in the calling module."""
  if not num_classes:
    return features.astype(jnp.float32)
  x = nn.Dropout(dropout_rate)(features, deterministic=not train)
  logits = nn.Dense(num_classes, dtype=dtype, param_dtype=param_dtype,
                    kernel_init=partitioned(nn.initializers.zeros, ('conv_out', 'classes')),
                    bias_init=partitioned(nn.initializers.zeros, ('classes',)), name='head')(x)
  return logits.astype(jnp.float32)


class Block(nn.Module):
  """Shared parts of the residual blocks, 2D (temporal_kernel None) or 3D.

  Input (N, [T,] H, W, Cin) -> (N, [T / temporal_stride,] H / stride, W / stride,
  width * EXPANSION). Subclasses define `__call__` from `conv`, `bn` and `shortcut`; overriding
  `conv` changes every conv of the block (R(2+1)D factorises them).
  """
  EXPANSION = 1

  width: int  # Inner width; the output has width * EXPANSION channels.
  stride: int = 1  # Spatial stride.
  temporal_kernel: Optional[int] = None  # None: a 2D block; else the first conv's kt.
  temporal_stride: int = 1  # 3D only.
  temporal_padding: str = 'same'  # 3D only: TEMPORAL_PADDINGS.
  zero_init_last: bool = False  # Start the last BN's scale at 0 (the block is the identity).
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @property
  def is_3d(self) -> bool:
    return self.temporal_kernel is not None

  def kernel(self, temporal: int, spatial: int) -> tuple[int, ...]:
    return dims(temporal, spatial, self.is_3d)

  def conv(self, x: jax.Array, features: int, kernel: Sequence[int], strides: Sequence[int],
           train: bool, name: str, groups: int = 1) -> jax.Array:
    """The block's convolution `name` of x; `train` is for subclasses whose convs hold BN."""
    del train
    return conv(features, kernel, strides, dtype=self.dtype, param_dtype=self.param_dtype,
                name=name, groups=groups, temporal_padding=self.temporal_padding)(x)

  def bn(self, x: jax.Array, train: bool, name: str, last: bool = False) -> jax.Array:
    return batch_norm(train, dtype=self.dtype, param_dtype=self.param_dtype, name=name,
                      zero_scale=last and self.zero_init_last)(x)

  def shortcut(self, x: jax.Array, train: bool) -> jax.Array:
    """x, or a strided 1x1(x1) conv + BN of it where the block changes the shape."""
    out = self.width * self.EXPANSION
    if x.shape[-1] == out and self.stride == 1 and self.temporal_stride == 1:
      return x
    y = conv(out, self.kernel(1, 1), self.kernel(self.temporal_stride, self.stride),
             dtype=self.dtype, param_dtype=self.param_dtype, name='shortcut_conv')(x)
    return self.bn(y, train, 'shortcut_bn')

  def residual(self, y: jax.Array, x: jax.Array, train: bool) -> jax.Array:
    """ReLU(y + shortcut(x)), the shortcut cropped to y's length (temporal_padding 'valid')."""
    return nn.relu(y + crop_time(self.shortcut(x, train), y.shape[1]))


class BasicBlock(Block):
  """conv_a kt x 3 x 3 (strided) -> BN -> ReLU -> conv_b kt_b x 3 x 3 -> BN, + shortcut, ReLU."""
  temporal_kernel_b: int = 1  # conv_b's kt (PySlowFast: 1; R3D / R(2+1)D: 3).

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    strides = self.kernel(self.temporal_stride, self.stride)
    y = self.conv(x, self.width, self.kernel(self.temporal_kernel, 3), strides, train, 'conv_a')
    y = nn.relu(self.bn(y, train, 'bn_a'))
    y = self.conv(y, self.width, self.kernel(self.temporal_kernel_b, 3), self.kernel(1, 1), train,
                  'conv_b')
    y = self.bn(y, train, 'bn_b', last=True)
    return self.residual(y, x, train)


class Bottleneck(Block):
  """conv_a kt x 1 x 1 -> conv_b 1 x 3 x 3 (strided) -> conv_c 1 x 1 x 1 (4x width), each with BN
  (ReLU after the first two), + shortcut, ReLU."""
  EXPANSION = 4

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    ones = self.kernel(1, 1)
    y = self.conv(x, self.width, self.kernel(self.temporal_kernel, 1), ones, train, 'conv_a')
    y = nn.relu(self.bn(y, train, 'bn_a'))
    y = self.conv(y, self.width, self.kernel(1, 3),
                  self.kernel(self.temporal_stride, self.stride), train, 'conv_b')
    y = nn.relu(self.bn(y, train, 'bn_b'))
    y = self.conv(y, self.width * self.EXPANSION, ones, ones, train, 'conv_c')
    y = self.bn(y, train, 'bn_c', last=True)
    return self.residual(y, x, train)


class Bottleneck2Plus1D(Bottleneck):
  """Bottleneck whose conv_b is (2+1)D, temporal first (PyTorchVideo's R(2+1)D-R50,
  create_2plus1d_bottleneck_block): conv_b_t temporal_kernel_b x 1 x 1 (temporal stride) -> BN
  bn_b_t -> ReLU -> conv_b 1 x 3 x 3 (spatial stride), all `width` wide; conv_a is
  temporal_kernel x 1 x 1 as in Bottleneck."""
  temporal_kernel_b: int = 3

  def conv(self, x, features, kernel, strides, train, name):
    if name != 'conv_b':
      return super().conv(x, features, kernel, strides, train, name)
    temporal_stride, stride = strides[0], strides[1:]
    x = super().conv(x, features, (self.temporal_kernel_b, 1, 1), (temporal_stride, 1, 1), train,
                     'conv_b_t')
    x = nn.relu(self.bn(x, train, 'bn_b_t'))
    return super().conv(x, features, (1, *kernel[1:]), (1, *stride), train, name)


BLOCKS = {'basic': BasicBlock, 'bottleneck': Bottleneck}


class NonLocal(nn.Module):
  """Embedded-Gaussian non-local block (Wang et al. 2018) as in PySlowFast's nonlocal_helper.py;
  (B, T, H, W, C) -> (B, T, H, W, C).

  theta, phi, g: 1x1x1 convs (with bias) to C' = inner_width (default C / 2); phi and g see x
  max-pooled by `pool` (floor, no padding). y = softmax(theta phi^T / sqrt(C')) g over the
  T'H'W' pooled positions for each of the THW queries; out = x + BN(conv_out(y)), conv_out a
  1x1x1 conv back to C and BN's scale starting at 0, so the block starts as the identity.
  """
  pool: Sequence[int] = (1, 2, 2)
  inner_width: Optional[int] = None
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    b, t, h, w, c = x.shape
    inner = self.inner_width or c // 2
    project = functools.partial(conv, kernel=(1, 1, 1), use_bias=True, dtype=self.dtype,
                                param_dtype=self.param_dtype)
    pool = tuple(self.pool)
    pooled = nn.max_pool(x, pool, pool) if max(pool) > 1 else x
    if 0 in pooled.shape[1:4]:
      raise ValueError(f'config.model.nonlocal_pool={pool} is larger than the feature map '
                       f'{(t, h, w)} of a non-local block; lower it or move the block.')
    theta = project(inner, name='conv_theta')(x).reshape(b, -1, 1, inner)
    phi = project(inner, name='conv_phi')(pooled).reshape(b, -1, 1, inner)
    g = project(inner, name='conv_g')(pooled).reshape(b, -1, 1, inner)
    y = attention.attend(theta, phi, g, impl='auto')  # Scaled by 1 / sqrt(inner).
    y = project(c, name='conv_out')(y.reshape(b, t, h, w, inner))
    y = batch_norm(train, dtype=self.dtype, param_dtype=self.param_dtype, name='bn',
                   zero_scale=True)(y)
    return x + y


class Stage(nn.Module):
  """`len(temporal_kernels)` blocks `block_j` (the first strided), each optionally followed by a
  non-local block `nonlocal_j`; (N, [T,] H, W, C) -> (N, [T',] H', W', width * EXPANSION).

  `block` is the block class with its fixed fields bound (functools.partial), called with width,
  stride, temporal_kernel, temporal_stride and name.
  """
  block: Callable[..., Block]
  width: int
  stride: int
  temporal_kernels: Sequence[Optional[int]]  # Per block; None entries: 2D blocks.
  temporal_stride: int = 1
  nonlocal_after: Sequence[int] = ()  # Block indices followed by a non-local block (3D only).
  nonlocal_pool: Sequence[int] = (1, 2, 2)
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    for j, kt in enumerate(self.temporal_kernels):
      first = j == 0
      x = self.block(width=self.width, stride=self.stride if first else 1, temporal_kernel=kt,
                     temporal_stride=self.temporal_stride if first else 1,
                     name=f'block_{j}')(x, train=train)
      if j in self.nonlocal_after:
        x = NonLocal(pool=tuple(self.nonlocal_pool), dtype=self.dtype,
                     param_dtype=self.param_dtype, name=f'nonlocal_{j}')(x, train=train)
    return x


class _ResNet(nn.Module):
  """Fields and parts shared by ResNet2D and ResNet3D (see the module docstring)."""
  num_classes: int  # 0: return the pooled features (B, D) instead of logits.
  depth: int = 50  # 10, 18, 34 (basic blocks), 50, 101, 152 (bottlenecks).
  base_width: int = 64  # Stem and first-stage width; stages are x1, x2, x4, x8 of it.
  zero_init_residual: bool = True  # Last BN scale of each block starts at 0.
  dropout_rate: float = 0.5  # Before the head.
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    if self.depth not in DEPTHS:
      raise ValueError(f'config.model.depth={self.depth} is not a ResNet depth; use one of '
                       f'{", ".join(map(str, DEPTHS))}.')
    check_int('base_width', self.base_width, '64 for the standard ResNets')
    super().__post_init__()

  @property
  def block_class(self) -> type:
    return BLOCKS[DEPTHS[self.depth][0]]

  @property
  def stage_sizes(self) -> tuple[int, ...]:
    return DEPTHS[self.depth][1]

  @property
  def num_features(self) -> int:
    """Width of the pooled features: base_width x 8 (x 4 for bottlenecks)."""
    return self.base_width * 8 * self.block_class.EXPANSION

  def _stem(self, x: jax.Array, train: bool, temporal_kernel: Optional[int],
            pool: bool = True, temporal_padding: str = 'same') -> jax.Array:
    """(N, [T,] H, W, 3) -> (N, [T,] H / 4, W / 4, base_width): conv, BN, ReLU, max pool (H / 2,
    W / 2 without the pool)."""
    is_3d = temporal_kernel is not None
    x = conv(self.base_width, dims(temporal_kernel, 7, is_3d), dims(1, 2, is_3d),
             dtype=self.dtype, param_dtype=self.param_dtype, name='stem_conv',
             temporal_padding=temporal_padding)(x)
    x = nn.relu(batch_norm(train, dtype=self.dtype, param_dtype=self.param_dtype,
                           name='stem_bn')(x))
    if not pool:
      return x
    return nn.max_pool(x, dims(1, 3, is_3d), dims(1, 2, is_3d),
                       padding=((0, 0),) * is_3d + ((1, 1), (1, 1)))

  def _stage(self, x: jax.Array, train: bool, s: int, temporal_kernels: Sequence[Optional[int]],
             stride: Optional[int] = None, temporal_padding: str = 'same',
             **kwargs) -> jax.Array:
    """Stage s (0-based) of the trunk, named stage_{s + 1}; spatial `stride` None:
    STAGE_STRIDES[s]."""
    block = functools.partial(self.block_class, zero_init_last=self.zero_init_residual,
                              temporal_padding=temporal_padding, dtype=self.dtype,
                              param_dtype=self.param_dtype)
    return Stage(block, self.base_width * 2 ** s, STAGE_STRIDES[s] if stride is None else stride,
                 tuple(temporal_kernels), dtype=self.dtype, param_dtype=self.param_dtype,
                 name=f'stage_{s + 1}', **kwargs)(x, train=train)


class ResNet2D(_ResNet):
  """A 2D ResNet on images (B, H, W, C) or on every frame of videos (B, T, H, W, 3).

  Images give logits (B, num_classes); videos run the frames as a batch of B * T images and
  average their pooled features over time before the head (a C2D without temporal pooling).
  With num_classes == 0 the pooled features (B, num_features) come back instead, e.g. per-frame
  features for late fusion or a recurrent head from frames folded into the batch. Same
  parameter paths as ResNet3D, with 2D kernels (kh, kw, Cin, Cout). Videos are checked by
  inputs.check_video; images are taken with any channel count (the other models' stacked frames
  and flow).
  """

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    if video.ndim != 4:  # Images of any channel count: frames, stacked frames or flow.
      inputs.check_video(video, 'ResNet2D')
    x = video.reshape((-1,) + video.shape[-3:])
    x = self._stem(x, train, None)
    for s, n in enumerate(self.stage_sizes):
      x = self._stage(x, train, s, (None,) * n)
    x = jnp.mean(x, axis=(1, 2))  # (B [* T], D).
    if video.ndim == 5:
      x = jnp.mean(x.reshape(video.shape[:2] + x.shape[-1:]), axis=1)
    return classifier_head(x, self.num_classes, self.dropout_rate, train, dtype=self.dtype,
                           param_dtype=self.param_dtype)


TemporalKernels = Sequence[Union[int, Sequence[int]]]


class ResNet3D(_ResNet):
  """An inflated 3D ResNet: video (B, T, H, W, C) float32 -> logits (B, num_classes) float32.

  The stem conv is stem_temporal_kernel x 7 x 7 (stride 1 x 2 x 2), then a 1 x 3 x 3 max pool;
  `temporal_pool` > 1 max-pools time by that factor after stage 1 (PySlowFast's pool1 of C2D and
  I3D); blocks use `temporal_kernels` (per stage an int for all its blocks, or a sequence cycled
  over its blocks: (3, 1) alternates 3x1x1 and 1x1x1 first convs, as PySlowFast's
  _TEMPORAL_KERNEL_BASIS). Time is not strided otherwise. `nonlocal_blocks` lists per stage the
  block indices followed by an embedded-Gaussian non-local block (PySlowFast NONLOCAL.LOCATION),
  whose keys and values are max-pooled by `nonlocal_pool`; it starts as the identity.
  temporal_padding='valid' removes all temporal padding (each conv shortens the clip by kt - 1,
  shortcuts are cropped to their centre): the clip that models/continual's CoResNet3D equals.

  `spatial_strides` and `temporal_strides` stride each stage's first block (its conv_b and
  shortcut); `stem_pool` False drops the stem's max pool; `factorised` makes the bottlenecks
  Bottleneck2Plus1D, whose conv_b is a 3x1x1 temporal conv, BN, ReLU and a 1x3x3 spatial conv.

  Presets (configs/cnn/, each converts PyTorchVideo's model-zoo checkpoint of that name):
  I3D-R50 (I3D_8x8_R50): depth 50, stem_temporal_kernel 5, temporal_pool 2, temporal_kernels
  ((3,), (3, 1), (3, 1), (1, 3)); Slow-R50 (SLOW_8x8_R50, the Slow pathway of SlowFast): stem 1,
  temporal_pool 1, temporal_kernels (1, 1, 3, 3); C2D-R50 (C2D_8x8_R50): stem 1, temporal_pool 2,
  temporal_kernels (1, 1, 1, 1); R(2+1)D-R50 (R2PLUS1D_16x4_R50): factorised, stem 1 without the
  pool, temporal_kernels (1, 1, 1, 1), spatial_strides (2, 2, 2, 2), temporal_strides
  (1, 1, 2, 2).
  """
  temporal_kernels: TemporalKernels = (1, 1, 3, 3)
  stem_temporal_kernel: int = 1
  temporal_pool: int = 1
  nonlocal_blocks: Sequence[Sequence[int]] = ((), (), (), ())
  nonlocal_pool: Sequence[int] = (1, 2, 2)  # (t, h, w) max pool of keys/values; 1s: none.
  stem_pool: bool = True  # The stem's 1 x 3 x 3 max pool, stride 2.
  spatial_strides: Sequence[int] = STAGE_STRIDES  # Per stage.
  temporal_strides: Sequence[int] = (1, 1, 1, 1)  # Per stage.
  factorised: bool = False  # (2+1)D bottlenecks (Bottleneck2Plus1D); depth 50, 101 or 152.
  temporal_padding: str = 'same'  # TEMPORAL_PADDINGS; 'valid': T shrinks by each kernel's kt - 1.

  def __post_init__(self):
    super().__post_init__()  # Checks depth first.
    sizes = self.stage_sizes
    if self.factorised and DEPTHS[self.depth][0] != 'bottleneck':
      raise ValueError(f'config.model.factorised=True needs bottleneck blocks, but '
                       f'config.model.depth={self.depth} has basic blocks; use depth 50, 101 or '
                       f'152.')
    for field in ('spatial_strides', 'temporal_strides'):
      strides = getattr(self, field)
      if len(strides) != NUM_STAGES:
        raise ValueError(f'config.model.{field}={strides!r} needs one stride per stage '
                         f'({NUM_STAGES}), e.g. (1, 2, 2, 2).')
      for s, stride in enumerate(strides):
        check_int(f'{field}[{s}]', stride, 'a stride')
    if len(self.temporal_kernels) != NUM_STAGES:
      raise ValueError(f'config.model.temporal_kernels={self.temporal_kernels!r} needs one entry '
                       f'per stage ({NUM_STAGES}), e.g. (1, 1, 3, 3).')
    for s, spec in enumerate(self.temporal_kernels):
      cycle = (spec,) if isinstance(spec, int) else tuple(spec)
      if not cycle:
        raise ValueError(f'config.model.temporal_kernels[{s}] is empty; give an int or a '
                         f'non-empty sequence of kernel sizes.')
      for kt in cycle:
        check_int(f'temporal_kernels[{s}]', kt, 'a temporal kernel', odd=True)
    check_int('stem_temporal_kernel', self.stem_temporal_kernel, 'the stem kernel',
                       odd=True)
    check_int('temporal_pool', self.temporal_pool, '1: no temporal pooling')
    check_temporal_padding(self.temporal_padding)
    if len(self.nonlocal_blocks) != NUM_STAGES:
      raise ValueError(f'config.model.nonlocal_blocks={self.nonlocal_blocks!r} needs one tuple of '
                       f'block indices per stage ({NUM_STAGES}), e.g. ((), (1, 3), (1, 3, 5), ()).')
    for s, (indices, n) in enumerate(zip(self.nonlocal_blocks, sizes)):
      bad = [j for j in indices if not isinstance(j, int) or not 0 <= j < n]
      if bad:
        raise ValueError(f'config.model.nonlocal_blocks[{s}] has {bad}: stage {s + 1} of '
                         f'ResNet-{self.depth} has blocks 0..{n - 1}.')
    if len(self.nonlocal_pool) != 3 or any(not isinstance(p, int) or p < 1
                                           for p in self.nonlocal_pool):
      raise ValueError(f'config.model.nonlocal_pool={self.nonlocal_pool!r} must be 3 ints >= 1 '
                       f'(t, h, w), e.g. (1, 2, 2); (1, 1, 1) for no pooling.')

  @property
  def block_class(self) -> type:
    return Bottleneck2Plus1D if self.factorised else super().block_class

  def block_temporal_kernels(self) -> tuple[tuple[int, ...], ...]:
    """The first-conv temporal kernel of every block, per stage."""
    out = []
    for spec, n in zip(self.temporal_kernels, self.stage_sizes):
      cycle = (spec,) if isinstance(spec, int) else tuple(spec)
      out.append(tuple(cycle[j % len(cycle)] for j in range(n)))
    return tuple(out)

  def _stage_3d(self, x: jax.Array, train: bool, s: int) -> jax.Array:
    """Stage s (0-based) with its temporal kernels, strides and non-local blocks."""
    return self._stage(x, train, s, self.block_temporal_kernels()[s],
                       stride=self.spatial_strides[s], temporal_padding=self.temporal_padding,
                       temporal_stride=self.temporal_strides[s],
                       nonlocal_after=tuple(self.nonlocal_blocks[s]),
                       nonlocal_pool=tuple(self.nonlocal_pool))

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    inputs.check_video(video, 'ResNet3D')
    if video.shape[1] < self.temporal_pool:  # Nothing before the pool strides time.
      raise inputs.error(video, 'ResNet3D', f'config.model.temporal_pool={self.temporal_pool} '
                         f'exceeds the clip length {video.shape[1]}; use more frames '
                         f'(config.dataset.num_frames) or temporal_pool=1')
    x = self._stem(video, train, self.stem_temporal_kernel, self.stem_pool,
                   self.temporal_padding)
    for s in range(NUM_STAGES):
      x = self._stage_3d(x, train, s)
      if s == 0 and self.temporal_pool > 1:
        pool = (self.temporal_pool, 1, 1)
        x = nn.max_pool(x, pool, pool)
    x = jnp.mean(x, axis=(1, 2, 3))
    return classifier_head(x, self.num_classes, self.dropout_rate, train, dtype=self.dtype,
                           param_dtype=self.param_dtype)
