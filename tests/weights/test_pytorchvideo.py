"""PyTorchVideo's ResNet and SlowFast checkpoints (vivit_jax/weights/pytorchvideo/resnet.py,
slowfast.py) into ResNet3D and SlowFast, against PyTorchVideo's models in torch.

Numerics: each family at ResNet-50 depth with widths / 16 (stem 4) on 8 x 32 x 32 clips, random
weights and BN statistics, float32 eval mode. Sizes: every preset's model takes the full-size
state dict of the PyTorchVideo builder of its checkpoint, tensor for tensor (shapes only: torch's
meta device, jax.eval_shape).
"""
import numpy as np
import pytest
import torch

import jax
from configs import common
from tests.helpers import (assert_same_logits, pytorchvideo_models, randomised_torch,
                           torch_logits)
from vivit_jax import models
from vivit_jax.models import resnet, slowfast
from vivit_jax.weights import pytorchvideo

NUM_CLASSES = 7
STEM_WIDTH = 4
I3D_KERNELS = ((3,), (3, 1), (3, 1), (1, 3))
R2PLUS1D = dict(factorised=True, temporal_kernels=(1, 1, 1, 1), stem_pool=False,
                spatial_strides=(2, 2, 2, 2), temporal_strides=(1, 1, 2, 2))
# Family -> (our small ResNet3D's fields, PyTorchVideo builder 'module.function', its kwargs):
# the hub builders' settings (slow_r50, r2plus1d_r50 fix fields set here: their create_ function)
# with the head's pool window the final feature map of 8 x 32 x 32 clips.
RESNETS = {
    'slow': (dict(), 'resnet.create_resnet',
             dict(stem_conv_kernel_size=(1, 7, 7), head_pool_kernel_size=(8, 1, 1))),
    'c2d': (dict(temporal_kernels=(1, 1, 1, 1), temporal_pool=2), 'hub.c2d_r50',
            dict(head_pool_kernel_size=(4, 1, 1))),
    'i3d': (dict(temporal_kernels=I3D_KERNELS, stem_temporal_kernel=5, temporal_pool=2),
            'hub.i3d_r50', dict(head_pool_kernel_size=(4, 1, 1))),
    'r2plus1d': (R2PLUS1D, 'r2plus1d.create_r2plus1d',
                 dict(head_pool_kernel_size=(2, 1, 1), head_activation=None)),
}
# Preset -> PyTorchVideo builder of its checkpoint (hub name, or create_slowfast's 4x16 kwargs).
PRESETS = {
    'configs/cnn/slow_r50_k400.py': 'slow_r50',
    'configs/cnn/slow_r50_k400.py:c2d': 'c2d_r50',
    'configs/cnn/i3d_r50_k400.py': 'i3d_r50',
    'configs/cnn/r2plus1d_r50_k400.py': 'r2plus1d_r50',
    'configs/cnn/slowfast_r50_k400.py': 'slowfast_r50',
    'configs/cnn/slowfast_r50_k400.py:4x16': dict(slowfast_fusion_conv_kernel_size=(5, 1, 1),
                                                  slowfast_fusion_conv_stride=(8, 1, 1)),
}


def _state(net: torch.nn.Module) -> dict:
  return {k: v.numpy() for k, v in net.state_dict().items()}


def _small_resnet(family: str) -> tuple[torch.nn.Module, resnet.ResNet3D]:
  fields, builder, kwargs = RESNETS[family]
  module, function = builder.split('.')
  build = getattr(pytorchvideo_models(module), function)
  net = build(model_num_class=NUM_CLASSES, stem_dim_out=STEM_WIDTH, dropout_rate=0.0, **kwargs)
  return randomised_torch(net), resnet.ResNet3D(num_classes=NUM_CLASSES, base_width=STEM_WIDTH,
                                           **fields)


def _clip(frames: int = 8) -> np.ndarray:
  return np.random.default_rng(1).normal(size=(2, frames, 32, 32, 3)).astype(np.float32)


