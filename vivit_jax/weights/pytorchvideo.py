"""PyTorchVideo checkpoints -> our variables {'params', 'batch_stats'}: X3D (`x3d_variables`).

A PyTorchVideo model zoo file (`X3D_M.pyth`, a torch pickle) holds the state dict under
'model_state'; the caller turns its tensors into numpy arrays (`{name: t.numpy()}`). Names follow
`pytorchvideo.models.x3d.create_x3d` (one name map, `_x3d_name`):

  blocks.0.conv.conv_t, blocks.0.conv.conv_xy, blocks.0.norm   stem_conv_s, stem_conv_t, stem_bn
      (create_x3d puts the 1x3x3 spatial conv in Conv2plus1d's `conv_t` slot and the 5x1x1
      temporal one in `conv_xy`; they run in that order)
  blocks.{s}.res_blocks.{j}.branch2.{conv_a, norm_a, conv_b, norm_b.0, conv_c, norm_c}
                                                              stage_{s}/block_{j}/{conv_a, bn_a,
                                                              conv_b, bn_b, conv_c, bn_c}
  ...branch2.norm_b.1.block.{0, 2}                            .../se/{reduce, expand}
  ...branch1_conv, ...branch1_norm                            .../shortcut_conv, shortcut_bn
  blocks.5.pool.{pre_conv, pre_norm, post_conv}, blocks.5.proj head_conv, head_bn, head_fc, head

A conv weight (O, I, kt, kh, kw) becomes a kernel (kt, kh, kw, I, O), a Linear (O, I) a Dense
kernel (I, O); BN weight/bias -> params scale/bias, running_mean/var -> batch_stats mean/var;
num_batches_tracked is dropped.
"""
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from vivit_jax.models import x3d

Variables = dict[str, Any]
# Our (collection, leaf) -> PyTorch's parameter or buffer name.
_LEAVES = {('params', 'kernel'): 'weight', ('params', 'scale'): 'weight',
           ('params', 'bias'): 'bias', ('batch_stats', 'mean'): 'running_mean',
           ('batch_stats', 'var'): 'running_var'}
_STEM = {'stem_conv_s': 'blocks.0.conv.conv_t', 'stem_conv_t': 'blocks.0.conv.conv_xy',
         'stem_bn': 'blocks.0.norm'}
_BLOCK = {'conv_a': 'branch2.conv_a', 'bn_a': 'branch2.norm_a', 'conv_b': 'branch2.conv_b',
          'bn_b': 'branch2.norm_b.0', 'se/reduce': 'branch2.norm_b.1.block.0',
          'se/expand': 'branch2.norm_b.1.block.2', 'conv_c': 'branch2.conv_c',
          'bn_c': 'branch2.norm_c', 'shortcut_conv': 'branch1_conv',
          'shortcut_bn': 'branch1_norm'}


def _x3d_name(module: tuple[str, ...], head_block: int) -> str:
  """Our X3D module path, e.g. ('stage_2', 'block_0', 'se', 'reduce'), -> PyTorchVideo's module
  name; the head is blocks.`head_block`."""
  if module[0].startswith('stage_'):
    stage, block, *part = module
    return (f"blocks.{stage.removeprefix('stage_')}.res_blocks.{block.removeprefix('block_')}."
            f"{_BLOCK['/'.join(part)]}")
  head = {'head_conv': 'pool.pre_conv', 'head_bn': 'pool.pre_norm', 'head_fc': 'pool.post_conv',
          'head': 'proj'}
  return _STEM.get(module[0]) or f'blocks.{head_block}.{head[module[0]]}'


def _network_order(name: str) -> list[tuple]:
  """A sort key putting PyTorchVideo names in network order (blocks.2 before blocks.10)."""
  return [(0, int(p), '') if p.isdigit() else (1, 0, p) for p in name.split('.')]


def _convert(weight: np.ndarray) -> np.ndarray:
  """A torch conv weight (O, I, kt, kh, kw) -> (kt, kh, kw, I, O); a Linear's (O, I) -> (I, O);
  vectors as they are."""
  weight = np.asarray(weight)
  return weight.transpose(2, 3, 4, 1, 0) if weight.ndim == 5 else weight.T


def x3d_variables(state_dict: Mapping[str, np.ndarray], model: x3d.X3D) -> Variables:
  """A PyTorchVideo X3D state dict (numpy arrays, e.g. X3D_M.pyth's 'model_state') -> `model`'s
  variables {'params', 'batch_stats'} (float32, as stored).

  `model` must be the X3D the checkpoint was trained as (X3D-M: X3D(num_classes=400)). Raises
  ValueError naming the first tensors that do not fit: missing ones, ones of another shape, and
  ones the model has no place for (another architecture, or other widths or depths).
  """
  abstract = traverse_util.flatten_dict(nn.unbox(jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros((1, 1, 32, 32, 3)), train=False))))
  head_block = len(x3d.DEPTHS) + 1
  keys = {f'{_x3d_name(key[1:-1], head_block)}.{_LEAVES[key[0], key[-1]]}': key
          for key in abstract}  # PyTorchVideo's name -> ours.
  described = f'X3D {model.stages()} (blocks, width, inner width) per stage'
  missing = sorted((name for name in keys if name not in state_dict), key=_network_order)
  if missing:
    raise ValueError(f'The state dict lacks {len(missing)} tensors of {described}, first '
                     f'{missing[:3]}: not a PyTorchVideo X3D state dict of this size (check '
                     f'config.model.depth_factor, base_width, head_width, num_classes).')
  counters = {name.rsplit('.', 1)[0] + '.num_batches_tracked' for name in keys}
  extra = [name for name in state_dict if name not in counters and name not in keys]
  if extra:
    raise ValueError(f'The state dict has {len(extra)} tensors that {described} has no place '
                     f'for, first {extra[:3]}: another architecture or size (check '
                     f'config.model.depth_factor and se_ratio).')
  flat = {}
  for name in filter(keys.__contains__, state_dict):  # In the state dict's (network) order.
    key, value = keys[name], _convert(state_dict[name])
    if value.shape != abstract[key].shape:
      raise ValueError(f"The state dict's '{name}' {tuple(np.shape(state_dict[name]))} gives "
                       f"{'/'.join(key)} the shape {value.shape}, but {described} has "
                       f"{abstract[key].shape}: check config.model.base_width, width_factor, "
                       f"bottleneck_factor, head_width and num_classes.")
    flat[key] = value.astype(abstract[key].dtype)
  return traverse_util.unflatten_dict(flat)
