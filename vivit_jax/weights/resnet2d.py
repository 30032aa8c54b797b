"""2D ResNet checkpoints -> `ResNet2D` ('resnet2d') variables {'params', 'batch_stats'}.

Two PyTorch layouts, read from safetensors with numpy (torch is never needed):
  torchvision (`read_torchvision(path)`, a state dict file: .safetensors, or a torch pickle):
    conv1, bn1, layer{S}.{J}.{conv1, bn1, conv2, bn2, [conv3, bn3,] downsample.{0, 1}}, fc
  Hugging Face ResNetModel / ResNetForImageClassification (`from_hf`, used by
    `hf.load_pretrained` for model_type 'resnet'): [resnet.]embedder.embedder.{convolution,
    normalization}, encoder.stages.{S-1}.layers.{J}.{layer.{0, 1, [2]}, shortcut}.{convolution,
    normalization}, classifier.1
Both are ResNet v1.5 as ours: the spatial stride on the 3x3 conv of a bottleneck, a projection
shortcut (1x1 conv + BN) where a block changes the shape, a 7x7/2 stem padded by 3 and a 3x3/2 max
pool padded by 1, ReLU, BatchNorm eps 1e-5. A conv weight (O, I, kh, kw) becomes a kernel
(kh, kw, I, O); BN weight/bias -> params scale/bias, running_mean/var -> batch_stats mean/var
(num_batches_tracked is dropped); a Linear (O, I) -> Dense kernel (I, O). Widths must follow our
rule (stage s has base_width * 2^s channels, x 4 at a bottleneck's output): wide ResNets and
ResNeXt (grouped convs) are rejected with the tensor and both shapes.
"""
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import traverse_util

from vivit_jax.models import resnet
from vivit_jax.weights import torch_state
from vivit_jax.weights.tensors import Tensors, check_supported

Variables = dict[str, Any]
# Hugging Face ResNetConfig defaults, for fields a config.json leaves out.
HF_DEFAULTS = dict(embedding_size=64, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 6, 3],
                   layer_type='bottleneck', hidden_act='relu', downsample_in_first_stage=False,
                   downsample_in_bottleneck=False)
_BLOCK_PARTS = ('conv_a', 'bn_a', 'conv_b', 'bn_b', 'conv_c', 'bn_c')


def _torchvision_name(module: tuple[str, ...]) -> str:
  """Our module path (e.g. ('stage_2', 'block_0', 'shortcut_bn')) -> torchvision's name."""
  if len(module) == 1:
    return {'stem_conv': 'conv1', 'stem_bn': 'bn1', 'head': 'fc'}[module[0]]
  stage, block, part = module
  inner = {'shortcut_conv': 'downsample.0', 'shortcut_bn': 'downsample.1'}.get(part)
  if inner is None:  # conv_a -> conv1, bn_b -> bn2, ...
    inner = f"{part.split('_')[0]}{'abc'.index(part[-1]) + 1}"
  return f"layer{stage.removeprefix('stage_')}.{block.removeprefix('block_')}.{inner}"


def _hf_name(module: tuple[str, ...]) -> str:
  """Our module path -> Hugging Face ResNet's (without the 'resnet.' prefix)."""
  if len(module) == 1:
    return {'stem_conv': 'embedder.embedder.convolution',
            'stem_bn': 'embedder.embedder.normalization', 'head': 'classifier.1'}[module[0]]
  stage, block, part = module
  kind = 'convolution' if part.endswith('conv') or part.startswith('conv') else 'normalization'
  inner = ('shortcut' if part.startswith('shortcut')
           else f"layer.{_BLOCK_PARTS.index(part) // 2}")
  return (f"encoder.stages.{int(stage.removeprefix('stage_')) - 1}.layers."
          f"{block.removeprefix('block_')}.{inner}.{kind}")


