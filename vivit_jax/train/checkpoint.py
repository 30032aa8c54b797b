"""Orbax checkpoints of the train state: only finite states are saved, a failed save stops the
run, a damaged checkpoint is moved aside for the previous one, and a checkpoint of another model
or optimizer is refused by its config."""
import json
import logging

import jax
from flax import traverse_util
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils
from orbax.checkpoint import checkpoint_managers

from vivit_jax.saved.checkpoints import shapes
from vivit_jax.train import step as step_lib
from vivit_jax.train.state import TrainState

log = logging.getLogger('vivit_jax')

DAMAGED_DIR = 'damaged'  # CHECKPOINTS/damaged/STEP: checkpoints that could not be read.
# config.model fields that change how the model is computed, not what: free to change on resume.
RUNTIME_FIELDS = ('attention_impl', 'remat', 'dtype')


class CheckpointMismatchError(ValueError):
  """The workdir holds a checkpoint of a different model or optimizer."""


class NonFiniteStateError(FloatingPointError):
  """A state to be saved holds NaN or inf."""


class CheckpointSaveError(OSError):
  """A save failed (e.g. disk full); the previous checkpoint is the last good one."""


class NoReadableCheckpointError(FileNotFoundError):
  """Every checkpoint in the directory is damaged (all were moved aside)."""


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


def _changed_fields(saved: dict | None, current: dict, ignore=()) -> list[str]:
  """'field: saved -> current' for every field (nested: a.b) that differs (JSON-compared, so
  tuples equal lists)."""
  if saved is None:
    return []
  flat_saved, flat_current = (traverse_util.flatten_dict(json.loads(json.dumps(d)), sep='.')
                              for d in (saved, current))
  return [f'{k}: {flat_saved.get(k)!r} -> {flat_current.get(k)!r}'
          for k in sorted(set(flat_saved) | set(flat_current))
          if k not in ignore and flat_saved.get(k) != flat_current.get(k)]


_all_finite = jax.jit(step_lib.all_finite)


