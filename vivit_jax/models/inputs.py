"""What a model takes, checked at the top of every model's `__call__` (`check_video`).

Models take float videos (B, T, H, W, 3), channels last, whose pixels are normalised as
data.pipeline does it: (x / 255 - mean) / std with config.dataset.mean and config.dataset.std.
`check_video` refuses other ranks, channel counts, empty axes, non-float dtypes (uint8 0-255
pixels) and clips the model's patches do not tile, with a ValueError naming the model, the shape
received, the shape expected and the fix; models with more needs (a fixed or divisible number of
frames) raise `error` with their own reason. Both read only static shapes and dtypes, so they cost
nothing under jit. Values cannot be checked on traced arrays: NaN and infinity are refused on the
host, in numpy, by `check_finite` (evaluate.py, predict.py).
"""
import functools
from typing import Sequence

import jax.numpy as jnp
import numpy as np

# Input name -> (plural, what its values are).
FORMATS = {
    'video': ('videos', 'pixels normalised as (x / 255 - mean) / std with config.dataset.mean '
                        'and config.dataset.std'),
    'flow': ('flow', 'optical flow (dx, dy) as vivit_jax.data.flow makes it (pixels / 20, in '
                     '[-1, 1])'),
}
MISSING_AXIS = ('; add the missing axis: one clip (T, H, W, C) -> video[None]; grayscale '
                '(B, T, H, W) -> np.repeat(video[..., None], 3, axis=-1)')


def error(video, model: str, problem: str, *, channels: int = 3,
          name: str = 'video') -> ValueError:
  """The ValueError 'MODEL takes videos (B, T, H, W, C), got shape S DTYPE: PROBLEM. Expected
  (B, T, H, W, channels) float32, pixels normalised as ...' for `video` (`name` a key of
  FORMATS); the caller raises it."""
  plural, values = FORMATS[name]
  return ValueError(f'{model} takes {plural} (B, T, H, W, C), got shape {tuple(video.shape)} '
                    f'{video.dtype}: {problem}. Expected (B, T, H, W, {channels}) float32, '
                    f'{values}.')


def _channel_hint(shape: tuple, channels: int) -> str:
  """The likely fix for a video (B, T, H, W, C) of `shape` whose C is not `channels`."""
  if channels == 3 and shape[-1] == 1:
    return '; grayscale? repeat it to 3 channels: np.repeat(video, 3, axis=-1)'
  if channels == 3 and shape[-1] == 4:
    return '; RGBA? drop the alpha channel: video[..., :3]'
  if shape[1] == channels:
    return '; channels first (B, C, T, H, W)? make it channels last: video.transpose(0, 2, 3, 4, 1)'
  return ''


def check_video(video, model: str, *, channels: int = 3, name: str = 'video',
                patch: Sequence[int] = (1, 1, 1), patch_name: str = ''):
  """Raises `error` unless `video` is a float (B, T, H, W, `channels`) array with no empty axis
  whose (T, H, W) are multiples of `patch` (`patch_name` says what cuts the clip, e.g. 'tubelets of
  config.model.patch_size'). Reads only the static shape and dtype."""
  shape = tuple(video.shape)
  refuse = functools.partial(error, video, model, channels=channels, name=name)
  if len(shape) != 5:
    raise refuse(f'{len(shape)} axes instead of 5' + (MISSING_AXIS if name == 'video' else ''))
  if not jnp.issubdtype(video.dtype, jnp.floating):
    raise refuse(f'{video.dtype} is not a float dtype; convert it' + (
        ': (video.astype(np.float32) / 255 - mean) / std' if name == 'video' else ''))
  if shape[-1] != channels:
    raise refuse(f'{shape[-1]} channels instead of {channels}' + _channel_hint(shape, channels))
  if 0 in shape:
    raise refuse('an axis of length 0 (no clips, frames or pixels)')
  if any(d % p for d, p in zip(shape[1:4], patch)):
    raise refuse(f'(T, H, W) = {shape[1:4]} cannot be cut into {patch_name}={tuple(patch)}: they '
                 f'must be multiples of it; change the clip size (config.dataset.num_frames, '
                 f'crop_size) or the model\'s')


def check_finite(batch: dict, source: str) -> dict:
  """`batch` as it is, or a ValueError naming `source` if its host (numpy) 'video' or 'flow'
  holds NaN or infinite values, which a jitted model cannot refuse."""
  for key in ('video', 'flow'):
    if key in batch:
      finite = np.isfinite(batch[key])
      if not finite.all():
        raise ValueError(f"{source}: '{key}' has {finite.size - int(finite.sum())} NaN or "
                         f"infinite values of {finite.size}; check config.dataset.mean and std (a "
                         f"std of 0 divides by zero) and the videos.")
  return batch
