"""2D ResNet checkpoints: Hugging Face ResNetForImageClassification and torchvision state dicts
read into ResNet2D give PyTorch's logits; unsupported layouts and broken files raise."""
import json
import re

import jax
import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import save_file

from vivit_jax.models import resnet
from vivit_jax.weights import hf, resnet2d

# layer_type -> (our depth, HF depths, base width): ResNet-10 of basic blocks, ResNet-50.
NETS = {'basic': (10, [1, 1, 1, 1], 4), 'bottleneck': (50, [3, 4, 6, 3], 2)}
NUM_CLASSES = 5


def save_hf_resnet(directory, layer_type: str = 'basic', seed: int = 0,
                   **config) -> transformers.ResNetForImageClassification:
  """A random ResNetForImageClassification of NETS[layer_type] with random BN weights and
  running statistics, in eval mode, saved with save_pretrained to `directory`."""
  _, depths, width = NETS[layer_type]
  expansion = resnet.BLOCKS[layer_type].EXPANSION
  torch.manual_seed(seed)
  model = transformers.ResNetForImageClassification(transformers.ResNetConfig(**{**dict(
      embedding_size=width, hidden_sizes=[width * 2 ** s * expansion for s in range(4)],
      depths=depths, layer_type=layer_type, num_labels=NUM_CLASSES), **config})).eval()
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        module.weight.normal_(1.0, 0.3)
        module.bias.normal_(0.0, 0.3)
        module.running_mean.normal_(0.0, 0.3)
        module.running_var.uniform_(0.5, 1.5)
    model.classifier[1].bias.normal_()
  model.save_pretrained(directory)
  return model


def _images(seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).normal(size=(2, 32, 32, 3)).astype(np.float32)


def _torch_logits(model, images: np.ndarray) -> np.ndarray:
  with torch.no_grad():
    return model(torch.from_numpy(images.transpose(0, 3, 1, 2))).logits.numpy()


def _our_logits(config, variables, images: np.ndarray) -> np.ndarray:
  net = resnet.ResNet2D(num_classes=config.num_classes, depth=config.depth,
                        base_width=config.base_width)
  return np.asarray(jax.jit(lambda v, x: net.apply(v, x, train=False))(variables, images))


def _to_torchvision(name: str) -> str:
  """A Hugging Face ResNetForImageClassification tensor name -> torchvision's."""
  for pattern, repl in (
      (r'^resnet\.embedder\.embedder\.convolution', 'conv1'),
      (r'^resnet\.embedder\.embedder\.normalization', 'bn1'),
      (r'^classifier\.1', 'fc'),
      (r'^resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d)\.convolution',
       lambda m: f'layer{int(m[1]) + 1}.{m[2]}.conv{int(m[3]) + 1}'),
      (r'^resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d)\.normalization',
       lambda m: f'layer{int(m[1]) + 1}.{m[2]}.bn{int(m[3]) + 1}'),
      (r'^resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.convolution',
       lambda m: f'layer{int(m[1]) + 1}.{m[2]}.downsample.0'),
      (r'^resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.normalization',
       lambda m: f'layer{int(m[1]) + 1}.{m[2]}.downsample.1')):
    new, n = re.subn(pattern, repl, name)
    if n:
      return new
  raise AssertionError(f'unexpected Hugging Face ResNet tensor {name}')


def save_torchvision(model, path) -> dict[str, np.ndarray]:
  """`model`'s state dict under torchvision's names, saved to the .safetensors `path`."""
  state = {_to_torchvision(k): v.numpy() for k, v in model.state_dict().items()}
  save_file(state, str(path))
  return state


@pytest.fixture(scope='module', params=list(NETS))
def hf_resnet(request, tmp_path_factory):
  """(layer_type, torch model, its save_pretrained directory)."""
  directory = tmp_path_factory.mktemp(f'hf_resnet_{request.param}')
  return request.param, save_hf_resnet(directory, request.param), str(directory)


def test_hf_resnet_gives_pytorch_logits(hf_resnet):
  layer_type, model, directory = hf_resnet
  config, variables = hf.load_pretrained(directory)
  depth, _, width = NETS[layer_type]
  assert config.to_dict() == dict(name='resnet2d', num_classes=NUM_CLASSES, depth=depth,
                                  base_width=width, dtype='float32', param_dtype='float32')
  assert set(variables) == {'params', 'batch_stats'}
  bn = model.resnet.encoder.stages[1].layers[0].shortcut.normalization
  np.testing.assert_array_equal(variables['batch_stats']['stage_2']['block_0']['shortcut_bn']['var'],
                                bn.running_var.numpy())
  images = _images()
  expected = _torch_logits(model, images)
  ours = _our_logits(config, variables, images)
  assert np.abs(expected).max() > 0.1  # Non-trivial logits.
  np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=0)


def test_torchvision_state_dict_reads_as_the_hf_model(hf_resnet, tmp_path):
  """The same tensors under torchvision's names give the same config and variables."""
  layer_type, model, directory = hf_resnet
  state = save_torchvision(model, tmp_path / 'resnet.safetensors')
  assert 'layer1.0.conv1.weight' in state and 'fc.weight' in state
  assert ('layer1.0.conv3.weight' in state) == (layer_type == 'bottleneck')
  config, variables = resnet2d.read_torchvision(str(tmp_path / 'resnet.safetensors'))
  hf_config, hf_variables = hf.load_pretrained(directory)
  assert config == hf_config
  assert jax.tree.structure(variables) == jax.tree.structure(hf_variables)
  assert all(jax.tree.leaves(jax.tree.map(np.array_equal, variables, hf_variables)))


