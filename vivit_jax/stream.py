r"""Classify a video frame by frame with the continual twin of a trained 3D CNN:

  python -m vivit_jax.stream --workdir DIR --video clip.mp4 [--top_k 3] [--out DIR]
  python -m vivit_jax.stream --workdir DIR --video frames/        # a directory of images
  ffmpeg -i CAMERA -f rawvideo -pix_fmt rgb24 - | \
      python -m vivit_jax.stream --workdir DIR --video - --frame_size 240x320

The workdir's model (`resnet3d`: Slow, I3D; `x3d`) becomes its continual twin
(`models.continual.build`, the same weights): each new frame costs one step, not a whole clip.
Frames are taken at the rate the model was trained on (the dataset's stored fps, when known, then
every config.dataset.stride-th frame), scaled so the short side is config.dataset.eval_short_side
(if set), centre-cropped to crop_size and normalised as the pipeline does. After the warm-up
(the twin's receptive field), one line per frame: its index in the source, its time, and the
top-k classes with their probabilities. `--out DIR` also writes DIR/stream.csv (frame, time and
every class's probability) and DIR/timeline.png (the probabilities of the most probable classes
over time).
"""
import os
import sys
from typing import Iterator

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags, logging  # noqa: E402
import numpy as np  # noqa: E402

from vivit_jax.saved import config as saved_config  # noqa: E402

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')
TIMELINE_CLASSES = 5  # Classes drawn in timeline.png: the most probable on average.


def define_flags() -> dict:
  """The command-line flags (defined only when run as a program: importing defines none)."""
  defined = {
      **saved_config.define_workdir_flags(),
      'video': flags.DEFINE_string('video', None, "A video file, a directory of images (in name "
                                   "order), or '-': raw RGB frames on stdin (--frame_size)."),
      'frame_size': flags.DEFINE_string('frame_size', None, "HxW of the raw frames on stdin, "
                                        "e.g. 240x320."),
      'fps': flags.DEFINE_float('fps', None, "Frame rate of a directory's or stdin's frames "
                                "(default 25), or the rate to sample a video file at (default: "
                                "the dataset's, else the file's)."),
      'top_k': flags.DEFINE_integer('top_k', 3, 'Classes printed per frame.'),
      'out': flags.DEFINE_string('out', None, 'Directory for stream.csv and timeline.png.')}
  flags.mark_flags_as_required(['video'])
  return defined


def _frame_size(text: str | None) -> tuple[int, int]:
  """'240x320' -> (240, 320); ValueError naming --frame_size otherwise."""
  try:
    height, width = (int(n) for n in (text or '').lower().split('x'))
    if height > 0 and width > 0:
      return height, width
  except ValueError:
    pass
  raise ValueError(f"--frame_size={text}: raw frames on stdin need their size as HxW, e.g. "
                   f"--frame_size=240x320.")


