"""Recurrent video models: `CNNLSTM` ('cnn_lstm') and the GRU-RCN `ConvGRU` ('conv_gru').

Both run a 2D ResNet on every frame (frame_resnet.FrameResNet.frame_maps: resnet.py's stem and
stages, the T frames of each clip folded into the batch, so the trunk has ResNet2D's parameter
paths stem_conv, stem_bn, stage_{1..4} and its BatchNorm statistics are taken over all B * T
frames), then a recurrent net over time lifted with `nn.scan` (one set of weights for every step,
zero initial state):

  CNNLSTM  per-frame pooled features (B, T, D) -> dropout -> `num_lstm_layers` stacked LSTMs
           (lstm_{l}, flax's OptimizedLSTMCell: gates i, f, g, o as torch.nn.LSTM with one bias
           per gate) -> zero-initialised Dense 'head'. Many-to-one: logits of the last step's
           hidden state (readout 'last', Ng et al. 2015) or the per-step logits averaged over time
           (readout 'mean', Donahue et al. 2015, LRCN); many-to-many with `per_frame=True`:
           logits (B, T, num_classes), causal in evaluation mode (step t sees frames 0..t;
           in training, BatchNorm statistics over all B * T frames mix them).
  ConvGRU  GRU-RCN (Ballas et al. 2016, "Delving Deeper into Convolutional Networks for Learning
           Video Representations"): the feature maps of several trunk levels (`levels`: stages
           1-4, at strides 4-32, the counterparts of the paper's VGG-16 pool2-pool5) each feed
           their own ConvGRU (level_{s}/gru); each level's last hidden map is average-pooled into
           its own head and the levels' logits are averaged.

Logical axis names: LSTM kernels ('conv_in', 'lstm'), recurrent kernels ('lstm_state', 'lstm'),
biases ('lstm',); ConvGRU convs as resnet.conv ((None, None, 'conv_in', 'conv_out')); the trunk and
heads as resnet.py. The default sharding rules split 'conv_in' and 'lstm_state' over 'fsdp',
'conv_out' and 'lstm' over 'model'.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vivit_jax.models import frame_resnet, resnet
from vivit_jax.models.layers import Dtype, check_int, partitioned

READOUTS = ('last', 'mean')
# Flax's recurrent-cell defaults (LeCun normal inputs, orthogonal recurrence), with logical names.
INPUT_INIT = nn.initializers.lecun_normal()


def scan_over_time(cell: type) -> type:
  """`cell` ((carry, x_t) -> (carry, y_t)) lifted over axis 1: (carry_0, xs (B, T, ...)) ->
  (carry_T, ys (B, T, ...)), with its parameters shared by every step."""
  return nn.scan(cell, variable_broadcast='params', split_rngs={'params': False}, in_axes=1,
                 out_axes=1)


class LSTM(nn.Module):
  """`num_layers` stacked LSTMs of `width` units over time: (B, T, D) -> hidden states of the top
  layer (B, T, width) float32; layer l is `lstm_{l}` (an OptimizedLSTMCell scanned over T)."""
  width: int
  num_layers: int = 1
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cell = scan_over_time(nn.OptimizedLSTMCell)
    for layer in range(self.num_layers):
      zeros = jnp.zeros((x.shape[0], self.width), jnp.float32)
      _, x = cell(self.width, dtype=self.dtype, param_dtype=self.param_dtype,
                  kernel_init=partitioned(INPUT_INIT, ('conv_in', 'lstm')),
                  recurrent_kernel_init=partitioned(nn.initializers.orthogonal(),
                                                    ('lstm_state', 'lstm')),
                  bias_init=partitioned(nn.initializers.zeros, ('lstm',)),
                  name=f'lstm_{layer}')((zeros, zeros), x)  # Carry (c, h).
    return x


class ConvGRUCell(nn.Module):
  """One ConvGRU step (Ballas et al. 2016, eqs. 4-7), `*` a `kernel_size` 2D convolution (zero
  padding, same size):
    z_t = sigmoid(W_z * x_t + U_z * h_{t-1})        r_t = sigmoid(W_r * x_t + U_r * h_{t-1})
    h~_t = tanh(W * x_t + U * (r_t . h_{t-1}))      h_t = (1 - z_t) h_{t-1} + z_t h~_t
  (h_{t-1}, x_t) (N, H, W, features), (N, H, W, C) -> (h_t, h_t). W_z, W_r, W are one conv
  'input_conv' to 3 x features with a bias (the biases the paper's equations leave out); U_z, U_r
  are 'hidden_conv_zr' and U 'hidden_conv', without bias. h_t stays float32."""
  features: int
  kernel_size: int = 3
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def _conv(self, features: int, name: str, use_bias: bool = False) -> nn.Conv:
    return resnet.conv(features, (self.kernel_size,) * 2, dtype=self.dtype,
                       param_dtype=self.param_dtype, name=name, use_bias=use_bias,
                       kernel_init=INPUT_INIT)

  @nn.compact
  def __call__(self, h: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    xz, xr, xc = jnp.split(self._conv(3 * self.features, 'input_conv', use_bias=True)(x), 3, -1)
    hz, hr = jnp.split(self._conv(2 * self.features, 'hidden_conv_zr')(h), 2, -1)
    z, r = nn.sigmoid(xz + hz), nn.sigmoid(xr + hr)
    candidate = jnp.tanh(xc + self._conv(self.features, 'hidden_conv')(r * h))
    h = (1 - z) * h + z * candidate
    return h, h


class CNNLSTM(frame_resnet.FrameResNet):
  """CNN + LSTM (LRCN, Donahue et al. 2015; Ng et al. 2015): video (B, T, H, W, C) float32 ->
  logits (B, num_classes) float32, or (B, T, num_classes) with `per_frame=True` (module
  docstring). num_classes == 0 gives the LSTM's hidden states instead: (B, lstm_width), or
  (B, T, lstm_width) per frame."""
  lstm_width: int = 256
  num_lstm_layers: int = 1
  feature_dropout_rate: float = 0.0  # On the per-frame CNN features, before the LSTM.
  readout: str = 'last'  # 'last' (last step's logits) or 'mean' (per-step logits averaged).

  def __post_init__(self):
    super().__post_init__()
    check_int('lstm_width', self.lstm_width, 'LSTM units, e.g. 256')
    check_int('num_lstm_layers', self.num_lstm_layers, 'stacked LSTMs, e.g. 1')
    if self.readout not in READOUTS:
      raise ValueError(f"config.model.readout='{self.readout}' is not a readout; use 'last' "
                       f"(the last step's logits) or 'mean' (per-step logits averaged).")
    if not 0 <= self.feature_dropout_rate < 1:
      raise ValueError(f'config.model.feature_dropout_rate={self.feature_dropout_rate} must be '
                       f'in [0, 1).')

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool, per_frame: bool = False) -> jax.Array:
    features = jnp.mean(self.frame_maps(video, train)[-1], axis=(2, 3))  # (B, T, D).
    features = nn.Dropout(self.feature_dropout_rate)(features, deterministic=not train)
    hidden = LSTM(self.lstm_width, self.num_lstm_layers, dtype=self.dtype,
                  param_dtype=self.param_dtype, name='lstm')(features)  # (B, T, lstm_width).
    if self.readout == 'last' and not per_frame:
      hidden = hidden[:, -1]
    logits = resnet.classifier_head(hidden, self.num_classes, self.dropout_rate, train,
                                    dtype=self.dtype, param_dtype=self.param_dtype)
    return logits if per_frame or self.readout == 'last' else jnp.mean(logits, axis=1)


class GRURCNLevel(nn.Module):
  """One GRU-RCN level: feature maps (B, T, H, W, C) -> ConvGRU 'gru' over T -> global average
  pool of h_T -> dropout -> zero-initialised Dense 'head' -> logits (B, num_classes) float32 (the
  pooled h_T, (B, width), when num_classes == 0)."""
  width: int
  num_classes: int
  kernel_size: int = 3
  dropout_rate: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, maps: jax.Array, *, train: bool) -> jax.Array:
    h0 = jnp.zeros(maps.shape[:1] + maps.shape[2:4] + (self.width,), jnp.float32)
    h, _ = scan_over_time(ConvGRUCell)(self.width, self.kernel_size, dtype=self.dtype,
                                       param_dtype=self.param_dtype, name='gru')(h0, maps)
    return resnet.classifier_head(jnp.mean(h, axis=(1, 2)), self.num_classes, self.dropout_rate,
                                  train, dtype=self.dtype, param_dtype=self.param_dtype)


class ConvGRU(frame_resnet.FrameResNet):
  """GRU-RCN (module docstring): video (B, T, H, W, C) float32 -> logits (B, num_classes) float32,
  the mean of the logits of the `levels` (level_{s}: a ConvGRU of hidden_widths[i] channels on
  stage s's maps). num_classes == 0 gives the levels' pooled h_T concatenated, (B, sum widths).

  Of the paper's variants this is GRU-RCN, independent recurrent nets per level, not Stacked
  GRU-RCN (each level also fed the level below): the paper found the stacked one worse on UCF-101,
  and independent levels keep the levels' maps at their own resolution without pooling between.
  """
  levels: Sequence[int] = (1, 2, 3, 4)  # Trunk stages whose outputs feed a ConvGRU.
  hidden_widths: Sequence[int] = (64, 128, 256, 256)  # ConvGRU channels, one per level.
  kernel_size: int = 3  # Of every ConvGRU convolution.

  def __post_init__(self):
    super().__post_init__()
    levels = tuple(self.levels)
    if not levels or list(levels) != sorted(set(levels)) or not set(levels) <= {1, 2, 3, 4}:
      raise ValueError(f'config.model.levels={self.levels!r} must be increasing stage numbers '
                       f'from 1-4 (the stage outputs fed to a ConvGRU), e.g. (1, 2, 3, 4).')
    if len(self.hidden_widths) != len(levels):
      raise ValueError(f'config.model.hidden_widths={self.hidden_widths!r} needs one width per '
                       f'level of config.model.levels={self.levels!r}.')
    for i, width in enumerate(self.hidden_widths):
      check_int(f'hidden_widths[{i}]', width, 'ConvGRU channels')
    check_int('kernel_size', self.kernel_size, 'the ConvGRU kernel', odd=True)

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    maps = self.frame_maps(video, train, num_stages=max(self.levels))
    outputs = [GRURCNLevel(width, self.num_classes, self.kernel_size, self.dropout_rate,
                           dtype=self.dtype, param_dtype=self.param_dtype,
                           name=f'level_{s}')(maps[s - 1], train=train)
               for s, width in zip(self.levels, self.hidden_widths)]
    if not self.num_classes:
      return jnp.concatenate(outputs, axis=-1)
    return jnp.mean(jnp.stack(outputs), axis=0)