def test_resnet_model_without_classifier_gives_pooled_features(tmp_path):
  model = save_hf_resnet(tmp_path / 'cls')
  model.resnet.save_pretrained(tmp_path / 'base')  # ResNetModel: no 'resnet.' prefix.
  config, variables = hf.load_pretrained(str(tmp_path / 'base'))
  assert config.num_classes == 0 and 'head' not in variables['params']
  images = _images(1)
  with torch.no_grad():
    expected = model.resnet(torch.from_numpy(images.transpose(0, 3, 1, 2))).pooler_output
  np.testing.assert_allclose(_our_logits(config, variables, images),
                             expected.numpy()[:, :, 0, 0], atol=1e-4, rtol=0)


@pytest.mark.parametrize('config, match', [
    (dict(downsample_in_bottleneck=True), r'downsample_in_bottleneck=True is not supported'),
    (dict(downsample_in_first_stage=True), r'downsample_in_first_stage=True is not supported'),
    (dict(hidden_act='gelu'), r"hidden_act='gelu' is not supported"),
    (dict(hidden_sizes=[8, 16, 32, 48]),
     r'hidden_sizes=\[8, 16, 32, 48\] is not supported .* here \[8, 16, 32, 64\]'),
    (dict(depths=[2, 2, 2, 1]), r'a ResNet of bottleneck blocks \(2, 2, 2, 1\) per stage is not '
                                r'one of the supported depths'),
])
def test_unsupported_hf_configs_are_rejected(tmp_path, config, match):
  save_hf_resnet(tmp_path, 'bottleneck', **config)
  with pytest.raises(ValueError, match=match):
    hf.load_pretrained(str(tmp_path))


@pytest.fixture(scope='module')
def torchvision_state(tmp_path_factory):
  directory = tmp_path_factory.mktemp('tv')
  return save_torchvision(save_hf_resnet(directory / 'hf'), directory / 'tv.safetensors')


def _read_edited(tmp_path, state, drop=(), add=None):
  edited = {k: v for k, v in state.items() if k not in drop}
  edited.update(add or {})
  save_file(edited, str(tmp_path / 'edited.safetensors'))
  return resnet2d.read_torchvision(str(tmp_path / 'edited.safetensors'))


def test_torchvision_errors(tmp_path, torchvision_state):
  state = torchvision_state
  with pytest.raises(ValueError, match=r'lacks 2 tensors of a ResNet-10 \(base width 4, 5 '
                                       r'classes\): layer2.0.bn2.running_var, layer3.0.conv1.weight'):
    _read_edited(tmp_path, state, drop=('layer3.0.conv1.weight', 'layer2.0.bn2.running_var'))
  with pytest.raises(ValueError, match=r"1 tensors have no place in the model, e.g. "
                                       r"\['layer1.0.extra.weight'\]"):
    _read_edited(tmp_path, state, add={'layer1.0.extra.weight': np.zeros(3, np.float32)})
  second = {k.replace('layer1.0.', 'layer1.1.'): v for k, v in state.items()
            if k.startswith('layer1.0.')}
  with pytest.raises(ValueError, match=r'basic blocks \(2, 1, 1, 1\) per stage is not one of the '
                                       r'supported depths \(10: basic \(1, 1, 1, 1\)'):
    _read_edited(tmp_path, state, add=second)
  wide = dict(state, **{'layer2.0.conv1.weight': np.zeros((16, 4, 3, 3), np.float32)})
  with pytest.raises(ValueError, match=r"'layer2.0.conv1.weight' gives params/stage_2/block_0/"
                                       r"conv_a/kernel of shape \(3, 3, 4, 16\), but a ResNet-10 "
                                       r"of base width 4 has \(3, 3, 4, 8\)"):
    _read_edited(tmp_path, wide)
  with pytest.raises(ValueError, match=r"has no 'conv1.weight': not a torchvision ResNet"):
    _read_edited(tmp_path, state, drop=('conv1.weight',))


def test_hf_config_defaults_are_resnet50(tmp_path):
  """A config.json with only model_type reads as ResNet-50 at width 64 (HF's defaults)."""
  model = transformers.ResNetForImageClassification(transformers.ResNetConfig(num_labels=3))
  shapes = {k: v.shape for k, v in model.state_dict().items()}
  assert shapes['resnet.embedder.embedder.convolution.weight'] == (64, 3, 7, 7)
  model.save_pretrained(tmp_path)
  (tmp_path / 'config.json').write_text(json.dumps(dict(model_type='resnet', num_labels=3)))
  config, variables = hf.load_pretrained(str(tmp_path))
  assert (config.depth, config.base_width, config.num_classes) == (50, 64, 3)
  assert variables['params']['stage_4']['block_2']['conv_c']['kernel'].shape == (1, 1, 512, 2048)
  # torchvision's resnet50 has 25,557,032 parameters with its 1000-class fc.
  assert sum(x.size for x in jax.tree.leaves(variables['params'])) == (
      25_557_032 - 2048 * 1000 - 1000 + 2048 * 3 + 3)