@functools.lru_cache(maxsize=16)
def _abstract(depth: int, base_width: int, num_classes: int) -> dict[tuple[str, ...], Any]:
  """{(collection, *module path, leaf): ShapeDtypeStruct} of ResNet2D(depth, base_width)."""
  model = resnet.ResNet2D(num_classes=num_classes, depth=depth, base_width=base_width)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)),
                                                train=False))
  return traverse_util.flatten_dict(nn.unbox(variables))


def _leaves(module: tuple[str, ...], torch_name: str) -> dict[tuple[str, str], tuple[str, Callable]]:
  """{(collection, leaf): (torch tensor name, conversion)} of our module `module`."""
  if module[-1] == 'head':
    return {('params', 'kernel'): (f'{torch_name}.weight', np.transpose),
            ('params', 'bias'): (f'{torch_name}.bias', np.asarray)}
  if module[-1].endswith('conv') or module[-1].startswith('conv'):
    return {('params', 'kernel'): (f'{torch_name}.weight', lambda w: w.transpose(2, 3, 1, 0))}
  return {('params', 'scale'): (f'{torch_name}.weight', np.asarray),
          ('params', 'bias'): (f'{torch_name}.bias', np.asarray),
          ('batch_stats', 'mean'): (f'{torch_name}.running_mean', np.asarray),
          ('batch_stats', 'var'): (f'{torch_name}.running_var', np.asarray)}


def _read(tensors: Tensors, depth: int, base_width: int, num_classes: int,
          name: Callable[[tuple[str, ...]], str]) -> Variables:
  """ResNet2D(depth, base_width, num_classes) variables from `tensors` named by `name`.

  Raises ValueError listing every missing tensor, or naming a tensor of another shape. Tensors
  with no place in the model are left in `tensors` (check_all_taken reports them).
  """
  abstract = _abstract(depth, base_width, num_classes)
  modules = sorted({k[1:-1] for k in abstract})
  plan = {(col, *m, leaf): (torch, fn) for m in modules
          for (col, leaf), (torch, fn) in _leaves(m, name(m)).items()}
  if set(plan) != set(abstract):
    raise AssertionError(f'ResNet2D variables changed: {sorted(set(plan) ^ set(abstract))[:4]}')
  missing = [torch for torch, _ in plan.values() if torch not in tensors]
  if missing:
    raise ValueError(f'{tensors.path} lacks {len(missing)} tensors of a ResNet-{depth} '
                     f'(base width {base_width}, {num_classes} classes): {", ".join(missing[:10])}'
                     f'{" ..." if len(missing) > 10 else ""}.')
  flat = {}
  for key, (torch, fn) in plan.items():
    value = fn(tensors.take(torch))
    if value.shape != abstract[key].shape:
      raise ValueError(f"{tensors.path}: '{torch}' gives {'/'.join(key)} of shape {value.shape}, "
                       f"but a ResNet-{depth} of base width {base_width} has "
                       f"{abstract[key].shape} (wide ResNets and grouped ResNeXt convs are not "
                       f"supported).")
    flat[key] = value
  for module in modules:  # PyTorch BatchNorm's step counter has no use here.
    counter = f'{name(module)}.num_batches_tracked'
    if counter in tensors:
      tensors.take(counter)
  return traverse_util.unflatten_dict(flat)


def _config(depth: int, base_width: int, num_classes: int) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(name='resnet2d', num_classes=num_classes, depth=depth,
                                        base_width=base_width, dtype='float32',
                                        param_dtype='float32'))


def _depth(kind: str, sizes: tuple[int, ...], source: str) -> int:
  for depth, (k, s) in resnet.DEPTHS.items():
    if (k, tuple(s)) == (kind, tuple(sizes)):
      return depth
  known = ', '.join(f'{d}: {k} {s}' for d, (k, s) in resnet.DEPTHS.items())
  raise ValueError(f'{source}: a ResNet of {kind} blocks {tuple(sizes)} per stage is not one of '
                   f'the supported depths ({known}).')


