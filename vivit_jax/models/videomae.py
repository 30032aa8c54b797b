"""VideoMAE (Tong et al., NeurIPS 2022, https://arxiv.org/abs/2203.12602) with VideoMAE V2 dual
masking (Wang et al., CVPR 2023, https://arxiv.org/abs/2303.16727), numerically as Hugging Face's
`VideoMAEForPreTraining`, `VideoMAEModel` and `VideoMAEForVideoClassification`.

Tokens: the video (B, T, H, W, C) is cut into N = nt * nh * nw cubes of t x p x p
(`tubelet_size` x `patch_size` x `patch_size`), ordered (time, row, column), each embedded by a
strided Conv3d. A FIXED sinusoidal table (`sinusoid_table`, VideoMAE's get_sinusoid_encoding_table:
entry (i, j) is sin (j even) or cos (j odd) of i / 10000^(2 * (j // 2) / D) for the flat token
index i) is added; it is not a parameter. Encoder blocks are pre-norm ViT blocks whose attention
has query and value biases and no key bias (qkv_bias='qv').

Models (registry names):
  'videomae_pretrain'  VideoMAEPretrain: the encoder sees only the visible cubes; a narrow decoder
      (`decoder_*` sizes) gets the visible tokens (projected by `encoder_to_decoder`, no bias) and a
      learned `mask_token` at each cube to reconstruct, each plus the decoder's own sinusoidal
      table, and predicts those cubes' pixels. Outputs a dict, see VideoMAEPretrain.
  'videomae'           VideoMAE: the same `embedding` and `encoder` parameters (same paths) over all
      cubes, then mean pooling + `fc_norm` (LayerNorm eps 1e-5) or, with use_mean_pooling=False, a
      final encoder LayerNorm and the FIRST token (Hugging Face has no CLS token: that is the first
      cube's token), then the `head`.

Masking (config.model.mask_type, mask_ratio; rng stream 'masking'; see vivit_jax.models.masking):
  'tube'    round(mask_ratio * nh * nw) spatial positions per example, the same at every time
            step, so nt * round(mask_ratio * nh * nw) cubes are masked.
  'random'  round(mask_ratio * N) cubes per example.
  A mask passed to __call__ is used as given; it must mask exactly that many cubes in every row.
VideoMAE V2 decoder masking (decoder_mask_ratio = r_d): of the M masked cubes the decoder
reconstructs K = M - round(r_d * M), chosen uniformly at random per example (rng 'masking'),
i.e. it drops the fraction r_d of the masked cubes; its input is the N - M visible tokens plus K
mask tokens (not all N), and the loss covers those K cubes. r_d = 0 reconstructs all M (VideoMAE).
Reconstructed cubes are always listed in increasing flat cube index (`pred_index`).

Targets and loss (as Hugging Face's VideoMAEForPreTraining and the released weights):
  1. the input is normalised video; it is un-normalised with config `pixel_mean` / `pixel_std`
     (default ImageNet (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225)): x * std + mean;
  2. cut into cubes, each flattened in (t, p_h, p_w, C) order: cube_dim = t * p * p * C with the
     channel fastest (the layout of `pred`);
  3. norm_pix_loss (default True): each cube normalised per channel over its t * p * p pixels,
     (x - mean) / (sqrt(unbiased variance) + 1e-6);
  4. loss = mean over (B, K, cube_dim) of (pred - target)^2, float32.
"""
import functools
import math
from typing import Any, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vivit_jax.models import embed, encoder, inputs, layers, masking
from vivit_jax.models.layers import Dtype, partitioned

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HEAD_NORM_EPS = 1e-5  # Hugging Face's fc_norm and decoder norm: PyTorch's default eps.
TARGET_STD_EPS = 1e-6  # Added to each cube's std in norm_pix_loss.
# ViT encoder sizes (vivit.SIZES) with the paper's decoders (VideoMAE's pretrain_videomae_* models).
SIZES = {
    'S': dict(hidden_size=384, num_layers=12, num_heads=6, mlp_dim=1536,
              decoder_hidden_size=192, decoder_num_layers=4, decoder_num_heads=3,
              decoder_mlp_dim=768),
    'B': dict(hidden_size=768, num_layers=12, num_heads=12, mlp_dim=3072,
              decoder_hidden_size=384, decoder_num_layers=4, decoder_num_heads=6,
              decoder_mlp_dim=1536),
    'L': dict(hidden_size=1024, num_layers=24, num_heads=16, mlp_dim=4096,
              decoder_hidden_size=512, decoder_num_layers=4, decoder_num_heads=8,
              decoder_mlp_dim=2048),
    'H': dict(hidden_size=1280, num_layers=32, num_heads=16, mlp_dim=5120,
              decoder_hidden_size=640, decoder_num_layers=4, decoder_num_heads=8,
              decoder_mlp_dim=2560),
}


