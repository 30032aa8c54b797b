"""MViT: Multiscale Vision Transformers, registered as 'mvit'. One module covers
  v1  Fan et al., "Multiscale Vision Transformers", ICCV 2021, as PyTorchVideo builds MViT-B 16x4
      (`create_multiscale_vision_transformers`; its state dicts convert leaf for leaf:
      vivit_jax/weights/pytorchvideo/mvit.py), and
  v2  Li et al., "MViTv2: Improved Multiscale Vision Transformers for Classification and
      Detection", CVPR 2022, as PySlowFast builds MViTv2-S/B (slowfast/models/attention.py).

On a clip (B, T, H, W, 3):
  patch_embed  a conv of patch_kernel (3x7x7), stride patch_stride (2x4x4), padding kernel // 2
               -> a grid (T/2, H/4, W/4) of embed_dim tokens, flattened (t, h, w)
  [cls token]  classifier 'token' prepends one (its pooled output is the CLS token's)
  [abs pos]    abs_pos_embed: v1's separable embeddings, spatial (1, h * w, D) repeated over t
               plus temporal (1, t, D) repeated over h * w, plus one for the CLS token
  block_i      depth MultiScaleBlocks. Stages start at the blocks `stage_starts` (MViT-S/v1-B
               (1, 3, 14)): there the width and the heads double and the queries (and the
               residual, by a max pool) are pooled by q_stride (1x2x2); keys and values are pooled
               by kv_stride (1x8x8) divided by every q stride so far (pool_kv_stride_adaptive)
  norm, pool   LayerNorm, then the CLS token (classifier 'token') or the token mean ('gap'),
               dropout (dropout_rate), zero-initialised Dense `head`

A block (MultiScaleBlock) is x + DropPath(MultiScaleAttention(LN(x))), then y + DropPath(MLP(LN(y)))
with the residuals pooled and projected where the shape changes. Attention pools q, k, v (after the
projections, per head) by a depthwise conv of pool_kernel (3x3x3, no bias) and a LayerNorm
(eps pool_norm_eps) over the head dimension, the CLS token left out of the pooling; softmax of
q k^T / sqrt(head_dim) over the (few) pooled keys, einsum (B, heads, Nq, Nk). v2 adds
  rel_pos            decomposed relative positions: logits[q, k] += q . (R_t[t_q, t_k] +
                     R_h[h_q, h_k] + R_w[w_q, w_k]), tables (2 max(q_a, k_a) - 1, head_dim) per
                     axis and block, sized by the clip at init
  residual_pooling   the pooled query is added to the attention output (not the CLS token's)
  dim_mul_in_att     a stage's first block widens inside attention (q/k/v project to the new
                     width; the residual through Dense `proj` from LN(x)); v1 widens in the MLP of
                     the block before (the residual through `proj` from the MLP's LN)
  pool_q_every_block a stride-1 query pooling (conv + LN) in every block, as PySlowFast's v2
                     configs list a q stride for every block
and no absolute positions. MLPs are D -> mlp_ratio D (exact GELU) -> output width; LayerNorms eps
1e-6. Drop path grows linearly from 0 to stochastic_depth over the blocks.

Parameters carry logical axis names ('embed', 'heads', 'kv', 'mlp', 'classes'); `remat` recomputes
each block in the backward pass (encoder.REMAT_POLICIES). The blocks differ in shape, so there
is no scan_layers.
"""
import dataclasses
import math
from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vivit_jax.models import embed, encoder, inputs, layers
from vivit_jax.models.layers import Dtype, partitioned

Grid = tuple[int, int, int]  # (t, h, w) of the tokens.
CLASSIFIERS = ('token', 'gap')
REL_POS_STD = 0.02


