r"""Entry point: `python -m vivit_jax.main --config configs/X.py --workdir DIR [--config.a.b=v]`.

Trains, evaluates and checkpoints as the config says; rerunning with the same workdir resumes.
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/X.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and metrics.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}. Config fields are set with '
                         f'--config.FIELD=VALUE.')
  from vivit_jax.train import loop  # Imported late: JAX starts after flags are parsed.
  try:
    loop.run(_CONFIG.value, _WORKDIR.value)
  except loop.TrainingInterrupted as stop:
    logging.warning('%s', stop)
    sys.exit(128 + stop.signum)


if __name__ == '__main__':
  logging.set_verbosity(logging.INFO)
  app.run(main)
