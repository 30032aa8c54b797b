r"""A trained workdir's config: `train.loop.run` saves it as WORKDIR/config.json, and the tools that
take only `--workdir` (`vivit_jax.evaluate`, `vivit_jax.predict`) read it back.

`define_config_flag()` gives such a tool a `--config` flag whose default is the config saved in
the `--workdir` of its command line, so `--config.a.b=value` overrides apply to it; a workdir
trained before configs were saved takes `--config=configs/X.py` (the config it was trained with).
This file is also a config file: `--config=vivit_jax/saved/config.py:WORKDIR`.
A workdir may be any tf.io.gfile path: a local directory or a bucket (gs://BUCKET/runs/NAME).
"""
import json
import os
import sys

import ml_collections
import tensorflow as tf
from absl import flags

CONFIG_FILE = 'config.json'


def save_config(config, workdir: str) -> str:
  """Writes `config` as JSON to WORKDIR/config.json (tuples become lists); returns the path."""
  tf.io.gfile.makedirs(workdir)
  path = os.path.join(workdir, CONFIG_FILE)
  with tf.io.gfile.GFile(path, 'w') as f:
    f.write(config.to_json_best_effort(indent=1, sort_keys=True))
  return path


def _tuples(value):
  """JSON lists back to the tuples configs use (nested too)."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The ConfigDict saved in WORKDIR/config.json (FileNotFoundError naming the fix if the
  workdir has no checkpoint or no config.json)."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not tf.io.gfile.isdir(os.path.join(workdir, 'checkpoints')):
    raise FileNotFoundError(f'No checkpoint in workdir {workdir}; train first with `python -m '
                            f'vivit_jax.main --config CONFIG --workdir {workdir}`.')
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(
        f'No {CONFIG_FILE} in workdir {workdir} (training writes it; older workdirs lack it): '
        f'pass the config it was trained with, --config=configs/X.py.')
  with tf.io.gfile.GFile(path) as f:
    return ml_collections.ConfigDict(_tuples(json.load(f)))


def get_config(workdir: str):
  """The config-file entry point (`--config=vivit_jax/saved/config.py:WORKDIR`)."""
  return load_config(workdir)


def flag_on_argv(name: str, argv: list[str]) -> str | None:
  """The value of the string flag --name on `argv` (absl syntax), or None; other flags, defined
  or not, are left alone. Lets a flag's default depend on another flag of the same command."""
  probe = flags.FlagValues()
  flags.DEFINE_string(name, None, '', flag_values=probe)
  probe(list(argv), known_only=True)
  return probe[name].value


def define_config_flag(argv: list[str] | None = None):
  """Defines --config: by default the config saved in the --workdir named on `argv` (sys.argv);
  read it through `flag_config`."""
  from ml_collections import config_flags
  workdir = flag_on_argv('workdir', sys.argv if argv is None else argv)
  default = f'{os.path.abspath(__file__)}:{workdir}' if workdir else None
  return config_flags.DEFINE_config_file(
      'config', default, 'Config file the workdir was trained with (default: its config.json).')


def define_workdir_flags() -> dict:
  """A tool's --workdir (required) and --config (default: that workdir's saved config) flags:
  {'workdir': holder, 'config': holder}."""
  workdir = flags.DEFINE_string('workdir', None, 'Workdir holding the checkpoint and config.json.')
  flags.mark_flags_as_required(['workdir'])
  return {'workdir': workdir, 'config': define_config_flag()}


def flag_config(holder) -> ml_collections.ConfigDict:
  """The --config flag's ConfigDict; the error that loading it raised (config_flags keeps it for
  the first use), e.g. the workdir's missing config.json, is raised here as it was."""
  try:
    holder.value.get('seed')
  except OSError as e:
    raise (e.__cause__ or e) from None
  return holder.value
