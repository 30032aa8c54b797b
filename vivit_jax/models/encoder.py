"""The transformer encoder of ViViT, TimeSformer and VideoMAE: one block description, one block.

`BlockSpec` describes what every block of an encoder shares (heads, MLP width, dropout,
attention kernel, LayerNorm eps, activation, q/k/v biases, dtypes); `EncoderBlock` is the one
pre-norm block, whose attention is joint or factorised over space and time (FACTORISATIONS);
`Encoder` stacks blocks (`stacked_blocks`) under a final LayerNorm. `TransformerFields` holds the
config.model fields the three models share, with ViT-B defaults, and makes their BlockSpec.

Speed options of every encoder (`stacked_blocks`): `remat` (REMAT_POLICIES) recomputes each
block's activations in the backward pass; `scan_layers` runs the identical blocks as one `nn.scan`
(compiled once, params stacked under `blocks` with a leading 'layers' axis; see models/scan.py for
the conversion to and from `block_i`). The residual stream is constrained to
('batch', 'length', 'embed') between blocks.
"""
import dataclasses
import functools
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from vivit_jax.models import layers
from vivit_jax.models.layers import Dtype, partitioned

# config.model.remat -> jax.checkpoint policy of each block ('none': no remat; 'full' saves
# nothing; 'dots' saves the matmuls without batch dimensions, i.e. the projections and MLP).
REMAT_POLICIES = {'none': None, 'full': None,
                  'dots': jax.checkpoint_policies.dots_with_no_batch_dims_saveable}
# EncoderBlock.factorisation: joint attention, ViViT Model 3, ViViT Model 4, TimeSformer.
FACTORISATIONS = (None, 'self_attention', 'dot_product', 'divided')


@dataclasses.dataclass(frozen=True, kw_only=True)
class BlockSpec:
  """What every block of an encoder shares. `hidden_act` is a key of layers.ACTIVATIONS,
  `qkv_bias` of layers.QKV_BIASES, `attention_impl` one of layers.ATTENTION_IMPLS."""
  num_heads: int
  mlp_dim: int
  dropout_rate: float = 0.0
  attention_dropout_rate: float = 0.0
  attention_impl: str = 'auto'
  layer_norm_eps: float = layers.LN_EPSILON
  hidden_act: str = 'gelu'
  qkv_bias: str = 'qkv'
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def attention(self, name: str, cls: type = layers.Attention, **fields) -> layers.Attention:
    """The block's attention `cls` named `name`; `fields` add its own (zero_init_out, ...)."""
    return cls(num_heads=self.num_heads, dropout_rate=self.attention_dropout_rate,
               attention_impl=self.attention_impl, dtype=self.dtype,
               param_dtype=self.param_dtype, qkv_bias=self.qkv_bias, name=name, **fields)

  def norm(self, name: str) -> nn.LayerNorm:
    return layers.layer_norm(self.dtype, self.param_dtype, name, self.layer_norm_eps)


