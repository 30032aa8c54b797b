"""Reading video files with PyAV (any container and codec FFmpeg reads) into uint8 frames.

`read_video(path, fps=, short_side=)` -> `Video(frames (T, H, W, 3) uint8 RGB, fps, source_fps)`.
Frames are resampled in time to `fps` the way FFmpeg's fps filter does without interpolation:
output frame k (at time k / fps from the first frame) is the last source frame shown at that
time, so frames are dropped (lower fps) or repeated (higher fps). `short_side` scales every frame
(FFmpeg's swscale, area filter) so its shorter side has that many pixels, keeping the aspect
ratio (the longer side rounded to an even number). `start`/`end` (seconds from the first frame)
keep only the frames whose timestamps lie in [start, end) (a seek, then decoding stops at `end`),
for the (path, label, start, end) rows of Kinetics-style annotations. A path that is nothing, a
link to nothing or a directory, and a file that cannot be opened, has no video stream, decodes no
frame, or breaks off before its first frame raise `VideoReadError` naming the file and why; a
file that breaks off later (a decoding error, or a stream that ends more than 5% and 3 frames
short of the duration its header declares) yields the frames decoded before the damage only if
`allow_truncated`, else raises too.
"""
import dataclasses
import os

import av
import numpy as np


VIDEO_EXTENSIONS = ('.3gp', '.avi', '.flv', '.m4v', '.mkv', '.mov', '.mp4', '.mpeg', '.mpg',
                    '.ogv', '.ts', '.webm', '.wmv')  # Names that promise a video file.


