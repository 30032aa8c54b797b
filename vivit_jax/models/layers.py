"""Shared transformer blocks: attention, MLP, stochastic depth, pre-norm encoder.

The encoder's attention is joint over all tokens or factorised over space and time (ViViT
Models 3 and 4) for tokens ordered (frame, position); `within` regroups them.

Speed options of every transformer encoder (`stacked_blocks`): `remat` (REMAT_POLICIES) recomputes
each block's activations in the backward pass; `scan_layers` runs the identical blocks as one
`nn.scan` (compiled once, params stacked under `blocks` with a leading 'layers' axis; see
models/scan.py for the conversion to and from `block_i`). `attention_impl` (ATTENTION_IMPLS) picks
the attention kernel for the platform the step is compiled for (models/attention.py).

Every parameter carries logical axis names ('embed', 'mlp', 'heads', 'kv') that
`config.sharding_rules` maps to mesh axes; the residual stream is constrained to
('batch', 'length', 'embed') between blocks.
"""
import functools
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
# config.model.remat -> jax.checkpoint policy of each block ('none': no remat; 'full' saves
# nothing; 'dots' saves the matmuls without batch dimensions, i.e. the projections and MLP).
REMAT_POLICIES = {'none': None, 'full': None,
                  'dots': jax.checkpoint_policies.dots_with_no_batch_dims_saveable}
# EncoderBlock.factorisation: joint attention, ViViT Model 3 or ViViT Model 4.
FACTORISATIONS = (None, 'self_attention', 'dot_product')


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