def read_frames(video: str, *, fps: float | None, short_side: int | None,
                frame_size: str | None = None) -> tuple[Iterator[np.ndarray], float]:
  """(an iterator of uint8 RGB frames (H, W, 3), their frame rate) from a video file (decoded by
  `data.video_io` at `fps`, scaled to `short_side`), a directory of images, or '-' (stdin)."""
  if video == '-':
    height, width = _frame_size(frame_size)

    def raw():
      size = height * width * 3
      while len(data := sys.stdin.buffer.read(size)) == size:
        yield np.frombuffer(data, np.uint8).reshape(height, width, 3)
    return raw(), fps or 25.0
  if os.path.isdir(video):
    from PIL import Image  # pylint: disable=import-outside-toplevel
    names = sorted(n for n in os.listdir(video) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
      raise ValueError(f'--video={video} is a directory without images '
                       f'({", ".join(IMAGE_EXTENSIONS)}).')
    return (np.asarray(Image.open(os.path.join(video, n)).convert('RGB')) for n in names), (
        fps or 25.0)
  from vivit_jax.data import video_io  # pylint: disable=import-outside-toplevel
  decoded = video_io.read_video(video, fps=fps, short_side=short_side)
  return iter(decoded.frames), decoded.fps


def preprocess(frame: np.ndarray, dataset_config) -> np.ndarray:
  """One uint8 RGB frame (H, W, 3) -> the model's input frame (S, S, 3) float32: short side scaled
  to eval_short_side (if set; area filter), the centre S x S crop (S = crop_size), then
  (x / 255 - mean) / std."""
  import cv2  # pylint: disable=import-outside-toplevel
  from vivit_jax import predict  # pylint: disable=import-outside-toplevel
  frame = predict.check_frames(frame[None], dataset_config)[0]
  short_side, size = dataset_config.eval_short_side, dataset_config.crop_size
  height, width = frame.shape[:2]
  if short_side and min(height, width) != short_side:
    scale = short_side / min(height, width)
    frame = cv2.resize(frame, (max(short_side, round(width * scale)),
                               max(short_side, round(height * scale))),
                       interpolation=cv2.INTER_AREA)
    height, width = frame.shape[:2]
  top, left = (height - size) // 2, (width - size) // 2
  crop = frame[top:top + size, left:left + size].astype(np.float32) / 255.0
  return (crop - np.asarray(dataset_config.mean, np.float32)) / np.asarray(dataset_config.std,
                                                                            np.float32)


def stream(config, workdir: str, frames: Iterator[np.ndarray], frame_rate: float
           ) -> Iterator[tuple[int, float, np.ndarray]]:
  """(source frame index, time in seconds, class probabilities (K,)) for every frame the model
  takes (every config.dataset.stride-th) once the continual twin is warmed up.

  Raises ValueError for a model that has no continual twin, FileNotFoundError for a workdir
  without a checkpoint.
  """
  # pylint: disable=import-outside-toplevel
  import jax
  from vivit_jax.models import continual
  from vivit_jax.train import loop, step
  twin = continual.build(config.model)  # Refuses models that cannot be continual, saying why.
  exp = loop.restore_for_eval(config, workdir)
  variables = jax.device_get(step.variables(exp.state.params, exp.state.batch_stats))
  size = config.dataset.crop_size
  state = twin.init_state(variables, 1, (size, size, 3))
  step_fn = jax.jit(lambda state, frame: twin.step(variables, state, frame))
  stride, taken = config.dataset.stride, 0
  for index, frame in enumerate(frames):
    if index % stride:
      continue
    state, logits = step_fn(state, preprocess(frame, config.dataset)[None])
    taken += 1
    if taken >= twin.receptive_field:
      yield index, index / frame_rate, np.asarray(jax.nn.softmax(logits[0].astype(np.float32)))


def write_outputs(out: str, rows: list, class_names: list[str]) -> tuple[str, str]:
  """DIR/stream.csv (frame, time_s, one column per class) and DIR/timeline.png (the
  TIMELINE_CLASSES most probable classes on average, over time); returns their paths."""
  import csv  # pylint: disable=import-outside-toplevel
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  os.makedirs(out, exist_ok=True)
  csv_path, png_path = os.path.join(out, 'stream.csv'), os.path.join(out, 'timeline.png')
  with open(csv_path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['frame', 'time_s', *class_names])
    writer.writerows([index, f'{time:.3f}', *(f'{p:.5f}' for p in probs)]
                     for index, time, probs in rows)
  times = np.array([time for _, time, _ in rows])
  probs = np.stack([p for _, _, p in rows]) if rows else np.zeros((0, len(class_names)))
  fig, ax = plt.subplots(figsize=(10, 4))
  for k in np.argsort(-probs.mean(0))[:TIMELINE_CLASSES] if rows else []:
    ax.plot(times, probs[:, k], label=class_names[k])
  ax.set(xlabel='time (s)', ylabel='probability', ylim=(0, 1),
         title='Class probabilities, frame by frame')
  if rows:
    ax.legend(loc='upper right', fontsize='small')
  fig.tight_layout()
  fig.savefig(png_path, dpi=100)
  plt.close(fig)
  return csv_path, png_path


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}. Config fields are set with '
                         f'--config.FIELD=VALUE.')
  logging.set_verbosity(logging.WARNING)
  from vivit_jax import data, predict  # pylint: disable=import-outside-toplevel
  config = saved_config.flag_config(_FLAGS['config'])
  try:
    stored_fps, short_side = predict.stored_video_format(config.dataset)
    frames, frame_rate = read_frames(_FLAGS['video'].value, fps=_FLAGS['fps'].value or stored_fps,
                                     short_side=short_side,
                                     frame_size=_FLAGS['frame_size'].value)
    names = data.dataset_info(config.dataset)['class_names']
    rows = []
    for index, time, probs in stream(config, _FLAGS['workdir'].value, frames, frame_rate):
      top = np.argsort(-probs)[:_FLAGS['top_k'].value]
      print(f'frame {index:6d}  {time:8.3f}s  ' + '  '.join(f'{names[k]} {probs[k]:.3f}'
                                                            for k in top), flush=True)
      rows.append((index, time, probs))
  except (ValueError, FileNotFoundError) as e:  # VideoReadError is a ValueError.
    if os.environ.get('VIVIT_TRACEBACK'):
      raise
    sys.exit(f'{type(e).__name__}: {e}')
  if not rows:
    print('The video ended before the model warmed up: no prediction.')
  if _FLAGS['out'].value:
    print('Wrote', *write_outputs(_FLAGS['out'].value, rows, names))


if __name__ == '__main__':
  _FLAGS = define_flags()
  app.run(main)
