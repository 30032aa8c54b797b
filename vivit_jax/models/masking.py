"""Cube masks for masked video modelling (VideoMAE) and VideoMAE V2 decoder masking.

A mask is (B, N) bool over the N = nt * nh * nw cubes in their flat (time, row, column) order,
True = masked (hidden from the encoder). Every row masks the same number of cubes, so the
visible and masked index sets have static shapes:
  'tube'    one random spatial mask of round(ratio * nh * nw) positions per example, repeated at
            every one of the nt time steps (VideoMAE's tube masking): nt * round(ratio * nh * nw)
            masked cubes.
  'random'  round(ratio * N) cubes drawn uniformly per example.
Ties in the random draw cannot occur (indices come from argsort of uniform noise).
"""
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np

MASK_TYPES = ('tube', 'random')


def num_masked(mask_type: str, ratio: float, grid: Tuple[int, int, int]) -> int:
  """The number of masked cubes per example for a (nt, nh, nw) cube grid."""
  nt, nh, nw = grid
  if mask_type == 'tube':
    return nt * round(ratio * nh * nw)
  if mask_type == 'random':
    return round(ratio * nt * nh * nw)
  raise ValueError(f"config.model.mask_type='{mask_type}' is not one of {', '.join(MASK_TYPES)}.")


def _first_k(rng: jax.Array, shape: Tuple[int, int], k: int) -> jax.Array:
  """(B, n) bool with exactly k True per row at uniformly random places."""
  ranks = jnp.argsort(jnp.argsort(jax.random.uniform(rng, shape), axis=1), axis=1)
  return ranks < k


def tube_mask(rng: jax.Array, batch: int, grid: Tuple[int, int, int], ratio: float) -> jax.Array:
  """(B, nt * nh * nw) bool: a random spatial mask per example, tiled over the nt time steps."""
  nt, nh, nw = grid
  spatial = _first_k(rng, (batch, nh * nw), round(ratio * nh * nw))
  return jnp.broadcast_to(spatial[:, None], (batch, nt, nh * nw)).reshape(batch, -1)


def random_mask(rng: jax.Array, batch: int, grid: Tuple[int, int, int],
                ratio: float) -> jax.Array:
  """(B, N) bool with round(ratio * N) random cubes masked per example."""
  n = grid[0] * grid[1] * grid[2]
  return _first_k(rng, (batch, n), round(ratio * n))


def make_mask(mask_type: str, rng: jax.Array, batch: int, grid: Tuple[int, int, int],
              ratio: float) -> jax.Array:
  """The (B, N) bool mask of `mask_type` ('tube' or 'random')."""
  fn = {'tube': tube_mask, 'random': random_mask}[mask_type]
  return fn(rng, batch, grid, ratio)


def split(mask: jax.Array, count: int) -> Tuple[jax.Array, jax.Array]:
  """mask (B, N) with `count` True per row -> (visible (B, N - count), masked (B, count)) int32
  flat cube indices, each in increasing order (Hugging Face's `x[~mask]`, `x[mask]` order)."""
  order = jnp.argsort(mask, axis=1, stable=True).astype(jnp.int32)  # False (visible) first.
  n = mask.shape[1]
  return order[:, :n - count], order[:, n - count:]


def check_mask(mask, shape: Tuple[int, int], count: int):
  """Checks a caller's mask: (B, N) shape, boolean, `count` True per row.

  The shape and dtype are always checked (ValueError). The per-row count is checked with a
  ValueError when the mask is concrete; under tracing (jit, grad) it cannot raise, and
  `count_ok` (a traced bool) is returned for the caller to poison its loss with NaN.
  Returns (mask as a bool jax array, count_ok: True or a traced bool).
  """
  if tuple(mask.shape) != tuple(shape):
    raise ValueError(f'mask has shape {tuple(mask.shape)}; expected (B, N) = {tuple(shape)} '
                     f'(one entry per {shape[1]} cubes of the video, True = masked).')
  if mask.dtype != jnp.bool_:
    raise ValueError(f'mask must be boolean (True = masked), got dtype {mask.dtype}.')
  if not isinstance(mask, jax.core.Tracer):
    counts = np.asarray(mask).sum(axis=1)
    if (counts == count).all():
      return jnp.asarray(mask), True
    raise ValueError(f'mask masks {sorted(set(map(int, counts)))} cubes per row; every row must '
                     f'mask exactly {count}, the number config.model.mask_type and '
                     f'config.model.mask_ratio give (the encoder input must have a static shape).')
  return mask, jnp.all(jnp.sum(mask, axis=1) == count)


def decoder_subset(rng: jax.Array, masked: jax.Array, keep: int) -> jax.Array:
  """VideoMAE V2 decoder masking: `keep` of the masked cube indices (B, M), chosen uniformly at
  random per example, returned (B, keep) in increasing order."""
  if keep == masked.shape[1]:
    return masked
  choice = jnp.argsort(jax.random.uniform(rng, masked.shape), axis=1)[:, :keep]
  return jnp.take_along_axis(masked, jnp.sort(choice, axis=1), axis=1)
