"""TimeSformer with divided space-time attention (Bertasius et al. 2021,
https://arxiv.org/abs/2102.05095), numerically as Hugging Face's `TimesformerForVideoClassification`.

Patch tokens are ordered (patch, time) as in Hugging Face; the CLS token takes part in spatial
attention once per frame and its update is averaged over frames. The parameter tree mirrors an
image ViT (`embedding`, `cls`, `pos_embedding`, `encoder/block_i/{norm_attn, attn, norm_mlp, mlp}`,
`encoder/norm`, `head`) plus `time_embedding` and per block `norm_temporal_attn`, `temporal_attn`,
`temporal_dense`. `time_embedding` and `temporal_dense` start at zero, so a fresh model whose ViT
parts come from an image ViT equals that ViT on a video whose frames are all one image.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from vivit_jax.models import embed, inputs, layers
from vivit_jax.models.layers import Dtype, partitioned

class DividedBlock(nn.Module):
  """Temporal attention, spatial attention, MLP on tokens (B, 1 + P * T, D), CLS first, patches
  ordered (patch, time); all pre-norm residual branches. A `drop_path_rate` passed to __call__
  (a float or a scanned layer's () array) replaces the field.
  """
  num_frames: int
  num_heads: int
  mlp_dim: int
  dropout_rate: float
  attention_dropout_rate: float
  drop_path_rate: float
  attention_impl: str
  layer_norm_eps: float
  hidden_act: str
  qkv_bias: bool
  dtype: Dtype
  param_dtype: Dtype

  def _norm(self, name: str) -> nn.LayerNorm:
    return layers.layer_norm(self.dtype, self.param_dtype, name, self.layer_norm_eps)

  def _attend(self, x: jax.Array, name: str, train: bool, rate) -> jax.Array:
    """DropPath(Dropout(Attention(LN(x)))) on (B', N', D); drop-path masks rows of B' (as HF)."""
    y = self._norm(f'norm_{name}')(x)
    y = layers.Attention(self.num_heads, self.attention_dropout_rate, self.attention_impl,
                         self.dtype, self.param_dtype, qkv_bias='qkv' if self.qkv_bias else '',
                         name=name)(y, train=train)
    y = nn.Dropout(self.dropout_rate)(y, deterministic=not train)
    return layers.DropPath(rate)(y, train=train)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool, drop_path_rate=None) -> jax.Array:
    rate = self.drop_path_rate if drop_path_rate is None else drop_path_rate
    b, n, d = x.shape
    t = self.num_frames
    p = (n - 1) // t
    cls, patches = x[:, :1], x[:, 1:]
    # Temporal: each patch attends over its T frames.
    y = self._attend(patches.reshape(b * p, t, d), 'temporal_attn', train, rate)
    y = y.reshape(b, p * t, d)
    patches = patches + nn.Dense(
        d, dtype=self.dtype, param_dtype=self.param_dtype,
        kernel_init=partitioned(nn.initializers.zeros, (None, 'embed')),
        bias_init=partitioned(nn.initializers.zeros, ('embed',)), name='temporal_dense')(y)
    # Spatial: each frame's patches attend with a copy of the CLS token.
    frames = patches.reshape(b, p, t, d).transpose(0, 2, 1, 3).reshape(b * t, p, d)
    y = self._attend(jnp.concatenate([jnp.repeat(cls, t, axis=0), frames], axis=1), 'attn', train,
                     rate)
    cls_update = y[:, 0].reshape(b, t, d).mean(axis=1, keepdims=True)
    patch_update = y[:, 1:].reshape(b, t, p, d).transpose(0, 2, 1, 3).reshape(b, p * t, d)
    x = jnp.concatenate([cls + cls_update, patches + patch_update], axis=1)
    y = layers.MlpBlock(self.mlp_dim, self.dropout_rate, self.dtype, self.param_dtype,
                        self.hidden_act, name='mlp')(self._norm('norm_mlp')(x), train=train)
    return x + layers.DropPath(rate)(y, train=train)


