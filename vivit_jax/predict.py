r"""Classify one video file with a trained workdir:

  python -m vivit_jax.predict --workdir DIR --video clip.mp4 [--num_clips 4 --num_crops 3] \
      [--fps 15] [--config.a.b=value ...]

Reads any file PyAV (FFmpeg) reads with `data.video_io.read_video`, at the frame rate (and short
side) the workdir's dataset was built with (a `video_folder` dataset's build report records them;
otherwise the file's own rate and size, or --fps), builds num_clips x num_crops views exactly as
the evaluation pipeline does (`data.pipeline`: eval_views, eval_short_side, normalisation; a
video shorter than a clip repeats its last frame), runs the model on them, averages the softmax
over the views and prints the top-5 class names with their probabilities. Frames are checked
first (`check_frames`: grayscale becomes RGB, frames too small for the crop are refused).
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags, logging  # noqa: E402

from vivit_jax.saved import config as saved_config  # noqa: E402


def define_flags() -> dict:
  """The command-line flags (defined only when run as a program: importing defines none)."""
  defined = {
      **saved_config.define_workdir_flags(),
      'video': flags.DEFINE_string('video', None,
                                   'Video file (any container and codec FFmpeg reads).'),
      'num_clips': flags.DEFINE_integer('num_clips', None, 'Clips uniformly spaced in time '
                                        '(default: config.dataset.eval_clips).'),
      'num_crops': flags.DEFINE_integer('num_crops', None, 'Crops per clip: 1 centre, 3 along '
                                        'the long side (default: config.dataset.eval_crops).'),
      'fps': flags.DEFINE_float('fps', None, "Frame rate to sample the video at (default: the "
                                "dataset's, else the file's).")}
  flags.mark_flags_as_required(['video'])
  return defined


TOP_K = 5


def stored_video_format(dataset_config) -> tuple[float | None, int | None]:
  """(fps, short side) the dataset's videos were stored at: a built `video_folder` dataset's
  build parameters; (None, None) for other datasets (the file's own rate and size)."""
  from vivit_jax.data import video_folder
  data_dir = dataset_config.data_dir or None
  if not video_folder.is_built(dataset_config.name, data_dir):
    return None, None
  params = video_folder.read_report(dataset_config.name, data_dir)['params']
  return params['fps'], params['short_side']


def _as_uint8(frames, refuse):
  """Integer or float pixels -> uint8 (rounded), or `refuse(problem)` raised unless they are
  finite and in [0, 255] (floats all in [0, 1] are taken for scaled pixels)."""
  import numpy as np
  if not np.issubdtype(frames.dtype, np.integer) and not np.issubdtype(frames.dtype, np.floating):
    raise refuse('pixels must be integers or floats')
  finite = np.isfinite(frames)
  if not finite.all():
    raise refuse(f'{finite.size - int(finite.sum())} NaN or infinite values')
  low, high = frames.min(), frames.max()
  if low < 0 or high > 255:
    raise refuse(f'values from {low:g} to {high:g} are not 0-255 pixels; pass the raw pixels, not '
                 f'normalised ones: the views are normalised with config.dataset.mean and std')
  if np.issubdtype(frames.dtype, np.floating) and high <= 1:
    raise refuse('every value is in [0, 1]: pixels scaled to [0, 1]? pass frames * 255')
  return np.round(frames).astype(np.uint8)


def check_frames(frames, dataset_config):
  """`frames` as uint8 RGB (T, H, W, 3), or a ValueError naming the problem and the fix.

  Takes 0-255 pixels (T, H, W, C), T >= 1 (a video shorter than a clip repeats its last frame):
  uint8 as they are; other integer or float dtypes rounded to uint8 when finite and in [0, 255]
  (NaN refused); grayscale (C = 1) repeated to 3 channels. Frames whose shorter side (after
  config.dataset.eval_short_side resizes it, if set) is below config.dataset.crop_size are refused.
  """
  import numpy as np
  frames = np.asarray(frames)

  def refuse(problem: str) -> ValueError:
    return ValueError(f'Frames must be (T, H, W, C) pixels 0-255, C = 3 (RGB) or 1 (grayscale), '
                      f'uint8 as video_io.read_video gives them; got shape {frames.shape} '
                      f'{frames.dtype}: {problem}.')

  if frames.ndim != 4:
    raise refuse(f'{frames.ndim} axes instead of 4; grayscale (T, H, W): frames[..., None]; one '
                 f'image (H, W, C): frames[None]')
  if 0 in frames.shape:
    raise refuse('no frames' if not len(frames) else 'an axis of length 0')
  _, h, w, c = frames.shape
  if c not in (1, 3):
    raise refuse(f'{c} channels; give RGB (3) or grayscale (1)' + (
        '; channels first (T, C, H, W)? frames.transpose(0, 2, 3, 1)' if h in (1, 3) else ''))
  size, short_side = dataset_config.crop_size, dataset_config.eval_short_side
  if (short_side or min(h, w)) < size:
    resized = f' resized to a short side of config.dataset.eval_short_side={short_side}'
    raise refuse(f'the {h}x{w} frames{resized if short_side else ""} are smaller than the '
                 f'{size}x{size} crop (config.dataset.crop_size); set config.dataset.'
                 f'eval_short_side to at least {size} to resize them, or lower crop_size')
  if frames.dtype != np.uint8:
    frames = _as_uint8(frames, refuse)
  return np.repeat(frames, 3, axis=-1) if c == 1 else frames


def views_from_frames(frames, dataset_config) -> dict:
  """0-255 pixel frames (T, H, W, C) (`check_frames`) -> the evaluation views of the data
  pipeline, stacked: {'video': (V, T', S, S, 3) float32, and 'flow' (V, T'-1, S, S, 2) with
  dataset_config.flow}, V = eval_clips x eval_crops."""
  import tensorflow as tf
  import tensorflow_datasets as tfds
  from vivit_jax.data import pipeline
  from vivit_jax.models import inputs
  frames = tf.convert_to_tensor(check_frames(frames, dataset_config))
  feature = tfds.features.Tensor(shape=tuple(frames.shape), dtype=tf.uint8)  # Decodes as is.
  views = pipeline._eval_views(tf.constant(0, tf.int64), {'video': frames, 'label': 0},
                               feature=feature, dataset_config=dataset_config)
  views = {k: v.numpy() for k, v in views.items() if k not in ('label', 'mask', 'video_id')}
  return inputs.check_finite(views, 'The views of the frames')


def view_probabilities(exp, views: dict, batch_size: int):
  """Softmax probabilities (V, K) of the model of `exp` on each view, `batch_size` at a time."""
  import jax
  import numpy as np
  from vivit_jax import models
  variables = {'params': jax.device_get(exp.state.params)}
  if exp.state.batch_stats:
    variables['batch_stats'] = jax.device_get(exp.state.batch_stats)
  extra = models.extra_inputs(exp.model)
  apply = jax.jit(lambda variables, video, kwargs: jax.nn.softmax(exp.model.apply(
      variables, video, train=False, **kwargs).astype(np.float32)))
  n = len(views['video'])
  return np.concatenate([apply(variables, views['video'][i:i + batch_size],
                               {k: views[k][i:i + batch_size] for k in extra})
                         for i in range(0, n, batch_size)])


def predict(config, workdir: str, video: str, *, num_clips: int | None = None,
            num_crops: int | None = None, fps: float | None = None) -> list[tuple[str, float]]:
  """[(class name, probability)] of the TOP_K most probable classes of the file `video`, the
  softmax averaged over its views (see the module docstring).

  Raises:
    video_io.VideoReadError: `video` cannot be read.
    FileNotFoundError: `workdir` has no checkpoint.
  """
  import ml_collections
  import numpy as np
  from vivit_jax import data
  from vivit_jax.data import video_io
  from vivit_jax.train import loop, tasks
  if config.task != 'classification':
    raise ValueError(f"config.task='{config.task}': vivit_jax.predict needs a classifier.")
  config = ml_collections.ConfigDict(config.to_dict())  # An unlocked copy.
  ds = config.dataset
  ds.update(eval_clips=num_clips or ds.eval_clips, eval_crops=num_crops or ds.eval_crops)
  for name in ('eval_clips', 'eval_crops'):
    if ds[name] < 1:
      raise ValueError(f'--num_{name[5:]}={ds[name]} must be at least 1.')
  stored_fps, short_side = stored_video_format(ds)
  frames = video_io.read_video(video, fps=fps or stored_fps, short_side=short_side).frames
  exp = loop.restore_for_eval(config, workdir)
  probs = view_probabilities(exp, views_from_frames(frames, ds), config.train.eval_batch_size)
  mean = probs.astype(np.float64).mean(0)
  names = data.dataset_info(ds)['class_names']
  return [(names[k], float(mean[k])) for k in tasks.ranking(mean[None])[0, :TOP_K]]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}. Config fields are set with '
                         f'--config.FIELD=VALUE.')
  logging.set_verbosity(logging.WARNING)  # Libraries' INFO chatter (Orbax, TFDS) stays quiet.
  try:
    top = predict(saved_config.flag_config(_FLAGS['config']), _FLAGS['workdir'].value,
                  _FLAGS['video'].value, num_clips=_FLAGS['num_clips'].value,
                  num_crops=_FLAGS['num_crops'].value, fps=_FLAGS['fps'].value)
  except (ValueError, FileNotFoundError) as e:  # VideoReadError is a ValueError.
    if os.environ.get('VIVIT_TRACEBACK'):
      raise
    sys.exit(f'{type(e).__name__}: {e}')
  print(f"{_FLAGS['video'].value}:")
  for name, p in top:
    print(f'  {p:.4f}  {name}')


if __name__ == '__main__':
  _FLAGS = define_flags()
  app.run(main)
