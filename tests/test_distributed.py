"""When vivit_jax.distributed starts jax.distributed, and with which arguments (the real 2-process
run: tests/train/test_multihost.py)."""
import jax
import pytest

from vivit_jax import distributed

ENV = ('TPU_WORKER_HOSTNAMES', 'SLURM_NTASKS', 'SLURM_NPROCS', 'OMPI_COMM_WORLD_SIZE',
       'JAX_COORDINATOR_ADDRESS')


@pytest.fixture
def calls(monkeypatch):
  """The jax.distributed.initialize calls made (none really start), in a clean environment."""
  for name in ENV:
    monkeypatch.delenv(name, raising=False)
  made = []
  monkeypatch.setattr(jax.distributed, 'initialize', lambda **kwargs: made.append(kwargs))
  return made


def test_single_process_starts_nothing(calls):
  assert distributed.detected_cluster() is None
  assert distributed.initialize() is False and calls == []


@pytest.mark.parametrize('name, value, cluster', [
    ('TPU_WORKER_HOSTNAMES', 'w-0,w-1', 'tpu pod'), ('SLURM_NTASKS', '4', 'slurm'),
    ('OMPI_COMM_WORLD_SIZE', '2', 'openmpi'), ('JAX_COORDINATOR_ADDRESS', '10.0.0.1:1234',
                                               'JAX_COORDINATOR_ADDRESS')])
def test_launchers_are_detected_and_jax_reads_their_environment(calls, monkeypatch, name, value,
                                                                 cluster):
  monkeypatch.setenv(name, value)
  assert distributed.detected_cluster() == cluster
  assert distributed.initialize() is True and calls == [{}]


@pytest.mark.parametrize('name, value', [('TPU_WORKER_HOSTNAMES', 'w-0'), ('SLURM_NTASKS', '1'),
                                         ('OMPI_COMM_WORLD_SIZE', 'x')])
def test_one_worker_or_garbage_is_a_single_process(calls, monkeypatch, name, value):
  monkeypatch.setenv(name, value)
  assert distributed.initialize() is False and calls == []


def test_multihost_flag_and_explicit_arguments(calls):
  assert distributed.initialize(multihost=True) is True and calls == [{}]
  distributed.initialize('127.0.0.1:1234', 2, 1)
  assert calls[-1] == dict(coordinator_address='127.0.0.1:1234', num_processes=2, process_id=1)


def test_partial_or_bad_arguments_are_refused(calls):
  with pytest.raises(ValueError, match='go together: give all three'):
    distributed.initialize('127.0.0.1:1234', 2)
  with pytest.raises(ValueError, match=r'--process_id=2 must be in \[0, --num_processes=2\)'):
    distributed.initialize('127.0.0.1:1234', 2, 2)
  assert calls == []
