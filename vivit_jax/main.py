r"""Entry point: `python -m vivit_jax.main --config configs/X.py --workdir DIR [--config.a.b=v]`.

Trains, evaluates and checkpoints as the config says; rerunning with the same workdir resumes.
Multi-host: every process runs the same command; on a TPU VM pod slice add --multihost, SLURM and
Open MPI jobs are detected, elsewhere pass --coordinator=HOST:PORT --num_processes=N
--process_id=I (vivit_jax.distributed).
"""
import difflib
import os
import signal
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


def _unknown_override(config, argv) -> str | None:
  """The first --config.a.b=v on `argv` that names no field of `config`, with a suggestion."""
  for arg in argv[1:]:
    if not arg.startswith('--config.'):
      continue
    node, path = config, arg.split('=')[0][len('--config.'):].split('.')
    for depth, key in enumerate(path):
      if not hasattr(node, 'keys') or key not in node:
        siblings = list(node.keys()) if hasattr(node, 'keys') else []
        close = difflib.get_close_matches(key, siblings, n=1)
        known = '.'.join(['config', *path[:depth]])
        hint = f' (did you mean {known}.{close[0]}?)' if close else ''
        return f'--config.{".".join(path)}: {known} has no field {key!r}{hint}'
      node = node[key]
  return None


def _config_file_error(path: str, error: Exception) -> str:
  """One line for a --config file that cannot load: missing, or its get_config(ARG) raised."""
  if not os.path.isfile((path or '').split(':', 1)[0]):
    return (f'--config {path}: no such config file; configs live in configs/, e.g. '
            f'--config configs/default.py.')
  return f'--config {path}: {str(error).strip().splitlines()[-1]}'


def _parse_flags(argv):
  """absl flag parsing, with a config file that cannot load, or an unknown or mistyped config
  field, reported in one line."""
  from vivit_jax.saved import config as saved_config
  path = saved_config.flag_on_argv('config', argv)
  try:
    remaining = flags.FLAGS(argv)
    _CONFIG.value.get('seed')  # Loads the config file now: its errors are flag errors.
    return remaining
  except (OSError, ValueError, TypeError) as e:  # Loading the config file.
    sys.exit(_config_file_error(path, e))
  except (flags.Error, AttributeError, KeyError) as e:  # ml_collections: a field it lacks.
    try:
      config = flags.FLAGS['config'].parser.parse(path) if path else None
    except (OSError, ValueError, TypeError) as load_error:
      sys.exit(_config_file_error(path, load_error))
    unknown = _unknown_override(config, argv) if config is not None else None
    sys.exit(f'Unknown config field {unknown}.' if unknown else f'Bad flag: {e}')


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
  except KeyboardInterrupt:  # Ctrl-C during the final evaluation (training saves and stops).
    print('Interrupted. Every checkpoint written so far is kept: rerun the same command to '
          'resume (a finished run evaluates again), or `python -m vivit_jax.evaluate '
          f'--workdir {_WORKDIR.value}`.', file=sys.stderr)
    sys.exit(128 + signal.SIGINT)
  except (ValueError, OSError, FloatingPointError) as e:
    # Bad config, data, workdir, checkpoint, a full disk or a diverged run: the message names
    # the fix.
    if os.environ.get('VIVIT_TRACEBACK'):
      raise
    sys.exit(f'{type(e).__name__}: {e}\n(Set VIVIT_TRACEBACK=1 to see the traceback.)')


if __name__ == '__main__':
  console.show_progress()
  app.run(main, flags_parser=_parse_flags)
