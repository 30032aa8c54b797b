"""Starting JAX's multi-host runtime (`jax.distributed.initialize`) when a run spans processes.

Every process of a multi-host run executes the same command. `initialize` is called once, before
any JAX computation:
  explicit:  coordinator, num_processes and process_id given (e.g. `vivit_jax.main --coordinator
             10.0.0.1:1234 --num_processes 2 --process_id 0`): used as given (CPU collectives are
             gloo, so this also runs several processes on one machine);
  detected:  `multihost=True` (main's --multihost: on a TPU VM pod slice, whose hosts JAX finds
             through the VM metadata), TPU_WORKER_HOSTNAMES naming more than one TPU worker (GKE),
             a SLURM job with several tasks, an Open MPI job with several ranks, or
             JAX_COORDINATOR_ADDRESS set: JAX reads its parameters from that environment;
  otherwise: a single process; nothing is started.
"""
import logging
import os

import jax

log = logging.getLogger('vivit_jax')


def _env_int(name: str) -> int:
  try:
    return int(os.environ.get(name, '0'))
  except ValueError:
    return 0


def detected_cluster() -> str | None:
  """The multi-process launcher this process runs under ('tpu pod', 'slurm', 'openmpi',
  'JAX_COORDINATOR_ADDRESS'), or None for a single-process run."""
  if len([h for h in os.environ.get('TPU_WORKER_HOSTNAMES', '').split(',') if h]) > 1:
    return 'tpu pod'
  if _env_int('SLURM_NTASKS') > 1 or _env_int('SLURM_NPROCS') > 1:
    return 'slurm'
  if _env_int('OMPI_COMM_WORLD_SIZE') > 1:
    return 'openmpi'
  if os.environ.get('JAX_COORDINATOR_ADDRESS'):
    return 'JAX_COORDINATOR_ADDRESS'
  return None


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, multihost: bool = False) -> bool:
  """Starts the multi-host runtime if this run spans processes (module docstring); returns
  whether it did. Explicit arguments must come all three together."""
  given = [v is not None for v in (coordinator, num_processes, process_id)]
  if any(given) and not all(given):
    raise ValueError('--coordinator, --num_processes and --process_id go together: give all '
                     'three (e.g. --coordinator=10.0.0.1:1234 --num_processes=2 --process_id=0) '
                     'or none (TPU pods, SLURM and Open MPI are detected).')
  if all(given):
    if not 0 <= process_id < num_processes:
      raise ValueError(f'--process_id={process_id} must be in [0, --num_processes='
                       f'{num_processes}).')
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id)
  elif multihost or detected_cluster():
    jax.distributed.initialize()
  else:
    return False
  log.info('Process %d of %d (%d local of %d devices)', jax.process_index(),
           jax.process_count(), jax.local_device_count(), jax.device_count())
  return True


def quiet_unless_primary():
  """Only process 0 prints progress: the others' 'vivit_jax' logger shows warnings and errors."""
  if jax.process_index() != 0:
    logging.getLogger('vivit_jax').setLevel(logging.WARNING)
