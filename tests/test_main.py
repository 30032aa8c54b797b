"""The command line: config overrides fail at once, naming the field."""
import subprocess
import sys

import pytest

from tests.helpers import REPO


def _main(*overrides, workdir='/nonexistent/never-used'):
  return subprocess.run(
      [sys.executable, '-m', 'vivit_jax.main', '--config', 'configs/default.py',
       '--workdir', str(workdir), *overrides],
      cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize('overrides, expected', [
    (('--config.train.num_steps=3', '--config.train.num_stepz=3'),
     "Unknown config field --config.train.num_stepz: config.train has no field 'num_stepz' (did "
     "you mean config.train.num_steps?)"),
    (('--config.modl.name=vivit',), 'did you mean config.model?'),
    (('--config.train.num_steps=abc',), '--config.train.num_steps=abc'),
    (('--config.checkpoint.every_steps=0',), 'config.checkpoint.every_steps=0 is invalid'),
])
def test_bad_override_fails_naming_the_field(overrides, expected):
  result = _main(*overrides)
  assert result.returncode != 0
  assert expected in result.stderr
  assert 'Traceback' not in result.stderr


def test_unknown_dataset_is_one_clear_error(tmp_path):
  result = _main('--config.dataset.name=kinetics_typo', f'--config.dataset.data_dir={tmp_path}',
                 workdir=tmp_path / 'workdir')
  assert result.returncode == 1
  assert "Unknown dataset 'kinetics_typo' (config.dataset.name)" in result.stderr
  assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('config, expected', [
    ('configs/nope.py', '--config configs/nope.py: no such config file; configs live in configs/'),
    ('configs/cnn/i3d_r50_k400.py:tiyn', "Unknown preset argument 'tiyn'"),
])
def test_bad_config_file_is_one_line_at_flag_parsing(config, expected):
  result = subprocess.run(
      [sys.executable, '-m', 'vivit_jax.main', '--config', config,
       '--workdir', '/nonexistent/never-used'], cwd=REPO, capture_output=True, text=True,
      timeout=120)
  assert result.returncode != 0
  assert expected in result.stderr and 'Traceback' not in result.stderr
