"""X3D (vivit_jax/models/x3d.py), its presets (configs/cnn/x3d_k400.py) and the PyTorchVideo
converter (vivit_jax/weights/pytorchvideo/x3d.py).

Sizes are checked with jax.eval_shape (no compute) against PyTorchVideo's create_x3d and the
paper; numerics run a small X3D (widths 8-144, 4 x 32 x 32 clips) against create_x3d in torch.
"""
import os
import runpy

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import (REPO, assert_same_logits, pytorchvideo_models, randomised_torch,
                           torch_logits, train_one_step)
from tests.models.test_cnn3d import _abstract, _num_params
from vivit_jax import models
from vivit_jax.models import flops, x3d
from vivit_jax.weights.pytorchvideo import x3d as pytorchvideo_x3d

PRESET = 'configs/cnn/x3d_k400.py'
# Size -> (depth_factor, clip (T, crop)): the paper's and create_x3d's input_clip_length,
# input_crop_size.
SIZES = {'XS': (2.2, 4, 160), 'S': (2.2, 13, 160), 'M': (2.2, 16, 224), 'L': (5.0, 16, 312)}
# A small X3D: widths 8, 16, 32, 64 (inner 18 ... 144), 1, 1, 3, 2 blocks, a 32-wide fc.
SMALL = dict(base_width=4, depth_factor=0.5, head_width=32)


def _create_x3d(**kwargs):
  return pytorchvideo_models('x3d').create_x3d(**kwargs)


def _preset(arg=None):
  return runpy.run_path(os.path.join(REPO, PRESET))['get_config'](arg)


@pytest.mark.parametrize('size', ['M', 'L'])  # XS and S have M's parameters.
def test_parameter_count_equals_pytorchvideo(size):
  """XS/S/M: 3,794,274 parameters, L: 6,153,384, as create_x3d builds them (the paper: 3.8M,
  6.1M); the same stage depths and widths."""
  depth_factor, frames, crop = SIZES[size]
  model = x3d.X3D(num_classes=400, depth_factor=depth_factor)
  ours = _num_params(_abstract(model, (1, frames, crop, crop, 3))['params'])
  torch_model = _create_x3d(input_clip_length=frames, input_crop_size=crop,
                            depth_factor=depth_factor)
  assert ours == sum(p.numel() for p in torch_model.parameters())
  assert ours == pytest.approx(6.1e6 if size == 'L' else 3.8e6, rel=0.01)
  assert model.stages()[3][1:] == (192, 432)
  assert [s[0] for s in model.stages()] == ([5, 10, 25, 15] if size == 'L' else [3, 5, 11, 7])


def test_multiply_adds_per_view():
  """Conv and fc multiply-adds per view (flops.module_layer_flops / 2) of XS/S/M (one model) as
  published: the paper's Table 3 at the training crops (XS 0.60 G at 4 x 160^2, M 4.73 G at
  16 x 224^2), its Table 4 at M's 256 test crop (6.2 G). S (1.96 G at 13 x 160^2) and L (18.37 G
  at 16 x 312^2) match too: configs/cnn/x3d_k400.py."""
  model = x3d.X3D(num_classes=400)
  variables = _abstract(model, (1, 4, 160, 160, 3))
  for shape, published, rel in [((4, 160, 160), 0.60e9, 0.01), ((16, 224, 224), 4.73e9, 0.005),
                                ((16, 256, 256), 6.2e9, 0.01)]:
    clip = jnp.zeros((1,) + shape + (3,))
    assert flops.module_layer_flops(model, variables, clip) // 2 == pytest.approx(published,
                                                                                 rel=rel)


def _random_torch_x3d():
  """The SMALL X3D of create_x3d on 4 x 32 x 32 clips, logits out (no softmax), in eval mode with
  random weights and BN statistics (helpers.randomised_torch)."""
  return randomised_torch(_create_x3d(input_clip_length=4, input_crop_size=32, model_num_class=7,
                                stem_dim_in=SMALL['base_width'],
                                depth_factor=SMALL['depth_factor'],
                                head_dim_out=SMALL['head_width'], head_activation=None))


