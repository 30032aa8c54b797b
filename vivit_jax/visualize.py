"""Reconstruction grids of VideoMAE pre-training: what the encoder saw, what the decoder filled in.

A grid shows, for each of a few examples, three rows of frames (one column per frame, all T
frames or `MAX_FRAMES` evenly spaced ones when T is larger):
  original        the clip's pixels;
  masked input    the cubes the encoder saw; masked cubes grey;
  reconstruction  visible cubes from the original, masked cubes from the decoder's prediction;
                  masked cubes the decoder did not reconstruct (VideoMAE V2 decoder masking,
                  decoder_mask_ratio > 0) stay grey.
Cells are separated by `SEPARATOR` white pixels, examples by `GAP`.

Pixels: the normalised input is un-normalised with the MODEL's `pixel_mean` / `pixel_std`
(x * std + mean), the transform its targets are built with (videomae.cube_targets), so original and
prediction are in the same space. It gives the clip's true colours when config.dataset.mean/std
(the pipeline's (x / 255 - mean) / std) equal them; otherwise both rows are off by the same affine
map. Shown clipped to [0, 1] as uint8. With norm_pix_loss the prediction of a cube is in per-cube
normalised units: it is de-normalised with the per-channel mean and std (unbiased, + 1e-6) of the
ORIGINAL cube's pixels, as VideoMAE's own visualisation (run_videomae_vis.py) does. So each
reconstructed cube's mean colour and contrast come from the original; only the pattern within the
cube is the model's (a model predicting zeros shows flat cubes of the right colours).

`train.evaluators.Reconstructions` writes WORKDIR/reconstructions/step_{N:06d}.png at each
evaluation of a masked_video_modeling run; tools/visualize_mae.py makes a grid from a workdir.
"""
import functools
import math
import os

import jax
import numpy as np
import tensorflow as tf

from vivit_jax.models import videomae


MAX_FRAMES = 16  # Columns at most; longer clips show evenly spaced frames.
NUM_EXAMPLES = 4  # Examples (row triples) per grid by default.
SEPARATOR = 2  # White pixels between cells.
GAP = 8  # White pixels between examples.
GREY = 0.5  # Masked / unreconstructed cubes (uint8 128).


def check_model(model):
  if not isinstance(model, videomae.VideoMAEPretrain):
    raise ValueError(f'Reconstruction grids need a videomae_pretrain model (config.model.name); '
                     f'got {type(model).__name__}.')


def _pixels(model, video: np.ndarray) -> np.ndarray:
  """Normalised (B, T, H, W, C) -> float32 pixels in the model's target space (x * std + mean)."""
  return (np.asarray(video, np.float32) * np.asarray(model.pixel_std, np.float32)
          + np.asarray(model.pixel_mean, np.float32))


def predicted_pixels(model, video: np.ndarray, pred: np.ndarray,
                     pred_index: np.ndarray) -> np.ndarray:
  """The decoder's predictions in pixels: float32 (B, K, cube_dim), rows as `pred`.

  Args:
    video: the normalised input (B, T, H, W, C).
    pred: (B, K, cube_dim) predictions of the cubes `pred_index` (B, K) (the model's outputs).
  With norm_pix_loss each predicted cube is de-normalised per channel with the mean and the
  unbiased std (+ 1e-6) of the original cube's pixels; without, `pred` is already pixels.
  """
  pred = np.asarray(pred, np.float32)
  if not model.norm_pix_loss:
    return pred
  cubes = videomae.patchify(_pixels(model, video), model.tubelet_size, model.patch_size)
  cubes = np.take_along_axis(cubes, np.asarray(pred_index)[..., None], axis=1)
  b, k, _ = cubes.shape
  channels = video.shape[-1]
  cubes = cubes.reshape(b, k, -1, channels)  # (B, K, t * p * p, C)
  mean = cubes.mean(axis=2, keepdims=True)
  std = cubes.std(axis=2, ddof=1, keepdims=True)
  pred = pred.reshape(b, k, -1, channels) * (std + videomae.TARGET_STD_EPS) + mean
  return pred.reshape(b, k, -1)


def _to_uint8(x: np.ndarray) -> np.ndarray:
  return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def frame_columns(num_frames: int, max_frames: int = MAX_FRAMES) -> np.ndarray:
  """Indices of the frames shown: all of them, or `max_frames` evenly spaced (first and last)."""
  if num_frames <= max_frames:
    return np.arange(num_frames)
  return np.unique(np.round(np.linspace(0, num_frames - 1, max_frames)).astype(int))


