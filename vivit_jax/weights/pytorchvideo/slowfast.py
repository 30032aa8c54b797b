"""PyTorchVideo SlowFast state dicts (create_slowfast: SLOWFAST_8x8_R50, SLOWFAST_4x16_R50) -> our
SlowFast's variables (`slowfast_variables`). Pathway p is 0 (slow) or 1 (fast); stem, block and
head names as resnet.py's:

  blocks.0.multipathway_blocks.{p}.{conv, norm}                   {slow, fast}/stem_conv, stem_bn
  blocks.{s}.multipathway_blocks.{p}.res_blocks.{j}.branch2...   {slow, fast}/stage_{s}/block_{j}
  blocks.{i}.multipathway_fusion.{conv_fast_to_slow, norm}       fuse_{i}/{conv, bn} (i = 0..3)
  blocks.6.proj                                                   head
"""
from typing import Mapping, Sequence

import numpy as np

from vivit_jax.models import resnet, slowfast
from vivit_jax.weights import torch_state
from vivit_jax.weights.pytorchvideo import resnet as pytorchvideo_resnet

PATHWAYS = {'slow': 0, 'fast': 1}
_FUSE = {'conv': 'conv_fast_to_slow', 'bn': 'norm'}


def _slowfast_name(key: torch_state.Key) -> str:
  """Our SlowFast leaf, e.g. ('params', 'fast', 'stage_1', 'block_0', 'conv_a', 'kernel'), -> its
  PyTorchVideo tensor name."""
  module = key[1:-1]
  if module[0] == 'head':
    name = f'blocks.{resnet.NUM_STAGES + 2}.{pytorchvideo_resnet.HEAD}'
  elif module[0].startswith('fuse_'):
    name = f"blocks.{module[0].removeprefix('fuse_')}.multipathway_fusion.{_FUSE[module[1]]}"
  else:
    pathway, part, *rest = module
    prefix = f'multipathway_blocks.{PATHWAYS[pathway]}'
    if part in pytorchvideo_resnet.STEM:
      name = f'blocks.0.{prefix}.{pytorchvideo_resnet.STEM[part]}'
    else:
      name = (f"blocks.{part.removeprefix('stage_')}.{prefix}."
              f"{pytorchvideo_resnet.block_name(*rest)}")
  return torch_state.tensor_name(key, name)


def slowfast_variables(state_dict: Mapping[str, np.ndarray],
                       model: slowfast.SlowFast, *, load_head: bool = True,
                       clip: Sequence[int] | None = None) -> torch_state.Variables:
  """A PyTorchVideo SlowFast state dict (numpy arrays, e.g. SLOWFAST_8x8_R50.pyth's
  'model_state') -> `model`'s variables {'params', 'batch_stats'} (float32, as stored; without
  `load_head`, no classifier), built on clips `clip` (T, H, W; the variables do not depend on
  it).

  `model` must be the SlowFast the checkpoint was trained as (configs/cnn/slowfast_r50_k400.py,
  8x8 or 4x16). Raises ValueError naming the first tensors that do not fit (another
  architecture, depth, widths or fusion kernel).
  """
  pytorchvideo_resnet.refuse_nonlocal(model.nonlocal_blocks)
  return torch_state.to_variables(
      state_dict, torch_state.abstract_variables(model, (*(clip or (2 * model.alpha, 32, 32)), 3)),
      _slowfast_name, load_head=load_head,
      described=f'SlowFast-{model.depth} (base_width {model.base_width}, beta_inv '
                f'{model.beta_inv}, fusion_kernel {model.fusion_kernel})',
      fix='check config.model.depth, base_width, beta_inv, fusion_kernel, '
          'fusion_conv_channel_ratio and num_classes')
