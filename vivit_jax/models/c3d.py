"""C3D (Tran et al. 2015, "Learning Spatiotemporal Features with 3D Convolutional Networks",
arXiv:1412.0767), registered as 'c3d'.

The paper's net (Fig. 3), with base_width=64 and fc_width=4096:

  layer   op                              output for a 16 x 112 x 112 x 3 clip
  conv1a  3x3x3 conv, 64, ReLU            16 x 112 x 112 x 64
  pool1   max 1x2x2, stride 1x2x2         16 x 56 x 56 x 64
  conv2a  3x3x3 conv, 128, ReLU           16 x 56 x 56 x 128
  pool2   max 2x2x2, stride 2x2x2          8 x 28 x 28 x 128
  conv3a  3x3x3 conv, 256, ReLU            8 x 28 x 28 x 256
  conv3b  3x3x3 conv, 256, ReLU            8 x 28 x 28 x 256
  pool3   max 2x2x2, stride 2x2x2          4 x 14 x 14 x 256
  conv4a  3x3x3 conv, 512, ReLU            4 x 14 x 14 x 512
  conv4b  3x3x3 conv, 512, ReLU            4 x 14 x 14 x 512
  pool4   max 2x2x2, stride 2x2x2          2 x 7 x 7 x 512
  conv5a  3x3x3 conv, 512, ReLU            2 x 7 x 7 x 512
  conv5b  3x3x3 conv, 512, ReLU            2 x 7 x 7 x 512
  pool5   max 2x2x2, stride 2x2x2,         1 x 4 x 4 x 512   (Caffe rounds up; here padding
          spatial padding 1                                   (0, 1, 1) as the PyTorch ports)
  fc6     Dense 4096, ReLU, dropout        4096              (on the flattened 8192)
  fc7     Dense 4096, ReLU, dropout        4096
  head    Dense num_classes                num_classes       (the paper's fc8; zero-initialised)

Convs are stride 1, padding 1, with bias; no BatchNorm. `base_width` scales every conv width
(x1, 2, 4, 4, 8, 8, 8, 8 of it) for small versions. Each layer's output (after the ReLU; fc6 and
fc7 before their dropout) is sown into the 'intermediates' collection as NAME_out, e.g.
'pool5_out', 'fc6_out' (apply with mutable=['intermediates'] to get them).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from vivit_jax.models import inputs, resnet
from vivit_jax.models.layers import Dtype, check_int, partitioned

# (name, conv width in units of base_width) or (name, (pool window = stride), padding).
LAYERS = (
    ('conv1a', 1), ('pool1', (1, 2, 2), 'VALID'),
    ('conv2a', 2), ('pool2', (2, 2, 2), 'VALID'),
    ('conv3a', 4), ('conv3b', 4), ('pool3', (2, 2, 2), 'VALID'),
    ('conv4a', 8), ('conv4b', 8), ('pool4', (2, 2, 2), 'VALID'),
    ('conv5a', 8), ('conv5b', 8), ('pool5', (2, 2, 2), ((0, 0), (1, 1), (1, 1))),
)
# He normal (fan-in) for the ReLU convs and fc6/fc7, so the plain net (no BatchNorm) trains from
# scratch; the paper's Caffe fillers are not reproduced.
_RELU_INIT = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')
# Logical names of fc6, fc7, head kernels: fc6 split by columns, fc7 by rows over 'mlp'.
_FC_NAMES = {'fc6': (None, 'mlp'), 'fc7': ('mlp', None), 'head': (None, 'classes')}
MIN_CLIP = 16  # Shortest T, H, W: the four unpadded 2x pools of each axis leave 1.


class C3D(nn.Module):
  """Video (B, T, H, W, C) float32 -> logits (B, num_classes) float32 (see the module docstring);
  the fc7 features (B, fc_width) when num_classes == 0.

  fc6's input width is that of the flattened pool5 output, so clips other than 16 x 112 x 112
  work too (e.g. 16 x 32 x 32 -> pool5 1 x 2 x 2). pool5 is flattened in (T, H, W, C) order: a
  PyTorch port's fc6 rows, in (C, T, H, W) order, need permuting. RNG stream 'dropout' (after fc6
  and fc7).
  """
  num_classes: int
  base_width: int = 64
  fc_width: int = 4096
  dropout_rate: float = 0.5
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    for field in ('base_width', 'fc_width'):
      check_int(field, getattr(self, field), 'the paper: base_width 64, fc_width 4096')
    super().__post_init__()

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    inputs.check_video(video, 'C3D')
    if min(video.shape[1:4]) < MIN_CLIP:
      raise inputs.error(video, 'C3D', f'C3D pool2 to pool5 halve T and pool1 to pool4 halve H '
                         f'and W, so clips must be at least {MIN_CLIP} x {MIN_CLIP} x {MIN_CLIP} '
                         f'(config.dataset.num_frames, crop_size)')
    x = video
    for name, *spec in LAYERS:
      if name.startswith('conv'):
        x = nn.relu(resnet.conv(spec[0] * self.base_width, (3, 3, 3), use_bias=True,
                                kernel_init=_RELU_INIT, dtype=self.dtype,
                                param_dtype=self.param_dtype, name=name)(x))
      else:
        window, padding = spec
        x = nn.max_pool(x, window, window, padding=padding)
      self.sow('intermediates', f'{name}_out', x)
    x = x.reshape(x.shape[0], -1)
    for name in ('fc6', 'fc7'):
      x = nn.relu(self._dense(self.fc_width, name, _RELU_INIT)(x))
      self.sow('intermediates', f'{name}_out', x)
      x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
    if not self.num_classes:
      return x.astype(jnp.float32)
    return self._dense(self.num_classes, 'head', nn.initializers.zeros)(x).astype(jnp.float32)

  def _dense(self, features: int, name: str, init: nn.initializers.Initializer) -> nn.Dense:
    names = _FC_NAMES[name]
    return nn.Dense(features, dtype=self.dtype, param_dtype=self.param_dtype,
                    kernel_init=partitioned(init, names),
                    bias_init=partitioned(nn.initializers.zeros, names[-1:]), name=name)
