"""Orbax checkpoints of the train state, with a guard against another model's checkpoint."""
import json
import logging

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from vivit_jax.train.state import TrainState

log = logging.getLogger('vivit_jax')


class CheckpointMismatchError(ValueError):
  """The workdir holds a checkpoint of a different model (parameter names or shapes)."""


def param_shapes(params) -> dict:
  """{'path/to/param': [dims]} for every parameter."""
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  return {jax.tree_util.keystr(path, simple=True, separator='/'): list(np.shape(x))
          for path, x in flat}


def _describe_mismatch(saved: dict, current: dict) -> str:
  missing = sorted(set(current) - set(saved))
  extra = sorted(set(saved) - set(current))
  reshaped = sorted(k for k in set(saved) & set(current) if saved[k] != current[k])
  parts = []
  if missing:
    parts.append(f'{len(missing)} parameters not in the checkpoint (e.g. {missing[:3]})')
  if extra:
    parts.append(f'{len(extra)} checkpoint parameters not in the model (e.g. {extra[:3]})')
  if reshaped:
    k = reshaped[0]
    parts.append(f'{len(reshaped)} with other shapes (e.g. {k}: checkpoint {saved[k]}, '
                 f'model {current[k]})')
  return '; '.join(parts)


class Checkpointer:
  """Saves every `every_steps` (and on demand), keeps the latest `keep`, resumes the latest."""

  def __init__(self, directory, *, every_steps: int, keep: int, model_config: dict):
    self.model_config = model_config
    options = ocp.CheckpointManagerOptions(
        save_decision_policy=checkpoint_managers.FixedIntervalPolicy(every_steps),
        preservation_policy=checkpoint_managers.LatestN(keep),
        enable_async_checkpointing=True)
    self.directory = directory
    self.manager = ocp.CheckpointManager(directory, options=options)

  def due(self, step: int) -> bool:
    """Whether `step` is a scheduled save (every_steps divides it)."""
    return self.manager.should_save(step)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, state: TrainState, step: int, *, force: bool = False) -> bool:
    """Saves `state` as `step` if every_steps divides it (or `force`) and `step` is not saved yet.

    Asynchronous: returns at once, `wait()` or `close()` blocks until written.
    """
    if step in self.manager.all_steps() or not (force or self.due(step)):
      return False
    meta = {'model_config': self.model_config, 'param_shapes': param_shapes(state.params)}
    return self.manager.save(
        step, force=force,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                meta=ocp.args.JsonSave(meta)))

  def wait(self):
    self.manager.wait_until_finished()

  def restore_latest(self, target: TrainState) -> TrainState | None:
    """Restores the latest checkpoint onto `target`'s shapes and shardings (None if none).

    Raises:
      CheckpointMismatchError: the checkpoint was written by a different model.
    """
    step = self.manager.latest_step()
    if step is None:
      return None
    meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    mismatch = _describe_mismatch(meta['param_shapes'], param_shapes(target.params))
    if mismatch:
      saved = json.dumps(meta.get('model_config'), sort_keys=True)
      raise CheckpointMismatchError(
          f'The checkpoint at {self.directory}/{step} was written by a different model '
          f'({mismatch}). Its config.model was {saved}. Use a new --workdir for this model, '
          f'or run with the config.model that wrote it.')
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), target)
    restored = self.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))).state
    log.info('Restored checkpoint at step %d from %s', step, self.directory)
    return restored

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()
