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

from vivit_jax.models import embed, encoder, inputs, layers
from vivit_jax.models.layers import partitioned


class TimeSformer(encoder.TransformerFields, kw_only=True):
  """Video (B, T, H, W, C) float32 -> logits (B, num_classes) float32, or the final CLS features
  (B, hidden_size) when num_classes == 0 (Hugging Face `TimesformerModel`'s
  `last_hidden_state[:, 0]`). T must be `num_frames`, H and W `image_size`.

  The encoder fields (sizes, dropout, dtypes, qkv_bias, remat, ...) are encoder.TransformerFields;
  its blocks are factorised 'divided' (encoder.EncoderBlock). RNG streams: 'dropout'
  (dropout_rate, attention_dropout_rate) and 'drop_path' (stochastic_depth, growing linearly from
  0 at the first block).
  """
  num_classes: int
  num_frames: int
  image_size: int
  patch_size: int  # Square patches of each frame.

  def __post_init__(self):
    self.check_transformer_fields('timesformer')
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
    x = self.encoder('encoder', factorisation='divided', num_frames=t)(x, train=train)
    return layers.classifier_head(x[:, 0], self.num_classes, self.dtype, self.param_dtype)
