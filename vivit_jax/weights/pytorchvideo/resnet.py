"""PyTorchVideo ResNet state dicts (Slow, C2D, I3D via create_resnet; R(2+1)D-R50 via
create_r2plus1d) -> our ResNet3D's variables (`resnet_variables`); the stem, bottleneck and head
names SlowFast's map (slowfast.py) shares.

  blocks.0.conv, blocks.0.norm                                stem_conv, stem_bn
  blocks.{i}.res_blocks.{j}.branch2.{conv_a, norm_a, conv_b,  stage_{s}/block_{j}/{conv_a, bn_a,
      norm_b, conv_c, norm_c}, ...branch1_conv, branch1_norm      conv_b, bn_b, conv_c, bn_c,
                                                                  shortcut_conv, shortcut_bn}
  ...branch2.conv_b.{conv_t, norm, conv_xy}                   (2+1)D: .../{conv_b_t, bn_b_t,
                                                                  conv_b}
  blocks.{5 or 6}.proj                                        head

Stage s is blocks.s, or blocks.s + 1 for s > 1 where a pool1 layer (C2D, I3D: temporal_pool 2)
takes index 2.
"""
from typing import Mapping, Sequence

import numpy as np

from vivit_jax.models import resnet
from vivit_jax.weights import torch_state

STEM = {'stem_conv': 'conv', 'stem_bn': 'norm'}
_BLOCK = {'conv_a': 'branch2.conv_a', 'bn_a': 'branch2.norm_a', 'conv_b': 'branch2.conv_b',
          'bn_b': 'branch2.norm_b', 'conv_c': 'branch2.conv_c', 'bn_c': 'branch2.norm_c',
          'shortcut_conv': 'branch1_conv', 'shortcut_bn': 'branch1_norm'}
# resnet.Bottleneck2Plus1D: conv_b is PyTorchVideo's Conv2plus1d (conv_t, norm, conv_xy).
_FACTORISED_BLOCK = dict(_BLOCK, conv_b_t='branch2.conv_b.conv_t', bn_b_t='branch2.conv_b.norm',
                         conv_b='branch2.conv_b.conv_xy')
HEAD = 'proj'


def block_name(block: str, part: str, factorised: bool = False) -> str:
  """Our block's module `part` ('block_2', 'bn_a') -> PyTorchVideo's name inside its ResStage
  ('res_blocks.2.branch2.norm_a')."""
  parts = _FACTORISED_BLOCK if factorised else _BLOCK
  return f"res_blocks.{block.removeprefix('block_')}.{parts[part]}"


def refuse_nonlocal(nonlocal_blocks) -> None:
  """PyTorchVideo's ResNets have no non-local blocks: ValueError if the model has some."""
  if any(nonlocal_blocks):
    raise ValueError(f'config.model.nonlocal_blocks={nonlocal_blocks!r}: PyTorchVideo checkpoints '
                     f'have no non-local blocks; set it to ((), (), (), ()).')


def _resnet_name(key: torch_state.Key, model: resnet.ResNet3D) -> str:
  """Our ResNet3D leaf, e.g. ('params', 'stage_2', 'block_0', 'bn_a', 'scale'), -> its
  PyTorchVideo tensor name."""
  module = key[1:-1]
  pool1 = int(model.temporal_pool > 1)
  if module[0] in STEM:
    name = f'blocks.0.{STEM[module[0]]}'
  elif module[0] == 'head':
    name = f'blocks.{resnet.NUM_STAGES + 1 + pool1}.{HEAD}'
  else:
    stage = int(module[0].removeprefix('stage_'))
    index = stage + pool1 * (stage > 1)
    name = f'blocks.{index}.{block_name(module[1], module[2], model.factorised)}'
  return torch_state.tensor_name(key, name)


def resnet_variables(state_dict: Mapping[str, np.ndarray],
                     model: resnet.ResNet3D, *, load_head: bool = True,
                     clip: Sequence[int] | None = None) -> torch_state.Variables:
  """A PyTorchVideo ResNet state dict (numpy arrays, e.g. SLOW_8x8_R50.pyth's 'model_state') ->
  `model`'s variables {'params', 'batch_stats'} (float32, as stored; without `load_head`, no
  classifier), built on clips `clip` (T, H, W; the variables do not depend on it).

  `model` must be the ResNet3D the checkpoint was trained as (configs/cnn/slow_r50_k400.py,
  i3d_r50_k400.py, r2plus1d_r50_k400.py). Raises ValueError naming the first tensors that do
  not fit (another architecture, depth, width or pool1).
  """
  refuse_nonlocal(model.nonlocal_blocks)
  kind = '(2+1)D ' if model.factorised else ''
  return torch_state.to_variables(
      state_dict, torch_state.abstract_variables(model, (*(clip or (8, 32, 32)), 3)),
      lambda key: _resnet_name(key, model), load_head=load_head,
      described=f'{kind}ResNet3D-{model.depth} (base_width {model.base_width}, temporal_pool '
                f'{model.temporal_pool})',
      fix='check config.model.depth, base_width, temporal_kernels, stem_temporal_kernel, '
          'temporal_pool, factorised and num_classes')
