"""Shared transformer layers: attention, MLP, stochastic depth, LayerNorm, the classifier head.

Attention is joint over all tokens or factorised over space and time (ViViT Model 4) for tokens
ordered (frame, position); `within` regroups them. `attention_impl` (ATTENTION_IMPLS) picks the
attention kernel for the platform the step is compiled for (models/attention.py). The blocks and
encoders built from these layers live in models/encoder.py.

Every parameter carries logical axis names ('embed', 'mlp', 'heads', 'kv', 'classes') that
`config.sharding_rules` maps to mesh axes; the residual stream is constrained to
('batch', 'length', 'embed') between blocks.
"""
import functools
import numbers
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vivit_jax.models import attention

Dtype = Any
LN_EPSILON = 1e-6  # ViT convention.
# Activation names (Hugging Face `hidden_act`, transformers.activations.ACT2FN) -> function.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    'gelu': functools.partial(nn.gelu, approximate=False),
    'gelu_new': nn.gelu,  # The tanh approximation, like the next two.
    'gelu_pytorch_tanh': nn.gelu,
    'gelu_fast': nn.gelu,
    'quick_gelu': lambda x: x * nn.sigmoid(1.702 * x),
    'relu': nn.relu,
    'silu': nn.silu,
    'swish': nn.silu,
}
RESIDUAL_AXES = ('batch', 'length', 'embed')
# config.model.attention_impl: 'auto', 'xla', 'cudnn', 'pallas' or 'chunked' (models/attention.py).
ATTENTION_IMPLS = attention.IMPLS
# config.model.qkv_bias -> the attention projections that have a bias: all three (ViT), query and
# value (VideoMAE), or none.
QKV_BIASES = {'qkv': ('query', 'key', 'value'), 'qv': ('query', 'value'), 'none': ()}


def partitioned(init: nn.initializers.Initializer, names: Sequence[Optional[str]]):
  """`init` whose parameters carry the logical axis `names`."""
  return nn.with_logical_partitioning(init, tuple(names))


def layer_norm(dtype: Dtype, param_dtype: Dtype, name: Optional[str] = None,
               eps: float = LN_EPSILON) -> nn.LayerNorm:
  """LayerNorm over the model width (default eps 1e-6), scale/bias named ('embed',)."""
  return nn.LayerNorm(epsilon=eps, dtype=dtype, param_dtype=param_dtype,
                      scale_init=partitioned(nn.initializers.ones, ('embed',)),
                      bias_init=partitioned(nn.initializers.zeros, ('embed',)), name=name)


def check_choices(model: str, choices: Sequence[tuple[str, Any, Sequence[Any]]]):
  """Raises ValueError naming config.model.FIELD for the first (field, value, allowed) whose
  value is not allowed."""
  for field, value, allowed in choices:
    if value not in allowed:
      raise ValueError(f"config.model.{field}='{value}' is not supported by {model}; "
                       f"supported: {', '.join(map(str, allowed))}")


def check_int(field: str, value: Any, hint: str = '', *, minimum: int = 1, odd: bool = False):
  """The one check of the models' integer fields: ValueError 'config.model.FIELD=VALUE must be a
  positive [odd] int (HINT).' (or 'an int >= MINIMUM') unless `value` is an int (numpy's too,
  bools refused) >= `minimum`, and odd if `odd` (temporal kernels: symmetric padding keeps the
  length)."""
  bad = (not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum
         or (odd and value % 2 == 0))
  if bad:
    kind = f'a positive {"odd " if odd else ""}int' if minimum == 1 else f'an int >= {minimum}'
    raise ValueError(f'config.model.{field}={value!r} must be {kind}'
                     f'{f" ({hint})" if hint else ""}.')


def constrain_residual(x: jax.Array) -> jax.Array:
  """Shards tokens (B, N, D) as ('batch', 'length', 'embed')."""
  return nn.with_logical_constraint(x, RESIDUAL_AXES)


