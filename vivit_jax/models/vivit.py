"""ViViT: a Video Vision Transformer (Arnab et al. 2021, https://arxiv.org/abs/2103.15691).

Variants (config.model.variant) map tubelet tokens (B, nt, nh, nw, D) to the pooled
representation (B, D):
  spatio_temporal            Model 1: joint attention over all nt * nh * nw tokens.
  factorised_encoder         Model 2: a spatial encoder (num_layers) over the nh * nw tokens of
                             each temporal index gives one token per index (CLS or mean); a
                             temporal encoder (num_temporal_layers) runs over those nt tokens.
  factorised_self_attention  Model 3: each block attends over space (the tokens of one temporal
                             index), then over time (the tokens at one spatial position), then
                             applies the MLP; the temporal output projection starts at zero.
  factorised_dot_product     Model 4: in each block half the heads attend over space, half over
                             time (num_heads must be even).
Models 3 and 4 average their tokens (classifier='gap'), as in the paper.

Tokenizers (config.model.tokenizer): 'tubelet' embeds (t, h, w) tubelets; 'frame' (uniform frame
sampling) embeds (h, w) patches of every frame (see embed.tubelet_shape).
Sizes: SIZES holds the ViT widths and depths Ti/S/B/L/H; size_preset(name) returns one.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vivit_jax.models import embed, encoder, inputs, layers

CLASSIFIERS = ('token', 'gap')
SIZES = {
    'Ti': dict(hidden_size=192, num_layers=12, num_heads=3, mlp_dim=768),
    'S': dict(hidden_size=384, num_layers=12, num_heads=6, mlp_dim=1536),
    'B': dict(hidden_size=768, num_layers=12, num_heads=12, mlp_dim=3072),
    'L': dict(hidden_size=1024, num_layers=24, num_heads=16, mlp_dim=4096),
    'H': dict(hidden_size=1280, num_layers=32, num_heads=16, mlp_dim=5120),
}


def size_preset(name: str) -> dict:
  """config.model fields hidden_size, num_layers, num_heads, mlp_dim of ViT size `name`."""
  if name not in SIZES:
    raise ValueError(f"Unknown ViViT size '{name}'; available: {', '.join(SIZES)}")
  return dict(SIZES[name])


class ViViT(encoder.TransformerFields, kw_only=True):
  """Video (B, T, H, W, C) float32 -> logits (B, num_classes) float32, or the pooled features
  (B, hidden_size) when num_classes == 0 (Hugging Face `VivitModel`'s `last_hidden_state[:, 0]`).

  The encoder fields (sizes, dropout, dtypes, qkv_bias, remat, ...) are encoder.TransformerFields.
  RNG streams: 'dropout' (dropout_rate, attention_dropout_rate) and 'drop_path'
  (stochastic_depth, growing linearly over the depth of each encoder; Model 2's spatial encoder
  drops per frame).
  """
  # variant -> encoder.EncoderBlock.factorisation.
  FACTORISATIONS = {'spatio_temporal': None, 'factorised_encoder': None,
                    'factorised_self_attention': 'self_attention',
                    'factorised_dot_product': 'dot_product'}
  VARIANTS = tuple(FACTORISATIONS)

  variant: str
  num_classes: int
  patch_size: Sequence[int]  # Tubelet (t, h, w); (h, w) or (1, h, w) for tokenizer='frame'.
  classifier: str  # 'token' (CLS) or 'gap' (mean over tokens); Models 3 and 4: 'gap'.
  tokenizer: str = 'tubelet'  # 'tubelet' or 'frame'.
  num_temporal_layers: int = 4  # Model 2's temporal encoder (L_t = 4 in the paper).

  def __post_init__(self):
    layers.check_choices('vivit', (
        ('variant', self.variant, self.VARIANTS),
        ('classifier', self.classifier, CLASSIFIERS),
        ('tokenizer', self.tokenizer, embed.TOKENIZERS)))
    self.check_transformer_fields('vivit')
    if self.classifier == 'token' and self.FACTORISATIONS[self.variant]:
      raise ValueError(f"config.model.variant='{self.variant}' has no class token: set "
                       f"config.model.classifier='gap'.")
    embed.tubelet_shape(self.tokenizer, self.patch_size)  # Raises for a misfit patch_size.
    super().__post_init__()

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    tubelet = embed.tubelet_shape(self.tokenizer, self.patch_size)
    inputs.check_video(video, 'ViViT', patch=tubelet,
                       patch_name='tubelets of config.model.patch_size')
    tokens = embed.TubeletEmbed(tubelet, self.hidden_size, self.dtype, self.param_dtype,
                                name='embedding')(video)
    if self.variant == 'factorised_encoder':
      x = self._factorised_encoder(tokens, train)
    else:
      x = self._single_encoder(tokens, train)
    return layers.classifier_head(x, self.num_classes, self.dtype, self.param_dtype)

  def _single_encoder(self, tokens: jax.Array, train: bool) -> jax.Array:
    """Models 1, 3, 4: tokens (B, nt, nh, nw, D) -> (B, D), one encoder over all tokens."""
    x = tokens.reshape(tokens.shape[0], -1, tokens.shape[-1])
    return self._pool(self._encode(x, train, num_frames=tokens.shape[1]))

  def _factorised_encoder(self, tokens: jax.Array, train: bool) -> jax.Array:
    """Model 2: tokens (B, nt, nh, nw, D) -> (B, D), a spatial then a temporal encoder."""
    b, nt, nh, nw, d = tokens.shape
    x = self._pool(self._encode(tokens.reshape(b * nt, nh * nw, d), train, 'spatial_'))
    x = self._encode(x.reshape(b, nt, d), train, 'temporal_', num_layers=self.num_temporal_layers)
    return self._pool(x)

  def _encode(self, x: jax.Array, train: bool, prefix: str = '', **fields) -> jax.Array:
    """Tokens (B, N, D) -> (B, N', D): [CLS,] + position embedding, dropout, Encoder.

    Submodules are named `{prefix}cls`, `{prefix}pos_embedding`, `{prefix}encoder`. The encoder
    is factorised by the variant; `fields` set its num_layers (default self.num_layers) or
    num_frames (Models 3, 4).
    """
    if self.classifier == 'token':
      x = embed.AddClassToken(self.param_dtype, name=f'{prefix}cls')(x)
    x = embed.AddPositionEmbs(self.param_dtype, name=f'{prefix}pos_embedding')(x)
    x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
    return self.encoder(f'{prefix}encoder', factorisation=self.FACTORISATIONS[self.variant],
                        **fields)(x, train=train)

  def _pool(self, x: jax.Array) -> jax.Array:
    """Encoded tokens (B, N', D) -> (B, D): the CLS token or the mean over tokens."""
    return x[:, 0] if self.classifier == 'token' else jnp.mean(x, axis=1)
