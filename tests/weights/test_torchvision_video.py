"""vivit_jax/weights/torchvision_video.py: torchvision's r3d_18, mc3_18 and r2plus1d_18 state dicts
converted into our 'r2plus1d' model give the logits of torchvision's VideoResNet (a reference
module written from its source, tests/weights/torchvision_video_reference.py: torchvision cannot
be installed here), at the published parameter counts; other formats and architectures are told
apart or refused by name."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from tests.weights import torchvision_video_reference as reference
from vivit_jax.models import r2plus1d
from vivit_jax.weights import torchvision_video

SMALL_WIDTHS = (8, 16, 32, 64)  # Our base_width 8; the (2+1)D stem's M is then 45 * 8 // 64 = 5.
# Architecture -> (reference builder, our R2Plus1D fields, torchvision's published num_params).
ARCHITECTURES = {
    'r3d_18': (reference.r3d, dict(factorised=False), 33_371_472),
    'mc3_18': (reference.mc3, dict(factorised=False, temporal_stages=1), 11_695_440),
    'r2plus1d_18': (reference.r2plus1d, dict(mid_width_rule='torchvision'), 31_505_325),
}


def _small_reference(arch: str, seed: int = 0) -> torch.nn.Module:
  """The reference `arch` at SMALL_WIDTHS, 10 classes, eval mode, with random weights and random
  BatchNorm statistics (so a BN mapped to the wrong tensor shows)."""
  torch.manual_seed(seed)
  build = ARCHITECTURES[arch][0]
  net = (build(SMALL_WIDTHS, num_classes=10, stem_mid=5) if arch == 'r2plus1d_18'
         else build(SMALL_WIDTHS, num_classes=10))
  for module in net.modules():
    if isinstance(module, torch.nn.BatchNorm3d):
      torch.nn.init.uniform_(module.weight, 0.5, 1.5)
      torch.nn.init.normal_(module.bias, 0, 0.1)
      module.running_mean.normal_(0, 0.1)
      module.running_var.uniform_(0.5, 1.5)
  torch.nn.init.normal_(net.fc.weight, 0, 1.0)  # Logits of order 1.
  return net.eval()


def _numpy_state(net: torch.nn.Module) -> dict:
  return {name: tensor.numpy() for name, tensor in net.state_dict().items()}


def _ours(arch: str, **fields) -> r2plus1d.R2Plus1D:
  return r2plus1d.R2Plus1D(**{**dict(num_classes=10, base_width=SMALL_WIDTHS[0]),
                              **ARCHITECTURES[arch][1], **fields})


@pytest.mark.parametrize('arch', list(ARCHITECTURES))
def test_logits_equal_torchvision(arch):
  """Eval mode, float32, a 2 x 8 x 32 x 32 clip: logits within 1e-4, same argmax."""
  net = _small_reference(arch)
  model = _ours(arch)
  variables = torchvision_video.variables(_numpy_state(net), model)
  video = np.random.default_rng(0).normal(size=(2, 8, 32, 32, 3)).astype(np.float32)
  ours = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, video))
  with torch.no_grad():
    theirs = net(torch.from_numpy(video).permute(0, 4, 1, 2, 3)).numpy()
  assert ours.shape == theirs.shape == (2, 10)
  np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
  assert (ours.argmax(-1) == theirs.argmax(-1)).all()


@pytest.mark.parametrize('arch', list(ARCHITECTURES))
def test_full_size_parameter_counts(arch):
  """R2Plus1D(num_classes=400) with the architecture's fields has the reference's parameter
  count and torchvision's published one (no compute: jax.eval_shape)."""
  build, _, published = ARCHITECTURES[arch]
  model = _ours(arch, num_classes=400, base_width=64)
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 16, 112, 112, 3)),
                                             train=False))['params']
  ours = sum(leaf.size for leaf in jax.tree.leaves(params))
  theirs = sum(p.numel() for p in build().parameters())
  assert ours == theirs == published


def test_torchvision_rule_mid_widths():
  """torchvision's rule: both (2+1)D convs of the first block of stages 2-4 have M 230, 460, 921
  (the per-conv rule gives the second 288, 576, 1152)."""
  def second_conv_mids(rule):
    model = r2plus1d.R2Plus1D(num_classes=400, mid_width_rule=rule)
    params = nn.unbox(jax.eval_shape(lambda: model.init(
        jax.random.key(0), jnp.zeros((1, 8, 32, 32, 3)), train=False))['params'])
    return [params[f'stage_{s}']['block_0']['conv_b']['conv_s']['kernel'].shape[-1]
            for s in (2, 3, 4)]
  assert second_conv_mids('torchvision') == [230, 460, 921]
  assert second_conv_mids('per_conv') == [288, 576, 1152]


def test_other_architecture_refused():
  """r3d's state dict given to a factorised model names the tensors it lacks; mc3's given to
  r3d names the first tensor of another shape (the 1 x 3 x 3 conv of stage 2)."""
  r3d = _numpy_state(_small_reference('r3d_18'))
  with pytest.raises(ValueError, match=r"lacks .* tensors of R\(2\+1\)D-18 .*'layer1.0.conv1.0.0"
                                       r".weight'.*temporal_stages=1"):
    torchvision_video.variables(r3d, _ours('r2plus1d_18'))
  mc3 = _numpy_state(_small_reference('mc3_18'))
  with pytest.raises(ValueError, match=r"'layer2.0.conv1.0.weight' \(16, 8, 1, 3, 3\) gives params/"
                                       r"stage_2/block_0/conv_a/kernel the shape \(1, 3, 3, 8, "
                                       r"16\), but R3D-18 .* has \(3, 3, 3, 8, 16\)"):
    torchvision_video.variables(mc3, _ours('r3d_18'))


def test_is_video_resnet():
  """True for the three architectures' names; False for a 2D torchvision ResNet's and for
  PyTorchVideo's."""
  for arch in ARCHITECTURES:
    assert torchvision_video.is_video_resnet(_small_reference(arch).state_dict()), arch
  resnet2d = ['conv1.weight', 'bn1.weight', 'bn1.running_mean', 'layer1.0.conv1.weight',
              'layer1.0.bn1.weight', 'fc.weight', 'fc.bias']
  pytorchvideo = ['blocks.0.conv.weight', 'blocks.0.norm.weight',
                  'blocks.1.res_blocks.0.branch2.conv_a.weight', 'blocks.5.proj.weight']
  assert not torchvision_video.is_video_resnet(resnet2d)
  assert not torchvision_video.is_video_resnet(pytorchvideo)
