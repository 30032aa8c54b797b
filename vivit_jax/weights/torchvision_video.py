"""torchvision VideoResNet state dicts (r3d_18, mc3_18, r2plus1d_18; e.g. r3d_18-b3b3357e.pth) ->
our 'r2plus1d' model's variables (`variables`); `is_video_resnet` recognises the format.

Names follow torchvision/models/video/resnet.py (one name map, `_torchvision_name`):

  stem.0, stem.1                          stem_conv, stem_bn (r3d, mc3: BasicStem)
  stem.0, stem.1, stem.3, stem.4          stem_conv/{conv_s, bn_s, conv_t}, stem_bn (r2plus1d:
                                          R2Plus1dStem)
  layer{s}.{j}.conv1.0, conv1.1           stage_{s}/block_{j}/conv_a, bn_a (conv1.0 a Conv3d, or
  layer{s}.{j}.conv2.0, conv2.1           .../conv_b, bn_b  a Conv2Plus1D: .0, .1, .3 ->
                                          conv_s, bn_s, conv_t)
  layer{s}.{j}.downsample.0, .1           .../shortcut_conv, shortcut_bn
  fc                                      head

The model to convert into (config.model, name 'r2plus1d', depth 18, base_width 64):
  r3d_18       factorised=False
  mc3_18       factorised=False, temporal_stages=1
  r2plus1d_18  factorised=True, mid_width_rule='torchvision'
"""
from typing import Iterable, Mapping, Sequence

import numpy as np

from vivit_jax.models import r2plus1d
from vivit_jax.weights import torch_state

_CONV2PLUS1D = {'conv_s': '0', 'bn_s': '1', 'conv_t': '3'}  # Conv2Plus1D's (and the stem's) parts.
_BLOCK = {'conv_a': 'conv1.0', 'bn_a': 'conv1.1', 'conv_b': 'conv2.0', 'bn_b': 'conv2.1',
          'shortcut_conv': 'downsample.0', 'shortcut_bn': 'downsample.1'}
FIX = ("set config.model (name 'r2plus1d', depth 18, base_width 64) for r3d_18: "
       "factorised=False; mc3_18: factorised=False, temporal_stages=1; r2plus1d_18: "
       "factorised=True, mid_width_rule='torchvision'; and num_classes")


def is_video_resnet(names: Iterable[str]) -> bool:
  """Whether tensor `names` are a torchvision VideoResNet state dict's (a stem Sequential and
  Sequential block convs: 'stem.0.weight', 'layer1.0.conv1.0...'), not a 2D torchvision ResNet's
  ('conv1.weight', 'layer1.0.conv1.weight') or PyTorchVideo's ('blocks.0...')."""
  names = set(names)
  return 'stem.0.weight' in names and any(n.startswith('layer1.0.conv1.0.') for n in names)


def _torchvision_name(key: torch_state.Key, factorised: bool) -> str:
  """Our r2plus1d leaf, e.g. ('params', 'stage_2', 'block_0', 'conv_a', 'conv_s', 'kernel'),
  -> its torchvision tensor name ('layer2.0.conv1.0.0.weight')."""
  module = key[1:-1]
  if module[0].startswith('stage_'):
    stage, block, part, *inner = module
    name = (f"layer{stage.removeprefix('stage_')}.{block.removeprefix('block_')}."
            f"{_BLOCK[part]}")
  elif module[0] == 'stem_conv':
    name, inner = ('stem', module[1:]) if factorised else ('stem.0', ())
  else:
    name, inner = {'stem_bn': 'stem.4' if factorised else 'stem.1', 'head': 'fc'}[module[0]], ()
  return torch_state.tensor_name(key, '.'.join([name, *(_CONV2PLUS1D[p] for p in inner)]))


def variables(state_dict: Mapping[str, np.ndarray], model: r2plus1d.R2Plus1D, *,
              load_head: bool = True, clip: Sequence[int] | None = None) -> torch_state.Variables:
  """A torchvision VideoResNet state dict (numpy arrays) -> `model`'s variables {'params',
  'batch_stats'} (float32, as stored; without `load_head`, no classifier), built on clips `clip`
  (T, H, W; the variables do not depend on it).

  `model` must be the architecture the checkpoint was trained as (module docstring). Raises
  ValueError naming the first tensors that do not fit (another architecture or size).
  """
  described = (f"R{'(2+1)' if model.factorised else '3'}D-{model.depth} (temporal_stages "
               f"{model.temporal_stages}, mid_width_rule '{model.mid_width_rule}')")
  return torch_state.to_variables(
      state_dict, torch_state.abstract_variables(model, (*(clip or (8, 32, 32)), 3)),
      lambda key: _torchvision_name(key, model.factorised), load_head=load_head,
      described=described, fix=FIX)
