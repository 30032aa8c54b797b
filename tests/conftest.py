"""Test setup: 8 simulated CPU devices (set before JAX initialises), TF kept off accelerators."""
import os
import tempfile

# LLVM's optimisation level 0 halves XLA:CPU compile times (the suite's main cost; its tiny steps
# run ~2x slower, which they can afford).
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8 '
                                   '--xla_backend_optimization_level=0')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# One persistent compilation cache for every test process and the subprocesses they start: the
# suite compiles the same small train steps in many tests, and XLA compiles dominate its time.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                      os.path.join(tempfile.gettempdir(), 'vivit_jax_tests_jax_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')

import jax  # noqa: E402  (must follow the flags above)

jax.config.update('jax_num_cpu_devices', 8)

import pytest  # noqa: E402


@pytest.fixture(scope='session')
def synthetic_data_dir(tmp_path_factory):
  """A TFDS data dir holding the built synthetic_motion dataset (built once per session)."""
  from vivit_jax import data
  from tests.helpers import tiny_config
  config = tiny_config()
  config.dataset.data_dir = str(tmp_path_factory.mktemp('tfds'))
  data.get_builder(config.dataset)
  return config.dataset.data_dir


@pytest.fixture(scope='session')
def tiny_workdir(synthetic_data_dir, tmp_path_factory):
  """A workdir of tiny_config trained 2 steps (checkpoint + config.json), shared by the tools'
  tests (evaluate, predict, static_frame_probe)."""
  from tests.helpers import trained_workdir
  path = str(tmp_path_factory.mktemp('trained'))
  trained_workdir(synthetic_data_dir, path)
  return path


# Files of several minutes each (one long test or a long shared setup), run first: with
# `--dist loadfile` a worker that draws one of them last leaves the others idle while it runs.
LONG_FILES = ('train/test_multihost.py', 'test_notebook.py', 'test_visualize.py',
              'test_stream.py', 'models/test_slowfast.py', 'models/test_continual.py',
              'weights/test_torch_checkpoint.py', 'train/test_loop.py')


def pytest_collection_modifyitems(items):
  """Puts the tests of LONG_FILES first (stable: each file keeps its order)."""
  items.sort(key=lambda item: not str(item.path).endswith(LONG_FILES))
