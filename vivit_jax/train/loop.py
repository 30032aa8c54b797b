"""The training loop: data -> train step -> metrics, checkpoints and evaluation."""
import collections
import contextlib
import dataclasses
import itertools
import logging
import os
import signal
import threading
import time
from typing import Callable

import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils

from vivit_jax import data, models
from vivit_jax.saved import checkpoints as saved_checkpoints, config as saved_config
from vivit_jax.train import checkpoint, evaluators, metrics, optim, sharding, state as state_lib
from vivit_jax.train import step, tasks, validate, workdir_lock
from vivit_jax.weights import init_from

log = logging.getLogger('vivit_jax')


class TrainingInterrupted(Exception):
  """SIGTERM/SIGINT arrived; the state was checkpointed. `signum` says which."""

  def __init__(self, signum: int, message: str):
    super().__init__(message)
    self.signum = signum


class NonFiniteLossError(FloatingPointError):
  """A step's loss, gradients or update became NaN/inf; the last good checkpoint is kept."""


class _StopSignals:
  """Records SIGTERM/SIGINT instead of dying, so the loop can checkpoint and exit.

  With several processes, a stop must happen at the same step on all of them (the checkpoint is
  collective): SIGTERM is then left to JAX's preemption service, which tells every process, and
  `requested(step)` is true on all of them at the same step
  (`multihost_utils.reached_preemption_sync_point`); SIGINT keeps its default there. The service
  keeps a notice for the life of the process, so a stop step is taken once (a run resumed in the
  same process does not stop there again).
  """
  _handled_sync_points = set()

  def __enter__(self):
    self.signum = None
    self._previous = {}
    self._synced = jax.process_count() > 1
    signals = () if self._synced else (signal.SIGTERM, signal.SIGINT)
    if threading.current_thread() is threading.main_thread():  # Python's rule for handlers.
      self._previous = {s: signal.signal(s, self._record) for s in signals}
    return self

  def _record(self, signum, frame):
    del frame
    self.signum = signum

  def requested(self, step_number: int) -> int | None:
    """The signal to stop for before `step_number`, or None; call at every step."""
    if (self._synced and step_number not in self._handled_sync_points
        and multihost_utils.reached_preemption_sync_point(step_number)):
      self._handled_sync_points.add(step_number)
      self.signum = signal.SIGTERM
    return self.signum

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)


def _check_optional_keys(config, extra: dict):
  """ValueError if the model's extra inputs `extra` (batch key -> shape) and config.dataset
  disagree on a batch key the dataset adds on request (data.OPTIONAL_KEYS, e.g. 'flow')."""
  name = config.model.name
  for key, field in data.OPTIONAL_KEYS.items():
    fed = bool(config.dataset.get(field, False))
    if key in extra and not fed:
      raise ValueError(f"config.model.name='{name}' takes '{key}' but config.dataset.{field} is "
                       f"off; set --config.dataset.{field}=True.")
    if fed and key not in extra:
      raise ValueError(f"config.dataset.{field}=True but config.model.name='{name}' takes no "
                       f"'{key}' input; set --config.dataset.{field}=False or use a model that "
                       f"takes it.")


def evaluate(eval_step, state, config, batch_sharding, transform=None, evaluator=None) -> dict:
  """One pass over the eval split; returns the task's evaluator result, e.g. for classification
  {'eval/loss', 'eval/top1', 'eval/top5', 'eval/count' (videos), 'eval/views' (per video)}.

  `transform`, if given, maps each host batch before it is placed (probes, ablations);
  `evaluator` replaces the task's fresh one, for callers that read more than its result.
  """
  evaluator = evaluator or tasks.build_task(config).evaluator()
  for batch in data.make_eval_iterator(config.dataset,
                                       global_batch_size=config.train.eval_batch_size):
    batch = transform(batch) if transform else batch
    evaluator.add(jax.device_get(eval_step(state, sharding.put_batch(batch, batch_sharding))))
  return evaluator.result()


def _summed(metrics) -> list[str]:
  return [k for k in metrics if k.endswith('_sum') or k in ('count', 'grad_norm')]


@jax.jit
def _accumulate(totals: dict, metrics: dict, step_number) -> dict:
  """totals + one step's metrics, on the device; `first_bad` keeps the first non-finite step and
  `first_faults` what went non-finite there (step.NON_FINITE_* bits)."""
  bad = (metrics['finite'] == 0) & (totals['first_bad'] == 0)
  return {**{k: totals[k] + metrics[k] for k in _summed(metrics)}, 'lr': metrics['lr'],
          'steps': totals['steps'] + 1,
          'first_bad': jnp.where(bad, step_number, totals['first_bad']),
          'first_faults': jnp.where(bad, metrics['faults'], totals['first_faults'])}