def test_logits_equal_pytorchvideo():
  """create_x3d's X3D (random weights and BN statistics, eval mode, float32) and ours with its
  converted state dict give the same logits within 1e-4 and the same classes on the same clips;
  the SE and shortcut layouts (stage 1's first block: a strided shortcut conv without BN) are
  converted by one name map."""
  net = _random_torch_x3d()
  state = {k: v.numpy() for k, v in net.state_dict().items()}
  assert 'blocks.1.res_blocks.0.branch1_conv.weight' in state
  assert 'blocks.1.res_blocks.0.branch1_norm.weight' not in state
  model = x3d.X3D(num_classes=7, **SMALL)
  variables = pytorchvideo_x3d.x3d_variables(state, model)
  clip = np.random.default_rng(1).normal(size=(2, 4, 32, 32, 3)).astype(np.float32)
  assert_same_logits(model, variables, clip, torch_logits(net, clip))


def test_converter_refuses_other_architectures():
  """A state dict of another depth, width or architecture is refused naming its first tensors
  that do not fit."""
  state = {k: v.numpy() for k, v in _random_torch_x3d().state_dict().items()}
  with pytest.raises(ValueError, match=r"no place for, first \['blocks.3.res_blocks.2.branch2"):
    pytorchvideo_x3d.x3d_variables(state, x3d.X3D(num_classes=7, **dict(SMALL, depth_factor=0.25)))
  with pytest.raises(ValueError, match=r"lacks \d+ tensors .* first \['blocks.2.res_blocks.1"):
    pytorchvideo_x3d.x3d_variables(state, x3d.X3D(num_classes=7, **dict(SMALL, depth_factor=1.0)))
  with pytest.raises(ValueError, match=r"'blocks.0.conv.conv_t.weight' \(8, 3, 1, 3, 3\) gives "
                                       r"params/stem_conv_s/kernel the shape"):
    pytorchvideo_x3d.x3d_variables(state, x3d.X3D(num_classes=7, **dict(SMALL, base_width=8)))
  resnet_state = {'conv1.weight': np.zeros((64, 3, 7, 7)), 'fc.weight': np.zeros((10, 512))}
  with pytest.raises(ValueError, match=r"first \['blocks.0.conv.conv_t.weight'"):
    pytorchvideo_x3d.x3d_variables(resnet_state, x3d.X3D(num_classes=7, **SMALL))


def test_shapes_dtypes_and_logical_names():
  """bfloat16 compute: float32 logits (or the head_width features with num_classes 0) and float32
  params, every one with logical axis names; a depthwise kernel is (3, 3, 3, 1, C)."""
  model = x3d.X3D(num_classes=5, **SMALL, dtype=jnp.bfloat16)
  shape = (2, 4, 32, 32, 3)
  logits, boxed = jax.eval_shape(lambda: model.init_with_output(
      jax.random.key(0), jnp.zeros(shape), train=False))
  variables = nn.unbox(boxed)
  assert (logits.shape, logits.dtype) == ((2, 5), jnp.float32)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables['params']))
  assert all(isinstance(p, nn.Partitioned) for p in jax.tree.leaves(
      boxed['params'], is_leaf=lambda p: isinstance(p, nn.Partitioned)))
  block = variables['params']['stage_3']['block_0']
  assert block['conv_b']['kernel'].shape == (3, 3, 3, 1, 72)
  assert block['se']['reduce']['kernel'].shape == (1, 1, 1, 72, 8)
  assert 'se' not in variables['params']['stage_3']['block_1']
  features = x3d.X3D(num_classes=0, **SMALL)
  out, _ = jax.eval_shape(lambda: features.init_with_output(jax.random.key(0), jnp.zeros(shape),
                                                            train=False))
  assert (out.shape, out.dtype) == ((2, 32), jnp.float32)