class DividedEncoder(nn.Module):
  """`num_layers` DividedBlocks then a final LayerNorm; (B, 1 + P * T, D) -> (B, 1 + P * T, D).

  The stochastic-depth rate grows linearly from 0 (first block) to `stochastic_depth` (last);
  `remat` and `scan_layers` as layers.stacked_blocks.
  """
  num_layers: int
  num_frames: int
  num_heads: int
  mlp_dim: int
  dropout_rate: float
  attention_dropout_rate: float
  stochastic_depth: float
  attention_impl: str
  layer_norm_eps: float
  hidden_act: str
  qkv_bias: bool
  dtype: Dtype
  param_dtype: Dtype
  remat: str = 'none'
  scan_layers: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = layers.stacked_blocks(x, self.num_layers, self.stochastic_depth, train, lambda name: (
        DividedBlock(self.num_frames, self.num_heads, self.mlp_dim, self.dropout_rate,
                     self.attention_dropout_rate, 0.0, self.attention_impl, self.layer_norm_eps,
                     self.hidden_act, self.qkv_bias, self.dtype, self.param_dtype,
                     name=name)), self.remat, self.scan_layers)
    return layers.layer_norm(self.dtype, self.param_dtype, 'norm', self.layer_norm_eps)(x)


class TimeSformer(nn.Module):
  """Video (B, T, H, W, C) float32 -> logits (B, num_classes) float32, or the final CLS features
  (B, hidden_size) when num_classes == 0 (Hugging Face `TimesformerModel`'s
  `last_hidden_state[:, 0]`). T must be `num_frames`, H and W `image_size`.

  Parameters stay `param_dtype`; Dense/Conv/LayerNorm compute in `dtype`. RNG streams:
  'dropout' (dropout_rate, attention_dropout_rate) and 'drop_path' (stochastic_depth, growing
  linearly from 0 at the first block).
  """
  num_classes: int
  num_frames: int
  image_size: int
  patch_size: int  # Square patches of each frame.
  hidden_size: int
  num_layers: int
  num_heads: int
  mlp_dim: int
  dropout_rate: float
  attention_dropout_rate: float
  stochastic_depth: float
  attention_impl: str  # layers.ATTENTION_IMPLS; see models/attention.py.
  dtype: Dtype
  param_dtype: Dtype
  layer_norm_eps: float = 1e-6
  hidden_act: str = 'gelu'  # A key of layers.ACTIVATIONS.
  qkv_bias: bool = True
  remat: str = 'none'  # Per block: 'none', 'full' or 'dots' (layers.REMAT_POLICIES).
  scan_layers: bool = False  # nn.scan over the blocks (params `encoder/blocks`).

  def __post_init__(self):
    layers.check_choices('timesformer', (
        ('hidden_act', self.hidden_act, tuple(layers.ACTIVATIONS)),
        ('attention_impl', self.attention_impl, tuple(layers.ATTENTION_IMPLS))))
    layers.check_speed_options('timesformer', self.remat, self.scan_layers)
    super().__post_init__()

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    inputs.check_video(video, 'TimeSformer')
    b, t, h, w, c = video.shape
    clip = (self.num_frames, self.image_size, self.image_size)
    if (t, h, w) != clip:
      raise inputs.error(video, 'TimeSformer', f'config.model.num_frames={self.num_frames} and '
                         f'image_size={self.image_size} fix (T, H, W) to {clip} (the time and '
                         f'position embeddings); set config.dataset.num_frames and crop_size '
                         f'to match')
    frames = embed.TubeletEmbed((self.patch_size,) * 2, self.hidden_size, self.dtype,
                                self.param_dtype, name='embedding')(video.reshape(b * t, h, w, c))
    x = embed.AddClassToken(self.param_dtype, name='cls')(
        frames.reshape(b * t, -1, self.hidden_size))
    x = embed.AddPositionEmbs(self.param_dtype, name='pos_embedding')(x)
    x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
    cls = x[::t, :1]  # (B, 1, D): identical in every frame.
    patches = x[:, 1:].reshape(b, t, -1, self.hidden_size).transpose(0, 2, 1, 3)  # (B, P, T, D)
    time = self.param('time_embedding', partitioned(nn.initializers.zeros, (None, None, 'embed')),
                      (1, t, self.hidden_size), self.param_dtype)
    patches = nn.Dropout(self.dropout_rate)(patches + time.astype(patches.dtype),
                                            deterministic=not train)
    x = jnp.concatenate([cls, patches.reshape(b, -1, self.hidden_size)], axis=1)
    x = DividedEncoder(
        self.num_layers, self.num_frames, self.num_heads, self.mlp_dim, self.dropout_rate,
        self.attention_dropout_rate, self.stochastic_depth, self.attention_impl,
        self.layer_norm_eps, self.hidden_act, self.qkv_bias, self.dtype, self.param_dtype,
        self.remat, self.scan_layers, name='encoder')(x, train=train)[:, 0]
    if not self.num_classes:
      return x.astype(jnp.float32)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                      kernel_init=partitioned(nn.initializers.zeros, ('embed', 'classes')),
                      bias_init=partitioned(nn.initializers.zeros, ('classes',)), name='head')(x)
    return logits.astype(jnp.float32)