class EncoderBlock(nn.Module):
  """Pre-norm transformer block on tokens (B, N, D): attention residual(s), then
  x + DropPath(MLP(LN(x))). Each attention residual is x + DropPath(Dropout(Attention(LN(x)))),
  its LayerNorm named 'norm_' + the attention's name. `factorisation`:
    None              joint attention over all N tokens (ViT; ViViT Models 1 and 2).
    'self_attention'  ViViT Model 3, tokens ordered (frame, position), N = num_frames * ns:
                      attention within each frame ('attn'), then a second residual attention
                      within each spatial position ('temporal_attn', output projection
                      zero-initialised); drop path per example.
    'dot_product'     ViViT Model 4: layers.FactorisedDotProductAttention over num_frames frames.
    'divided'         TimeSformer, tokens (B, 1 + P * num_frames, D), CLS first, patches ordered
                      (patch, time): attention over each patch's frames ('temporal_attn'; its
                      branch passes through the zero-initialised Dense 'temporal_dense'), then
                      over each frame's patches with a copy of the CLS token ('attn'; the CLS
                      update is averaged over frames); drop path per attended sequence (as HF).
  A `drop_path_rate` passed to __call__ (a float or a scanned layer's () array) replaces the field.
  """
  spec: BlockSpec
  factorisation: Optional[str] = None
  num_frames: int = 1
  drop_path_rate: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool, drop_path_rate: Any = None) -> jax.Array:
    if self.factorisation not in FACTORISATIONS:
      raise ValueError(f"EncoderBlock.factorisation='{self.factorisation}' is not one of "
                       f"{FACTORISATIONS}.")
    spec = self.spec
    rate = self.drop_path_rate if drop_path_rate is None else drop_path_rate
    branch = functools.partial(self._attention_branch, train=train, rate=rate)
    if self.factorisation == 'self_attention':
      x = x + branch(x, spec.attention('attn'), over='space')
      x = x + branch(x, spec.attention('temporal_attn', zero_init_out=True), over='time')
    elif self.factorisation == 'divided':
      x = self._divided(x, branch)
    elif self.factorisation == 'dot_product':
      x = x + branch(x, spec.attention('attn', layers.FactorisedDotProductAttention,
                                      num_frames=self.num_frames))
    else:
      x = x + branch(x, spec.attention('attn'))
    y = layers.MlpBlock(spec.mlp_dim, spec.dropout_rate, spec.dtype, spec.param_dtype,
                        spec.hidden_act, name='mlp')(spec.norm('norm_mlp')(x), train=train)
    return x + layers.DropPath(rate)(y, train=train)

  def _attention_branch(self, x: jax.Array, attention: layers.Attention,
                        over: Optional[str] = None, *, train: bool, rate: Any) -> jax.Array:
    """DropPath(Dropout(attention(LN(x)))) on tokens (B, N, D); `over` 'space' / 'time'
    restricts the attention `within` frames / spatial positions."""
    y = self.spec.norm(f'norm_{attention.name}')(x)
    attend = lambda z: attention(z, train=train)
    y = layers.within(attend, over, self.num_frames, y) if over else attend(y)
    y = nn.Dropout(self.spec.dropout_rate)(y, deterministic=not train)
    return layers.DropPath(rate)(y, train=train)

  def _divided(self, x: jax.Array, branch: Callable[..., jax.Array]) -> jax.Array:
    """TimeSformer's time then space attention residuals on (B, 1 + P * T, D)."""
    spec, (b, n, d), t = self.spec, x.shape, self.num_frames
    p = (n - 1) // t
    cls, patches = x[:, :1], x[:, 1:]
    y = branch(patches.reshape(b * p, t, d), spec.attention('temporal_attn'))
    patches = patches + nn.Dense(
        d, dtype=spec.dtype, param_dtype=spec.param_dtype,
        kernel_init=partitioned(nn.initializers.zeros, (None, 'embed')),
        bias_init=partitioned(nn.initializers.zeros, ('embed',)),
        name='temporal_dense')(y.reshape(b, p * t, d))
    frames = patches.reshape(b, p, t, d).transpose(0, 2, 1, 3).reshape(b * t, p, d)
    y = branch(jnp.concatenate([jnp.repeat(cls, t, axis=0), frames], axis=1),
               spec.attention('attn'))
    cls_update = y[:, 0].reshape(b, t, d).mean(axis=1, keepdims=True)
    patch_update = y[:, 1:].reshape(b, t, p, d).transpose(0, 2, 1, 3).reshape(b, p * t, d)
    return jnp.concatenate([cls + cls_update, patches + patch_update], axis=1)