MAX_STEPS_AHEAD = 2  # Steps the host may dispatch ahead of the device (bounds queued batches).


class _TrainMetrics:
  """Sums the steps' metrics on the device; the host reads them only in `check` and `average`
  (at log and checkpoint time), so no step waits for the host, and it waits for the device only
  to stay at most MAX_STEPS_AHEAD steps ahead. Reading raises NonFiniteLossError naming the first
  step since the last average that went non-finite."""

  def __init__(self, describe):
    """`describe(step_number, faults) -> str`: the error message for a non-finite step."""
    self.totals = None
    self.describe = describe
    self._in_flight = collections.deque()

  def push(self, step_number: int, metrics_on_device: dict):
    if self.totals is None:
      m = metrics_on_device
      self.totals = {**{k: jnp.zeros_like(m[k]) for k in _summed(m)}, 'lr': m['lr'],
                     'steps': jnp.int32(0), 'first_bad': jnp.int32(0),
                     'first_faults': jnp.int32(0)}
    self.totals = _accumulate(self.totals, metrics_on_device, step_number)
    self._in_flight.append(self.totals['steps'])
    if len(self._in_flight) > MAX_STEPS_AHEAD:
      self._in_flight.popleft().block_until_ready()

  def check(self):
    """Raises NonFiniteLossError if a step since the last average went non-finite; call before
    every checkpoint."""
    if self.totals is None:
      return None
    host = jax.device_get(self.totals)
    if host['first_bad']:
      raise NonFiniteLossError(self.describe(int(host['first_bad']), int(host['first_faults'])))
    return host

  def average(self) -> dict:
    host = self.check()
    self.totals = None
    total = {k: float(v) for k, v in host.items() if k.endswith('_sum') or k == 'count'}
    return {**tasks.summarize(total, 'train'),
            'train/grad_norm': float(host['grad_norm']) / int(host['steps']),
            'train/lr': float(host['lr'])}


def _prefetch(batches, batch_sharding, size: int = 2):
  """Yields host `batches` placed on the mesh, `size` - 1 ahead: the next batch is put (an
  asynchronous transfer) before the current step is dispatched, so it overlaps compute."""
  queue = collections.deque()
  for batch in batches:
    queue.append(sharding.put_batch(batch, batch_sharding))
    if len(queue) == size:
      yield queue.popleft()
  yield from queue


@dataclasses.dataclass
class Experiment:
  """Everything built from a config before the first step (`plan`); `setup` adds the state and
  the checkpointer of a workdir."""
  mesh: jax.sharding.Mesh
  rules: tuple
  model: object
  task: object
  tx: object
  schedule: object
  seed: int
  abstract_state: state_lib.TrainState  # jax.ShapeDtypeStruct leaves carrying the shardings.
  state_shardings: object
  batch_sharding: jax.sharding.NamedSharding
  extra_input_shapes: dict  # The model's inputs besides the video: batch key -> shape.
  make_state: Callable[[], state_lib.TrainState]  # A fresh state, made into its shardings.
  state: state_lib.TrainState | None = None
  ckpt: checkpoint.Checkpointer | None = None

  def train_step(self):
    """The jitted `(state, batch) -> (state, metrics)` of `step.make_train_step`."""
    return step.make_train_step(self.model, self.task, self.tx, self.schedule, seed=self.seed,
                                **self._step_layout())

  def eval_step(self):
    """The jitted `(state, batch) -> task.eval_outputs` of `step.make_eval_step`."""
    return step.make_eval_step(self.model, self.task, **self._step_layout())

  def _step_layout(self) -> dict:
    return dict(mesh=self.mesh, rules=self.rules, state_shardings=self.state_shardings,
                batch_sharding=self.batch_sharding)


