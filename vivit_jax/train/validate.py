"""Config checks in one place, run before anything is built: each bad value raises a ValueError
naming the field, its value, the valid range and the flag that fixes it."""
import math
import re

import jax

_POSITIVE = ('dataset.num_frames', 'dataset.stride', 'dataset.crop_size', 'dataset.eval_clips',
             'dataset.eval_crops', 'dataset.shuffle_buffer', 'train.batch_size',
             'train.eval_batch_size', 'train.num_steps', 'train.log_every_steps',
             'train.eval_every_steps', 'checkpoint.every_steps', 'checkpoint.keep')
_NON_NEGATIVE = ('dataset.eval_short_side', 'optimizer.warmup_steps', 'model.num_classes')
_FINITE_NON_NEGATIVE = ('optimizer.learning_rate', 'optimizer.end_learning_rate',
                        'optimizer.weight_decay', 'train.mixup_alpha', 'train.cutmix_alpha')
_FRACTIONS = ('optimizer.b1', 'optimizer.b2', 'train.label_smoothing')  # In [0, 1).
_PROBABILITIES = ('train.mixup_switch_prob',)  # In [0, 1].
# config.model fields by name: sizes (every entry of a tuple too) and rates.
_MODEL_SIZE = re.compile(r'num_(?!classes).*|.*_(size|dim|width|widths|kernel|pool)|depth|alpha|'
                         r'beta_inv|num_frames')
_MODEL_RATE = re.compile(r'.*_rate|stochastic_depth|.*mask_ratio')

_HINTS = {'checkpoint.keep': ' (1 keeps only the latest checkpoint; the final one always stays)',
          'dataset.num_frames': ' (frames per clip)'}
_MISSING = object()


def _get(config, path: str):
  node = config
  for key in path.split('.'):
    node = node.get(key, _MISSING) if hasattr(node, 'get') else _MISSING
    if node is _MISSING:
      break
  return node


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require(path: str, value, ok: bool, rule: str):
  if not ok:
    raise ValueError(f'config.{path}={value!r} is invalid: it must be {rule}'
                     f'{_HINTS.get(path, "")}. Set --config.{path}=VALUE.')


def _check(config, paths, test, rule: str):
  for path in paths:
    value = _get(config, path)
    if value is not _MISSING:
      _require(path, value, _is_number(value) and test(value), rule)


def _check_model(model):
  for name, value in model.items():
    values = value if isinstance(value, (tuple, list)) else (value,)
    if _MODEL_SIZE.fullmatch(name) and all(_is_number(v) for v in values):
      _require(f'model.{name}', value, all(v >= 1 for v in values), 'a positive integer '
               '(each entry, for a tuple)')
    if _MODEL_RATE.fullmatch(name) and _is_number(value):
      _require(f'model.{name}', value, 0 <= value < 1, 'in [0, 1)')


def validate(config):
  """Checks `config`'s values (not their combination with devices: `check_against`)."""
  _check(config, _POSITIVE, lambda v: isinstance(v, int) and v >= 1, 'an integer >= 1')
  _check(config, _NON_NEGATIVE, lambda v: isinstance(v, int) and v >= 0, 'an integer >= 0')
  _check(config, _FINITE_NON_NEGATIVE, lambda v: math.isfinite(v) and v >= 0,
         'a finite number >= 0')
  _check(config, _FRACTIONS, lambda v: 0 <= v < 1, 'in [0, 1)')
  _check(config, _PROBABILITIES, lambda v: 0 <= v <= 1, 'in [0, 1]')
  _check(config, ('optimizer.grad_clip_norm',), lambda v: v > 0,
         '> 0 (inf: no clipping)')
  _check(config, ('optimizer.eps',), lambda v: math.isfinite(v) and v > 0, 'a finite number > 0')
  _check(config, ('optimizer.layer_decay',), lambda v: 0 < v <= 1, 'in (0, 1]')
  for path in ('dataset.std',):
    value = _get(config, path)
    if value is not _MISSING:
      _require(path, value, all(_is_number(v) and v > 0 for v in value), 'positive numbers')
  model = _get(config, 'model')
  if model is not _MISSING:
    _check_model(model)


def check_against(config, batch_shards: int):
  """Checks `config` against the mesh (`batch_shards`: the devices a batch is split over) and
  the processes (the dataset is the task's to check: `check_dataset`)."""
  for field in ('batch_size', 'eval_batch_size'):
    size = config.train[field]
    if size % batch_shards or size % jax.process_count():
      raise ValueError(
          f'config.train.{field}={size} must be divisible by the {batch_shards} batch shards of '
          f'the mesh and the {jax.process_count()} processes; pick a multiple of '
          f'{math.lcm(batch_shards, jax.process_count())}.')