def within(fn: Callable[..., jax.Array], over: str, num_frames: int, *xs: jax.Array):
  """Applies `fn` to the tokens of one frame ('space') or of one spatial position ('time').

  xs (B, nt * ns, ...) hold tokens ordered (frame, position); fn maps arrays (B', n, ...) to one
  array (B', n, ...), with B' = B * nt sequences of n = ns tokens ('space') or B' = B * ns
  sequences of n = nt tokens ('time'). Returns (B, nt * ns, ...).
  """
  b, n = xs[0].shape[:2]
  if n % num_frames:
    raise ValueError(f'{n} tokens cannot be split into {num_frames} frames of equal size.')
  swap = {'space': False, 'time': True}[over]

  def group(x):  # (B, nt * ns, ...) -> (B', n, ...).
    x = x.reshape((b, num_frames, n // num_frames) + x.shape[2:])
    x = x.swapaxes(1, 2) if swap else x
    return x.reshape((-1,) + x.shape[2:])

  y = fn(*map(group, xs))
  y = y.reshape((b, -1) + y.shape[1:])
  y = y.swapaxes(1, 2) if swap else y
  return y.reshape((b, n) + y.shape[3:])


class Attention(nn.Module):
  """Multi-head self-attention over tokens (B, N, D) -> (B, N, D), D = num_heads * head_dim.

  q/k/v/out projections around `_attend`, the core on q, k, v (B, N, heads, head_dim) that
  subclasses restrict; it runs `attention.attend` with the kernel `attention_impl` picks for
  the platform being compiled for. Attention-weight dropout uses the rng stream 'dropout'.
  `zero_init_out` zero-initialises the output projection, so the
  residual branch starts at exactly 0 (Model 3's temporal attention). `qkv_bias` (a key of
  QKV_BIASES) names the projections that have a bias. `features` (default D) is the width of
  q/k/v and of the output (MViTv2 widens inside attention: (B, N, D) -> (B, N', features)).
  """
  num_heads: int
  dropout_rate: float
  attention_impl: str
  dtype: Dtype
  param_dtype: Dtype
  zero_init_out: bool = False
  qkv_bias: str = 'qkv'
  features: Optional[int] = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    width = self.features or x.shape[-1]
    if width % self.num_heads:
      raise ValueError(f'hidden_size {width} is not divisible by num_heads {self.num_heads} '
                       f'(config.model.hidden_size, config.model.num_heads).')
    heads, head_dim = self.num_heads, width // self.num_heads
    # nn.Einsum, not DenseGeneral: DenseGeneral initialises a flat 2D kernel and applies the 3D
    # sharding constraint to it under a mesh (google/flax#3676). Fans are as in DenseGeneral.
    project = functools.partial(nn.Einsum, dtype=self.dtype, param_dtype=self.param_dtype)
    q, k, v = (project(
        shape=(x.shape[-1], heads, head_dim), einsum_str='bnd,dhk->bnhk',
        kernel_init=partitioned(nn.initializers.xavier_uniform(in_axis=0, out_axis=(1, 2)),
                                ('embed', 'heads', 'kv')),
        bias_init=partitioned(nn.initializers.zeros, ('heads', 'kv')),
        use_bias=name in QKV_BIASES[self.qkv_bias], name=name)(x)
               for name in ('query', 'key', 'value'))
    out_init = (nn.initializers.zeros if self.zero_init_out
                else nn.initializers.xavier_uniform(in_axis=(0, 1), out_axis=2))
    return project(
        shape=(heads, head_dim, width), einsum_str='bnhk,hkd->bnd',
        kernel_init=partitioned(out_init, ('heads', 'kv', 'embed')),
        bias_init=partitioned(nn.initializers.zeros, ('embed',)),
        name='out')(self._attend(q, k, v, train))

  def _attend(self, q: jax.Array, k: jax.Array, v: jax.Array, train: bool) -> jax.Array:
    """q, k, v (B, N, heads, head_dim) -> (B, N, heads, head_dim): attention over all N."""
    rate = self.dropout_rate if train else 0.0
    return attention.attend(q, k, v, impl=self.attention_impl, dropout_rate=rate,
                            dropout_rng=self.make_rng('dropout') if rate else None)


class FactorisedDotProductAttention(Attention):
  """ViViT Model 4 attention on tokens (B, nt * ns, D) ordered (frame, position) -> (B, N, D).

  The first num_heads / 2 heads attend over space (the ns tokens of their frame), the others over
  time (the nt tokens at their spatial position); the heads are concatenated before the shared
  output projection. `num_frames` is nt (1: all tokens form one frame).
  """
  num_frames: int = 1

  def _attend(self, q: jax.Array, k: jax.Array, v: jax.Array, train: bool) -> jax.Array:
    """q, k, v (B, N, heads, head_dim) -> (B, N, heads, head_dim), heads split space / time."""
    if self.num_heads % 2:
      raise ValueError(f'factorised_dot_product attention splits the heads between space and '
                       f'time: config.model.num_heads={self.num_heads} must be even.')
    attend, half = super()._attend, self.num_heads // 2
    return jnp.concatenate([
        within(lambda *qkv: attend(*qkv, train), over, self.num_frames,
               *(a[:, :, heads] for a in (q, k, v)))
        for over, heads in (('space', slice(None, half)), ('time', slice(half, None)))], axis=2)


class MlpBlock(nn.Module):
  """Dense -> activation (default exact GELU) -> dropout -> Dense -> dropout; (..., D) ->
  (..., out_features), by default D.

  `activation` is a key of ACTIVATIONS.
  """
  mlp_dim: int
  dropout_rate: float
  dtype: Dtype
  param_dtype: Dtype
  activation: str = 'gelu'
  out_features: Optional[int] = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    width = self.out_features or x.shape[-1]
    bias_init = nn.initializers.normal(stddev=1e-6)
    y = nn.Dense(self.mlp_dim, dtype=self.dtype, param_dtype=self.param_dtype,
                 kernel_init=partitioned(nn.initializers.xavier_uniform(), ('embed', 'mlp')),
                 bias_init=partitioned(bias_init, ('mlp',)), name='fc1')(x)
    y = nn.Dropout(self.dropout_rate)(ACTIVATIONS[self.activation](y), deterministic=not train)
    y = nn.Dense(width, dtype=self.dtype, param_dtype=self.param_dtype,
                 kernel_init=partitioned(nn.initializers.xavier_uniform(), ('mlp', 'embed')),
                 bias_init=partitioned(bias_init, ('embed',)), name='fc2')(y)
    return nn.Dropout(self.dropout_rate)(y, deterministic=not train)


class DropPath(nn.Module):
  """Stochastic depth on a residual branch (B, ...): zero whole examples with probability `rate`.

  Kept examples are scaled by 1 / (1 - rate), so the expectation is unchanged; identity at eval.
  `rate` may be a traced scalar (a scanned layer's). Uses the rng stream 'drop_path'.
  """
  rate: Any  # float or () array.

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if not train or (isinstance(self.rate, (int, float)) and self.rate == 0):
      return x
    keep_prob = 1.0 - self.rate
    keep = jax.random.bernoulli(self.make_rng('drop_path'), keep_prob,
                                (x.shape[0],) + (1,) * (x.ndim - 1))
    # In x's dtype: a traced float32 rate (nn.scan) must not promote a bfloat16 carry.
    return jnp.where(keep, x / jnp.asarray(keep_prob, x.dtype), jnp.zeros_like(x))


def classifier_head(features: jax.Array, num_classes: int, dtype: Dtype,
                    param_dtype: Dtype) -> jax.Array:
  """Pooled features (B, D) -> float32 logits (B, num_classes) from a zero-initialised Dense
  'head' created in the calling module; with num_classes 0 the features themselves, float32."""
  if not num_classes:
    return features.astype(jnp.float32)
  logits = nn.Dense(num_classes, dtype=dtype, param_dtype=param_dtype,
                    kernel_init=partitioned(nn.initializers.zeros, ('embed', 'classes')),
                    bias_init=partitioned(nn.initializers.zeros, ('classes',)),
                    name='head')(features)
  return logits.astype(jnp.float32)