def plan(config, mesh: jax.sharding.Mesh, video_shape) -> Experiment:
  """The experiment of `config` on `mesh` for batches of videos `video_shape` (B, T, H, W, C):
  model, task, optimizer and the state's layout, without computing the state."""
  rules = tuple(tuple(r) for r in config.sharding_rules)
  model = models.build(config.model)
  tx, schedule = optim.make_optimizer(config.optimizer, config.train.num_steps)
  extra = models.extra_input_shapes(model, video_shape)
  abstract, state_shardings, make_state = state_lib.plan_train_state(
      model, tx, video_shape, mesh=mesh, rules=rules, seed=config.seed, extra_input_shapes=extra)
  return Experiment(mesh, rules, model, tasks.build_task(config), tx, schedule, config.seed,
                    abstract, state_shardings, sharding.batch_sharding(mesh, rules), extra,
                    make_state)


def setup(config, workdir: str) -> Experiment:
  """`plan` on the mesh of config.mesh, with the state: restored from workdir if it has a
  checkpoint, else initialised from config.init_from.path if set, else fresh."""
  validate.validate(config)
  mesh = sharding.make_mesh(config.mesh)
  rules = tuple(tuple(r) for r in config.sharding_rules)
  validate.check_against(config, sharding.batch_shards(mesh, rules))
  ds = config.dataset
  input_shape = (sharding.batch_shards(mesh, rules), ds.num_frames, ds.crop_size, ds.crop_size, 3)
  exp = plan(config, mesh, input_shape)
  exp.task.check_dataset(data.dataset_info(ds), ds.name)
  _check_optional_keys(config, exp.extra_input_shapes)
  exp.ckpt = checkpoint.Checkpointer(
      os.path.join(saved_checkpoints.absolute(workdir), 'checkpoints'),
      every_steps=config.checkpoint.every_steps, keep=config.checkpoint.keep,
      model_config=config.model.to_dict(), optimizer_config=config.optimizer.to_dict())
  exp.state = exp.ckpt.restore_latest(exp.abstract_state)  # Resuming always wins over init_from.
  if exp.state is None:
    exp.state = exp.make_state()
    pretrained = config.get('init_from')
    if pretrained and pretrained.path:
      variables = init_from.load_init_variables(
          pretrained, config.model,
          {'params': exp.state.params, 'batch_stats': exp.state.batch_stats}, input_shape[1:4])
      exp.state = exp.state.replace(
          params=jax.device_put(variables['params'], exp.state_shardings.params),
          batch_stats=jax.device_put(variables['batch_stats'], exp.state_shardings.batch_stats))
  return exp


def restore_for_eval(config, workdir: str) -> Experiment:
  """The experiment with `workdir`'s latest checkpoint (FileNotFoundError if it has none)."""
  exp = setup(config, workdir)
  latest = exp.ckpt.latest_step()
  exp.ckpt.close()
  if latest is None:
    raise FileNotFoundError(f'No checkpoint in {exp.ckpt.directory}; train first with '
                            f'`python -m vivit_jax.main --config CONFIG --workdir {workdir}`.')
  return exp


def run(config, workdir: str) -> dict:
  """Trains and evaluates `config` in `workdir`, resuming from its latest checkpoint; one run per
  workdir at a time (`workdir_lock`). A workdir already trained to config.train.num_steps only
  returns its final evaluation (from metrics.jsonl; evaluated if the run stopped before it).

  Returns the final evaluation metrics {'eval/top1', 'eval/top5', 'eval/loss', 'eval/count'}.
  """
  validate.validate(config)  # Before the workdir is created.
  with workdir_lock.hold(workdir):
    exp = setup(config, workdir)
    eval_step = exp.eval_step()
    writer = metrics.MetricWriter(workdir, enabled=jax.process_index() == 0,
                                  resume_step=int(exp.state.step))
    outputs = evaluators.build(config.get('evals', exp.task.evals), exp, config, workdir)

    def evaluator(state, title: str, done: int) -> dict:
      results = evaluate(eval_step, state, config, exp.batch_sharding)
      _report_eval(title, done, results, writer, config.dataset.eval_split)
      for output in outputs:  # E.g. WORKDIR/reconstructions/step_N.png
        output.write(state, done)
      return results

    trained = int(exp.state.step)
    if trained >= config.train.num_steps:
      exp.ckpt.close()
      log.info('Workdir %s is already trained to step %d (config.train.num_steps=%d): nothing to '
               'train. Evaluate again with `python -m vivit_jax.evaluate --workdir %s`, or train '
               'on with a larger --config.train.num_steps.', workdir, trained,
               config.train.num_steps, workdir)
      # Its final evaluation, unless the run was stopped before writing it.
      return (metrics.final_eval(workdir, trained)
              or evaluator(exp.state, 'Final evaluation', trained))
    if jax.process_index() == 0:  # The tools that take only --workdir read it back.
      saved_config.save_config(config, workdir)
    try:
      state = _train(exp, config, writer, evaluator)
    except BaseException:
      with contextlib.suppress(checkpoint.CheckpointSaveError):  # The first error is the news.
        exp.ckpt.close()
      raise
    exp.ckpt.close()
    return evaluator(state, 'Final evaluation', config.train.num_steps)


