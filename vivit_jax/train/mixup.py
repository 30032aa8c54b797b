"""Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) of a video batch, in JAX.

Each example is mixed with the example at the mirrored batch position (B - 1 - i), with one
mixing weight per batch as in timm's `Mixup` (mode 'batch'): CutMix pastes one box, the same in
every frame, and its weight is corrected to the box's exact area.
"""
import jax
import jax.numpy as jnp


def _cutmix_box(rng: jax.Array, lam: jax.Array, height: int, width: int) -> jax.Array:
  """A (H, W) bool box of area ~ (1 - lam) * H * W at a uniform centre, clipped to the frame."""
  cy_rng, cx_rng = jax.random.split(rng)
  cut = jnp.sqrt(1.0 - lam)
  cut_h, cut_w = (cut * height).astype(jnp.int32), (cut * width).astype(jnp.int32)
  cy = jax.random.randint(cy_rng, (), 0, height)
  cx = jax.random.randint(cx_rng, (), 0, width)
  rows, cols = jnp.arange(height), jnp.arange(width)
  in_rows = (rows >= cy - cut_h // 2) & (rows < cy + cut_h - cut_h // 2)
  in_cols = (cols >= cx - cut_w // 2) & (cols < cx + cut_w - cut_w // 2)
  return in_rows[:, None] & in_cols[None, :]


def mix(rng: jax.Array, video: jax.Array, targets: jax.Array, *, mixup_alpha: float,
        cutmix_alpha: float, switch_prob: float = 0.5) -> tuple[jax.Array, jax.Array]:
  """Mixes video (B, T, H, W, C) and soft targets (B, K) with their batch mirror.

  With both alphas > 0, CutMix is chosen with probability `switch_prob`, else Mixup; with one
  alpha > 0, that one; with none, the inputs come back unchanged. The weight lam of the original
  example is drawn from Beta(alpha, alpha); the targets are mixed with the same lam (for CutMix,
  1 - box area / frame area).
  """
  if mixup_alpha <= 0 and cutmix_alpha <= 0:
    return video, targets
  switch_rng, lam_rng, box_rng = jax.random.split(rng, 3)
  if mixup_alpha > 0 and cutmix_alpha > 0:
    use_cutmix = jax.random.uniform(switch_rng) < switch_prob
  else:
    use_cutmix = jnp.asarray(cutmix_alpha > 0)
  alpha = jnp.where(use_cutmix, max(cutmix_alpha, 1e-6), max(mixup_alpha, 1e-6))
  lam = jax.random.beta(lam_rng, alpha, alpha)
  height, width = video.shape[2:4]
  box = _cutmix_box(box_rng, lam, height, width) & use_cutmix
  lam = jnp.where(use_cutmix, 1.0 - jnp.mean(box.astype(jnp.float32)), lam)
  mirrored = video[::-1]
  mixed_up = lam.astype(video.dtype) * video + (1 - lam).astype(video.dtype) * mirrored
  video = jnp.where(use_cutmix, jnp.where(box[None, None, :, :, None], mirrored, video), mixed_up)
  return video, lam * targets + (1.0 - lam) * targets[::-1]