def pooled_grid(grid: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> Grid:
  """The grid after a pooling of `kernel` and `stride` padded by kernel // 2 (PyTorch's sizes)."""
  return tuple((g + 2 * (k // 2) - k) // s + 1 for g, k, s in zip(grid, kernel, stride))


def _padding(kernel: Sequence[int]) -> list[tuple[int, int]]:
  return [(k // 2, k // 2) for k in kernel]


def pool_tokens(x: jax.Array, pool: Callable[[jax.Array], jax.Array], grid: Sequence[int],
                has_cls: bool) -> jax.Array:
  """Tokens (B, [1 +] t * h * w, C) ordered (t, h, w) -> (B, [1 +] t' * h' * w', C): `pool` on
  the grid (B, t, h, w, C) -> (B, t', h', w', C), the CLS token (if `has_cls`) passed through."""
  cls, x = (x[:, :1], x[:, 1:]) if has_cls else (x[:, :0], x)
  y = pool(x.reshape(x.shape[0], *grid, x.shape[-1]))
  return jnp.concatenate([cls, y.reshape(y.shape[0], -1, y.shape[-1])], axis=1)


def relative_distances(q_size: int, k_size: int) -> np.ndarray:
  """(q_size, k_size) indices into a (2 max(q_size, k_size) - 1)-row table of the distance
  between query and key positions, both scaled to the finer grid (PySlowFast's rel pos)."""
  q_ratio, k_ratio = max(k_size / q_size, 1.0), max(q_size / k_size, 1.0)
  dist = (np.arange(q_size)[:, None] * q_ratio - np.arange(k_size)[None, :] * k_ratio
          + (k_size - 1) * k_ratio)
  return dist.astype(np.int64)


def relative_position_bias(q: jax.Array, q_grid: Grid, k_grid: Grid,
                           tables: Sequence[jax.Array]) -> jax.Array:
  """Decomposed relative positions: queries (B, t * h * w, heads, C) on `q_grid`, tables (t, h,
  w) of (2 max(q_a, k_a) - 1, C) -> logits bias (B, heads, Nq, Nk) over the keys on `k_grid`."""
  b, _, heads, c = q.shape
  r = q.reshape(b, *q_grid, heads, c)
  bias = jnp.zeros((b, heads, *q_grid, *k_grid), q.dtype)
  for axis, (letter, table) in enumerate(zip('thw', tables)):
    table = table[relative_distances(q_grid[axis], k_grid[axis])].astype(q.dtype)
    rel = jnp.einsum(f'bthwnc,{letter}kc->bnthwk', r, table)
    keys = [1, 1, 1]
    keys[axis] = k_grid[axis]
    bias = bias + rel.reshape(*rel.shape[:-1], *keys)
  return bias.reshape(b, heads, math.prod(q_grid), math.prod(k_grid))


@dataclasses.dataclass(frozen=True)
class Pooling:
  """Where one block's attention pools: its input `grid` (t, h, w), the q and the k/v pooling
  kernels (None: no pooling) and strides, whether a CLS token leads the tokens."""
  grid: Grid
  q_kernel: Optional[Grid]
  q_stride: Grid
  kv_kernel: Optional[Grid]
  kv_stride: Grid
  has_cls: bool

  @property
  def q_grid(self) -> Grid:
    return pooled_grid(self.grid, self.q_kernel, self.q_stride) if self.q_kernel else self.grid

  @property
  def kv_grid(self) -> Grid:
    return (pooled_grid(self.grid, self.kv_kernel, self.kv_stride) if self.kv_kernel
            else self.grid)


class MultiScaleAttention(layers.Attention, kw_only=True):
  """Pooling attention on tokens (B, [1 +] t * h * w, D) on `pooling.grid` -> (B, [1 +] Nq,
  features), Nq the pooled query grid's size (the module docstring)."""
  pooling: Pooling
  pool_norm_eps: float
  rel_pos: bool
  residual_pooling: bool

  def _pool(self, x: jax.Array, kernel, stride, name: str) -> jax.Array:
    """q, k or v (B, N, heads, C) -> pooled (B, N', heads, C): the depthwise conv `pool_{name}`
    shared by the heads, then LayerNorm `norm_{name}` over C."""
    if kernel is None:
      return x
    b, n, heads, c = x.shape
    conv = nn.Conv(c, tuple(kernel), tuple(stride), padding=_padding(kernel),
                   feature_group_count=c, use_bias=False, dtype=self.dtype,
                   param_dtype=self.param_dtype,
                   kernel_init=partitioned(nn.initializers.lecun_normal(),
                                           (None, None, None, None, 'kv')),
                   name=f'pool_{name}')
    y = pool_tokens(x.transpose(0, 2, 1, 3).reshape(b * heads, n, c), conv, self.pooling.grid,
                    self.pooling.has_cls)
    y = layers.layer_norm(self.dtype, self.param_dtype, f'norm_{name}', self.pool_norm_eps)(y)
    return y.reshape(b, heads, -1, c).transpose(0, 2, 1, 3)

  def _attend(self, q: jax.Array, k: jax.Array, v: jax.Array, train: bool) -> jax.Array:
    """q, k, v (B, N, heads, C) -> (B, Nq, heads, C) after pooling them."""
    pooling = self.pooling
    q = self._pool(q, pooling.q_kernel, pooling.q_stride, 'q')
    k = self._pool(k, pooling.kv_kernel, pooling.kv_stride, 'k')
    v = self._pool(v, pooling.kv_kernel, pooling.kv_stride, 'v')
    s, q_grid, k_grid = int(pooling.has_cls), pooling.q_grid, pooling.kv_grid
    logits = jnp.einsum('bqnc,bknc->bnqk', q * q.shape[-1] ** -0.5, k)
    if self.rel_pos:
      tables = [self.param(f'rel_pos_{axis}', partitioned(
          nn.initializers.truncated_normal(REL_POS_STD), (None, 'kv')),
          (2 * max(qa, ka) - 1, q.shape[-1]), self.param_dtype)
                for axis, qa, ka in zip('thw', q_grid, k_grid)]
      bias = relative_position_bias(q[:, s:], q_grid, k_grid, tables)
      logits = logits + jnp.pad(bias, ((0, 0), (0, 0), (s, 0), (s, 0)))
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(v.dtype)
    out = jnp.einsum('bnqk,bknc->bqnc', weights, v)
    if self.residual_pooling:
      out = out + q.at[:, :s].set(0)
    return out


class MultiScaleBlock(nn.Module, kw_only=True):
  """Tokens (B, [1 +] t * h * w, in width) on `pooling.grid` -> (B, [1 +] Nq, out_features) (the module
  docstring). The attention works at `features` wide with `num_heads`; the MLP maps `features` to
  `out_features`. Where the input width differs from `features` (v2's dim_mul_in_att), Dense
  `proj` maps LN(x) to the attention's residual; else where `features` differs from
  `out_features` (v1), it maps the MLP's LN input to the MLP's residual."""
  features: int
  out_features: int
  num_heads: int
  pooling: Pooling
  mlp_ratio: float
  pool_norm_eps: float
  rel_pos: bool
  residual_pooling: bool
  dtype: Dtype
  param_dtype: Dtype
  drop_path_rate: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool, drop_path_rate=None) -> jax.Array:
    rate = self.drop_path_rate if drop_path_rate is None else drop_path_rate
    norm = lambda name: layers.layer_norm(self.dtype, self.param_dtype, name)
    y = norm('norm_attn')(x)
    attention = MultiScaleAttention(
        num_heads=self.num_heads, dropout_rate=0.0, attention_impl='xla', dtype=self.dtype,
        param_dtype=self.param_dtype, features=self.features, pooling=self.pooling,
        pool_norm_eps=self.pool_norm_eps, rel_pos=self.rel_pos, residual_pooling=self.residual_pooling, name='attn')
    attended = attention(y, train=train)
    if x.shape[-1] != self.features:
      x = self._proj(y)
    stride = self.pooling.q_stride
    if math.prod(stride) > 1:  # The residual pooled as the queries (max, -inf padding).
      kernel = tuple(s + 1 if s > 1 else s for s in stride)
      x = pool_tokens(x, lambda g: nn.max_pool(g, kernel, stride, padding=_padding(kernel)),
                      self.pooling.grid, self.pooling.has_cls)
    x = x + layers.DropPath(rate)(attended, train=train)
    y = norm('norm_mlp')(x)
    mlp = layers.MlpBlock(int(self.features * self.mlp_ratio), 0.0, self.dtype, self.param_dtype,
                          out_features=self.out_features, name='mlp')(y, train=train)
    if self.features != self.out_features:
      x = self._proj(y)
    return x + layers.DropPath(rate)(mlp, train=train)

  def _proj(self, y: jax.Array) -> jax.Array:
    """Dense `proj` (B, N, D) -> (B, N, features or out_features, whichever differs from D)."""
    width = self.features if y.shape[-1] != self.features else self.out_features
    return nn.Dense(width, dtype=self.dtype, param_dtype=self.param_dtype,
                    kernel_init=partitioned(nn.initializers.xavier_uniform(), ('embed', None)),
                    bias_init=partitioned(nn.initializers.zeros, (None,)), name='proj')(y)


class SeparablePositionEmbs(nn.Module):
  """v1's absolute positions on tokens (B, [1 +] t * h * w, D): `spatial` (1, h * w, D) repeated
  over t plus `temporal` (1, t, D) repeated over h * w, and `class` (1, 1, D) for the CLS token;
  init truncated normal(0.02)."""
  grid: Grid
  has_cls: bool
  param_dtype: Dtype

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    t, h, w = self.grid
    init = partitioned(nn.initializers.truncated_normal(0.02), (None, None, 'embed'))
    param = lambda name, n: self.param(name, init, (1, n, x.shape[-1]), self.param_dtype)
    pos = (param('spatial', h * w)[:, None] + param('temporal', t)[:, :, None]).reshape(
        1, t * h * w, x.shape[-1])
    if self.has_cls:
      pos = jnp.concatenate([param('class', 1), pos], axis=1)
    return x + pos.astype(x.dtype)


class MViT(nn.Module):
  """MViT: video (B, T, H, W, 3) float32 -> logits (B, num_classes) float32, or the pooled
  features (B, final width) when num_classes == 0. Defaults: MViTv2-S (configs/mvit/k400.py);
  v1-B sets abs_pos_embed, pool_norm_eps 1e-5 and turns the v2 options off.

  RNG streams: 'dropout' (the head's dropout_rate), 'drop_path' (stochastic_depth).
  """
  num_classes: int
  embed_dim: int = 96
  num_heads: int = 1
  depth: int = 16
  stage_starts: Sequence[int] = (1, 3, 14)  # Blocks where width and heads double, q pooled.
  mlp_ratio: float = 4.0
  patch_kernel: Sequence[int] = (3, 7, 7)
  patch_stride: Sequence[int] = (2, 4, 4)
  pool_kernel: Sequence[int] = (3, 3, 3)
  q_stride: Sequence[int] = (1, 2, 2)
  kv_stride: Sequence[int] = (1, 8, 8)  # Of the first block; divided by each q stride after.
  pool_q_every_block: bool = True
  pool_norm_eps: float = layers.LN_EPSILON  # PyTorchVideo's v1: 1e-5 (nn.LayerNorm's default).
  abs_pos_embed: bool = False
  rel_pos: bool = True
  residual_pooling: bool = True
  dim_mul_in_att: bool = True
  classifier: str = 'token'
  dropout_rate: float = 0.5
  stochastic_depth: float = 0.1
  remat: str = 'none'
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    for field, hint in (('embed_dim', '96 in the paper'), ('num_heads', '1 in the paper'),
                        ('depth', '16 for MViTv2-S and v1-B, 24 for MViTv2-B')):
      layers.check_int(field, getattr(self, field), hint)
    layers.check_choices('mvit', (('classifier', self.classifier, CLASSIFIERS),))
    encoder.check_speed_options('mvit', self.remat, False)
    if self.embed_dim % self.num_heads:
      raise ValueError(f'config.model.embed_dim={self.embed_dim} must be a multiple of '
                       f'config.model.num_heads={self.num_heads}.')
    starts = tuple(self.stage_starts)
    if list(starts) != sorted(set(starts)) or any(not 0 < s < self.depth for s in starts):
      raise ValueError(f'config.model.stage_starts={starts} must be increasing block indices in '
                       f'[1, depth={self.depth}) ((1, 3, 14) for MViTv2-S and v1-B).')
    for field in ('patch_kernel', 'patch_stride', 'pool_kernel', 'q_stride', 'kv_stride'):
      value = tuple(getattr(self, field))
      if len(value) != 3 or any(not isinstance(v, int) or v < 1 for v in value):
        raise ValueError(f'config.model.{field}={value} must be 3 positive ints (t, h, w).')
    super().__post_init__()

  def width(self, i: int) -> tuple[int, int]:
    """(width, heads) of block i (-1: the patch embedding's, depth: the last block's)."""
    doublings = sum(s <= i for s in self.stage_starts)
    return self.embed_dim * 2 ** doublings, self.num_heads * 2 ** doublings

  def blocks(self, grid: Grid, has_cls: bool = True) -> list[dict]:
    """The MultiScaleBlock fields of each block, for a patch grid (t, h, w)."""
    plans, kv_stride, ones = [], tuple(self.kv_stride), (1, 1, 1)
    pools = lambda kernel, stride: math.prod(kernel) > 1 or math.prod(stride) > 1
    for i in range(self.depth):
      start = i in self.stage_starts
      q_stride = tuple(self.q_stride) if start else ones
      kv_stride = tuple(max(k // q, 1) for k, q in zip(kv_stride, q_stride))
      kernel = tuple(self.pool_kernel)
      pool_q = (start or self.pool_q_every_block) and pools(kernel, q_stride)
      features, heads = self.width(i)
      plans.append(dict(
          features=features, num_heads=heads,
          out_features=features if self.dim_mul_in_att else self.width(i + 1)[0],
          pooling=Pooling(grid, kernel if pool_q else None, q_stride,
                          kernel if pools(kernel, kv_stride) else None, kv_stride, has_cls)))
      grid = pooled_grid(grid, kernel, q_stride) if pool_q else grid
    return plans

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    inputs.check_video(video, 'MViT')
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = nn.Conv(self.embed_dim, tuple(self.patch_kernel), tuple(self.patch_stride),
                padding=_padding(self.patch_kernel),
                kernel_init=partitioned(nn.initializers.lecun_normal(),
                                        (None, None, None, None, 'embed')),
                bias_init=partitioned(nn.initializers.zeros, ('embed',)), name='patch_embed',
                **kw)(video)
    grid, has_cls = x.shape[1:4], self.classifier == 'token'
    x = x.reshape(x.shape[0], -1, x.shape[-1])
    if has_cls:
      x = embed.AddClassToken(self.param_dtype, name='cls')(x)
    if self.abs_pos_embed:
      x = SeparablePositionEmbs(grid, has_cls, self.param_dtype, name='pos_embedding')(x)
    shared = dict(mlp_ratio=self.mlp_ratio, pool_norm_eps=self.pool_norm_eps,
                  rel_pos=self.rel_pos, residual_pooling=self.residual_pooling, **kw)
    plans = {f'block_{i}': plan for i, plan in enumerate(self.blocks(grid, has_cls))}
    x = encoder.stacked_blocks(x, self.depth, self.stochastic_depth, train, lambda name: (
        MultiScaleBlock(**plans[name], **shared, name=name)), self.remat)
    x = layers.layer_norm(self.dtype, self.param_dtype, 'norm')(x)
    x = x[:, 0] if has_cls else jnp.mean(x, axis=1)
    x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
    return layers.classifier_head(x, self.num_classes, self.dtype, self.param_dtype)