def _train(exp: Experiment, config, writer: metrics.MetricWriter, evaluator):
  """The training steps from the restored step to config.train.num_steps, with an
  `evaluator(state, title, step)` every eval_every_steps; returns the state, saved as the final
  checkpoint."""
  state, ckpt, batch_sharding, ds = exp.state, exp.ckpt, exp.batch_sharding, config.dataset
  first = int(state.step)
  num_steps, train = config.train.num_steps, config.train
  train_step = exp.train_step()
  log.info('Training %s on %s from step %d to %d on mesh %s', config.model.name, ds.name,
           first, num_steps, dict(exp.mesh.shape))
  train_batches = _prefetch(itertools.islice(data.make_train_iterator(
      ds, global_batch_size=train.batch_size, seed=config.seed, start_step=first),
      num_steps - first), batch_sharding)
  progress = metrics.Progress(first, num_steps, train.batch_size)
  train_metrics = _TrainMetrics(
      lambda step_number, faults: _non_finite_message(step_number, faults, config, ckpt))
  start_time = time.perf_counter()
  with _StopSignals() as stop:
    for i in range(first, num_steps):
      ckpt.raise_if_save_failed()
      if stop.requested(i) is not None:
        train_metrics.check()
        ckpt.save(state, i, force=True)
        ckpt.close()
        raise TrainingInterrupted(stop.signum, f'Stopped by signal {stop.signum} at step {i}; '
                                  f'checkpoint saved. Rerun the same command to resume.')
      state, step_metrics = train_step(state, next(train_batches))
      train_metrics.push(i + 1, step_metrics)
      done = i + 1
      if done % train.log_every_steps == 0 or done == num_steps:
        summary = train_metrics.average()
        line, clips_per_s = progress.line(done, summary)
        log.info(line)
        writer.write(done, {**summary, 'train/clips_per_s': clips_per_s})
      if ckpt.due(done):
        train_metrics.check()  # Never checkpoint past a step that went non-finite.
        ckpt.save(state, done)
      if done % train.eval_every_steps == 0 and done != num_steps:
        evaluator(state, f'step {done} eval', done)
        progress.pause(done)
    train_metrics.check()
  ckpt.save(state, num_steps, force=True)
  log.info('Trained steps %d-%d in %.1f s', first, num_steps, time.perf_counter() - start_time)
  return state


def _non_finite_message(step_number: int, faults: int, config, ckpt) -> str:
  """What went non-finite in the update of `step_number`, its likely cause and the fix."""
  parts = [name for bit, name in ((step.NON_FINITE_LOSS, 'loss'),
                                  (step.NON_FINITE_GRADS, 'gradients'),
                                  (step.NON_FINITE_UPDATE, 'updated parameters or optimizer state'))
           if faults & bit]
  opt = config.optimizer
  if faults == step.NON_FINITE_UPDATE:  # Finite loss and gradients: the update overflowed.
    cause = (f'the update overflowed: config.optimizer.learning_rate={opt.learning_rate} is too '
             f'high, or config.model.param_dtype={config.model.get("param_dtype", "float32")} '
             f'too narrow (use float32)')
  else:
    cause = (f'divergence or bad input: lower config.optimizer.learning_rate '
             f'({opt.learning_rate}) or config.optimizer.grad_clip_norm '
             f'({opt.get("grad_clip_norm")}), or check the data for NaN/inf')
  return (f'Non-finite {" and ".join(parts)} in the update of step {step_number}: it was not '
          f'applied and training stopped; the last good checkpoint (step {ckpt.last_good}) is '
          f'kept and a rerun resumes from it. Likely cause: {cause}.')


def _report_eval(title: str, step_number: int, results: dict, writer, split: str):
  """Logs 'TITLE on SPLIT (N videos): top1 ..., top5 ..., loss ...' and writes the metrics."""
  values = ', '.join(f'{k[5:]} {v:.4f}' for k, v in results.items()
                     if k not in ('eval/count', 'eval/views'))
  log.info('%s on %s (%d videos): %s', title, split, results['eval/count'], values)
  writer.write(step_number, results)
