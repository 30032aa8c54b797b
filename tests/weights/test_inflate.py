"""2D -> 3D inflation: the inflated ResNet3D on a constant video reproduces the ResNet2D on that
frame; config.init_from inflates a 2D ResNet checkpoint into a resnet3d's params and batch_stats."""
import math
import runpy
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import traverse_util

from tests.helpers import REPO
from tests.models.test_cnn3d import _abstract, _random_variables, _resnet3d
from tests.weights.test_resnet2d import save_hf_resnet, save_torchvision
from vivit_jax.models import resnet
from vivit_jax.train import loop
from vivit_jax.weights import hf, inflate, init_from, vit

I3D_KERNELS = ((3,), (3, 1), (3, 1), (1, 3))  # PySlowFast's I3D temporal kernels.


def _nets(depth: int, width: int, **fields):
  net2d = resnet.ResNet2D(num_classes=5, depth=depth, base_width=width, dropout_rate=0.0)
  net3d = _resnet3d(depth=depth, base_width=width, temporal_kernels=I3D_KERNELS,
                    stem_temporal_kernel=5, **fields)
  return net2d, net3d


def _apply(net, variables, x, capture=None):
  """Logits, and the outputs of the modules named in `capture` ({name: array})."""
  out, state = net.apply(variables, x, train=False, capture_intermediates=lambda m, _: m.name in (
      capture or ()), mutable=['intermediates'])
  return out, {k: v['__call__'][0] for k, v in state['intermediates'].items()}


def _video(frames: int, seed: int = 1, constant: bool = True) -> np.ndarray:
  rng = np.random.default_rng(seed)
  if constant:
    return np.repeat(rng.normal(size=(2, 1, 32, 32, 3)), frames, axis=1).astype(np.float32)
  return rng.normal(size=(2, frames, 32, 32, 3)).astype(np.float32)


@pytest.mark.parametrize('depth, width, temporal_pool', [(10, 4, 2), (10, 4, 1), (50, 2, 2)])
def test_central_frame_inflation_keeps_logits_on_a_constant_video(depth, width, temporal_pool):
  """Centre-only kernels: every frame of a constant video is the 2D net's image, at the clip's
  ends too (the zero-padded taps carry zero weight); a moving video gives other logits."""
  net2d, net3d = _nets(depth, width, temporal_pool=temporal_pool)
  v2 = _random_variables(net2d, (2, 32, 32, 3))
  v3 = inflate.inflate_resnet(v2, _abstract(net3d, (2, 8, 32, 32, 3)), 'central_frame')
  video = _video(8)
  expected = jax.jit(lambda v, x: net2d.apply(v, x, train=False))(v2, video[:, 0])
  run3d = jax.jit(lambda v, x: net3d.apply(v, x, train=False))
  assert float(jnp.abs(expected).max()) > 0.1
  logits = run3d(v3, video)
  np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
  moving = _video(8, constant=False)
  frame_logits = jax.jit(lambda v, x: net2d.apply(v, x, train=False))(v2, moving[:, 0])
  _differs(run3d(v3, moving) - frame_logits, logits - expected)


def _differs(gap, error):
  """The moving video's gap is 100x the constant video's error (float32 rounding)."""
  gap, error = float(jnp.abs(gap).max()), float(jnp.abs(error).max())
  print(f'constant video: max-abs error {error:.2e}; moving video: {gap:.2e}')
  assert gap > 100 * max(error, 1e-7)