def size_preset(name: str, pretrain: bool = False) -> dict:
  """config.model size fields of ViT size `name` (S, B, L, H); with the decoder's if `pretrain`."""
  if name not in SIZES:
    raise ValueError(f"Unknown VideoMAE size '{name}'; available: {', '.join(SIZES)}")
  return {k: v for k, v in SIZES[name].items() if pretrain or not k.startswith('decoder_')}


@functools.lru_cache(maxsize=32)
def sinusoid_table(num_positions: int, width: int) -> np.ndarray:
  """VideoMAE's fixed position table (num_positions, width) float32: entry (i, j) is
  sin(i / 10000^(2 (j // 2) / width)) for even j, cos(...) for odd j (computed in float64)."""
  position = np.arange(num_positions, dtype=np.float64)[:, None]
  exponent = 2 * (np.arange(width) // 2) / width
  angles = position / np.power(10000.0, exponent)[None, :]
  table = np.where(np.arange(width) % 2 == 0, np.sin(angles), np.cos(angles))
  return table.astype(np.float32)


def patchify(video: jax.Array, tubelet_size: int, patch_size: int) -> jax.Array:
  """(B, T, H, W, C) -> cubes (B, N, t * p * p * C), cubes ordered (time, row, column) and each
  flattened (t, p_h, p_w, C), as the targets and predictions."""
  b, t, h, w, c = video.shape
  pt, p = tubelet_size, patch_size
  x = video.reshape(b, t // pt, pt, h // p, p, w // p, p, c)
  x = x.transpose(0, 1, 3, 5, 2, 4, 6, 7)
  return x.reshape(b, (t // pt) * (h // p) * (w // p), pt * p * p * c)


def unpatchify(cubes: jax.Array, grid: Tuple[int, int, int], tubelet_size: int,
               patch_size: int) -> jax.Array:
  """Inverse of `patchify`: cubes (B, N, cube_dim) on a (nt, nh, nw) grid -> (B, T, H, W, C)."""
  b = cubes.shape[0]
  nt, nh, nw = grid
  pt, p = tubelet_size, patch_size
  x = cubes.reshape(b, nt, nh, nw, pt, p, p, -1)
  x = x.transpose(0, 1, 4, 2, 5, 3, 6, 7)
  return x.reshape(b, nt * pt, nh * p, nw * p, x.shape[-1])


def cube_targets(video: jax.Array, tubelet_size: int, patch_size: int,
                 pixel_mean: Sequence[float], pixel_std: Sequence[float],
                 norm_pix_loss: bool) -> jax.Array:
  """Normalised video (B, T, H, W, C) -> float32 targets (B, N, cube_dim) (module docstring)."""
  video = video.astype(jnp.float32)
  frames = (video * jnp.asarray(pixel_std, jnp.float32)
            + jnp.asarray(pixel_mean, jnp.float32))
  cubes = patchify(frames, tubelet_size, patch_size)
  if not norm_pix_loss:
    return cubes
  b, n, _ = cubes.shape
  cubes = cubes.reshape(b, n, -1, video.shape[-1])  # (B, N, t * p * p, C)
  mean = jnp.mean(cubes, axis=2, keepdims=True)
  std = jnp.sqrt(jnp.var(cubes, axis=2, keepdims=True, ddof=1))
  return ((cubes - mean) / (std + TARGET_STD_EPS)).reshape(b, n, -1)


def encoder_params(pretrain_params: dict, model_config) -> dict:
  """The params of a 'videomae_pretrain' model that the 'videomae' classifier of `model_config`
  takes: `embedding` and the `encoder` blocks, plus `encoder/norm` only if the classifier has one
  (use_mean_pooling=False; with mean pooling its fresh `fc_norm` replaces it, as in VideoMAE's
  fine-tuning). The decoder, `encoder_to_decoder` and `mask_token` are dropped."""
  encoder = dict(pretrain_params['encoder'])
  if model_config.get('use_mean_pooling', True):
    encoder.pop('norm', None)
  return {'embedding': pretrain_params['embedding'], 'encoder': encoder}


class _Encoder(encoder.TransformerFields):
  """Fields and the encoder shared by VideoMAE and VideoMAEPretrain (parameters `embedding`,
  `encoder/block_i`, [`encoder/norm`]): encoder.TransformerFields (ViT-B; HF's default
  layer_norm_eps is 1e-12) with q and v biases, and 2 x 16 x 16 cubes."""
  patch_size: int = 16  # Spatial side p of a cube.
  tubelet_size: int = 2  # Frames t of a cube.
  qkv_bias: str = 'qv'  # The released weights' biases: query and value, never key.

  def _check(self, model: str):
    self.check_transformer_fields(model)
    for field in ('patch_size', 'tubelet_size', 'hidden_size', 'num_layers', 'num_heads',
                  'mlp_dim'):
      layers.check_int(field, getattr(self, field))
    if self.hidden_size % self.num_heads:
      raise ValueError(f'config.model.hidden_size={self.hidden_size} is not divisible by '
                       f'config.model.num_heads={self.num_heads}.')
    for field in ('dropout_rate', 'attention_dropout_rate', 'stochastic_depth'):
      if not 0 <= getattr(self, field) < 1:
        raise ValueError(f'config.model.{field}={getattr(self, field)} must be in [0, 1).')

  def _tokens(self, video: jax.Array, channels: int = 3) -> jax.Array:
    """(B, T, H, W, channels) -> cube tokens (B, nt, nh, nw, D), after inputs.check_video."""
    cube = (self.tubelet_size, self.patch_size, self.patch_size)
    inputs.check_video(video, type(self).__name__, channels=channels, patch=cube,
                       patch_name='cubes of config.model.tubelet_size x patch_size x patch_size')
    return embed.TubeletEmbed(cube, self.hidden_size, self.dtype, self.param_dtype,
                              name='embedding')(video)

  def _encode(self, x: jax.Array, train: bool, final_norm: bool) -> jax.Array:
    """Tokens (B, n, D) with positions added -> (B, n, D): dropout, blocks, [final norm]."""
    x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
    return self.encoder('encoder', final_norm=final_norm)(x, train=train)


def _positions(n: int, width: int, dtype: Dtype) -> jax.Array:
  return jnp.asarray(sinusoid_table(n, width), dtype)


class VideoMAE(_Encoder, kw_only=True):
  """Video (B, T, H, W, C) float32 -> logits (B, num_classes) float32, or with num_classes 0 the
  pooled features (B, hidden_size) float32 (the input of the head).

  Pooling: use_mean_pooling=True (the released fine-tuned layout): no final encoder norm, the
  mean over all tokens, then `fc_norm` (LayerNorm eps 1e-5) if `fc_norm` (Hugging Face's
  VideoMAEModel features, `last_hidden_state.mean(1)`, have none: fc_norm=False).
  use_mean_pooling=False: a final encoder LayerNorm (`encoder/norm`, layer_norm_eps) and the first
  token, as Hugging Face (it has no CLS token). RNG streams 'dropout' and 'drop_path'.
  The `head` starts at zero.
  """
  num_classes: int
  use_mean_pooling: bool = True
  fc_norm: bool = True

  def __post_init__(self):
    self._check('videomae')
    layers.check_int('num_classes', self.num_classes, '0: the pooled features', minimum=0)
    super().__post_init__()

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    tokens = self._tokens(video)
    b, d = tokens.shape[0], tokens.shape[-1]
    x = tokens.reshape(b, -1, d)
    x = x + _positions(x.shape[1], d, x.dtype)
    x = self._encode(x, train, final_norm=not self.use_mean_pooling)
    if self.use_mean_pooling:
      x = jnp.mean(x, axis=1)
      if self.fc_norm:
        x = layers.layer_norm(self.dtype, self.param_dtype, 'fc_norm', HEAD_NORM_EPS)(x)
    else:
      x = x[:, 0]
    return layers.classifier_head(x, self.num_classes, self.dtype, self.param_dtype)


class VideoMAEPretrain(_Encoder):
  """Masked video modelling. `__call__(video (B, T, H, W, C), *, train, mask=None) -> dict`:

    loss        () float32: mean squared error of pred against target (module docstring).
    example_loss (B,) float32: that error per example (loss is their mean).
    pred        (B, K, cube_dim) float32: the decoder's pixel predictions for the K reconstructed
                cubes, cube_dim = t * p * p * C in (t, p_h, p_w, C) order (Hugging Face `logits`).
    target      (B, K, cube_dim) float32: their targets (norm_pix_loss-normalised or not).
    pred_index  (B, K) int32: the flat cube index of each row of pred, increasing.
    mask        (B, N) bool: the encoder mask, True = masked.
    visible_index (B, N - M) int32: the cubes the encoder saw, increasing.
  To show predictions in place, scatter `pred` rows to `pred_index` in `patchify(video)` (or
  in zeros) and `unpatchify` with the grid (T/t, H/p, W/p).
  K = M - round(decoder_mask_ratio * M) of the M masked cubes (module docstring). If `mask` is
  None it is drawn from the 'masking' rng stream (also used for decoder masking). A passed mask
  (B, N) bool must mask exactly M cubes in every row (M as mask_type / mask_ratio give): a
  concrete mask that does not raises ValueError; under jit the loss is NaN.

  Parameters: `embedding`, `encoder` (as VideoMAE; `encoder/norm` iff encoder_norm),
  `encoder_to_decoder` (no bias), `mask_token`, `decoder/{block_i, norm, head}`. The decoder's
  blocks use layer_norm_eps, hidden_act and qkv_bias like the encoder's, no dropout or drop path;
  its final norm uses eps 1e-5 (as Hugging Face).
  """
  RNG_STREAMS, EVAL_RNG_STREAMS = ('dropout', 'drop_path', 'masking'), ('masking',)
  decoder_hidden_size: int = 384
  decoder_num_layers: int = 4
  decoder_num_heads: int = 6
  decoder_mlp_dim: int = 1536
  mask_type: str = 'tube'  # 'tube' or 'random' (masking.MASK_TYPES).
  mask_ratio: float = 0.9
  decoder_mask_ratio: float = 0.0  # VideoMAE V2: fraction of the masked cubes not reconstructed.
  norm_pix_loss: bool = True
  pixel_mean: Sequence[float] = IMAGENET_MEAN  # Un-normalise the input for the targets.
  pixel_std: Sequence[float] = IMAGENET_STD
  # Final encoder LayerNorm (the original pre-training encoder has one; Hugging Face's
  # VideoMAEForPreTraining has it iff use_mean_pooling=False).
  encoder_norm: bool = True

  def __post_init__(self):
    self._check('videomae_pretrain')
    layers.check_choices('videomae_pretrain', (('mask_type', self.mask_type,
                                                masking.MASK_TYPES),))
    for field in ('decoder_hidden_size', 'decoder_num_layers', 'decoder_num_heads',
                  'decoder_mlp_dim'):
      layers.check_int(field, getattr(self, field))
    if self.decoder_hidden_size % self.decoder_num_heads:
      raise ValueError(f'config.model.decoder_hidden_size={self.decoder_hidden_size} is not '
                       f'divisible by config.model.decoder_num_heads={self.decoder_num_heads}.')
    if not 0 < self.mask_ratio < 1:
      raise ValueError(f'config.model.mask_ratio={self.mask_ratio} must be in (0, 1).')
    if not 0 <= self.decoder_mask_ratio < 1:
      raise ValueError(f'config.model.decoder_mask_ratio={self.decoder_mask_ratio} must be in '
                       f'[0, 1).')
    if len(self.pixel_mean) != len(self.pixel_std) or min(self.pixel_std) <= 0:
      raise ValueError(f'config.model.pixel_mean={tuple(self.pixel_mean)} and pixel_std='
                       f'{tuple(self.pixel_std)} need one entry per channel, std > 0.')
    super().__post_init__()

  def num_masked(self, grid: Tuple[int, int, int]) -> Tuple[int, int]:
    """(M masked cubes per example, K reconstructed by the decoder) on a (nt, nh, nw) grid,
    with a ValueError naming the config field when either is 0 or M leaves nothing visible."""
    n = math.prod(grid)
    count = masking.num_masked(self.mask_type, self.mask_ratio, grid)
    if not 0 < count < n:
      raise ValueError(f'config.model.mask_ratio={self.mask_ratio} with mask_type='
                       f"'{self.mask_type}' masks {count} of the {n} cubes of a {grid} grid; at "
                       f'least one must be masked and one visible.')
    keep = count - round(self.decoder_mask_ratio * count)
    if keep < 1:
      raise ValueError(f'config.model.decoder_mask_ratio={self.decoder_mask_ratio} leaves none '
                       f'of the {count} masked cubes to reconstruct.')
    return count, keep

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool,
               mask: Optional[jax.Array] = None) -> dict[str, Any]:
    tokens = self._tokens(video, channels=len(self.pixel_mean))
    b, grid, d = tokens.shape[0], tuple(tokens.shape[1:4]), tokens.shape[-1]
    n = math.prod(grid)
    count, keep = self.num_masked(grid)
    count_ok = True
    if mask is None:
      mask = masking.make_mask(self.mask_type, self.make_rng('masking'), b, grid,
                               self.mask_ratio)
    else:
      mask, count_ok = masking.check_mask(mask, (b, n), count)
    visible, masked = masking.split(mask, count)
    reconstruct = (masking.decoder_subset(self.make_rng('masking'), masked, keep)
                   if keep < count else masked)

    # Encoder on the visible cubes.
    x = tokens.reshape(b, n, d) + _positions(n, d, tokens.dtype)
    x = jnp.take_along_axis(x, visible[..., None], axis=1)
    x = self._encode(x, train, final_norm=self.encoder_norm)

    # Decoder: visible tokens, then one mask token per cube to reconstruct.
    width = self.decoder_hidden_size
    x = nn.Dense(width, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                 kernel_init=partitioned(nn.initializers.xavier_uniform(), (None, 'embed')),
                 name='encoder_to_decoder')(x)
    pos = _positions(n, width, x.dtype)
    mask_token = self.param('mask_token',
                            partitioned(nn.initializers.normal(stddev=0.02), (None, None, 'embed')),
                            (1, 1, width), self.param_dtype)
    x = jnp.concatenate([x + pos[visible], mask_token.astype(x.dtype) + pos[reconstruct]], axis=1)
    spec = self.block_spec(num_heads=self.decoder_num_heads, mlp_dim=self.decoder_mlp_dim,
                           dropout_rate=0.0, attention_dropout_rate=0.0)
    pred = Decoder(spec=spec, num_layers=self.decoder_num_layers,
                   cube_dim=self.tubelet_size * self.patch_size ** 2 * video.shape[-1],
                   remat=self.remat, scan_layers=self.scan_layers,
                   name='decoder')(x, keep, train=train)

    targets = cube_targets(jax.lax.stop_gradient(video), self.tubelet_size, self.patch_size,
                           self.pixel_mean, self.pixel_std, self.norm_pix_loss)
    target = jnp.take_along_axis(targets, reconstruct[..., None], axis=1)
    example_loss = jnp.mean(jnp.square(pred - target), axis=(1, 2))
    if count_ok is not True:
      example_loss = jnp.where(count_ok, example_loss, jnp.nan)
    return {'loss': jnp.mean(example_loss), 'example_loss': example_loss, 'pred': pred,
            'target': target, 'pred_index': reconstruct,
            'mask': mask, 'visible_index': visible}


class Decoder(nn.Module):
  """VideoMAE's decoder on (B, n, D_dec) tokens: `num_layers` blocks of `spec`, then on the last
  `num_predict` tokens a LayerNorm (eps 1e-5) and a linear `head` to cube_dim; returns float32
  (B, num_predict, cube_dim).
  """
  spec: encoder.BlockSpec
  num_layers: int
  cube_dim: int
  remat: str = 'none'  # See encoder.stacked_blocks.
  scan_layers: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, num_predict: int, *, train: bool) -> jax.Array:
    spec = self.spec
    x = encoder.stacked_blocks(x, self.num_layers, 0.0, train, lambda name: encoder.EncoderBlock(
        spec=spec, name=name), self.remat, self.scan_layers)
    x = layers.layer_norm(spec.dtype, spec.param_dtype, 'norm', HEAD_NORM_EPS)(x[:, -num_predict:])
    x = nn.Dense(self.cube_dim, dtype=spec.dtype, param_dtype=spec.param_dtype,
                 kernel_init=partitioned(nn.initializers.xavier_uniform(), ('embed', None)),
                 bias_init=partitioned(nn.initializers.zeros, (None,)), name='head')(x)
    return x.astype(jnp.float32)