def check_positive_int(field: str, value: Any, hint: str):
  """ValueError 'config.model.FIELD=VALUE must be a positive int (HINT).' unless `value` is an int
  >= 1 (bools refused)."""
  if not isinstance(value, int) or isinstance(value, bool) or value < 1:
    raise ValueError(f'config.model.{field}={value!r} must be a positive int ({hint}).')


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
  residual branch starts at exactly 0 (Model 3's temporal attention). `qkv_bias` names the
  projections that have a bias: 'qkv' (ViT), 'qv' (VideoMAE) or '' (none).
  """
  num_heads: int
  dropout_rate: float
  attention_impl: str
  dtype: Dtype
  param_dtype: Dtype
  zero_init_out: bool = False
  qkv_bias: str = 'qkv'

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
        bias_init=partitioned(nn.initializers.zeros, ('heads', 'kv')),
        use_bias=name[0] in self.qkv_bias, name=name)(x)
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
  """Dense -> activation (default exact GELU) -> dropout -> Dense -> dropout; (..., D) -> (..., D).

  `activation` is a key of ACTIVATIONS.
  """
  mlp_dim: int
  dropout_rate: float
  dtype: Dtype
  param_dtype: Dtype
  activation: str = 'gelu'

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    width = x.shape[-1]
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


class EncoderBlock(nn.Module):
  """Pre-norm transformer block on tokens (B, N, D).

  x + DropPath(Dropout(Attention(LN(x)))), then x + DropPath(MLP(LN(x))). `factorisation`, for
  tokens ordered (frame, position) with N = num_frames * ns:
    None              joint attention over all N tokens (ViT; ViViT Models 1 and 2).
    'self_attention'  ViViT Model 3: attention over space ('attn', within each frame), then a
                      second residual attention over time ('temporal_attn', within each spatial
                      position, output projection zero-initialised), then the MLP.
    'dot_product'     ViViT Model 4: FactorisedDotProductAttention.
  LayerNorms use `layer_norm_eps`, the MLP `hidden_act`, attention `qkv_bias` (see Attention).
  A `drop_path_rate` passed to __call__ (a float or a scanned layer's () array) replaces the field.
  """
  num_heads: int
  mlp_dim: int
  dropout_rate: float
  attention_dropout_rate: float
  drop_path_rate: float
  attention_impl: str
  dtype: Dtype
  param_dtype: Dtype
  factorisation: Optional[str] = None
  num_frames: int = 1
  layer_norm_eps: float = LN_EPSILON
  hidden_act: str = 'gelu'
  qkv_bias: str = 'qkv'

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool, drop_path_rate: Any = None) -> jax.Array:
    if self.factorisation not in FACTORISATIONS:
      raise ValueError(f"EncoderBlock.factorisation='{self.factorisation}' is not one of "
                       f"{FACTORISATIONS}.")
    cls, kwargs = Attention, dict(qkv_bias=self.qkv_bias)
    if self.factorisation == 'dot_product':
      cls, kwargs = FactorisedDotProductAttention, dict(kwargs, num_frames=self.num_frames)
    attention = functools.partial(cls, self.num_heads, self.attention_dropout_rate,
                                  self.attention_impl, self.dtype, self.param_dtype, **kwargs)
    rate = self.drop_path_rate if drop_path_rate is None else drop_path_rate
    if self.factorisation == 'self_attention':
      x = self._attention_residual(x, attention(name='attn'), 'space', train, rate)
      x = self._attention_residual(x, attention(zero_init_out=True, name='temporal_attn'),
                                   'time', train, rate)
    else:
      x = self._attention_residual(x, attention(name='attn'), None, train, rate)
    y = layer_norm(self.dtype, self.param_dtype, 'norm_mlp', self.layer_norm_eps)(x)
    y = MlpBlock(self.mlp_dim, self.dropout_rate, self.dtype, self.param_dtype, self.hidden_act,
                 name='mlp')(y, train=train)
    return x + DropPath(rate)(y, train=train)

  def _attention_residual(self, x: jax.Array, attention: Attention, over: Optional[str],
                          train: bool, rate: Any) -> jax.Array:
    """x (B, N, D) + DropPath(Dropout(attention(LN(x)))); `over` 'space'/'time' restricts it
    `within` frames / spatial positions. The LayerNorm is named 'norm_' + attention.name."""
    y = layer_norm(self.dtype, self.param_dtype, f'norm_{attention.name}', self.layer_norm_eps)(x)
    attend = functools.partial(attention, train=train)
    y = within(attend, over, self.num_frames, y) if over else attend(y)
    y = nn.Dropout(self.dropout_rate)(y, deterministic=not train)
    return x + DropPath(rate)(y, train=train)


def check_speed_options(model: str, remat: str, scan_layers: bool):
  """ValueError naming config.model.remat / scan_layers unless they are valid."""
  check_choices(model, (('remat', remat, tuple(REMAT_POLICIES)),
                        ('scan_layers', scan_layers, (False, True))))


def stacked_blocks(x: jax.Array, num_layers: int, stochastic_depth: float, train: bool,
                   block: Callable[[str], nn.Module], remat: str = 'none',
                   scan_layers: bool = False) -> jax.Array:
  """x (B, N, D) through `num_layers` blocks `block(name)`, created in the calling module's scope
  and called `(x, train=, drop_path_rate=)`; the rate grows linearly from 0 to
  `stochastic_depth`; the residual stream is sharding-constrained between blocks.

  Unrolled, the blocks are named `block_i`. With `scan_layers` one `nn.scan` runs them: params
  (and the 'dropout' / 'drop_path' rngs) get a leading layer axis, logical name 'layers', under
  the name `blocks`. `remat` (REMAT_POLICIES) wraps each block in `nn.remat` (inside the scan).
  """
  def layer(rate):  # Closes over `train` and the rate, which stay Python values under remat.
    def apply(module, y):
      return constrain_residual(module(y, train=train, drop_path_rate=rate))
    if remat == 'none':
      return apply
    return nn.remat(apply, policy=REMAT_POLICIES[remat], prevent_cse=not scan_layers)

  rates = [stochastic_depth * i / max(num_layers - 1, 1) for i in range(num_layers)]
  x = constrain_residual(x)
  if not scan_layers:
    for i, rate in enumerate(rates):
      x = layer(rate)(block(f'block_{i}'), x)
    return x
  def body(module, y, rate):  # Rates 0 stay Python zeros: DropPath is skipped.
    return layer(rate if stochastic_depth else 0.0)(module, y), None

  scan = nn.scan(body, variable_axes={'params': 0},
                 split_rngs={'params': True, 'dropout': True, 'drop_path': True},
                 length=num_layers, metadata_params={nn.PARTITION_NAME: 'layers'})
  return scan(block('blocks'), x, jnp.asarray(rates, jnp.float32))[0]


class Encoder(nn.Module):
  """`num_layers` EncoderBlocks then a final LayerNorm (unless not `final_norm`); tokens
  (B, N, D) -> (B, N, D).

  The stochastic-depth rate grows linearly from 0 (first block) to `stochastic_depth` (last).
  `factorisation`, `num_frames`, `layer_norm_eps`, `hidden_act` and `qkv_bias` are passed to
  every EncoderBlock; `remat` and `scan_layers` to stacked_blocks.
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
  factorisation: Optional[str] = None
  num_frames: int = 1
  layer_norm_eps: float = LN_EPSILON
  hidden_act: str = 'gelu'
  qkv_bias: str = 'qkv'
  final_norm: bool = True
  remat: str = 'none'  # See stacked_blocks.
  scan_layers: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = stacked_blocks(x, self.num_layers, self.stochastic_depth, train, lambda name: (
        EncoderBlock(self.num_heads, self.mlp_dim, self.dropout_rate,
                     self.attention_dropout_rate, 0.0, self.attention_impl, self.dtype,
                     self.param_dtype, self.factorisation, self.num_frames, self.layer_norm_eps,
                     self.hidden_act, self.qkv_bias, name=name)), self.remat, self.scan_layers)
    if not self.final_norm:
      return x
    return layer_norm(self.dtype, self.param_dtype, 'norm', self.layer_norm_eps)(x)
