"""One measured row of the speed harness, shared by the tests of its parts (one set of compiles)."""
import pytest

from tests.tools.benchmarks.speed.small_configs import small
from tools.benchmarks.speed import harness


@pytest.fixture(scope='session')
def vivit1_row():
  """harness.row of the small vivit1 with its HF peer, the phases and a 2-step profile."""
  return harness.row('vivit1', small('vivit1'), batch_size=2, steps=2, matmul_rate=1e11,
                     warmup=1, profile_steps=2)