def is_torchvision_resnet(names) -> bool:
  """Whether tensor `names` are a torchvision 2D ResNet's (conv1, layer1.0.conv1, ...)."""
  return 'conv1.weight' in names and 'layer1.0.conv1.weight' in names


def read_torchvision(path: str) -> tuple[ml_collections.ConfigDict, Variables]:
  """A torchvision ResNet state dict file (torch_state.read_state_dict) -> ('resnet2d' config,
  variables)."""
  return from_torchvision(torch_state.read_state_dict(path), path)


def from_torchvision(state_dict: dict[str, np.ndarray],
                     path: str) -> tuple[ml_collections.ConfigDict, Variables]:
  """A torchvision ResNet state dict (read from `path`) -> ('resnet2d' config, variables).

  Depth, block kind and base width are read from the tensors (conv1's width, the layer{S}.{J}
  blocks, conv3 for bottlenecks); num_classes from fc (0, the pooled features, without fc).
  """
  tensors = Tensors(state_dict, path, prefix='')
  if 'conv1.weight' not in tensors:
    raise ValueError(f"{path} has no 'conv1.weight': not a torchvision ResNet state dict.")
  kind = 'bottleneck' if 'layer1.0.conv3.weight' in tensors else 'basic'
  sizes = tuple(len({k.split('.')[1] for k in tensors.names() if k.startswith(f'layer{s}.')})
                for s in range(1, resnet.NUM_STAGES + 1))
  depth = _depth(kind, sizes, path)
  base_width = tensors.shape('conv1.weight')[0]
  num_classes = tensors.shape('fc.weight')[0] if 'fc.weight' in tensors else 0
  variables = _read(tensors, depth, base_width, num_classes, _torchvision_name)
  tensors.check_all_taken()
  return _config(depth, base_width, num_classes), variables


def from_hf(hf_config: dict[str, Any],
            tensors: Tensors) -> tuple[ml_collections.ConfigDict, Variables]:
  """Hugging Face ResNetModel (num_classes 0: pooled features) or ResNetForImageClassification
  config.json + tensors -> ('resnet2d' config, {'params', 'batch_stats'}).

  Rejects what ResNet2D does not compute: hidden_act other than relu, downsample_in_bottleneck
  (stride on the first 1x1 conv, ResNet v1), downsample_in_first_stage, and widths off our rule
  (hidden_sizes[s] = embedding_size * 2^s, x 4 for bottlenecks).
  """
  cfg = {**HF_DEFAULTS, **hf_config}
  kind, width = cfg['layer_type'], cfg['embedding_size']
  expansion = resnet.BLOCKS[kind].EXPANSION if kind in resnet.BLOCKS else 1
  widths = [width * 2 ** s * expansion for s in range(resnet.NUM_STAGES)]
  check_supported(tensors.path, (
      ('layer_type', kind, kind in resnet.BLOCKS),
      ('hidden_act', cfg['hidden_act'], cfg['hidden_act'] == 'relu'),
      ('downsample_in_bottleneck', cfg['downsample_in_bottleneck'],
       not cfg['downsample_in_bottleneck']),
      ('downsample_in_first_stage', cfg['downsample_in_first_stage'],
       not cfg['downsample_in_first_stage']),
      ('hidden_sizes', cfg['hidden_sizes'], list(cfg['hidden_sizes']) == widths)),
      f"ResNet v1.5 with relu, basic or bottleneck layers, stride in the 3x3 conv, stage 1 "
      f"unstrided, hidden_sizes = embedding_size x (1, 2, 4, 8){' x 4' * (expansion == 4)}, "
      f"here {widths}")
  depth = _depth(kind, tuple(cfg['depths']), tensors.path)
  head = 'classifier.1.weight'
  num_classes = tensors.shape(head)[0] if head in tensors else 0
  return (_config(depth, width, num_classes),
          _read(tensors, depth, width, num_classes, _hf_name))