class VideoReadError(ValueError):
  """A video file that cannot be read; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class Video:
  frames: np.ndarray  # (T, H, W, 3) uint8 RGB.
  fps: float  # Frame rate of `frames` (the target fps, or the source's when not resampled).
  source_fps: float  # The file's average frame rate.


def scaled_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
  """(height, width) with the shorter side `short_side` (None: unchanged), aspect kept, the
  longer side rounded to the nearest even number (>= 2)."""
  if not short_side:
    return height, width
  if height <= width:
    return short_side, max(2, 2 * round(width * short_side / height / 2))
  return max(2, 2 * round(height * short_side / width / 2)), short_side


def _source_fps(stream) -> float:
  rate = stream.average_rate or stream.guessed_rate or stream.base_rate
  if not rate:
    return 0.0
  return float(rate)


def read_video(path: str, *, fps: float | None = None, short_side: int | None = None,
               max_frames: int | None = None, allow_truncated: bool = False,
               start: float | None = None, end: float | None = None) -> Video:
  """Decodes `path` into a `Video` (see the module docstring).

  Args:
    path: a video file.
    fps: target frame rate; None keeps every decoded frame (and reports the source's rate).
    short_side: target shorter side in pixels; None keeps the size.
    max_frames: stop after this many output frames (None: the whole video).
    allow_truncated: return the frames decoded before a decoding error instead of raising.
    start: first second to keep (None: from the first frame).
    end: keep frames before this second (None: to the last frame).
  """
  if fps is not None and fps <= 0:
    raise ValueError(f'fps={fps} must be positive (or None to keep the source rate).')
  if start is not None and end is not None and end <= start:
    raise ValueError(f'end={end} must be after start={start} (seconds).')
  _check_file(path)
  try:
    container = av.open(path)
  except (av.error.FFmpegError, UnicodeDecodeError) as e:
    raise VideoReadError(f"Cannot open video '{path}': {e}") from None
  with container:
    if not container.streams.video:
      raise VideoReadError(f"'{path}' has no video stream.")
    stream = container.streams.video[0]
    stream.thread_type = 'AUTO'
    source_fps = _source_fps(stream)
    window = _Window(stream, start, end)
    if start:
      container.seek(window.offset(start), stream=stream, backward=True, any_frame=False)
    frames, error = _decode(container, stream, fps, short_side, max_frames, window)
  if error is not None and (not allow_truncated or not frames):
    raise VideoReadError(f"Video '{path}' is damaged or truncated after {len(frames)} frames: "
                         f'{error}')
  if not frames:
    within = '' if start is None and end is None else f' between {start}s and {end}s'
    raise VideoReadError(f"Video '{path}' has no decodable frames{within}.")
  return Video(np.stack(frames), float(fps or source_fps), source_fps)


def _check_file(path: str):
  """Raises a VideoReadError saying why `path` is not a file (or a link to one), if it is not."""
  if os.path.isdir(path):
    raise VideoReadError(f"'{path}' is a directory, not a video file; rename it or move it out of "
                         f'the source.')
  if os.path.islink(path) and not os.path.exists(path):
    raise VideoReadError(f"'{path}' is a symbolic link to '{os.readlink(path)}', which does not "
                         f'exist; fix or remove the link.')
  if not os.path.isfile(path):
    raise VideoReadError(f"Video file '{path}' does not exist.")


class _Window:
  """The [start, end) seconds (from the stream's first frame) of `stream` to keep."""

  def __init__(self, stream, start, end):
    self.time_base = stream.time_base
    self.origin = float((stream.start_time or 0) * stream.time_base) if stream.time_base else 0.0
    self.start = start or 0.0
    self.end = float('inf') if end is None else end

  def offset(self, seconds: float) -> int:
    """The seek target of `seconds`, in the stream's time base."""
    return int((seconds + self.origin) / self.time_base)

  def where(self, time: float) -> int:
    """-1 before the window, 0 inside, 1 at or after its end, for a frame at `time` seconds."""
    time -= self.origin
    return -1 if time < self.start - 1e-6 else int(time >= self.end - 1e-6)


_SHORT_FRACTION, _SHORT_FRAMES = 0.05, 3  # How far short of its duration a stream may end.


def _short_of_declared(stream, last_time, window: _Window) -> VideoReadError | None:
  """An error if the stream's last frame (at `last_time` s) ends well before the end of `window`
  or of the duration the stream declares (unchecked when it declares none)."""
  if last_time is None or not stream.duration or not stream.time_base:
    return None
  period = 1.0 / (_source_fps(stream) or 25.0)
  expected = min(float(stream.duration * stream.time_base), window.end)
  decoded = last_time - window.origin + period
  if expected - decoded > max(_SHORT_FRAMES * period, _SHORT_FRACTION * expected):
    return VideoReadError(f'the stream ends at {decoded:.2f}s of the {expected:.2f}s it declares')
  return None


def _decode(container, stream, fps, short_side, max_frames,
            window: _Window) -> tuple[list, Exception | None]:
  """(output frames as (H, W, 3) uint8 arrays, the decoding error that stopped it or None)."""
  out, error = [], None
  start = previous = previous_time = None
  next_slot = 0  # Index k of the next output frame, due at time k / fps after `start`.
  full = lambda: max_frames is not None and len(out) >= max_frames

  def emit_until(time):
    """Emits `previous` for every output slot due before `time` (seconds after start)."""
    nonlocal next_slot
    while not full() and next_slot / fps < time - 1e-6:
      out.append(previous)
      next_slot += 1

  time = None
  try:
    for frame in container.decode(stream):
      time = frame.time if frame.time is not None else len(out) / (_source_fps(stream) or 1.0)
      position = window.where(time)
      if position:
        if position > 0:
          break
        continue
      height, width = scaled_size(frame.height, frame.width, short_side)
      if (height, width) != (frame.height, frame.width):
        frame = frame.reformat(width=width, height=height, interpolation='AREA')
      image = frame.to_ndarray(format='rgb24')
      if fps is None:
        out.append(image)
      else:
        start = time if start is None else start
        if previous is not None:
          emit_until(time - start)
        previous, previous_time = image, time
      if full():
        break
    else:  # The stream ended where the file did.
      error = _short_of_declared(stream, time, window)
  except (av.error.FFmpegError, ValueError) as e:
    error = e
  if fps is not None and previous is not None:  # The last frame lasts one source frame period.
    period = 1.0 / (_source_fps(stream) or fps)
    emit_until(min(previous_time + period, window.end + window.origin) - start)
    if not out:
      out.append(previous)
  return out, error