def _boundary_frames(net3d: resnet.ResNet3D) -> int:
  """Frames at each end of stage_4's output whose temporal receptive field reaches the clip's
  zero padding: each conv of kernel kt widens it by kt // 2, the temporal pool divides it."""
  reach = net3d.stem_temporal_kernel // 2
  for s, kernels in enumerate(net3d.block_temporal_kernels()):
    reach += sum(kt // 2 for kt in kernels)  # Only conv_a has kt > 1 (PySlowFast blocks).
    if s == 0:
      reach = math.ceil(reach / net3d.temporal_pool)
  return reach


def test_average_inflation_keeps_the_2d_features_inside_a_constant_video():
  """Kernels / kt over kt frames: the stage_4 features of a constant video equal the 2D net's at
  every frame the zero padding does not reach, and the head on their mean gives the 2D logits;
  the frames it reaches differ (PyTorch/PySlowFast pad time with zeros), and on a moving video
  the features differ everywhere."""
  net2d, net3d = _nets(10, 4, temporal_pool=1)
  edge = _boundary_frames(net3d)
  assert edge == 5  # Stem 5 -> 2, then one 3x1x1 conv in each of stages 1-3.
  frames = 2 * edge + 4
  v2 = _random_variables(net2d, (2, 32, 32, 3))
  v3 = inflate.inflate_resnet(v2, _abstract(net3d, (2, frames, 32, 32, 3)), 'average')
  video = _video(frames)
  logits2d, f2 = _apply(net2d, v2, video[:, 0], ('stage_4',))
  logits3d, f3 = _apply(net3d, v3, video, ('stage_4',))
  inside, frame = f3['stage_4'][:, edge:-edge], f2['stage_4'][:, None]
  np.testing.assert_allclose(inside, np.repeat(frame, 4, axis=1), rtol=1e-5, atol=1e-5)
  head = v2['params']['head']
  np.testing.assert_allclose(inside.mean(axis=(1, 2, 3)) @ head['kernel'] + head['bias'],
                             logits2d, rtol=1e-5, atol=1e-5)
  _differs(f3['stage_4'][:, [0, -1]] - frame, inside - frame)  # The ends see zeros,
  _differs(logits3d - logits2d, inside.mean(axis=(1, 2, 3)) @ head['kernel'] + head['bias']
           - logits2d)  # and enter the clip's mean.
  _, moving = _apply(net3d, v3, _video(frames, constant=False), ('stage_4',))
  _differs(moving['stage_4'][:, edge:-edge] - frame, inside - frame)


def test_kernels_and_statistics_are_inflated_and_copied():
  net2d, net3d = _nets(50, 2, temporal_pool=2, nonlocal_blocks=((), (1,), (), ()))
  v2 = _random_variables(net2d, (1, 32, 32, 3))
  fresh = _random_variables(net3d, (1, 8, 32, 32, 3), seed=5)
  for mode in inflate.MODES:
    v3 = inflate.inflate_resnet(v2, fresh, mode)
    kernel2d = np.asarray(v2['params']['stem_conv']['kernel'])
    np.testing.assert_array_equal(v3['params']['stem_conv']['kernel'],
                                  vit.inflate_kernel(kernel2d, 5, mode))
    assert v3['params']['stage_2']['block_0']['conv_a']['kernel'].shape == (3, 1, 1, 8, 4)
    assert v3['params']['stage_2']['block_1']['conv_a']['kernel'].shape == (1, 1, 1, 16, 4)
    np.testing.assert_allclose(np.sum(v3['params']['stage_1']['block_0']['conv_a']['kernel'], 0),
                               v2['params']['stage_1']['block_0']['conv_a']['kernel'], rtol=1e-6)
    for collection in ('params', 'batch_stats'):
      flat2 = traverse_util.flatten_dict(v2[collection])
      flat3 = traverse_util.flatten_dict(v3[collection])
      assert set(flat3) == set(flat2)
      for k, value in flat2.items():
        if k[-1] != 'kernel' or k[0] == 'head':
          np.testing.assert_array_equal(flat3[k], value)
  merged, left_fresh = init_from.merge_params(fresh['params'], v3['params'], load_head=True,
                                              source='test')
  assert left_fresh and all(k.startswith('stage_2/nonlocal_1/') for k in left_fresh)
  assert len(left_fresh) == 10  # 4 convs (kernel, bias) + BN scale, bias.
  np.testing.assert_array_equal(merged['stage_2']['nonlocal_1']['conv_g']['kernel'],
                                fresh['params']['stage_2']['nonlocal_1']['conv_g']['kernel'])


def test_inflation_errors():
  shape2d, shape3d = (1, 32, 32, 3), (1, 4, 32, 32, 3)
  v10 = _abstract(resnet.ResNet2D(num_classes=5, depth=10, base_width=4), shape2d)
  v18 = _abstract(resnet.ResNet2D(num_classes=5, depth=18, base_width=4), shape2d)
  with pytest.raises(ValueError, match=r'variables the 3D net lacks \(e.g. batch_stats/stage_1/'
                                       r'block_1/bn_a/mean'):
    inflate.inflate_resnet(v18, _abstract(_resnet3d(depth=10), shape3d))
  with pytest.raises(ValueError, match=r'variables the 2D net lacks .*stage_1/block_1/'):
    inflate.inflate_resnet(v10, _abstract(_resnet3d(depth=18), shape3d))
  with pytest.raises(ValueError, match=r"stage_1/block_0/bn_a/\w+: the 2D net's \(4,\) "
                                       r"does not fit the 3D net's \(8,\)"):
    inflate.inflate_resnet(v10, _abstract(_resnet3d(base_width=8), shape3d))
  v10['params']['stem_conv']['kernel'] = jax.ShapeDtypeStruct((5, 5, 3, 4), jnp.float32)
  with pytest.raises(ValueError, match=r"params/stem_conv/kernel: the 2D net's \(5, 5, 3, 4\) "
                                       r"does not fit the 3D net's \(3, 7, 7, 3, 4\) \(kt, \*2D\)"):
    inflate.inflate_resnet(v10, _abstract(_resnet3d(stem_temporal_kernel=3), shape3d))
  with pytest.raises(ValueError, match=r"kernel_init='random' cannot inflate a 2D ResNet"):
    inflate.inflate_resnet(v10, _abstract(_resnet3d(), shape3d), 'random')


def _i3d_tiny(data_dir, path, kernel_init='average'):
  config = runpy.run_path(os.path.join(REPO, 'configs/cnn/i3d_r50_k400.py'))['get_config']('tiny')
  config.model.update(depth=10, base_width=4)
  config.dataset.data_dir = data_dir
  config.init_from = ml_collections.ConfigDict(dict(path=str(path), kernel_init=kernel_init,
                                                    load_head=False))
  return config


def test_setup_starts_a_resnet3d_from_an_inflated_hf_resnet(synthetic_data_dir, tmp_path, caplog):
  save_hf_resnet(tmp_path / 'hf')
  config = _i3d_tiny(synthetic_data_dir, tmp_path / 'hf')
  with caplog.at_level('INFO', 'vivit_jax'):
    exp = loop.setup(config, str(tmp_path / 'workdir'))
  exp.ckpt.close()
  state = jax.device_get({'params': exp.state.params, 'batch_stats': exp.state.batch_stats})
  _, v2 = hf.load_pretrained(str(tmp_path / 'hf'))
  del v2['params']['head']  # load_head=False: 10 classes here, 5 in the checkpoint.
  expected = inflate.inflate_resnet(v2, state, 'average')
  assert not state['params']['head']['kernel'].any()  # Fresh: zero-initialised.
  state['params'].pop('head')
  assert jax.tree.structure(state) == jax.tree.structure(expected)
  assert all(jax.tree.leaves(jax.tree.map(np.array_equal, state, expected)))
  assert np.std(state['batch_stats']['stem_bn']['var']) > 0.1  # The checkpoint's statistics.
  # 12 conv kernels, 12 BNs (scale, bias, mean, var), the head.
  assert (f"Initialised 60 of 62 parameter arrays from {config.init_from.path} (hf); 2 left fresh "
          f"(e.g. head/bias, head/kernel)") in caplog.text

  # A torchvision .safetensors of the same net, centre-only kernels.
  save_torchvision(save_hf_resnet(tmp_path / 'hf2'), tmp_path / 'tv.safetensors')
  centre = _i3d_tiny(synthetic_data_dir, tmp_path / 'tv.safetensors', 'central_frame')
  variables = init_from.load_init_variables(centre.init_from, centre.model, state, (8, 28, 28))
  expected = inflate.inflate_resnet(v2, state, 'central_frame')
  assert all(jax.tree.leaves(jax.tree.map(np.array_equal, variables, expected)))


def test_init_from_resnet_errors(tmp_path):
  save_hf_resnet(tmp_path)
  model = ml_collections.ConfigDict(dict(name='resnet3d', depth=18, base_width=8))
  source = ml_collections.ConfigDict(dict(path=str(tmp_path), kernel_init='average',
                                          load_head=False))
  with pytest.raises(ValueError, match=r'holds a 2D ResNet-10 of base width 4, which does not '
                                       r'inflate into config.model: set --config.model.depth=10 '
                                       r'--config.model.base_width=4'):
    init_from.load_init_variables(source, model, {'params': {}}, (8, 32, 32))
  with pytest.raises(ValueError, match=r"holds a 'resnet2d' model but config.model.name='vivit'"
                                       r": set --config.model.name to one of resnet2d, resnet3d"):
    init_from.load_init_variables(source, ml_collections.ConfigDict(dict(name='vivit')),
                                  {'params': {}}, (8, 32, 32))
