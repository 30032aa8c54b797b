"""Input pipeline: a TFDS dataset -> tf.data clips -> numpy batches, one shard per JAX process.

TensorFlow runs on the host CPU only. A dataset needs features 'video' ((T, H, W, C) uint8:
`tfds.features.Tensor` or `tfds.features.Video`) and 'label' (`ClassLabel`); videos are decoded
after the shuffle buffer, and a `Video` decodes only the frames its clip takes.

Train batches are a pure function of (seed, step): the file order is fixed, the shuffle is seeded,
and every example's augmentation (clip start, crop, flip) comes from stateless ops seeded by
(seed, element index), so `start_step=k` resumes exactly where a run stopped after k batches
(with the same seed, global batch size, process count and dataset).

Training crops (`config.dataset.train_crop`, `TRAIN_CROPS`): a random crop_size square, an
Inception-style random resized crop, or short-side scale jitter then a random square; all frames
of a clip share one box and one flip. Evaluation takes `eval_views` (clips x crops along the
long side), after resizing the frames to `eval_short_side` if set.

With `config.dataset.flow`, every clip also carries its optical flow 'flow' (T-1, S, S, 2) float32
(`flow.tf_flow`: Farneback on the clip's uint8 frames, clipped to [-20, 20] px and divided by 20),
computed on whole frames and then cropped and flipped with the clip, dx negated when flipped.
"""
import functools
import logging
import os

import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from jax.experimental import multihost_utils

from vivit_jax.data import flow as flow_lib
from vivit_jax.data import synthetic_motion
from vivit_jax.data import video_folder

try:
  tf.config.set_visible_devices([], 'GPU')
except (RuntimeError, ValueError):  # TensorFlow already initialised its devices.
  pass

log = logging.getLogger('vivit_jax')

TRAIN_CROPS = ('random', 'random_resized', 'scale_jitter')  # config.dataset.train_crop.
# Batch keys added on request -> the config.dataset switch that adds them.
OPTIONAL_KEYS = {'flow': 'flow'}
RESIZED_CROP_ATTEMPTS = 10  # Boxes tried by random_resized before its fallback (torchvision's).
MIN_CROP_COVERAGE = 0.5  # Warn when crops span less of the frames' short side than this.


def get_builder(dataset_config) -> tfds.core.DatasetBuilder:
  """The TFDS builder of `dataset_config.name`, built into its data dir on first use (a name
  built by tools/build_dataset.py reads that `video_folder` dataset)."""
  name = dataset_config.name
  if video_folder.is_built(name, dataset_config.data_dir or None):
    name = f'{video_folder.BUILDER_NAME}/{name}'  # TFDS reads it from its files.
  try:
    builder = tfds.builder(name, data_dir=dataset_config.data_dir or None)
  except tfds.core.registered.DatasetNotFoundError:
    raise ValueError(
        f"Unknown dataset '{name}' (config.dataset.name). Built-in: "
        f"{synthetic_motion.SyntheticMotion.name}; or build one from your videos with "
        f"tools/build_dataset.py into config.dataset.data_dir, or any TFDS dataset with "
        f"features 'video' (T, H, W, C) uint8 and 'label'.") from None
  prepared = _all_agree(builder.is_prepared())
  _check_data_dir(os.fspath(builder.data_dir_root), writable=not prepared)
  if not prepared:
    builder = _prepare(builder, name, dataset_config.data_dir or None)
  missing = {'video', 'label'} - set(builder.info.features)
  if missing:
    raise ValueError(f"Dataset '{name}' (config.dataset.name) lacks the features "
                     f"{sorted(missing)}; it needs 'video' (T, H, W, C) uint8 and 'label'.")
  return builder


def _all_agree(prepared: bool) -> bool:
  """Process 0's `prepared` on every process, so that all take the same branch."""
  if jax.process_count() == 1:
    return prepared
  return bool(multihost_utils.broadcast_one_to_all(np.asarray(prepared)))