def _ncthw(clip: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(clip.transpose(0, 4, 1, 2, 3))


@pytest.mark.parametrize('family', RESNETS)
def test_resnet_logits_equal_pytorchvideo(family):
  """Slow, C2D, I3D (pool1 shifts the block indices) and R(2+1)D-R50 ((2+1)D bottlenecks, no
  stem pool, strided res2): PyTorchVideo's model and ours with its converted state dict give
  the same logits within 1e-4 and the same classes."""
  net, model = _small_resnet(family)
  clip = _clip()
  assert_same_logits(model, pytorchvideo.variables(_state(net), model), clip,
                     torch_logits(net, clip))


def test_slowfast_logits_equal_pytorchvideo():
  """SlowFast (alpha 4, fusion kernel 7 as 8x8; fast width 1/4): the same logits within 1e-4 when
  PyTorchVideo's slow pathway gets every 4th frame, as ours takes it."""
  net = randomised_torch(pytorchvideo_models('hub').slowfast_r50(
      model_num_class=NUM_CLASSES, stem_dim_outs=(2 * STEM_WIDTH, STEM_WIDTH // 2),
      slowfast_channel_reduction_ratio=(4,), dropout_rate=0.0,
      head_pool_kernel_sizes=((2, 1, 1), (8, 1, 1))))
  model = slowfast.SlowFast(num_classes=NUM_CLASSES, depth=50, base_width=2 * STEM_WIDTH, alpha=4,
                            beta_inv=4, fusion_kernel=7)
  clip = _clip()
  with torch.no_grad():
    fast = _ncthw(clip)
    expected = net([fast[:, :, ::4], fast]).numpy()
  assert_same_logits(model, pytorchvideo.variables(_state(net), model), clip, expected)


@pytest.mark.parametrize('spec', PRESETS)
def test_preset_takes_the_full_size_checkpoint(spec):
  """Each preset's model takes every tensor of its PyTorchVideo model's state dict (names and
  shapes), and has its parameter count: Slow 32.45M, C2D 24.33M, I3D 28.04M, R(2+1)D-R50
  28.11M, SlowFast 8x8 34.57M, 4x16 34.48M (PyTorchVideo's model zoo)."""
  builder = PRESETS[spec]
  with torch.device('meta'):  # Shapes only: nothing initialised.
    net = (getattr(pytorchvideo_models('hub'), builder)() if isinstance(builder, str)
           else pytorchvideo_models('slowfast').create_slowfast(**builder))
  zeros = {k: np.broadcast_to(np.float32(0), v.shape) for k, v in net.state_dict().items()}
  model = models.build(common.load(spec).model)
  variables = pytorchvideo.variables(zeros, model)
  count = sum(p.size for p in jax.tree.leaves(variables['params']))
  assert count == sum(p.numel() for p in net.parameters())
  assert jax.tree.leaves(variables['batch_stats'])


def test_refuses_another_architecture():
  """An I3D state dict is refused by a Slow model (no pool1: blocks.2 holds no stage) and by a
  C2D model (same layout, other kernels), naming the tensors; non-local blocks are refused."""
  net, i3d = _small_resnet('i3d')
  state = _state(net)
  slow = resnet.ResNet3D(num_classes=NUM_CLASSES, base_width=STEM_WIDTH)
  with pytest.raises(ValueError, match=r"lacks \d+ tensors of ResNet3D-50 .* first "
                                       r"\['blocks.2.res_blocks.0.branch1_conv.weight'"):
    pytorchvideo.variables(state, slow)
  c2d = resnet.ResNet3D(num_classes=NUM_CLASSES, base_width=STEM_WIDTH, **RESNETS['c2d'][0])
  with pytest.raises(ValueError, match=r"'blocks.0.conv.weight' \(4, 3, 5, 7, 7\) gives "
                                       r"params/stem_conv/kernel the shape"):
    pytorchvideo.variables(state, c2d)
  with pytest.raises(ValueError, match=r'config.model.nonlocal_blocks=.*no non-local blocks'):
    pytorchvideo.variables(state, i3d.clone(nonlocal_blocks=((), (1,), (), ())))


@pytest.mark.parametrize('fields, message', [
    (dict(depth=18, factorised=True), r'config.model.factorised=True needs bottleneck blocks'),
    (dict(spatial_strides=(2, 2, 2)), r'config.model.spatial_strides=\(2, 2, 2\) needs one stride'),
    (dict(temporal_strides=(1, 1, 0, 2)), r'config.model.temporal_strides\[2\]=0 must be'),
])
def test_resnet3d_options_name_the_field(fields, message):
  """The options the PyTorchVideo presets add to ResNet3D refuse bad values naming the field."""
  with pytest.raises(ValueError, match=message):
    resnet.ResNet3D(num_classes=NUM_CLASSES, **fields)
