"""Tokenisation: tubelets (or frame patches), a class token, learned positional embeddings."""
from typing import Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from vivit_jax.models.layers import Dtype, partitioned

TOKENIZERS = ('tubelet', 'frame')


def tubelet_shape(tokenizer: str, patch_size: Sequence[int]) -> Tuple[int, int, int]:
  """The (t, h, w) tubelet that embeds config.model.patch_size for `tokenizer`.

  'tubelet': patch_size is the tubelet (t, h, w). 'frame' (uniform frame sampling): (h, w)
  patches of every frame, so patch_size is (h, w) or (1, h, w) and the tubelet is (1, h, w).
  """
  patch = tuple(patch_size)
  if tokenizer == 'frame' and len(patch) == 2:
    return (1,) + patch
  if len(patch) != 3 or (tokenizer == 'frame' and patch[0] != 1):
    expected = '(h, w) or (1, h, w)' if tokenizer == 'frame' else '(t, h, w)'
    raise ValueError(f"config.model.patch_size={patch} does not fit config.model.tokenizer="
                     f"'{tokenizer}', which takes {expected}.")
  return patch


class TubeletEmbed(nn.Module):
  """Non-overlapping patches by a strided conv: (B, T, H, W, C) -> (B, nt, nh, nw, D).

  `patch_size` is (t, h, w) for tubelets; a 2-tuple (h, w) embeds frames (B, H, W, C) the same
  way. The kernel is (t, h, w, C, D) with logical axes (None, None, None, None, 'embed').
  """
  patch_size: Sequence[int]
  features: int
  dtype: Dtype
  param_dtype: Dtype

  @nn.compact
  def __call__(self, video: jax.Array) -> jax.Array:
    patch, dims = tuple(self.patch_size), video.shape[1:-1]
    if len(dims) != len(patch) or any(d % p for d, p in zip(dims, patch)):
      raise ValueError(f'Input of shape {video.shape} (B, T, H, W, C) cannot be cut into '
                       f'config.model.patch_size={patch} patches: {dims} must be multiples of '
                       f'{patch}; change the patch size or the clip size.')
    return nn.Conv(self.features, kernel_size=patch, strides=patch, padding='VALID',
                   dtype=self.dtype, param_dtype=self.param_dtype,
                   kernel_init=partitioned(nn.initializers.lecun_normal(),
                                           (None,) * (len(patch) + 1) + ('embed',)),
                   bias_init=partitioned(nn.initializers.zeros, ('embed',)), name='proj')(video)


class AddPositionEmbs(nn.Module):
  """Adds a learned embedding (1, N, D), init normal(0.02), to tokens (B, N, D); N is fixed by
  the variables (ValueError for tokens of another clip size)."""
  param_dtype: Dtype

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.has_variable('params', 'embedding'):
      made = nn.unbox(self.get_variable('params', 'embedding')).shape
      if made[1:] != x.shape[1:]:
        raise ValueError(f"{x.shape[1]} tokens do not fit the position embeddings "
                         f"'{'/'.join(self.scope.path)}' {made}, made for {made[1]} tokens: give "
                         f"the model clips of the (T, H, W) it was initialised with "
                         f"(config.dataset.num_frames, crop_size).")
    pos = self.param('embedding', partitioned(nn.initializers.normal(stddev=0.02),
                                              (None, None, 'embed')),
                     (1,) + x.shape[1:], self.param_dtype)
    return x + pos.astype(x.dtype)


class AddClassToken(nn.Module):
  """Prepends a learned token (1, 1, D), init zeros: (B, N, D) -> (B, N + 1, D)."""
  param_dtype: Dtype

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    token = self.param('token', partitioned(nn.initializers.zeros, (None, None, 'embed')),
                       (1, 1, x.shape[-1]), self.param_dtype)
    token = jnp.broadcast_to(token.astype(x.dtype), (x.shape[0], 1, x.shape[-1]))
    return jnp.concatenate([token, x], axis=1)