def _prepare(builder, name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
  """Builds the dataset. With several processes, process 0 builds while the others wait; a
  process that does not share its data dir (a host's local disk) then builds its own copy."""
  if jax.process_count() == 1:
    builder.download_and_prepare()
    return builder
  if jax.process_index() == 0:
    builder.download_and_prepare()
  multihost_utils.sync_global_devices(f'vivit_jax: dataset {name} prepared')
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    builder.download_and_prepare()
  return builder


def _check_data_dir(root: str, *, writable: bool):
  """Raises a one-line ValueError if `root` is not a readable (and if asked, writable) directory."""
  where = f"TFDS data dir '{root}' (config.dataset.data_dir, or TFDS_DATA_DIR when that is '')"
  fix = 'set --config.dataset.data_dir (or TFDS_DATA_DIR) to a readable, writable directory.'
  if tf.io.gfile.exists(root) and not tf.io.gfile.isdir(root):
    raise ValueError(f'{where} is not a directory; {fix}')
  if writable:
    try:
      tf.io.gfile.makedirs(root)
    except tf.errors.OpError:
      raise ValueError(f'{where} cannot be created; {fix}') from None
  access = os.R_OK | os.X_OK | (os.W_OK if writable else 0)
  if '://' not in root and not os.access(root, access):
    raise ValueError(f"{where} is not {'writable' if writable else 'readable'}; {fix}")


def dataset_info(dataset_config) -> dict:
  """{'num_classes': int, 'class_names': [str], 'num_examples': {split: int}} of the dataset."""
  info = get_builder(dataset_config).info
  label = info.features['label']
  return {'num_classes': label.num_classes, 'class_names': list(label.names),
          'num_examples': {name: split.num_examples for name, split in info.splits.items()}}


def _open(dataset_config, split: str, field: str, global_batch_size: int, *,
          train: bool) -> tuple:
  """(builder, this process's batch size b, examples in `split`), with the config checked.

  `field` names where `split` came from, for the error when the dataset has no such split;
  `train`: check the crop against the frames for training too (`_check_crop_fits`).
  """
  builder = get_builder(dataset_config)
  count = jax.process_count()
  if global_batch_size % count:
    raise ValueError(f'Global batch size {global_batch_size} is not divisible by the {count} JAX '
                     f'processes; pick a multiple of {count}.')
  try:
    num_examples = builder.info.splits[split].num_examples
  except (KeyError, ValueError):
    raise ValueError(
        f"Split '{split}' ({field}) not in dataset '{builder.name}'; available splits: "
        f"{', '.join(sorted(builder.info.splits))}.") from None
  _check_crop_fits(builder, dataset_config, train=train)
  _warn_small_crops(builder, dataset_config)
  if dataset_config.get('flow', False) and dataset_config.num_frames < 2:
    raise ValueError(f'config.dataset.flow needs at least 2 frames per clip, but '
                     f'config.dataset.num_frames={dataset_config.num_frames}; raise it or set '
                     f'--config.dataset.flow=False.')
  return builder, global_batch_size // count, num_examples


def _smallest_frames(builder) -> tuple[int | None, str]:
  """(the smallest side of the dataset's frames, words for them): from the 'video' feature's
  static shape, else from the metadata of a video_folder build; None when neither tells."""
  height, width = builder.info.features['video'].shape[1:3]
  if height and width:
    return min(height, width), f'{height}x{width} frames'
  metadata = dict((builder.info.metadata or {}).items())  # items() loads TFDS's lazy metadata.
  side = metadata.get(video_folder.SMALLEST_SIDE)
  return side, f'stored frames (smallest side {side} pixels)'


def _check_crop_fits(builder, dataset_config, *, train: bool):
  """ValueError naming the dataset, the sizes and the fixes if crop_size exceeds the smallest
  frame side where frames are cropped as stored: in evaluation without eval_short_side and, if
  `train` (the train loop also evaluates), in training with train_crop 'random'."""
  cfg = dataset_config
  size = cfg.crop_size
  side, frames = _smallest_frames(builder)
  if side is None or size <= side:
    return
  fixes = [f'--config.dataset.{setting}' for setting, as_stored in (
      ('train_crop=scale_jitter (or random_resized)', train and cfg.train_crop == 'random'),
      (f'eval_short_side={size} (or more)', not cfg.eval_short_side)) if as_stored]
  if fixes:
    raise ValueError(
        f"config.dataset.crop_size={size} exceeds the {frames} of dataset '{cfg.name}'; rebuild "
        f"it with tools/build_dataset.py --short_side {size} (or more), set "
        f"{' and '.join(fixes)}, or set --config.dataset.crop_size to at most {side}.")


def crop_coverage(dataset_config, side: int | None) -> dict:
  """{'train': f, 'eval': f}: the fraction of the short side of frames stored at `side` pixels
  (None: unknown) that a crop spans, after the resize before the crop (scale_jitter: at the top of
  short_side_range; eval_short_side). None where unknown, and for random_resized training, whose
  boxes (random_resized_scale of the frame) are resized to the crop."""
  cfg = dataset_config
  fed = {'train': {'random': side, 'scale_jitter': cfg.short_side_range[1]}.get(cfg.train_crop),
         'eval': cfg.eval_short_side or side}
  return {kind: None if pixels is None else cfg.crop_size / pixels for kind, pixels in fed.items()}


def _warn_small_crops(builder, dataset_config):
  """Warns (once per process) when crops span under MIN_CROP_COVERAGE of the frames' short side
  (`crop_coverage`) in training or evaluation, naming the fields to set."""
  cfg = dataset_config
  side, frames = _smallest_frames(builder)
  coverage = crop_coverage(cfg, side)
  settings = {'train': f"training, train_crop='{cfg.train_crop}'",
              'eval': f'evaluation, eval_short_side={cfg.eval_short_side}'}
  small = [f'{coverage[kind]:.0%} ({settings[kind]})' for kind in settings
           if coverage[kind] is not None and coverage[kind] < MIN_CROP_COVERAGE]
  if not small:
    return
  stored = f', {frames}' if side else ''
  target = _ceil_div(cfg.crop_size * 8, 7)  # Crops of 7/8 of the short side (224 of 256).
  _warn_once(
      f"config.dataset.crop_size={cfg.crop_size} spans {' and '.join(small)} of the frames' "
      f"short side (dataset '{cfg.name}'{stored}): the model sees small patches of each frame. "
      f"Resize the frames before cropping: --config.dataset.train_crop=scale_jitter "
      f"--config.dataset.short_side_range='({cfg.crop_size}, {target + target // 8})' "
      f"--config.dataset.eval_short_side={target} (or raise crop_size); configs/video_folder.py "
      f"sets these for datasets built by tools/build_dataset.py.")


@functools.cache
def _warn_once(message: str):
  """Logs `message` as a warning the first time only (each evaluation reopens the split)."""
  log.warning('%s', message)


def _ceil_div(a: int, b: int) -> int:
  return -(-a // b)


def _process_split(split: str):
  """This process's even share of `split` (`tfds.split_for_jax_process`)."""
  return tfds.split_for_jax_process(split, process_index=jax.process_index(),
                                    process_count=jax.process_count())


def _read(builder, split) -> tf.data.Dataset:
  """Examples {'video': still encoded, 'label': int64} of `split`, in file order."""
  return builder.as_dataset(split=split, shuffle_files=False,
                            decoders={'video': tfds.decode.SkipDecoding()})


def _decode_frames(feature, encoded, frame_indices) -> tf.Tensor:
  """Frames (n, H, W, C) uint8 of `encoded` at the (n,) indices `frame_indices(video length)`.

  A `Video` (a sequence of encoded images) decodes only those n frames; a `Tensor` decodes whole.
  """
  if isinstance(feature, tfds.features.Video):
    frames = tf.gather(encoded, frame_indices(tf.shape(encoded)[0]))
    return tf.map_fn(feature.feature.decode_example, frames, fn_output_signature=tf.uint8)
  video = feature.decode_example(encoded)
  return tf.gather(video, frame_indices(tf.shape(video)[0]))


def _offset(fraction, max_offset) -> tf.Tensor:
  """Integer offset in [0, max(max_offset, 0)] at `fraction` in [0, 1) of the range."""
  max_offset = tf.maximum(max_offset, 0)
  offset = tf.cast(fraction * tf.cast(max_offset + 1, tf.float32), tf.int32)
  return tf.minimum(offset, max_offset)


def _view(example, fractions, flip, *, feature, dataset_config, long_side=False) -> dict:
  """One clip of `example`: {'video': (T, S, S, C) float32 normalised, 'label': () int32} (and
  with `dataset_config.flow`, 'flow': (T-1, S, S, 2) float32, see `_crop`).

  `fractions` (3,) in [0, 1] place the clip in time and the crop in y and x (with `long_side`:
  along the frame's longer side, then its shorter side): all T = num_frames frames `stride` apart
  (clamped to the last frame in short videos) and one S = crop_size square crop for all of them;
  `flip` mirrors the clip horizontally.
  """
  clip = _clip(example, fractions[0], feature=feature, dataset_config=dataset_config)
  return {**_crop(clip, fractions[1], fractions[2], flip, channels=feature.shape[-1],
                  dataset_config=dataset_config, long_side=long_side),
          'label': tf.cast(example['label'], tf.int32)}


def _clip(example, fraction, *, feature, dataset_config, short_side=None) -> dict:
  """{'frames': the (T, H, W, C) uint8 frames of the clip of `example` at `fraction` of its start
  range, 'name': () string naming the video in errors (`_video_name`)} and with
  `dataset_config.flow`, their 'flow' (T-1, H, W, 2) float32 (`flow.tf_flow`).
  With `short_side` (an int or () int32 tensor), the frames are first resized so that their
  shorter side has that many pixels (`_resize_short_side`)."""
  cfg = dataset_config
  span = (cfg.num_frames - 1) * cfg.stride + 1

  def frame_indices(length):
    start = _offset(fraction, length - span)
    return tf.minimum(start + tf.range(cfg.num_frames) * cfg.stride, length - 1)

  frames = _decode_frames(feature, example['video'], frame_indices)
  if short_side is not None:
    frames = _resize_short_side(frames, short_side)
  clip = {'frames': frames, 'name': _video_name(example)}
  if not cfg.get('flow', False):
    return clip
  return {**clip, 'flow': flow_lib.tf_flow(frames)}


def _video_name(example) -> tf.Tensor:
  """() string: the 'video_id' of `example` (video_folder datasets have one), else a placeholder."""
  video_id = example.get('video_id')
  if video_id is None or video_id.dtype != tf.string:
    return tf.constant('(no video_id in this dataset)')
  return video_id


def _fitting(frames, name, dataset_config) -> tf.Tensor:
  """`frames` (T, H, W, C), once an assertion that H, W >= crop_size has passed; its error names
  the video `name`, the sizes and the fixes (for datasets whose smallest side `_check_crop_fits`
  cannot know: dynamic shapes without a recorded one)."""
  size = dataset_config.crop_size
  shape = tf.shape(frames)[1:3]
  check = tf.debugging.Assert(tf.reduce_min(shape) >= size, [
      'Video', name, f"of dataset '{dataset_config.name}' has frames (height, width) =", shape,
      f'smaller than config.dataset.crop_size={size}; rebuild the dataset with '
      f'tools/build_dataset.py --short_side {size} (or more), set --config.dataset.'
      f'eval_short_side or train_crop to resize frames first, or a smaller crop_size.'])
  with tf.control_dependencies([check]):
    return tf.identity(frames)


def _resize(frames, size) -> tf.Tensor:
  """uint8 (T, H, W, C) -> uint8 (T, size[0], size[1], C): bilinear, antialiased when shrinking,
  rounded back to uint8 (as if the video had been stored at that size)."""
  resized = tf.image.resize(frames, size, method='bilinear', antialias=True)
  return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def _resize_short_side(frames, short_side) -> tf.Tensor:
  """uint8 (T, H, W, C) resized so that min(H, W) = `short_side`, the aspect ratio kept (the
  longer side rounded to the nearest pixel)."""
  shape = tf.cast(tf.shape(frames)[1:3], tf.float32)
  scale = tf.cast(short_side, tf.float32) / tf.reduce_min(shape)
  return _resize(frames, tf.cast(tf.round(shape * scale), tf.int32))


def random_resized_box(uniform, height, width, scale, ratio) -> tuple:
  """Inception-style crop box (y, x, h, w) of an (height, width) frame, as torchvision's
  RandomResizedCrop: up to `RESIZED_CROP_ATTEMPTS` boxes with area fraction uniform in `scale`
  and aspect ratio w / h log-uniform in `ratio`, the first that fits the frame; if none does, the
  largest box of the frame with its aspect ratio clamped to `ratio`. The position is uniform.

  `uniform` (2 * RESIZED_CROP_ATTEMPTS + 2,) in [0, 1): the draws, in order area, ratio, y, x.
  """
  n = RESIZED_CROP_ATTEMPTS
  height, width = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
  area = height * width * (scale[0] + uniform[:n] * (scale[1] - scale[0]))
  log_ratio = tf.math.log(tf.constant(ratio, tf.float32))
  aspect = tf.exp(log_ratio[0] + uniform[n:2 * n] * (log_ratio[1] - log_ratio[0]))
  w, h = tf.round(tf.sqrt(area * aspect)), tf.round(tf.sqrt(area / aspect))
  fits = (w <= width) & (h <= height) & (w >= 1) & (h >= 1)
  first = tf.argmax(tf.cast(fits, tf.int32))
  frame_ratio = width / height
  fallback_w = tf.where(frame_ratio > ratio[1], tf.round(height * ratio[1]), width)
  fallback_h = tf.where(frame_ratio < ratio[0], tf.round(width / ratio[0]), height)
  found = tf.reduce_any(fits)
  h = tf.cast(tf.where(found, h[first], fallback_h), tf.int32)
  w = tf.cast(tf.where(found, w[first], fallback_w), tf.int32)
  y = _offset(uniform[2 * n], tf.cast(height, tf.int32) - h)
  x = _offset(uniform[2 * n + 1], tf.cast(width, tf.int32) - w)
  return y, x, h, w


def _crop(clip, fy, fx, flip, *, channels, dataset_config, long_side=False) -> dict:
  """{'video': (T, S, S, C) float32 normalised}: the crop of `clip['frames']` (T, H, W, C) uint8
  at fractions `fy`, `fx` (with `long_side`: along the longer side, then the shorter), mirrored
  if `flip`; and if `clip` has a 'flow' (T-1, H, W, 2), the same crop of it (mirrored, dx negated).
  """
  cfg = dataset_config
  size = cfg.crop_size
  frames = _fitting(clip['frames'], clip['name'], cfg)
  shape = tf.shape(frames)
  if long_side:
    fy, fx = (tf.where(shape[1] >= shape[2], a, b) for a, b in ((fy, fx), (fx, fy)))
  y = _offset(fy, shape[1] - size)
  x = _offset(fx, shape[2] - size)

  def window(frames):
    frames = tf.slice(frames, [0, y, x, 0], [-1, size, size, -1])
    return tf.cond(flip, lambda: tf.reverse(frames, axis=[2]), lambda: frames)

  mean, std = (tf.constant(v, tf.float32) for v in (cfg.mean, cfg.std))
  video = (tf.cast(window(frames), tf.float32) / 255.0 - mean) / std
  out = {'video': tf.ensure_shape(video, (cfg.num_frames, size, size, channels))}
  if 'flow' in clip:  # A mirrored clip moves the other way: dx changes sign, dy does not.
    flow = window(clip['flow']) * tf.where(flip, [-1.0, 1.0], [1.0, 1.0])
    out['flow'] = tf.ensure_shape(flow, (cfg.num_frames - 1, size, size, 2))
  return out


def _train_view(index, example, *, seed: int, feature, dataset_config) -> dict:
  """Random clip, spatial augmentation (`dataset_config.train_crop`, see configs/default.py) and (if
  `dataset_config.flip`) flip of element `index`: {'video': (T, S, S, C), 'label'} as `_view`.

  The randomness comes from stateless ops seeded by (seed, index, process) alone, so it does not
  depend on tf.data's parallelism; one draw serves all frames of the clip.
  """
  cfg = dataset_config
  key = tf.stack([tf.constant(seed, tf.int64), index * jax.process_count() + jax.process_index()])
  uniform = tf.random.stateless_uniform([4], seed=key)  # Clip start, crop y, crop x, flip.
  flip = tf.logical_and(bool(cfg.flip), uniform[3] < 0.5)
  if cfg.train_crop == 'random':
    return _view(example, uniform[:3], flip, feature=feature, dataset_config=cfg)
  geometry = tf.random.stateless_uniform([2 * RESIZED_CROP_ATTEMPTS + 2],
                                         seed=tf.random.experimental.stateless_fold_in(key, 1))
  short_side = None
  if cfg.train_crop == 'scale_jitter':
    low, high = cfg.short_side_range
    short_side = low + _offset(geometry[0], high - low)
  clip = _clip(example, uniform[0], feature=feature, dataset_config=cfg, short_side=short_side)
  fy, fx = uniform[1], uniform[2]
  if cfg.train_crop == 'random_resized':
    shape = tf.shape(clip['frames'])
    y, x, h, w = random_resized_box(geometry, shape[1], shape[2], cfg.random_resized_scale,
                                    cfg.random_resized_ratio)
    box = tf.slice(clip['frames'], [0, y, x, 0], [-1, h, w, -1])
    clip = {**clip, 'frames': _resize(box, [cfg.crop_size, cfg.crop_size])}
  return {**_crop(clip, fy, fx, flip, channels=feature.shape[-1], dataset_config=cfg),
          'label': tf.cast(example['label'], tf.int32)}


def _check_train_crop(dataset_config):
  """ValueError naming the field and the fix for a bad train-time augmentation config."""
  cfg = dataset_config
  if cfg.train_crop not in TRAIN_CROPS:
    raise ValueError(f"Unknown config.dataset.train_crop='{cfg.train_crop}'; choose one of "
                     f"{', '.join(TRAIN_CROPS)}.")
  low, high = cfg.short_side_range
  if cfg.train_crop == 'scale_jitter' and not cfg.crop_size <= low <= high:
    raise ValueError(f'config.dataset.short_side_range={tuple(cfg.short_side_range)} must be '
                     f'(low, high) with crop_size={cfg.crop_size} <= low <= high.')
  (small, large), (narrow, wide) = cfg.random_resized_scale, cfg.random_resized_ratio
  if cfg.train_crop == 'random_resized':
    if not 0 < small <= large <= 1 or not 0 < narrow <= wide:
      raise ValueError(f'config.dataset.random_resized_scale={tuple(cfg.random_resized_scale)} '
                       f'must be (min, max) area fractions in (0, 1] and random_resized_ratio='
                       f'{tuple(cfg.random_resized_ratio)} (min, max) positive aspect ratios.')
    if cfg.get('flow', False):
      raise ValueError("config.dataset.train_crop='random_resized' would resize the optical "
                       "flow without rescaling it; with config.dataset.flow use "
                       "--config.dataset.train_crop=random or scale_jitter.")


def _spaced(n: int) -> list[float]:
  """n fractions evenly spaced from 0 to 1 (both ends); [0.5] (the centre) for n = 1."""
  return [0.5] if n == 1 else [k / (n - 1) for k in range(n)]


def eval_views(dataset_config) -> list[tuple[float, float, float]]:
  """(time, long side, short side) fractions of the eval_clips x eval_crops views of a video."""
  return [(t, c, 0.5) for t in _spaced(dataset_config.eval_clips)
          for c in _spaced(dataset_config.eval_crops)]


def _eval_views(index, example, *, feature, dataset_config) -> dict:
  """Every evaluation view of element `index` (see `eval_views`), never flipped, stacked (V, ...)
  (with `dataset_config.flow`, 'flow' too: computed once per clip, cropped per view),
  with 'mask' 1.0 (a real example) and 'video_id' unique over all processes. Each of the
  eval_clips clips is decoded once and cropped eval_crops times."""
  clips = {}  # Each clip is decoded once, for all its crops.
  views = []
  for t, fy, fx in eval_views(dataset_config):
    if t not in clips:
      clips[t] = _clip(example, tf.constant(t), feature=feature, dataset_config=dataset_config,
                       short_side=dataset_config.eval_short_side or None)
    views.append(_crop(clips[t], tf.constant(fy), tf.constant(fx), tf.constant(False),
                       channels=feature.shape[-1], dataset_config=dataset_config,
                       long_side=True))
  video_id = tf.cast(index, tf.int32) * jax.process_count() + jax.process_index()
  n = len(views)
  return {**{key: tf.stack([view[key] for view in views]) for key in views[0]},
          'label': tf.fill([n], tf.cast(example['label'], tf.int32)),
          'mask': tf.ones([n]), 'video_id': tf.fill([n], video_id)}


def _finish(ds: tf.data.Dataset, batch_size: int):
  """`ds` batched (an incomplete last batch dropped) and prefetched, as a deterministic iterator."""
  options = tf.data.Options()
  options.deterministic = True
  ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE).with_options(options)
  return iter(tfds.as_numpy(ds))


def make_train_iterator(dataset_config, *, global_batch_size: int, seed: int, start_step: int = 0):
  """Infinite iterator of this process's train batches, the `start_step`-th batch first.

  Yields {'video': float32 (b, T, S, S, C), 'label': int32 (b,)} with b = global_batch_size /
  jax.process_count(), T = num_frames, S = crop_size: random clips of this process's shard of
  `dataset_config.train_split`, shuffled and augmented deterministically from `seed`. With
  `dataset_config.flow`, also 'flow': float32 (b, T-1, S, S, 2), the clip's optical flow.
  """
  _check_train_crop(dataset_config)
  builder, batch_size, _ = _open(dataset_config, dataset_config.train_split,
                                 'config.dataset.train_split', global_batch_size, train=True)
  ds = _read(builder, _process_split(dataset_config.train_split))
  ds = ds.shuffle(dataset_config.shuffle_buffer, seed=seed).repeat().enumerate()
  ds = ds.skip(start_step * batch_size)  # Before decoding: skipping costs only reading.
  view = functools.partial(_train_view, seed=seed, feature=builder.info.features['video'],
                           dataset_config=dataset_config)
  ds = ds.map(view, num_parallel_calls=tf.data.AUTOTUNE)
  return _finish(ds, batch_size)


def make_eval_iterator(dataset_config, *, global_batch_size: int, split: str | None = None):
  """One pass over the evaluation views of this process's shard of `split` (default
  `dataset_config.eval_split`): eval_clips x eval_crops views per video, consecutive.

  Yields {'video': float32 (b, T, S, S, C), 'label': int32 (b,), 'mask': float32 (b,),
  'video_id': int32 (b,)} (with `dataset_config.flow`, also 'flow': float32 (b, T-1, S, S, 2)),
  b = global_batch_size / jax.process_count(). The last batches are padded (mask 0, the rest 0,
  flow included) so that every batch is full and every process yields the same number of
  batches; sum(mask) over all processes = num_examples x views per video.
  """
  field = 'config.dataset.eval_split' if split is None else 'the split argument'
  split = dataset_config.eval_split if split is None else split
  for name in ('eval_clips', 'eval_crops'):
    if dataset_config[name] < 1:
      raise ValueError(f'config.dataset.{name}={dataset_config[name]} must be at least 1.')
  short_side = dataset_config.eval_short_side
  if short_side and short_side < dataset_config.crop_size:
    raise ValueError(f'config.dataset.eval_short_side={short_side} is smaller than crop_size='
                     f'{dataset_config.crop_size}; set it to 0 (no resize) or at least crop_size.')
  builder, batch_size, total = _open(dataset_config, split, field, global_batch_size,
                                     train=False)
  shard = _process_split(split)
  num_views = len(eval_views(dataset_config))
  num_batches = _ceil_div(_ceil_div(total, jax.process_count()) * num_views, batch_size)
  views = functools.partial(_eval_views, feature=builder.info.features['video'],
                            dataset_config=dataset_config)
  ds = _read(builder, shard).enumerate().map(views, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
  padding = tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype), ds.element_spec)
  num_padding = num_batches * batch_size - builder.info.splits[shard].num_examples * num_views
  ds = ds.concatenate(tf.data.Dataset.from_tensors(padding).repeat(num_padding))
  return _finish(ds, batch_size)
