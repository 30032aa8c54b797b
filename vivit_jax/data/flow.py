"""Dense optical flow for the motion stream of two-stream networks, computed in the input pipeline.

`farneback` runs OpenCV's Farneback (2003) polynomial-expansion flow
(`cv2.calcOpticalFlowFarneback`) between consecutive grey frames, with the parameters of OpenCV's
dense optical flow tutorial, which most code that uses it copies:

  pyr_scale 0.5, levels 3   a classical 3-level pyramid (each level half the size): motion of up to
                            ~10-20 px between frames is found
  winsize 15                15x15 box averaging window: robust to pixel noise, smooths the field
  iterations 3              per pyramid level
  poly_n 5, poly_sigma 1.2  5x5 neighbourhood of the polynomial expansion (OpenCV suggests sigma
                            1.1-1.2 for poly_n 5)
  flags 0                   box window, no initial flow

`scale` then clips each component to [-BOUND, BOUND] = [-20, 20] px and divides by 20, so the
network sees values in [-1, 1], as two-stream I3D does (Carreira & Zisserman 2017, kinetics-i3d:
"truncated to the range [-20, 20], then rescaled between -1 and 1", with the same cropping as
for RGB). `tf_flow` is both, as a tf.data op on the host.

Accuracy (tests/data/test_flow.py): a smooth texture translated by (2, -1) px is recovered within
~0.015 px more than 12 px from the border. Within ~8 px of the border Farneback's border weights
bias the flow: a static textured video gets up to ~0.1 px there and < 3e-4 px further in.

Cost: one Farneback call per frame pair, ~0.2 ms for 32x32 and ~9 ms for 224x224 frames on one
CPU core (a 16-frame 224x224 clip: ~0.14 s); OpenCV releases the GIL, so a parallel
`Dataset.map` computes clips concurrently.
"""
import cv2
import numpy as np
import tensorflow as tf

BOUND = 20.0  # px: flow components are clipped to [-BOUND, BOUND], then divided by BOUND.
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2,
                 flags=0)


def _grey(frames: np.ndarray) -> np.ndarray:
  """(T, H, W) uint8 luma (ITU-R BT.601, as `cv2.COLOR_RGB2GRAY`) of (T, H, W, C) uint8 frames."""
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.dtype != np.uint8 or frames.shape[-1] not in (1, 3):
    raise ValueError(f'Optical flow needs frames uint8 (T, H, W, C) with C = 1 (grey) or 3 (RGB); '
                     f'got {frames.dtype} {frames.shape}. Convert the video feature to uint8 '
                     f'RGB or grey frames.')
  if frames.shape[-1] == 1:
    return np.ascontiguousarray(frames[..., 0])
  return np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames])


def farneback(frames: np.ndarray) -> np.ndarray:
  """Farneback flow (T-1, H, W, 2) float32 of frames (T, H, W, C) uint8 (C = 3 RGB or 1 grey).

  flow[t, y, x] = (dx, dy) in pixels per frame (x right, y down) such that grey frame t at (y, x)
  matches grey frame t+1 at (y + dy, x + dx). Parameters: see the module docstring.
  """
  grey = _grey(frames)
  if len(grey) < 2:
    raise ValueError(f'Optical flow needs at least 2 frames; got {len(grey)}.')
  return np.stack([cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK)
                   for a, b in zip(grey[:-1], grey[1:])]).astype(np.float32)


def scale(flow, bound: float = BOUND):
  """`flow` in pixels clipped to [-bound, bound] and divided by `bound`: values in [-1, 1]."""
  if isinstance(flow, tf.Tensor):
    return tf.clip_by_value(flow, -bound, bound) / bound
  return np.clip(flow, -bound, bound) / np.float32(bound)


def tf_flow(frames: tf.Tensor) -> tf.Tensor:
  """`scale(farneback(frames))` as a tf.data op: (T, H, W, C) uint8 -> (T-1, H, W, 2) float32.

  Runs on the host through `tf.numpy_function`; the static shape is the frames' static shape
  (with T-1 and 2 channels), so a `Dataset.map` keeps its element spec.
  """
  flow = tf.numpy_function(farneback, [frames], tf.float32, stateful=False, name='farneback')
  t, h, w, _ = frames.shape
  flow.set_shape((None if t is None else t - 1, h, w, 2))
  return scale(flow)
