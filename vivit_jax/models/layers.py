"""Shared transformer blocks: attention, MLP, stochastic depth, pre-norm encoder.

Every parameter carries logical axis names ('embed', 'mlp', 'heads', 'kv') that
`config.sharding_rules` maps to mesh axes; the residual stream is constrained to
('batch', 'length', 'embed') between blocks.
"""
import functools
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any
LN_EPSILON = 1e-6  # ViT convention.
RESIDUAL_AXES = ('batch', 'length', 'embed')
# config.model.attention_impl -> `implementation` of jax.nn.dot_product_attention.
ATTENTION_IMPLS = {'xla': None, 'cudnn': 'cudnn'}
_CUDNN_DTYPES = (jnp.bfloat16, jnp.float16)


def partitioned(init: nn.initializers.Initializer, names: Sequence[Optional[str]]):
  """`init` whose parameters carry the logical axis `names`."""
  return nn.with_logical_partitioning(init, tuple(names))


def layer_norm(dtype: Dtype, param_dtype: Dtype, name: Optional[str] = None) -> nn.LayerNorm:
  """LayerNorm over the model width, eps 1e-6, scale/bias named ('embed',)."""
  return nn.LayerNorm(epsilon=LN_EPSILON, dtype=dtype, param_dtype=param_dtype,
                      scale_init=partitioned(nn.initializers.ones, ('embed',)),
                      bias_init=partitioned(nn.initializers.zeros, ('embed',)), name=name)


def constrain_residual(x: jax.Array) -> jax.Array:
  """Shards tokens (B, N, D) as ('batch', 'length', 'embed')."""
  return nn.with_logical_constraint(x, RESIDUAL_AXES)


def _check_cudnn(q: jax.Array):
  """Raises if cuDNN flash attention cannot take q (B, N, heads, head_dim)."""
  if q.dtype not in _CUDNN_DTYPES:
    raise ValueError(f"attention_impl='cudnn' needs a bfloat16 or float16 compute dtype, got "
                     f"{q.dtype}: set config.model.dtype='bfloat16' or attention_impl='xla'.")
  if q.shape[-1] % 8:
    raise ValueError(f"attention_impl='cudnn' needs head_dim (hidden_size / num_heads) % 8 == 0, "
                     f"got head_dim {q.shape[-1]}: change config.model.hidden_size/num_heads or "
                     f"use attention_impl='xla'.")


class Attention(nn.Module):
  """Multi-head self-attention over tokens (B, N, D) -> (B, N, D), D = num_heads * head_dim.

  Attention-weight dropout (rng stream 'dropout') runs an explicit softmax(q k^T / sqrt(d)) path
  with the same float32 softmax as `jax.nn.dot_product_attention`, which serves the other cases.
  """
  num_heads: int
  dropout_rate: float
  attention_impl: str
  dtype: Dtype
  param_dtype: Dtype

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    width = x.shape[-1]
    if width % self.num_heads:
      raise ValueError(f'hidden_size {width} is not divisible by num_heads {self.num_heads} '
                       f'(config.model.hidden_size, config.model.num_heads).')
    heads, head_dim = self.num_heads, width // self.num_heads
    # nn.Einsum, not DenseGeneral: DenseGeneral initialises a flat 2D kernel and applies the 3D
    # sharding constraint to it under a mesh (google/flax#3676). Fans are as in DenseGeneral.
    project = functools.partial(nn.Einsum, dtype=self.dtype, param_dtype=self.param_dtype)
    q, k, v = (project(
        shape=(width, heads, head_dim), einsum_str='bnd,dhk->bnhk',
        kernel_init=partitioned(nn.initializers.xavier_uniform(in_axis=0, out_axis=(1, 2)),
                                ('embed', 'heads', 'kv')),
        bias_init=partitioned(nn.initializers.zeros, ('heads', 'kv')), name=name)(x)
               for name in ('query', 'key', 'value'))
    if train and self.dropout_rate > 0:
      out = self._attend_with_dropout(q, k, v)
    else:
      implementation = ATTENTION_IMPLS[self.attention_impl]
      if implementation == 'cudnn':
        _check_cudnn(q)
      out = jax.nn.dot_product_attention(q, k, v, implementation=implementation)
    return project(
        shape=(heads, head_dim, width), einsum_str='bnhk,hkd->bnd',
        kernel_init=partitioned(nn.initializers.xavier_uniform(in_axis=(0, 1), out_axis=2),
                                ('heads', 'kv', 'embed')),
        bias_init=partitioned(nn.initializers.zeros, ('embed',)), name='out')(out)

  def _attend_with_dropout(self, q, k, v):
    """q, k, v (B, N, heads, head_dim) -> (B, N, heads, head_dim), dropping attention weights."""
    logits = jnp.einsum('bqhd,bkhd->bhqk', q, k, preferred_element_type=jnp.float32)
    weights = jax.nn.softmax(logits * q.shape[-1] ** -0.5).astype(v.dtype)
    weights = nn.Dropout(self.dropout_rate)(weights, deterministic=False)
    return jnp.einsum('bhqk,bkhd->bqhd', weights, v)


