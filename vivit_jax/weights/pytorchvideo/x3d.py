"""PyTorchVideo X3D state dicts -> our X3D's variables (`x3d_variables`).

Names follow `pytorchvideo.models.x3d.create_x3d` (one name map, `_x3d_name`):

  blocks.0.conv.conv_t, blocks.0.conv.conv_xy, blocks.0.norm   stem_conv_s, stem_conv_t, stem_bn
      (create_x3d puts the 1x3x3 spatial conv in Conv2plus1d's `conv_t` slot and the 5x1x1
      temporal one in `conv_xy`; they run in that order)
  blocks.{s}.res_blocks.{j}.branch2.{conv_a, norm_a, conv_b, norm_b.0, conv_c, norm_c}
                                                              stage_{s}/block_{j}/{conv_a, bn_a,
                                                              conv_b, bn_b, conv_c, bn_c}
  ...branch2.norm_b.1.block.{0, 2}                            .../se/{reduce, expand}
  ...branch1_conv, ...branch1_norm                            .../shortcut_conv, shortcut_bn
  blocks.5.pool.{pre_conv, pre_norm, post_conv}, blocks.5.proj head_conv, head_bn, head_fc, head
"""
from typing import Mapping, Sequence

import numpy as np

from vivit_jax.models import x3d
from vivit_jax.weights import torch_state

_STEM = {'stem_conv_s': 'blocks.0.conv.conv_t', 'stem_conv_t': 'blocks.0.conv.conv_xy',
         'stem_bn': 'blocks.0.norm'}
_BLOCK = {'conv_a': 'branch2.conv_a', 'bn_a': 'branch2.norm_a', 'conv_b': 'branch2.conv_b',
          'bn_b': 'branch2.norm_b.0', 'se/reduce': 'branch2.norm_b.1.block.0',
          'se/expand': 'branch2.norm_b.1.block.2', 'conv_c': 'branch2.conv_c',
          'bn_c': 'branch2.norm_c', 'shortcut_conv': 'branch1_conv',
          'shortcut_bn': 'branch1_norm'}
_HEAD = {'head_conv': 'pool.pre_conv', 'head_bn': 'pool.pre_norm', 'head_fc': 'pool.post_conv',
         'head': 'proj'}


def _x3d_name(key: torch_state.Key) -> str:
  """Our X3D leaf, e.g. ('params', 'stage_2', 'block_0', 'se', 'reduce', 'kernel'), -> its
  PyTorchVideo tensor name."""
  module = key[1:-1]
  if module[0].startswith('stage_'):
    stage, block, *part = module
    name = (f"blocks.{stage.removeprefix('stage_')}.res_blocks.{block.removeprefix('block_')}."
            f"{_BLOCK['/'.join(part)]}")
  else:
    name = _STEM.get(module[0]) or f'blocks.{len(x3d.DEPTHS) + 1}.{_HEAD[module[0]]}'
  return torch_state.tensor_name(key, name)


def x3d_variables(state_dict: Mapping[str, np.ndarray], model: x3d.X3D, *,
                  load_head: bool = True,
                  clip: Sequence[int] | None = None) -> torch_state.Variables:
  """A PyTorchVideo X3D state dict (numpy arrays, e.g. X3D_M.pyth's 'model_state') -> `model`'s
  variables {'params', 'batch_stats'} (float32, as stored; without `load_head`, no classifier),
  built on clips `clip` (T, H, W; the variables do not depend on it).

  `model` must be the X3D the checkpoint was trained as (X3D-M: X3D(num_classes=400)). Raises
  ValueError naming the first tensors that do not fit (another architecture, widths or depths).
  """
  return torch_state.to_variables(
      state_dict, torch_state.abstract_variables(model, (*(clip or (1, 32, 32)), 3)), _x3d_name,
      load_head=load_head,
      described=f'X3D {model.stages()} (blocks, width, inner width) per stage',
      fix='check config.model.depth_factor, base_width, width_factor, bottleneck_factor, '
          'se_ratio, head_width and num_classes')