class Checkpointer:
  """Saves every `every_steps` (and on demand), keeps the latest `keep` (>= 1), resumes the
  latest readable one."""

  def __init__(self, directory, *, every_steps: int, keep: int, model_config: dict,
               optimizer_config: dict | None = None):
    if keep < 1 or every_steps < 1:
      raise ValueError(f'config.checkpoint.keep={keep} and every_steps={every_steps} must be '
                       f'>= 1 (keep=1 keeps only the latest checkpoint).')
    self.model_config = model_config
    self.optimizer_config = optimizer_config
    options = ocp.CheckpointManagerOptions(
        save_decision_policy=checkpoint_managers.FixedIntervalPolicy(every_steps),
        preservation_policy=checkpoint_managers.LatestN(keep),
        enable_async_checkpointing=True)
    self.directory = directory
    self.manager = ocp.CheckpointManager(directory, options=options)
    self.last_good = self.manager.latest_step()  # The newest checkpoint known to be complete.
    self._pending = []  # Saves in flight.

  def due(self, step: int) -> bool:
    """Whether `step` is a scheduled save (every_steps divides it)."""
    return self.manager.should_save(step)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def _save_failed(self, error: Exception) -> CheckpointSaveError:
    return CheckpointSaveError(
        f'Saving a checkpoint to {self.directory} failed ({type(error).__name__}: {error}). '
        f'Training stopped; the last good checkpoint is step {self.last_good}. Free disk space '
        f'(or fix the directory) and rerun the same command to resume from it.')

  def raise_if_save_failed(self):
    """Raises CheckpointSaveError if an asynchronous save has failed (call every step)."""
    if not self.manager.is_saving_in_progress():
      self._promote_finished()
      if self._pending:  # Finished, yet not on disk: Orbax keeps the reason for the next wait.
        failed, self._pending = self._pending, []
        try:
          self.manager.wait_until_finished()
        except Exception as e:
          raise self._save_failed(e) from e
        raise self._save_failed(RuntimeError(f'step {failed[0]} was not written'))
    try:
      self.manager.check_for_errors()
    except Exception as e:  # Orbax re-raises whatever the background write raised.
      raise self._save_failed(e) from e

  def _promote_finished(self):
    """Saves in flight that are now complete on disk become the last good checkpoint."""
    if not self._pending:
      return
    on_disk = [s for s in self._pending if (epath.Path(self.directory) / str(s)).exists()]
    # Older ones finished too (and the retention policy may have removed them since).
    finished = [s for s in self._pending if on_disk and s <= max(on_disk)]
    self._pending = [s for s in self._pending if s not in finished]
    self.last_good = max([*finished, *([self.last_good] if self.last_good is not None else [])],
                         default=None)

  def save(self, state: TrainState, step: int, *, force: bool = False) -> bool:
    """Saves `state` as `step` if every_steps divides it (or `force`) and `step` is not saved yet.

    Asynchronous: returns at once; `close()` blocks until written. A failure surfaces in
    `raise_if_save_failed` (or here, if it fails at once) as CheckpointSaveError.
    Raises NonFiniteStateError, saving nothing, if the state holds NaN or inf.
    """
    self.raise_if_save_failed()
    self._promote_finished()
    if step in self.manager.all_steps() or not (force or self.due(step)):
      return False
    if not _all_finite(state):
      raise NonFiniteStateError(
          f'Refusing to checkpoint step {step}: the state holds NaN or inf. The last good '
          f'checkpoint (step {self.last_good}) is kept.')
    meta = {'model_config': self.model_config, 'optimizer_config': self.optimizer_config,
            'param_shapes': shapes(state.params), 'state_shapes': shapes(state)}
    try:
      saved = self.manager.save(step, force=force, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
    except OSError as e:
      raise self._save_failed(e) from e
    if saved:
      self._pending.append(step)
    return saved

  def restore_latest(self, target: TrainState) -> TrainState | None:
    """Restores the latest readable checkpoint onto `target`'s shapes and shardings (None if
    there is none). A checkpoint that cannot be read is logged, moved to
    CHECKPOINTS/damaged/STEP and the previous one tried.

    Raises:
      CheckpointMismatchError: the checkpoint was written by a different model or optimizer.
      NoReadableCheckpointError: there were checkpoints, and none could be read.
    """
    damaged = []
    while (step := self.manager.latest_step()) is not None:
      try:
        return self._restore(step, target)
      except CheckpointMismatchError:
        raise
      except Exception as e:  # Orbax and TensorStore raise many kinds for a damaged file.
        damaged.append(self._move_aside(step, e))
    if damaged:
      raise NoReadableCheckpointError(
          f'No readable checkpoint in {self.directory}: moved aside {", ".join(damaged)}. Start '
          f'afresh (rerun: training starts from step 0) or restore a backup there.')
    return None

  def _restore(self, step: int, target: TrainState) -> TrainState:
    meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    self._check_compatible(step, meta, target)
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), target)
    restored = self.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))).state
    log.info('Restored checkpoint at step %d from %s', step, self.directory)
    self.last_good = step
    return restored

  def _check_compatible(self, step: int, meta: dict, target: TrainState):
    """CheckpointMismatchError naming the changed config fields (and the shapes that differ)."""
    where = f'{self.directory}/{step}'
    fresh = ('Use a new --workdir, or fine-tune from this run in a new workdir with '
             f'--config.init_from.path={epath.Path(self.directory).parent}')
    model_changes = _changed_fields(meta.get('model_config'), self.model_config,
                                    ignore=RUNTIME_FIELDS)
    mismatch = _describe_mismatch(meta['param_shapes'], shapes(target.params))
    if model_changes or mismatch:
      changes = f'config.model changed: {"; ".join(model_changes)}. ' if model_changes else ''
      shapes_text = f'Parameters differ: {mismatch}. ' if mismatch else ''
      raise CheckpointMismatchError(
          f'The checkpoint at {where} was written by a different model. {changes}{shapes_text}'
          f'Rerun with the config.model that wrote it (saved in the checkpoint), or: {fresh}.')
    saved_state = meta.get('state_shapes')
    if saved_state is not None and saved_state != shapes(target):
      changes = _changed_fields(meta.get('optimizer_config'), self.optimizer_config or {})
      raise CheckpointMismatchError(
          f'The checkpoint at {where} holds another optimizer state: config.optimizer changed '
          f'({"; ".join(changes) or "same fields, another state layout"}). Resume with the '
          f'optimizer that wrote it, or: {fresh}.')

  def _move_aside(self, step: int, error: Exception) -> str:
    """Moves the unreadable `step` to CHECKPOINTS/damaged/STEP; returns a description."""
    source = epath.Path(self.directory) / str(step)
    target = epath.Path(self.directory) / DAMAGED_DIR / str(step)
    log.warning('Checkpoint step %d in %s cannot be read (%s: %s); moving it to %s and trying '
                'the previous one.', step, self.directory, type(error).__name__,
                str(error)[:300], target)
    if jax.process_index() == 0:
      target.parent.mkdir(parents=True, exist_ok=True)
      source.rename(target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f'checkpoint_moved_aside_{step}')
    self.manager.reload()
    return f'step {step} (to {target}: {type(error).__name__})'

  def close(self):
    """Waits for the pending save and closes; CheckpointSaveError if it failed."""
    try:
      try:
        self.manager.wait_until_finished()
      except Exception as e:
        raise self._save_failed(e) from e
      self.raise_if_save_failed()
    finally:
      self.manager.close()
