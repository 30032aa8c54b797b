"""PyTorchVideo MViT state dicts (MVIT_B_16x4.pyth) -> our MViT's variables (`mvit_variables`).

Names follow `pytorchvideo.models.vision_transformers.create_multiscale_vision_transformers`
(one name map, `_mvit_name`):

  patch_embed.patch_model                          patch_embed
  cls_positional_encoding.cls_token                cls/token
  cls_positional_encoding.pos_embed_{spatial, temporal, class}   pos_embedding/{...}
  blocks.{i}.{norm1, norm2, proj}                  block_{i}/{norm_attn, norm_mlp, proj}
  blocks.{i}.attn.{q, k, v, proj}                  block_{i}/attn/{query, key, value, out}
  blocks.{i}.attn.{pool, norm}_{q, k, v}           block_{i}/attn/{pool, norm}_{q, k, v}
  blocks.{i}.mlp.{fc1, fc2}                        block_{i}/mlp/{fc1, fc2}
  norm_embed, head.proj                            norm, head

The class token and positional embeddings keep their (1, N, D) layout; the q/k/v biases (D,)
become (heads, head_dim).
"""
from typing import Mapping, Sequence

import numpy as np

from vivit_jax.models import mvit
from vivit_jax.weights import torch_state

_TOP = {'patch_embed': 'patch_embed.patch_model', 'norm': 'norm_embed', 'head': 'head.proj'}
_BLOCK = {'norm_attn': 'norm1', 'norm_mlp': 'norm2', 'attn/query': 'attn.q', 'attn/key': 'attn.k',
          'attn/value': 'attn.v', 'attn/out': 'attn.proj'}
_POSITIONS = 'cls_positional_encoding'
PYTORCHVIDEO_CLIP = (16, 224, 224)  # MVIT_B_16x4's (T, H, W): its positional embeddings' grid.


def _mvit_name(key: torch_state.Key) -> str:
  """Our MViT leaf, e.g. ('params', 'block_1', 'attn', 'pool_q', 'kernel'), -> its PyTorchVideo
  tensor name."""
  module = key[1:-1]
  if module[0] == 'cls':
    return f'{_POSITIONS}.cls_token'
  if module[0] == 'pos_embedding':
    return f'{_POSITIONS}.pos_embed_{key[-1]}'
  if module[0].startswith('block_'):
    part = '/'.join(module[1:])
    name = f"blocks.{module[0].removeprefix('block_')}.{_BLOCK.get(part, part.replace('/', '.'))}"
  else:
    name = _TOP[module[0]]
  return torch_state.tensor_name(key, name)


def mvit_variables(state_dict: Mapping[str, np.ndarray], model: mvit.MViT, *,
                   load_head: bool = True,
                   clip: Sequence[int] | None = None) -> torch_state.Variables:
  """A PyTorchVideo MViT state dict (numpy arrays, e.g. MVIT_B_16x4.pyth's 'model_state') ->
  `model`'s variables {'params'} (float32, as stored; without `load_head`, no classifier).

  `model` must be the MViT the checkpoint was trained as (configs/mvit/k400.py:B_v1's model) and
  `clip` (T, H, W) its training clip (default PYTORCHVIDEO_CLIP), which sizes the positional
  embeddings. Raises ValueError
  naming the first tensors that do not fit (another architecture, width, depth or clip).
  """
  clip = clip or PYTORCHVIDEO_CLIP
  abstract = torch_state.abstract_variables(model, (*clip, 3))

  def transform(key: torch_state.Key, tensor: np.ndarray):
    if key[1] in ('cls', 'pos_embedding'):
      return np.asarray(tensor)
    if key[-1] == 'bias' and len(abstract[key].shape) == 2:  # q/k/v: (D,) -> (heads, head_dim).
      return np.asarray(tensor).reshape(abstract[key].shape)
    return None

  return torch_state.to_variables(
      state_dict, abstract, _mvit_name, transform=transform, load_head=load_head,
      described=f'MViT (embed_dim {model.embed_dim}, depth {model.depth}, stages at '
                f'{tuple(model.stage_starts)}) on {tuple(clip)} clips',
      fix='check config.model.embed_dim, num_heads, depth, stage_starts, the pooling and v1/v2 '
          'fields, num_classes, and the clip (config.dataset.num_frames, crop_size)')
