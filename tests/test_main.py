"""The command line: config overrides fail at once, naming the field."""
import subprocess
import sys

import pytest

from tests.helpers import REPO


def _main(*overrides):
  return subprocess.run(
      [sys.executable, '-m', 'vivit_jax.main', '--config', 'configs/default.py',
       '--workdir', '/nonexistent/never-used', *overrides],
      cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize('override, expected', [
    ('--config.train.num_stepz=3', 'Unknown config field --config.train.num_stepz'),
    ('--config.modl.name=vivit', 'Did you mean "model"'),
    ('--config.train.num_steps=abc', '--config.train.num_steps=abc'),
])
def test_bad_override_fails_naming_the_field(override, expected):
  result = _main(override)
  assert result.returncode != 0
  assert expected in result.stderr
  assert 'Traceback' not in result.stderr


def test_unknown_dataset_is_one_clear_error(tmp_path):
  result = _main('--config.dataset.name=kinetics_typo', f'--config.dataset.data_dir={tmp_path}')
  assert result.returncode == 1
  assert "Unknown dataset 'kinetics_typo' (config.dataset.name)" in result.stderr
  assert 'Traceback' not in result.stderr
