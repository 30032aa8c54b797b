"""Every preset of configs/: the list the other tests of tests/configs/ iterate over (each file
with each of its variants), and that every one of them builds its model at full size."""
import glob
import os

import jax.numpy as jnp
import pytest

from configs import common
from tests.helpers import REPO
from vivit_jax import models

VIVIT = ['configs/vivit/k400.py'] + [f'configs/vivit/k400.py:{arg}' for arg in (
    'factorised_encoder', 'factorised_self_attention', 'factorised_dot_product',
    'factorised_encoder,L')]
TRANSFORMERS = VIVIT + ['configs/timesformer/base_8x224.py']
VIDEOMAE = [f'configs/videomae/{stage}.py{dataset}' for stage in ('pretrain', 'finetune')
            for dataset in ('', ':ssv2')]
# The convolutional and recurrent presets (their models' tests in tests/models/ check them).
CNN = [f'configs/cnn/{name}.py' for name in (
    'c3d_sports1m', 'cnn_lstm', 'conv_gru', 'early_fusion', 'i3d_r50_k400', 'late_fusion',
    'r2plus1d_18_k400', 'r2plus1d_r50_k400', 'single_frame', 'slow_r50_k400',
    'slowfast_r50_k400', 'two_stream', 'x3d_k400')] + [
        'configs/cnn/i3d_r50_k400.py:nonlocal', 'configs/cnn/late_fusion.py:pool',
        'configs/cnn/slow_r50_k400.py:c2d', 'configs/cnn/slow_r50_k400.py:4x16',
        'configs/cnn/slowfast_r50_k400.py:4x16',
        'configs/cnn/r2plus1d_18_k400.py:r3d', 'configs/cnn/cnn_lstm.py:snippets',
        'configs/cnn/x3d_k400.py:L', 'configs/cnn/r2plus1d_18_k400.py:mc3',
        'configs/cnn/r2plus1d_18_k400.py:torchvision']
MVIT = ['configs/mvit/k400.py', 'configs/mvit/k400.py:B', 'configs/mvit/k400.py:B_v1']
ALL = TRANSFORMERS + VIDEOMAE + CNN + MVIT
# Helpers the presets share, not presets themselves.
HELPERS = {'configs/common.py', 'configs/speed_benchmark.py', 'configs/__init__.py',
           'configs/cnn/recipe.py', 'configs/videomae/recipe.py'}
STANDALONE = {'configs/default.py', 'configs/video_folder.py'}  # Tested on their own.


def with_arg(spec: str, arg: str) -> str:
  """`spec` with `arg` added to its preset argument: with_arg('x.py:L', 'tiny') == 'x.py:L,tiny'."""
  return f'{spec},{arg}' if ':' in spec else f'{spec}:{arg}'


def test_every_preset_file_is_listed():
  found = {os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, 'configs/**/*.py'),
                                                       recursive=True)}
  assert found - HELPERS - STANDALONE == {spec.partition(':')[0] for spec in ALL}


@pytest.mark.parametrize('spec', ALL)
def test_preset_builds_its_model(spec):
  config = common.load(spec)
  model = models.build(config.model)
  assert jnp.dtype(model.dtype) == jnp.bfloat16 and config.model.param_dtype == 'float32'
  assert config.optimizer.grad_clip_norm in (1.0, common.NO_CLIPPING)
