r"""Reconstruction grid of a VideoMAE pre-training workdir: clips, masked inputs, reconstructions.

  python tools/visualize_mae.py --workdir runs/mae --video test --out grid.png
  python tools/visualize_mae.py --workdir runs/mae --video clip.gif --out grid.png \
      --config configs/videomae/CONFIG.py --num_examples 1

Restores the latest checkpoint of --workdir (as tools/static_frame_probe.py, through
train.loop.restore_for_eval) and writes the grid of vivit_jax.visualize to --out.

--video is either a split of config.dataset (its first --num_examples videos, centre clip and crop
as in evaluation; TFDS slices such as test[100:] work) or a video file: any file PyAV (FFmpeg)
reads (.mp4, .avi, .webm, ... at its own frame rate), an animated .gif, or a .npy array
(T, H, W, C) uint8 (C = 1 or 3). From a file, config.dataset.num_frames frames
config.dataset.stride apart are taken around its middle (the pipeline's centre clip); frames are
resized so their shorter side is config.dataset.crop_size, centre-cropped to a square and
normalised like the data pipeline.

--config is the config the workdir was trained with (any --config.a.b=value override applies).
Without it, the config the training saved (WORKDIR/config.json) is used; a workdir older than
that takes configs/default.py's dataset, mesh and batch settings with the checkpoint's own
config.model (saved with every checkpoint) and config.task = 'masked_video_modeling'.
"""
import importlib.util
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO, 'configs', 'default.py')
FILE_FORMATS = ('any video file PyAV (FFmpeg) reads (.mp4, .avi, .webm, ...), an animated .gif or '
                'a .npy ((T, H, W, C) uint8 array)')

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config the workdir was trained with (default: configs/default.py with the '
    "checkpoint's config.model).")
_WORKDIR = flags.DEFINE_string('workdir', None, 'Pre-training workdir holding the checkpoint.')
_VIDEO = flags.DEFINE_string('video', None, f'A split of config.dataset (e.g. test) or a video '
                             f'file: {FILE_FORMATS}.')
_OUT = flags.DEFINE_string('out', None, 'PNG file to write.')
_NUM_EXAMPLES = flags.DEFINE_integer('num_examples', 4, 'Clips shown when --video is a split.')
flags.mark_flags_as_required(['workdir', 'video', 'out'])