def render(model, video, outputs: dict, *, max_frames: int = MAX_FRAMES) -> np.ndarray:
  """The grid of `video` and the model's `outputs` on it, as uint8 (H_grid, W_grid, 3).

  Args:
    model: the VideoMAEPretrain module that made `outputs` (its cube size, pixel_mean/std and
      norm_pix_loss are used).
    video: normalised clips (B, T, H, W, C), C = 3 (or 1: shown grey).
    outputs: at least 'pred' (B, K, cube_dim), 'pred_index' (B, K) and 'mask' (B, N) as returned
      by VideoMAEPretrain.
  H_grid = B * (3 H + 2 SEPARATOR) + (B - 1) GAP, W_grid = F W + (F - 1) SEPARATOR for the
  F = min(T, max_frames) columns (`frame_columns`).
  """
  check_model(model)
  video = np.asarray(video, np.float32)
  b, t, h, w, c = video.shape
  if c not in (1, 3) or b < 1:
    raise ValueError(f'Reconstruction grids show at least one 1- or 3-channel video (B, T, H, W, '
                     f'C); got shape {video.shape}.')
  pt, p = model.tubelet_size, model.patch_size
  grid = (t // pt, h // p, w // p)
  mask = np.asarray(outputs['mask'], bool)
  index = np.asarray(outputs['pred_index'])
  if mask.shape != (b, math.prod(grid)) or index.shape[0] != b:
    raise ValueError(f"outputs 'mask' {mask.shape} / 'pred_index' {index.shape} do not fit the "
                     f'video {video.shape} cut into a {grid} grid of cubes.')
  pixels = _pixels(model, video)
  cubes = videomae.patchify(pixels, pt, p)
  rows = np.arange(b)[:, None]
  reconstructed = np.zeros_like(mask)
  reconstructed[rows, index] = True
  recon = cubes.copy()
  recon[rows, index] = predicted_pixels(model, video, outputs['pred'], index)

  def grey_where(frames, cube_flags):
    flags = np.broadcast_to(cube_flags[..., None], cubes.shape).astype(np.float32)
    hidden = videomae.unpatchify(flags, grid, pt, p) > 0.5
    return np.where(hidden, GREY, frames)

  shown = [pixels, grey_where(pixels, mask),
           grey_where(videomae.unpatchify(recon, grid, pt, p), mask & ~reconstructed)]
  columns = frame_columns(t, max_frames)
  cells = _to_uint8(np.stack(shown, axis=1)[:, :, columns])  # (B, 3, F, H, W, C)
  if c == 1:
    cells = np.repeat(cells, 3, axis=-1)
  return _tile(cells)


def _tile(cells: np.ndarray) -> np.ndarray:
  """(B, R, F, H, W, 3) uint8 cells -> one white-separated uint8 image (rows grouped by example)."""
  b, r, f, h, w, _ = cells.shape
  block = r * h + (r - 1) * SEPARATOR
  image = np.full((b * block + (b - 1) * GAP, f * w + (f - 1) * SEPARATOR, 3), 255, np.uint8)
  for e in range(b):
    for row in range(r):
      for col in range(f):
        y = e * (block + GAP) + row * (h + SEPARATOR)
        x = col * (w + SEPARATOR)
        image[y:y + h, x:x + w] = cells[e, row, col]
  return image


def reconstruct(model, variables, video, rng) -> dict:
  """`model.apply(variables, video, train=False, rngs={'masking': rng})` jitted on the default
  device, as numpy: {'pred' (B, K, cube_dim), 'pred_index' (B, K), 'mask' (B, N), ...}."""
  check_model(model)
  try:
    apply = _cached_apply(model)  # One compilation per (equal) model ...
  except TypeError:  # ... if hashable (a config read from JSON has lists).
    apply = _cached_apply.__wrapped__(model)
  return jax.device_get(apply(variables, np.asarray(video, np.float32), rng))


@functools.lru_cache(maxsize=8)
def _cached_apply(model):
  return jax.jit(lambda v, x, r: model.apply(v, x, train=False, rngs={'masking': r}))


def reconstruction_grid(model, variables, video, rng, *, max_frames: int = MAX_FRAMES
                        ) -> np.ndarray:
  """Runs the VideoMAEPretrain `model` (its `variables`, masks from `rng`) on normalised clips
  `video` (B, T, H, W, C) float32 and returns their grid, uint8 (H_grid, W_grid, 3) (`render`)."""
  return render(model, video, reconstruct(model, variables, video, rng), max_frames=max_frames)


def write_png(path: str, image: np.ndarray) -> str:
  """Writes uint8 `image` (H, W, 3) (or (H, W) / (H, W, 1) grey) as a PNG at `path` (parent
  directories created; any tf.io.gfile path). Returns `path`."""
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim not in (2, 3):
    raise ValueError(f'write_png takes a uint8 (H, W[, C]) image; got {image.dtype} '
                     f'{image.shape}.')
  if image.ndim == 2:
    image = image[..., None]
  parent = os.path.dirname(path)
  if parent:
    tf.io.gfile.makedirs(parent)
  tf.io.write_file(path, tf.io.encode_png(image))
  return path
