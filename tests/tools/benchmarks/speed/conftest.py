"""One measured row of the speed harness, shared by the tests of its parts (one set of compiles)."""
import dataclasses

import pytest

from tests.tools.benchmarks.speed.small_configs import small
from tools.benchmarks.speed import harness, ours


@dataclasses.dataclass
class Measured:
  row: dict  # harness.row's result.
  compiled: ours.Compiled  # The step it timed, at the state its last step left.
  phases: ours.Phases  # Its forward and forward + backward calls.


@pytest.fixture(scope='session')
def measured():
  """harness.row of the small videomae_finetune (in-graph Mixup/CutMix, label smoothing and
  stochastic depth) with its HF peer, the phases and a 2-step profile; and the compiled step
  and phases it timed."""
  spied = {}
  with pytest.MonkeyPatch.context() as patch:
    for name in ('compile_train_step', 'compile_phases'):
      real = getattr(ours, name)
      patch.setattr(ours, name, lambda *args, real=real, name=name, **kwargs: spied.setdefault(
          name, real(*args, **kwargs)))
    row = harness.row('videomae_finetune', small('videomae_finetune'), batch_size=2, steps=2,
                      matmul_rate=1e11, warmup=1, profile_steps=2)
  return Measured(row, spied['compile_train_step'], spied['compile_phases'])