def saved_model_config(workdir: str) -> dict:
  """config.model (as a dict) saved with the latest checkpoint of `workdir`.

  Raises:
    FileNotFoundError: `workdir` has no checkpoint.
  """
  import orbax.checkpoint as ocp
  import tensorflow as tf
  from vivit_jax.saved import checkpoints
  directory = os.path.join(checkpoints.absolute(workdir), 'checkpoints')
  if tf.io.gfile.isdir(directory):  # Read only: a mistyped workdir is not created.
    manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True))
    latest = manager.latest_step()
    if latest is not None:
      meta = manager.restore(latest, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    manager.close()
    if latest is not None:
      return meta['model_config']
  raise FileNotFoundError(f'No checkpoint in {directory}; train first with `python -m '
                          f'vivit_jax.main --config CONFIG --workdir {workdir}`.')


def default_config():
  """configs/default.py's get_config()."""
  spec = importlib.util.spec_from_file_location('default_config', DEFAULT_CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def resolve_config(config, workdir: str):
  """`config`, or without one configs/default.py with the checkpoint's config.model; checks that
  the workdir holds a videomae_pretrain model (ValueError naming the one it holds otherwise)."""
  import ml_collections
  import tensorflow as tf
  from vivit_jax.saved import config as saved_config
  saved = saved_model_config(workdir)
  if saved.get('name') != 'videomae_pretrain':
    raise ValueError(f"{workdir} holds a '{saved.get('name')}' model; reconstruction grids need "
                     f"a VideoMAE pre-training workdir (config.model.name='videomae_pretrain').")
  if config is None and tf.io.gfile.exists(os.path.join(workdir, saved_config.CONFIG_FILE)):
    config = saved_config.load_config(workdir)
  if config is None:
    config = default_config()
    config.model = ml_collections.ConfigDict(saved)
    config.task = 'masked_video_modeling'
  elif config.model.name != 'videomae_pretrain':
    raise ValueError(f"--config has config.model.name='{config.model.name}' but {workdir} holds a "
                     f"videomae_pretrain model; pass the config it was trained with.")
  return config


def read_frames(path: str):
  """All frames of a video file, uint8 (T, H, W, C): see FILE_FORMATS (VideoReadError, a
  ValueError, for a file PyAV cannot read)."""
  import numpy as np
  import tensorflow as tf
  from vivit_jax.data import video_io
  ext = os.path.splitext(path)[1].lower()
  try:
    if ext == '.gif':
      return tf.io.decode_gif(tf.io.read_file(path)).numpy()
    if ext != '.npy':
      return video_io.read_video(path).frames
    with tf.io.gfile.GFile(path, 'rb') as f:
      frames = np.load(f, allow_pickle=False)
  except (tf.errors.OpError, OSError, EOFError) as e:
    raise ValueError(f"Cannot read '{path}' as {ext}: {type(e).__name__}: "
                     f"{str(e).splitlines()[0] if str(e) else ''}") from None
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] not in (1, 3):
    raise ValueError(f"'{path}' holds a {frames.dtype} array of shape {frames.shape}; a video "
                     f".npy must be (T, H, W, C) uint8 with C = 1 or 3.")
  return frames


def clip_from_frames(frames, dataset_config):
  """uint8 (T, H, W, C) -> one normalised clip (1, num_frames, S, S, C) float32, S = crop_size:
  shorter side resized to S, then the data pipeline's centre view (frames `stride` apart around
  the middle, centre crop, (x / 255 - mean) / std)."""
  import tensorflow as tf
  import tensorflow_datasets as tfds
  from vivit_jax.data import pipeline
  frames = pipeline._resize_short_side(tf.convert_to_tensor(frames), dataset_config.crop_size)
  feature = tfds.features.Tensor(shape=tuple(frames.shape), dtype=tf.uint8)  # Decodes as is.
  view = pipeline._view({'video': frames, 'label': 0}, tf.constant([0.5, 0.5, 0.5]),
                        tf.constant(False), feature=feature, dataset_config=dataset_config,
                        long_side=True)
  return view['video'].numpy()[None]


def eval_clips(dataset_config, split: str, num_examples: int):
  """The first `num_examples` single-view (centre clip and crop) clips of `split`, normalised
  (n, T, S, S, C) float32."""
  import ml_collections
  from vivit_jax import data
  single = ml_collections.ConfigDict(dataset_config.to_dict())
  single.update(eval_clips=1, eval_crops=1)
  batch = next(data.make_eval_iterator(single, global_batch_size=num_examples, split=split))
  return batch['video'][batch['mask'] > 0]


def write_grid(config, workdir: str, video: str, out: str, num_examples: int = 4) -> str:
  """Restores `workdir` (config: see `resolve_config`), makes the grid of clips `video` (a split
  name or a file) and writes it as PNG to `out`; returns `out`."""
  import jax
  import tensorflow as tf
  from vivit_jax import data, models, visualize
  from vivit_jax.train import loop
  if num_examples < 1:
    raise ValueError(f'--num_examples={num_examples} must be at least 1.')
  config = resolve_config(config, workdir)
  splits = data.dataset_info(config.dataset)['num_examples']
  if tf.io.gfile.exists(video) and not tf.io.gfile.isdir(video):
    clips = clip_from_frames(read_frames(video), config.dataset)
  elif video.split('[')[0] in splits:  # A split, or a TFDS slice of one ('test[:100]').
    clips = eval_clips(config.dataset, video, num_examples)
  else:
    raise FileNotFoundError(f"--video '{video}' is neither a split of dataset "
                            f"'{config.dataset.name}' ({', '.join(sorted(splits))}) nor a video "
                            f"file ({FILE_FORMATS}).")
  exp = loop.restore_for_eval(config, workdir)
  variables = {'params': jax.device_get(exp.state.params)}
  if exp.state.batch_stats:
    variables['batch_stats'] = jax.device_get(exp.state.batch_stats)
  grid = visualize.reconstruction_grid(exp.model, variables, clips,
                                       jax.random.key(models.EVAL_RNG_SEED))
  visualize.write_png(out, grid)
  print(f'Wrote {out}: {len(clips)} clip(s) of {video} at step {int(exp.state.step)} of {workdir} '
        f'(rows: original, masked input, reconstruction).')
  return out


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  logging.set_verbosity(logging.WARNING)  # Libraries' INFO chatter (Orbax, TFDS) stays quiet.
  try:
    write_grid(_CONFIG.value, _WORKDIR.value, _VIDEO.value, _OUT.value, _NUM_EXAMPLES.value)
  except (ValueError, FileNotFoundError) as e:
    if os.environ.get('VIVIT_TRACEBACK'):
      raise
    sys.exit(f'{type(e).__name__}: {e}')


if __name__ == '__main__':
  app.run(main)
