"""Compile-only targets (compile_only.aot): out-of-memory refusals and kernels read from the
compiler's text, the CPU train step compiled with its state donated, and the H200 and TPU v5e
targets where the `aot` extra's wheels are installed."""
import pytest

from tests.helpers import tiny_config
from tools.benchmarks.compile_only import aot


def test_tpu_refusal_message_and_kernel_markers():
  error = RuntimeError('RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required '
                       'for HLO temporaries (84.50G) exceeds available HBM (15.75G).')
  assert aot.is_oom(error)
  assert aot.needed_bytes_from_error(error) == int(84.5 * 2 ** 30)
  assert aot.kernel_of('stablehlo.custom_call @__cudnn$fmhaSoftmax(%0)') == 'cudnn'
  assert aot.kernel_of('stablehlo.custom_call @tpu_custom_call(%0)') == 'pallas_tpu'
  assert aot.kernel_of('stablehlo.dot_general %0, %1') == 'xla'


def test_cpu_train_step_compiles_with_donated_state():
  """The real path (config -> model, optimizer, state plan, make_train_step on abstract inputs)
  compiled for the CPU: the state is an argument donated to the output."""
  result = aot.compile_train_step(tiny_config(), 2, 'cpu')
  assert result.oom is None and result.kernel == 'xla'
  assert result.memory_bytes > result.argument_bytes > 0
  assert 0 < result.alias_bytes <= result.argument_bytes


@pytest.mark.parametrize('target', ['h200', 'v5e'])
def test_accelerator_targets_compile_a_tiny_step(target):
  """Needs the `aot` extra (pip install -e '.[aot]'); skipped without its wheels."""
  if aot.missing(target):
    pytest.skip(aot.missing(target))
  config = tiny_config()
  config.model.dtype = 'bfloat16'
  result = aot.compile_train_step(config, 2, target)
  assert result.oom is None and 0 < result.memory_bytes < aot.target(target).capacity_bytes
  assert result.argument_bytes > 0 and result.temp_bytes > 0
  assert aot.device(target).platform == {'h200': 'gpu', 'v5e': 'tpu'}[target]
