"""PyTorch model-zoo checkpoint files (vivit_jax/weights/torch_checkpoint.py) through
config.init_from.path and tools/convert_checkpoint.py: the fine-tuning walkthrough of the README's
model zoo on a random-weight X3D `.pyth` written here (no download)."""
import os
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest
import torch
from flax import traverse_util

from configs import common
from tests.helpers import REPO, pytorchvideo_models, randomised_torch
from vivit_jax import models
from vivit_jax.train import loop
from tests.weights.test_torchvision_video import _small_reference
from vivit_jax.weights import init_from, torch_checkpoint, torch_state, torchvision_video

PRESET = 'configs/cnn/x3d_k400.py:M,tiny'
SHALLOW = 0.5  # config.model.depth_factor here: 1, 1, 3, 2 blocks (the preset: 3, 5, 11, 7).


def _model_config(preset: str = PRESET) -> ml_collections.ConfigDict:
  """The preset's config.model, shallower (SHALLOW) to compile quickly."""
  model = common.load(preset).model
  model.depth_factor = SHALLOW
  return model


@pytest.fixture(scope='module')
def x3d_pyth(tmp_path_factory) -> str:
  """An X3D of _model_config's sizes with 400 classes and random weights and BN statistics, saved
  as PyTorchVideo's model zoo does (a torch pickle, the state dict under 'model_state')."""
  model = _model_config()
  net = randomised_torch(pytorchvideo_models('x3d').create_x3d(
      input_clip_length=8, input_crop_size=32, model_num_class=400,  # Crop: a multiple of 32.
      stem_dim_in=model.base_width, depth_factor=model.depth_factor,
      head_dim_out=model.head_width), std=0.1)
  path = str(tmp_path_factory.mktemp('zoo') / 'x3d_m.pyth')
  torch.save({'model_state': net.state_dict(), 'epoch': 300}, path)
  return path


def _fresh(model_config, video_shape=(8, 28, 28)):
  """Zero variables of models.build(model_config) on (1, *video_shape, 3) clips."""
  abstract = torch_state.abstract_variables(models.build(model_config), (*video_shape, 3))
  return traverse_util.unflatten_dict({k: np.zeros(a.shape, a.dtype) for k, a in abstract.items()})


def _load(path, model_config, load_head=False):
  init = ml_collections.ConfigDict(dict(path=path, load_head=load_head, kernel_init='average'))
  return init_from.load_init_variables(init, model_config, _fresh(model_config), (8, 28, 28))


def _flat(tree):
  return traverse_util.flatten_dict(jax.device_get(tree), sep='/')


def test_fine_tunes_from_a_pyth_file(x3d_pyth, synthetic_data_dir, tmp_path):
  """The walkthrough: the trainer's setup of the preset with config.init_from.path=x3d_m.pyth
  and the dataset's num_classes (10, the file has 400) starts from the file's weights and BN
  statistics and keeps a fresh classifier (the train step is every model's, tested elsewhere)."""
  config = common.load(PRESET)
  config.model = _model_config()
  config.dataset.data_dir = synthetic_data_dir
  config.init_from.path = x3d_pyth
  assert config.model.num_classes == 10
  exp = loop.setup(config, str(tmp_path))
  exp.ckpt.close()
  initial = jax.device_get(exp.state)
  source = torch_state.read_state_dict(x3d_pyth)
  expected = torch_checkpoint.to_variables(source, models.build(config.model), x3d_pyth,
                                           load_head=False, clip=(8, 28, 28))
  params, stats = _flat(initial.params), _flat(initial.batch_stats)
  for key, value in _flat(expected['params']).items():
    np.testing.assert_array_equal(params[key], value, err_msg=key)
  for key, value in _flat(expected['batch_stats']).items():
    np.testing.assert_array_equal(stats[key], value, err_msg=key)
  assert {k for k in params if k not in _flat(expected['params'])} == {'head/kernel',
                                                                        'head/bias'}


def test_convert_checkpoint_writes_what_init_from_reads(x3d_pyth, tmp_path):
  """tools/convert_checkpoint.py --src FILE.pyth --config PRESET writes an Orbax checkpoint that
  initialises the preset exactly as the file itself does, BatchNorm statistics included, and
  prints the fine-tuning flags."""
  out = str(tmp_path / 'x3d_m')
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, 'tools', 'convert_checkpoint.py'), f'--src={x3d_pyth}',
       f'--config={PRESET}', f'--out={out}', f'--config.model.depth_factor={SHALLOW}',
       '--config.model.num_classes=400'], capture_output=True, text=True, cwd=REPO,
      check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert f'--config {PRESET} --config.init_from.path={out}' in result.stdout
  model_config = _model_config()
  assert init_from.source_kind(out) == 'orbax' and init_from.source_kind(x3d_pyth) == 'torch'
  for load_head in (False, True):
    model_config.num_classes = 10 if not load_head else 400
    from_orbax, from_file = (_flat(_load(p, model_config, load_head)) for p in (out, x3d_pyth))
    assert from_orbax.keys() == from_file.keys() and 'batch_stats/stage_1/block_0/bn_a/mean' in (
        from_orbax)
    for key, value in from_file.items():
      np.testing.assert_array_equal(from_orbax[key], value, err_msg=key)
    assert from_file['params/head/kernel'].any() == load_head


def test_checkpoint_of_another_size_or_zoo_is_refused(x3d_pyth, tmp_path):
  """The error names the file, its zoo and the first tensors that do not fit; a state dict of no
  known zoo names its tensors."""
  config = _model_config('configs/cnn/x3d_k400.py:L,tiny')
  config.depth_factor = 1.0
  with pytest.raises(ValueError, match=r'x3d_m.pyth \(PyTorchVideo / PySlowFast\) does not fit '
                                       r"config.model: The state dict lacks \d+ tensors .*first "
                                       r"\['blocks.2.res_blocks.1"):
    _load(x3d_pyth, config)
  odd = str(tmp_path / 'odd.pth')
  torch.save({'encoder.w': torch.zeros(2)}, odd)
  with pytest.raises(ValueError, match=r"odd.pth: tensor names such as \['encoder.w'\] are from "
                                       r'no model zoo'):
    _load(odd, config)
  torch.save({'epoch': 3}, odd)
  with pytest.raises(ValueError, match='holds no state dict'):
    torch_state.read_state_dict(odd)


def test_torchvision_pth_initialises_its_preset(tmp_path):
  """A torchvision mc3_18 state dict saved with torch.save (as torchvision's downloads are) fills
  the `:mc3` preset through config.init_from.path, BN statistics included, the head fresh."""
  net = _small_reference('mc3_18')
  path = str(tmp_path / 'mc3_18.pth')
  torch.save(net.state_dict(), path)
  model_config = common.load('configs/cnn/r2plus1d_18_k400.py:mc3,tiny').model
  assert init_from.source_kind(path) == 'torch'
  loaded = _flat(_load(path, model_config))
  expected = _flat(torchvision_video.variables(
      torch_state.read_state_dict(path), models.build(model_config), load_head=False))
  assert len(expected) == len(loaded) - 2 and not loaded['params/head/kernel'].any()
  for key, value in expected.items():
    np.testing.assert_array_equal(loaded[key], value, err_msg=key)
