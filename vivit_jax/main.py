r"""Entry point: `python -m vivit_jax.main --config configs/X.py --workdir DIR [--config.a.b=v]`.

Trains, evaluates and checkpoints as the config says; rerunning with the same workdir resumes.
Multi-host: every process runs the same command; on a TPU VM pod slice add --multihost, SLURM and
Open MPI jobs are detected, elsewhere pass --coordinator=HOST:PORT --num_processes=N
--process_id=I (vivit_jax.distributed).
"""
import os
import re
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from vivit_jax import console  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/X.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and metrics.')
_COORDINATOR = flags.DEFINE_string('coordinator', None, 'Multi-host: HOST:PORT of process 0.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Multi-host: number of processes.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'Multi-host: this process, 0..N-1.')
_MULTIHOST = flags.DEFINE_bool('multihost', False, 'Multi-host with parameters JAX finds itself '
                               '(TPU VM pod slices; SLURM and Open MPI are detected without it).')
flags.mark_flags_as_required(['config', 'workdir'])


def _parse_flags(argv):
  """absl flag parsing, with an unknown or mistyped config field reported in one line."""
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError) as e:  # ml_collections: a field the config lacks.
    text = str(e).replace('\\n', ' ').replace('\n', ' ')
    overrides = [a.split('=')[0] for a in argv[1:] if a.startswith('--config.')]
    named = [o for o in overrides
             if any(re.search(rf'\b{re.escape(c)}\b', text) for c in o.split('.')[1:])]
    hint = re.search(r'Did you mean "[^"]+"', text)
    sys.exit(f'Unknown config field {named[0] if named else text}'
             f'{" (" + hint.group(0) + "?)" if hint else ""}: no such field in the config.')
  except flags.Error as e:
    sys.exit(f'Bad flag: {e}')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}. Config fields are set with '
                         f'--config.FIELD=VALUE.')
  # Imported late: JAX starts after flags are parsed (and computes nothing before initialize).
  from vivit_jax import distributed
  from vivit_jax.train import loop
  try:
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                           multihost=_MULTIHOST.value)
    distributed.quiet_unless_primary()
    loop.run(_CONFIG.value, _WORKDIR.value)
  except loop.TrainingInterrupted as stop:
    logging.warning('%s', stop)
    sys.exit(128 + stop.signum)
  except (ValueError, FileNotFoundError, FloatingPointError) as e:
    # Bad config, data, checkpoint or a diverged run: the message names the fix.
    if os.environ.get('VIVIT_TRACEBACK'):
      raise
    sys.exit(f'{type(e).__name__}: {e}\n(Set VIVIT_TRACEBACK=1 to see the traceback.)')


if __name__ == '__main__':
  console.show_progress()
  app.run(main, flags_parser=_parse_flags)