@pytest.mark.parametrize('field, value, message', [
    ('base_width', 0, r'config.model.base_width=0 must be a positive int'),
    ('head_width', -8, r'config.model.head_width=-8 must be a positive int'),
    ('width_factor', -1.0, r'config.model.width_factor=-1.0 must be a positive number'),
    ('depth_factor', 0.0, r'config.model.depth_factor=0.0 must be a positive number'),
    ('bottleneck_factor', 0.0, r"config.model.bottleneck_factor=0.0 must be a positive number"),
    ('se_ratio', 1.0, r'config.model.se_ratio=1.0 must be in \[0, 1\)'),
])
def test_config_errors_name_the_field(field, value, message):
  config = _preset('tiny')
  config.model[field] = value
  with pytest.raises(ValueError, match=message):
    models.build(config.model)


def test_video_checks():
  model = x3d.X3D(num_classes=5, **SMALL)
  with pytest.raises(ValueError, match=r'X3D takes videos .* channels first'):
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((2, 3, 4, 32, 32)),
                                      train=False))


@pytest.mark.parametrize('size', SIZES)
def test_presets(size):
  """Each size's preset builds X3D with its depth factor and trains on its clip with its recipe;
  its tiny version keeps the model choices and dtypes, shrinking widths and clip only."""
  config, tiny = _preset(size), _preset(f'tiny,{size}')
  depth_factor, frames, crop = SIZES[size]
  model = models.build(config.model)
  assert (model.depth_factor, model.dtype, model.param_dtype) == (depth_factor, jnp.bfloat16,
                                                                  jnp.float32)
  assert (config.dataset.num_frames, config.dataset.crop_size) == (frames, crop)
  assert (config.optimizer.name, config.optimizer.weight_decay, config.optimizer.nesterov) == (
      'sgd', 5e-5, True)
  assert (tiny.dataset.name, tiny.model.num_classes, tiny.model.base_width,
          tiny.model.head_width) == ('synthetic_motion', 10, 8, 128)
  for key in set(config.model) - {'num_classes', 'base_width', 'head_width'}:
    assert tiny.model[key] == config.model[key], key


def test_tiny_preset_shapes():
  """The tiny preset (X3D-M's depths) gives (2, 10) float32 logits on two of its clips (shapes
  only)."""
  tiny = _preset('tiny')
  ds, small = tiny.dataset, models.build(tiny.model)
  shape = (2, ds.num_frames, ds.crop_size, ds.crop_size, 3)
  logits, _ = jax.eval_shape(lambda: small.init_with_output(jax.random.key(0), jnp.zeros(shape),
                                                            train=False))
  assert (logits.shape, logits.dtype) == ((2, 10), jnp.float32)


def test_preset_default_and_unknown_argument():
  assert _preset().to_dict() == _preset('M').to_dict()
  with pytest.raises(ValueError, match=r"Unknown preset argument 'XL'.*size=M\|XS\|S\|L"):
    _preset('XL')


def test_tiny_preset_trains(synthetic_data_dir, tmp_path):
  """loop.setup and one shared train step of the tiny preset (bfloat16 compute), cut to depth
  factor 0.25 (1, 1, 2, 1 blocks) on 4 x 16 x 16 clips to compile fast: the real init zeroes the
  last BN scale of each block and the head (loss ln 10); the step is finite and moves the BN
  statistics."""
  config = _preset('tiny')
  config.dataset.update(data_dir=synthetic_data_dir, num_frames=4, crop_size=16)
  config.model.depth_factor = 0.25
  _, initial, state, metrics = train_one_step(config, str(tmp_path), batch_size=8)
  params = initial.params
  assert not np.any(params['stage_3']['block_1']['bn_c']['scale'])
  assert not np.any(params['head']['kernel'])
  assert int(state.step) == 1 and float(metrics['finite']) == 1.0  # Warmup: lr 0 at step 0.
  assert float(metrics['loss_sum'] / metrics['count']) == pytest.approx(np.log(10), rel=1e-5)
  assert all(np.all(np.isfinite(p)) for p in jax.tree.leaves(jax.device_get(state.params)))
  before, after = initial.batch_stats, jax.device_get(state.batch_stats)
  assert not np.allclose(before['stem_bn']['mean'], after['stem_bn']['mean'])