def check_speed_options(model: str, remat: str, scan_layers: bool):
  """ValueError naming config.model.remat / scan_layers unless they are valid."""
  layers.check_choices(model, (('remat', remat, tuple(REMAT_POLICIES)),
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
      return layers.constrain_residual(module(y, train=train, drop_path_rate=rate))
    if remat == 'none':
      return apply
    return nn.remat(apply, policy=REMAT_POLICIES[remat], prevent_cse=not scan_layers)

  rates = [stochastic_depth * i / max(num_layers - 1, 1) for i in range(num_layers)]
  x = layers.constrain_residual(x)
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
  """`num_layers` EncoderBlocks of `spec` then a final LayerNorm (unless not `final_norm`);
  tokens (B, N, D) -> (B, N, D).

  The stochastic-depth rate grows linearly from 0 (first block) to `stochastic_depth` (last).
  `factorisation` and `num_frames` are passed to every EncoderBlock; `remat` and `scan_layers`
  to stacked_blocks.
  """
  spec: BlockSpec
  num_layers: int
  stochastic_depth: float = 0.0
  factorisation: Optional[str] = None
  num_frames: int = 1
  final_norm: bool = True
  remat: str = 'none'
  scan_layers: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = stacked_blocks(x, self.num_layers, self.stochastic_depth, train, lambda name: (
        EncoderBlock(spec=self.spec, factorisation=self.factorisation,
                     num_frames=self.num_frames, name=name)), self.remat, self.scan_layers)
    return self.spec.norm('norm')(x) if self.final_norm else x


class TransformerFields(nn.Module):
  """The config.model fields of ViViT, TimeSformer and VideoMAE that describe their encoder
  (defaults: ViT-B, float32, no dropout), its checks, and the encoder they make."""
  hidden_size: int = 768
  num_layers: int = 12
  num_heads: int = 12
  mlp_dim: int = 3072
  dropout_rate: float = 0.0
  attention_dropout_rate: float = 0.0
  stochastic_depth: float = 0.0  # Drop-path rate of the last block (0 at the first).
  attention_impl: str = 'auto'  # layers.ATTENTION_IMPLS; see models/attention.py.
  dtype: Dtype = jnp.float32  # Compute dtype; parameters stay param_dtype.
  param_dtype: Dtype = jnp.float32
  layer_norm_eps: float = layers.LN_EPSILON
  hidden_act: str = 'gelu'  # MLP activation, a key of layers.ACTIVATIONS.
  qkv_bias: str = 'qkv'  # Projections with a bias: 'qkv', 'qv' or 'none' (layers.QKV_BIASES).
  remat: str = 'none'  # Per block: 'none', 'full' or 'dots' (REMAT_POLICIES).
  scan_layers: bool = False  # nn.scan over each encoder's blocks (params `.../blocks`).

  def check_transformer_fields(self, model: str):
    """ValueError naming the config.model field whose value `model` does not support."""
    layers.check_choices(model, (
        ('attention_impl', self.attention_impl, tuple(layers.ATTENTION_IMPLS)),
        ('hidden_act', self.hidden_act, tuple(layers.ACTIVATIONS)),
        ('qkv_bias', self.qkv_bias, tuple(layers.QKV_BIASES))))
    check_speed_options(model, self.remat, self.scan_layers)

  def block_spec(self, **overrides) -> BlockSpec:
    """The BlockSpec of these fields, with `overrides` (e.g. a decoder's num_heads)."""
    return BlockSpec(**dict(dict(
        num_heads=self.num_heads, mlp_dim=self.mlp_dim, dropout_rate=self.dropout_rate,
        attention_dropout_rate=self.attention_dropout_rate, attention_impl=self.attention_impl,
        layer_norm_eps=self.layer_norm_eps, hidden_act=self.hidden_act, qkv_bias=self.qkv_bias,
        dtype=self.dtype, param_dtype=self.param_dtype), **overrides))

  def encoder(self, name: str, **fields) -> Encoder:
    """An Encoder of num_layers blocks of `block_spec()` with these fields' stochastic depth,
    remat and scan_layers; `fields` override or add Encoder fields (num_layers, factorisation,
    num_frames, final_norm). Call it inside a compact method: it is that module's submodule."""
    return Encoder(**dict(dict(
        spec=self.block_spec(), num_layers=self.num_layers,
        stochastic_depth=self.stochastic_depth, remat=self.remat,
        scan_layers=self.scan_layers), **fields), name=name)
