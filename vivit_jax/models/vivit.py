"""ViViT: a Video Vision Transformer (Arnab et al. 2021, https://arxiv.org/abs/2103.15691).

Variants (config.model.variant), each a method `_<variant>` mapping tubelet tokens
(B, nt, nh, nw, D) to the pooled representation (B, D):
  spatio_temporal  Model 1: joint attention over all nt * nh * nw tokens.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vivit_jax.models import embed, layers
from vivit_jax.models.layers import Dtype

CLASSIFIERS = ('token', 'gap')


class ViViT(nn.Module):
  """Video (B, T, H, W, C) float32 -> logits (B, num_classes) float32.

  Parameters stay `param_dtype`; Dense/Conv/LayerNorm compute in `dtype`. RNG streams:
  'dropout' (dropout_rate, attention_dropout_rate) and 'drop_path' (stochastic_depth).
  """
  VARIANTS = ('spatio_temporal',)

  variant: str
  num_classes: int
  patch_size: Sequence[int]  # Tubelet (t, h, w).
  hidden_size: int
  num_layers: int
  num_heads: int
  mlp_dim: int
  dropout_rate: float
  attention_dropout_rate: float
  stochastic_depth: float
  classifier: str  # 'token' (CLS) or 'gap' (mean over tokens).
  attention_impl: str  # 'xla' or 'cudnn'.
  dtype: Dtype
  param_dtype: Dtype

  def __post_init__(self):
    for field, value, allowed in (('variant', self.variant, self.VARIANTS),
                                  ('classifier', self.classifier, CLASSIFIERS),
                                  ('attention_impl', self.attention_impl,
                                   tuple(layers.ATTENTION_IMPLS))):
      if value not in allowed:
        raise ValueError(f"config.model.{field}='{value}' is not supported by vivit; "
                         f"supported: {', '.join(allowed)}")
    super().__post_init__()

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    tokens = embed.TubeletEmbed(self.patch_size, self.hidden_size, self.dtype, self.param_dtype,
                                name='embedding')(video)
    x = getattr(self, f'_{self.variant}')(tokens, train)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                      kernel_init=layers.partitioned(nn.initializers.zeros, ('embed', 'classes')),
                      bias_init=layers.partitioned(nn.initializers.zeros, ('classes',)),
                      name='head')(x)
    return logits.astype(jnp.float32)

  def _spatio_temporal(self, tokens: jax.Array, train: bool) -> jax.Array:
    """Model 1: tokens (B, nt, nh, nw, D) -> (B, D), one encoder over all space-time tokens."""
    x = tokens.reshape(tokens.shape[0], -1, tokens.shape[-1])
    return self._pool(self._encode(x, train))

  def _encode(self, x: jax.Array, train: bool, prefix: str = '') -> jax.Array:
    """Tokens (B, N, D) -> (B, N', D): [CLS,] + position embedding, dropout, Encoder.

    Submodules are named `{prefix}cls`, `{prefix}pos_embedding`, `{prefix}encoder`.
    """
    if self.classifier == 'token':
      x = embed.AddClassToken(self.param_dtype, name=f'{prefix}cls')(x)
    x = embed.AddPositionEmbs(self.param_dtype, name=f'{prefix}pos_embedding')(x)
    x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
    return layers.Encoder(self.num_layers, self.num_heads, self.mlp_dim, self.dropout_rate,
                          self.attention_dropout_rate, self.stochastic_depth, self.attention_impl,
                          self.dtype, self.param_dtype, name=f'{prefix}encoder')(x, train=train)

  def _pool(self, x: jax.Array) -> jax.Array:
    """Encoded tokens (B, N', D) -> (B, D): the CLS token or the mean over tokens."""
    return x[:, 0] if self.classifier == 'token' else jnp.mean(x, axis=1)