class MlpBlock(nn.Module):
  """Dense -> exact GELU -> dropout -> Dense -> dropout; (..., D) -> (..., D)."""
  mlp_dim: int
  dropout_rate: float
  dtype: Dtype
  param_dtype: Dtype

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    width = x.shape[-1]
    bias_init = nn.initializers.normal(stddev=1e-6)
    y = nn.Dense(self.mlp_dim, dtype=self.dtype, param_dtype=self.param_dtype,
                 kernel_init=partitioned(nn.initializers.xavier_uniform(), ('embed', 'mlp')),
                 bias_init=partitioned(bias_init, ('mlp',)), name='fc1')(x)
    y = nn.Dropout(self.dropout_rate)(nn.gelu(y, approximate=False), deterministic=not train)
    y = nn.Dense(width, dtype=self.dtype, param_dtype=self.param_dtype,
                 kernel_init=partitioned(nn.initializers.xavier_uniform(), ('mlp', 'embed')),
                 bias_init=partitioned(bias_init, ('embed',)), name='fc2')(y)
    return nn.Dropout(self.dropout_rate)(y, deterministic=not train)


class DropPath(nn.Module):
  """Stochastic depth on a residual branch (B, ...): zero whole examples with probability `rate`.

  Kept examples are scaled by 1 / (1 - rate), so the expectation is unchanged; identity at eval.
  Uses the rng stream 'drop_path'.
  """
  rate: float

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if not train or self.rate == 0:
      return x
    keep_prob = 1.0 - self.rate
    keep = jax.random.bernoulli(self.make_rng('drop_path'), keep_prob,
                                (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(keep, x / keep_prob, jnp.zeros_like(x))


class EncoderBlock(nn.Module):
  """Pre-norm transformer block on tokens (B, N, D).

  x + DropPath(Dropout(Attention(LN(x)))), then x + DropPath(MLP(LN(x))).
  """
  num_heads: int
  mlp_dim: int
  dropout_rate: float
  attention_dropout_rate: float
  drop_path_rate: float
  attention_impl: str
  dtype: Dtype
  param_dtype: Dtype

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    y = layer_norm(self.dtype, self.param_dtype, name='norm_attn')(x)
    y = Attention(self.num_heads, self.attention_dropout_rate, self.attention_impl, self.dtype,
                  self.param_dtype, name='attn')(y, train=train)
    y = nn.Dropout(self.dropout_rate)(y, deterministic=not train)
    x = x + DropPath(self.drop_path_rate)(y, train=train)
    y = layer_norm(self.dtype, self.param_dtype, name='norm_mlp')(x)
    y = MlpBlock(self.mlp_dim, self.dropout_rate, self.dtype, self.param_dtype,
                 name='mlp')(y, train=train)
    return x + DropPath(self.drop_path_rate)(y, train=train)


class Encoder(nn.Module):
  """`num_layers` EncoderBlocks then a final LayerNorm; tokens (B, N, D) -> (B, N, D).

  The stochastic-depth rate grows linearly from 0 (first block) to `stochastic_depth` (last).
  """
  num_layers: int
  num_heads: int
  mlp_dim: int
  dropout_rate: float
  attention_dropout_rate: float
  stochastic_depth: float
  attention_impl: str
  dtype: Dtype
  param_dtype: Dtype

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = constrain_residual(x)
    for i in range(self.num_layers):
      drop_path_rate = self.stochastic_depth * i / max(self.num_layers - 1, 1)
      x = EncoderBlock(self.num_heads, self.mlp_dim, self.dropout_rate,
                       self.attention_dropout_rate, drop_path_rate, self.attention_impl,
                       self.dtype, self.param_dtype, name=f'block_{i}')(x, train=train)
      x = constrain_residual(x)
    return layer_norm(self.dtype, self.param_dtype, name='norm')(x)
