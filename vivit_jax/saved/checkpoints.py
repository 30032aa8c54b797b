"""Orbax checkpoints on disk: a step directory holds the items 'state' ({'params': ...} or a
whole train state) and 'meta' (JSON: 'model_config', 'param_shapes', ...). `train.checkpoint`
writes a run's checkpoints under WORKDIR/checkpoints; `save_variables` writes a converted model
(tools/convert_checkpoint.py); `restore_variables` reads either (config.init_from.path).
Paths may be local or any tf.io.gfile URL (gs://BUCKET/...).
"""
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
from tensorflow.io import gfile

_ITEMS = dict(state=ocp.StandardCheckpointHandler, meta=ocp.JsonCheckpointHandler)


def absolute(path: str) -> str:
  """`path` made absolute if local; a URL (gs://BUCKET/..., any scheme://) as it is."""
  return path if '://' in path else os.path.abspath(path)


def shapes(tree) -> dict:
  """{'path/to/leaf': [dims]} for every leaf of `tree`."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(path, simple=True, separator='/'): list(np.shape(x))
          for path, x in flat}


def checkpoint_dir(path: str) -> str | None:
  """The directory of Orbax step directories in `path` (a workdir's `checkpoints/` or `path`
  itself), or None."""
  for directory in (os.path.join(path, 'checkpoints'), path):
    if gfile.isdir(directory) and any(
        n.rstrip('/').isdigit() and gfile.isdir(os.path.join(directory, n))
        for n in gfile.listdir(directory)):
      return directory
  return None


def _manager(directory: str) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(absolute(directory),
                               item_handlers={k: h() for k, h in _ITEMS.items()})


def save_variables(directory: str, variables: dict, model_config: dict):
  """Writes `variables` ({'params': ...} and, for BatchNorm models, 'batch_stats') and
  `model_config` as the Orbax checkpoint `directory`/0 (items 'state' and 'meta', as in a
  workdir's checkpoints), for config.init_from.path."""
  manager = _manager(directory)
  meta = {'model_config': model_config, 'param_shapes': shapes(variables['params'])}
  manager.save(0, args=ocp.args.Composite(state=ocp.args.StandardSave(dict(variables)),
                                           meta=ocp.args.JsonSave(meta)))
  manager.wait_until_finished()
  manager.close()


def restore_variables(path: str) -> tuple[dict, dict]:
  """(model_config dict, numpy variables {'params'[, 'batch_stats']}) of the latest Orbax
  checkpoint in `path` (a workdir or a `save_variables` directory); FileNotFoundError if it has
  none."""
  directory = checkpoint_dir(path)
  if directory is None:
    raise FileNotFoundError(f'No Orbax checkpoint in {path} or {path}/checkpoints.')
  manager = _manager(directory)
  step = manager.latest_step()
  tree = manager.item_metadata(step)['state'].tree
  abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), tree)
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
  manager.close()
  return restored.meta['model_config'], {k: v for k, v in restored.state.items()
                                         if k in ('params', 'batch_stats') and v}
