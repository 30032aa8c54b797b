"""Our side of the speed benchmark (speed.ours): the phases compute the step's own loss and
gradients, FLOPs are counted on the CPU backend, the summary's numbers, the largest-batch search
and its prediction from compiled bytes."""
import jax
import numpy as np
import optax
import pytest

from tests.tools.benchmarks.speed.small_configs import small
from tools.benchmarks.speed import ours
from vivit_jax.models import flops


def test_phases_compute_the_train_steps_loss_and_gradients(measured):
  """Our forward and forward + backward calls give the step's own loss and gradients (before
  clipping and the update) at the same state and batch, with the first step's RNGs."""
  compiled, phases = measured.compiled, measured.phases
  step = compiled.state.step  # Back to step 0: the phases draw the first step's RNGs.
  compiled.state = compiled.state.replace(
      step=jax.device_put(np.zeros(step.shape, step.dtype), step.sharding))
  loss = phases.forward()
  loss_again, grads = phases.forward_backward()
  compiled.state, metrics = compiled.run(compiled.state, compiled.batch)  # Donates the state.
  step_loss = float(metrics['loss_sum']) / float(metrics['count'])
  assert float(loss) == pytest.approx(float(loss_again), rel=1e-6)
  assert float(loss) == pytest.approx(step_loss, rel=1e-5)
  assert float(optax.tree.norm(grads)) == pytest.approx(float(metrics['grad_norm']), rel=1e-4)
  phases.forward()
  phases.forward_backward()  # Reads the state the step left (the old one was donated).


def test_flops_are_counted_on_the_cpu_backend(monkeypatch):
  """The counting lowerings run on jax.devices('cpu') (which gives a cost analysis), whatever the
  default device: a Lowered of another platform reports None, as GPU/TPU plugins do."""
  real = jax.stages.Lowered.cost_analysis
  platforms = []

  def cost_analysis(self):
    platforms.append(self._lowering.compile_args['backend'].platform)  # pylint: disable=protected-access
    return real(self) if platforms[-1] == 'cpu' else None

  monkeypatch.setattr(jax.stages.Lowered, 'cost_analysis', cost_analysis)
  config = small('vivit1')
  counted, source = ours.model_train_flops(config, 2)
  assert source == 'xla-cpu' and counted > 0
  assert flops.forward_flops(config.model, ours.clip_shape(config))[1] == 'xla-cpu'
  assert set(platforms) == {'cpu'}


@pytest.mark.parametrize('name', ['videomae_pretrain', 'vivit2'])
def test_summary_from_step_times(name):
  config = small(name)
  video = np.zeros((2, *ours.clip_shape(config), 3), np.float32)
  compiled = ours.Compiled(run=None, state=None, batch={'video': video}, compile_s=1.5,
                           train_flops=4e9, memory=None)
  record = ours.summary(config, compiled, [0.5, 0.25, 1.0])
  assert record['step_ms'] == 500 and record['fastest_step_ms'] == 250
  assert record['clips_per_s'] == 4 and record['train_flops_per_s'] == 8e9
  assert record['gflops_train_per_clip'] == 2 and record['compile_s'] == 1.5
  assert record['peak_device_bytes'] is None  # CPU keeps no memory statistics.
  assert record['params'] == flops.param_count(config.model, ours.clip_shape(config))
  # Pre-training's forward too (xla_flops draws its masks from a fixed key).
  assert record['gflops_forward_per_clip'] == pytest.approx(
      flops.xla_flops(config.model, ours.clip_shape(config)) / 1e9)
  assert record['flops_source'] == dict(train=None, forward='xla-cpu')


def test_largest_batch_doubles_then_bisects():
  tried = []

  def fits_at(b):
    tried.append(b)
    return b <= 37

  assert ours.largest_batch(fits_at) == (37, 38)
  assert tried == [1, 2, 4, 8, 16, 32, 64, 48, 40, 36, 38, 37]
  assert ours.largest_batch(lambda b: False) == (0, 1)
  assert ours.largest_batch(lambda b: True, limit=64) == (64, None)
  assert ours.is_oom(RuntimeError('RESOURCE_EXHAUSTED: Out of memory while trying to allocate'))
  assert not ours.is_oom(ValueError('bad shape'))


@pytest.mark.parametrize('start, expected_tries', [(35, [35, 38, 36, 37]), (40, [40, 37, 38])])
def test_largest_batch_from_a_prediction_steps_by_the_growth(start, expected_tries):
  tried = []

  def fits_at(b):
    tried.append(b)
    return b <= 37

  assert ours.largest_batch(fits_at, start=start, growth=1.0625) == (37, 38)
  assert tried == expected_tries
  tried.clear()  # Within 10%: 35 runs, 38 does not, no bisection.
  assert ours.largest_batch(fits_at, start=35, growth=1.0625, tolerance=0.1) == (35, 38)
  assert tried == [35, 38]


def test_memory_at_two_batches_predicts_the_largest_batch():
  linear = lambda b: 1000 + 300 * b  # noqa: E731
  assert ours.predict_largest_batch(linear, linear(37) + 299) == dict(
      predicted=37, fixed_bytes=1000, per_clip_bytes=300)
  config = small('vivit1')
  assert 0 < ours.compiled_bytes(config, 2) < ours.compiled_bytes(config, 16)
  assert ours.device_capacity() is None  # CPU: no limit, so a search doubles from 1.
