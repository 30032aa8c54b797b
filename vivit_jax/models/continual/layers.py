"""Continual layers (Hedegaard & Iosifidis, "Continual 3D CNNs for Real-time Processing of
Videos", ECCV 2022): each takes the newest frame's features x (B, 1, H, W, C), a clip of one
frame, and keeps in the 'state' collection what it needs of past frames, so that frame by frame
it gives what the clip layer with no temporal padding gives at the clip's last position. No
layer peeks at future frames. Before a layer has seen its window of frames, its state holds
zeros (the warm-up).

Kernels and parameter names are the clip layers' (resnet.conv's `kernel`, `bias`), so a clip
model's variables apply unchanged.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vivit_jax.models import resnet
from vivit_jax.models.layers import Dtype

CACHES = ('auto', 'pre', 'post')


def _zeros_state(module: nn.Module, name: str, shape: Sequence[int], dtype) -> nn.Variable:
  return module.variable('state', name, jnp.zeros, tuple(shape), dtype)


def _window(module: nn.Module, x: jax.Array, length: int, name: str = 'frames') -> jax.Array:
  """The last `length` frames (B, length, ...) ending with x (B, 1, ...); keeps the newest
  length - 1 in state `name`."""
  if length == 1:
    return x
  past = _zeros_state(module, name, (x.shape[0], length - 1) + x.shape[2:], x.dtype)
  window = jnp.concatenate([past.value, x], axis=1)
  past.value = window[:, 1:]
  return window


class TemporalConv(nn.Module):
  """A kt x kh x kw convolution (spatial stride, PyTorch's spatial padding, no temporal padding):
  x (B, 1, H, W, Cin) -> (B, 1, H', W', features), the clip conv's output at the newest frame.

  cache 'pre' keeps the last kt - 1 input frames (B, kt - 1, H, W, Cin) and convolves the window;
  'post' convolves the new frame with all kt taps at once and keeps the partial sums of the next
  kt - 1 outputs (B, kt - 1, H', W', features); 'auto' picks the smaller state (pre on ties).
  Grouped convs are always pre-cached; kt = 1 keeps no state.
  """
  features: int
  kernel_size: Sequence[int]  # (kt, kh, kw).
  stride: int = 1  # Spatial.
  groups: int = 1
  use_bias: bool = False
  cache: str = 'auto'
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def clip_conv(self, features: int, kernel_size: Sequence[int], use_bias: bool) -> nn.Conv:
    """The clip model's conv with no temporal padding, applied to this module's kernel."""
    return resnet.conv(features, kernel_size, (1, self.stride, self.stride), groups=self.groups,
                       use_bias=use_bias, temporal_padding='valid', dtype=self.dtype,
                       param_dtype=self.param_dtype, name=None).clone(parent=None)

  def uses_post_cache(self, x: jax.Array) -> bool:
    if self.cache not in CACHES:
      raise ValueError(f'TemporalConv cache={self.cache!r} must be one of {CACHES}.')
    if self.kernel_size[0] == 1 or self.groups > 1:
      return False
    if self.cache != 'auto':
      return self.cache == 'post'
    _, h, w, c = x.shape[1:]
    out = (-(-h // self.stride)) * (-(-w // self.stride)) * self.features
    return out < h * w * c

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = self.clip_conv(self.features, self.kernel_size, self.use_bias)
    kt = self.kernel_size[0]
    kernel = self.param('kernel', conv.kernel_init,
                        (*self.kernel_size, x.shape[-1] // self.groups, self.features),
                        self.param_dtype)
    params = {'kernel': kernel}
    if self.use_bias:
      params['bias'] = self.param('bias', conv.bias_init, (self.features,), self.param_dtype)
    if not self.uses_post_cache(x):
      return conv.apply({'params': params}, _window(self, x, kt))
    taps = self.clip_conv(kt * self.features, (1, *self.kernel_size[1:]), use_bias=False)
    kernel = jnp.moveaxis(kernel, 0, -2).reshape(1, *kernel.shape[1:-1], -1)
    z = taps.apply({'params': {'kernel': kernel}}, x)  # (B, 1, H', W', kt * features).
    # Tap kt - 1 - j of the new frame goes into the output j frames ahead: reversed, index j.
    z = jnp.moveaxis(z.reshape(*z.shape[:-1], kt, self.features)[:, 0], -2, 1)[:, ::-1]
    sums = _zeros_state(self, 'partial_sums', z.shape[:1] + (kt - 1,) + z.shape[2:], z.dtype)
    y = sums.value[:, :1] + z[:, :1]  # sums[:, j]: the earlier frames' part of output t + j.
    sums.value = jnp.concatenate([sums.value[:, 1:], jnp.zeros_like(z[:, :1])], axis=1) + z[:, 1:]
    return y + params['bias'].astype(y.dtype) if self.use_bias else y


class Delay(nn.Module):
  """x (B, 1, ...) -> x of `delay` frames ago (zeros before that): a residual's shortcut waits
  for the (kt - 1) / 2 frames its branch's centred temporal kernels look ahead."""
  delay: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return _window(self, x, self.delay + 1)[:, :1]


class TemporalMaxPool(nn.Module):
  """The max over the last `window` frames: x (B, 1, ...) -> (B, 1, ...). A clip pool of stride s
  keeps only every s-th of these; ContinualModel.step lets the layers after it update only then."""
  window: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.max(_window(self, x, self.window), axis=1, keepdims=True)


class RunningMean(nn.Module):
  """Global average pooling over the last `window` frames: x (B, 1, H, W, C) -> (B, 1, 1, 1, C),
  the mean over H, W of the newest `window` frames. State: the last window - 1 spatial means."""
  window: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    spatial = jnp.mean(x, axis=(2, 3), keepdims=True)
    return jnp.mean(_window(self, spatial, self.window, 'means'), axis=1, keepdims=True)
