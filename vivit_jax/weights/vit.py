"""Image ViT checkpoints -> ViViT / TimeSformer params (Arnab et al. 2021, section 3.4).

`read_vit(path)` reads an image ViT into `ImageViT`, this library's parameter names:
  a Hugging Face `ViTModel` / `ViTForImageClassification` `save_pretrained` directory
  (config.json with model_type 'vit' + model.safetensors), or
  a `.npz` of google-research/vision_transformer (`Transformer/posembed_input/pos_embedding`,
  `encoderblock_i/{LayerNorm_0, MultiHeadDotProductAttention_1, LayerNorm_2, MlpBlock_3}`) or
  big_vision (`pos_embedding`, `encoderblock_i/{LayerNorm_0, MultiHeadDotProductAttention_0,
  LayerNorm_1, MlpBlock_0}`), keys optionally under 'opt/target/', 'params/' or 'params/img/'.
`video_params(vit, model_config, ...)` maps it onto a video model: the positional table tiled over
time (and resized bilinearly in space), the patch kernel inflated to tubelets, the encoder blocks
copied; `init_from_vit(model_config, path, ...)` fills the rest from a fresh init.
"""
import dataclasses
import io
import json
import logging
import math
import os
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import traverse_util
from tensorflow.io import gfile

from vivit_jax import models
from vivit_jax.models import embed
from vivit_jax.weights.tensors import Tensors

log = logging.getLogger('vivit_jax')
Params = dict[str, Any]
KERNEL_INITS = ('central_frame', 'average', 'random')
# Hugging Face ViTConfig defaults, for fields a config.json leaves out.
VIT_DEFAULTS = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    hidden_act='gelu', layer_norm_eps=1e-12, qkv_bias=True)
# .npz checkpoints carry no config: the ViT code that wrote them uses flax's nn.gelu, the tanh
# approximation ('gelu_new'), and LayerNorm eps 1e-6.
NPZ_ACTIVATION, NPZ_LAYER_NORM_EPS = 'gelu_new', 1e-6
_NPZ_PREFIXES = ('', 'opt/target/', 'params/', 'params/img/')
# .npz layout -> (position table, attention, second LayerNorm, MLP) names.
NPZ_LAYOUTS = {
    'vision_transformer': ('Transformer/posembed_input/pos_embedding',
                           'MultiHeadDotProductAttention_1', 'LayerNorm_2', 'MlpBlock_3'),
    'big_vision': ('pos_embedding', 'MultiHeadDotProductAttention_0', 'LayerNorm_1',
                   'MlpBlock_0'),
}


@dataclasses.dataclass
class ImageViT:
  """An image ViT in this library's names (those of TimeSformer's image parts).

  params: 'embedding/proj' kernel (p, p, C, D) and bias; 'cls/token' (1, 1, D) if it has a class
  token; 'pos_embedding/embedding' (1, [1 +] g * g, D); 'encoder/block_i/{norm_attn, attn
  (query/key/value kernel (D, heads, head_dim), out kernel (heads, head_dim, D)), norm_mlp, mlp
  (fc1, fc2)}' and 'encoder/norm'; 'head' (kernel (D, K), bias (K,)) if it has a classifier.
  """
  params: Params
  hidden_act: str
  layer_norm_eps: float
  path: str

  @property
  def patch_size(self) -> tuple[int, int]:
    return tuple(self.params['embedding']['proj']['kernel'].shape[:2])

  @property
  def has_cls(self) -> bool:
    return 'cls' in self.params

  @property
  def qkv_bias(self) -> str:
    """config.model.qkv_bias: 'qkv' or 'none' (image ViTs bias all three projections or none)."""
    return 'qkv' if 'bias' in self.params['encoder']['block_0']['attn']['query'] else 'none'

  def sizes(self) -> dict[str, int]:
    """The config.model size fields: hidden_size, num_layers, num_heads, mlp_dim."""
    block = self.params['encoder']['block_0']
    return dict(hidden_size=self.params['embedding']['proj']['kernel'].shape[-1],
                num_layers=len(self.params['encoder']) - 1,  # Blocks and the final norm.
                num_heads=block['attn']['query']['kernel'].shape[1],
                mlp_dim=block['mlp']['fc1']['kernel'].shape[1])


def read_vit(path: str) -> ImageViT:
  """A Hugging Face ViT `save_pretrained` directory or a vision_transformer/big_vision .npz."""
  if path.endswith('.npz'):
    if not gfile.exists(path):
      raise FileNotFoundError(f'{path} not found: expected an image ViT .npz checkpoint.')
    return _read_npz(path)
  if os.path.isdir(path):
    return _read_hf(path)
  raise FileNotFoundError(f'{path} is neither a Hugging Face ViT save_pretrained directory nor a '
                          f'.npz ViT checkpoint.')


def _read_hf(path: str) -> ImageViT:
  """ViTModel / ViTForImageClassification `save_pretrained` directory -> ImageViT."""
  config_path, weights_path = (os.path.join(path, f) for f in ('config.json', 'model.safetensors'))
  for file in (config_path, weights_path):
    if not os.path.isfile(file):
      raise FileNotFoundError(f'{file} not found: an image ViT directory is written by Hugging '
                              f'Face save_pretrained (config.json + one model.safetensors).')
  with open(config_path) as f:
    config = {**VIT_DEFAULTS, **json.load(f)}
  if config.get('model_type') != 'vit':
    raise ValueError(f"{config_path}: model_type '{config.get('model_type')}' is not an image ViT "
                     f"(model_type 'vit'); pass a ViTModel or ViTForImageClassification directory.")
  from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
  tensors = Tensors(load_file(weights_path), weights_path, prefix='vit.')
  heads = config['num_attention_heads']

  def dense(name: str, kernel_shape: Sequence[int], bias_shape: Sequence[int]) -> Params:
    """torch Linear `name` -> kernel (in, out) and bias (if any) reshaped for layers.Attention."""
    params = {'kernel': tensors.take(f'{name}.weight').T.reshape(kernel_shape)}
    if f'{name}.bias' in tensors:
      params['bias'] = tensors.take(f'{name}.bias').reshape(bias_shape)
    return params

  def block(i: int) -> Params:
    name = f'encoder.layer.{i}'
    width = config['hidden_size']
    attn = {n: dense(f'{name}.attention.attention.{n}', (width, heads, -1), (heads, -1))
            for n in ('query', 'key', 'value')}
    attn['out'] = dense(f'{name}.attention.output.dense', (heads, -1, width), (width,))
    return {'norm_attn': tensors.layer_norm(f'{name}.layernorm_before'), 'attn': attn,
            'norm_mlp': tensors.layer_norm(f'{name}.layernorm_after'),
            'mlp': {'fc1': tensors.linear(f'{name}.intermediate.dense'),
                    'fc2': tensors.linear(f'{name}.output.dense')}}

  proj = tensors.take('embeddings.patch_embeddings.projection.weight')  # (D, C, p, p)
  params = {
      'embedding': {'proj': {'kernel': proj.transpose(2, 3, 1, 0),
                             'bias': tensors.take('embeddings.patch_embeddings.projection.bias')}},
      'cls': {'token': tensors.take('embeddings.cls_token')},
      'pos_embedding': {'embedding': tensors.take('embeddings.position_embeddings')},
      'encoder': dict({f'block_{i}': block(i) for i in range(config['num_hidden_layers'])},
                      norm=tensors.layer_norm('layernorm')),
  }
  if 'classifier.weight' in tensors:
    params['head'] = tensors.linear('classifier')
  _drop(tensors, ('pooler.dense.weight', 'pooler.dense.bias', 'embeddings.mask_token'))
  tensors.check_all_taken()
  return ImageViT(params, config['hidden_act'], float(config['layer_norm_eps']), path)


class _NpzArrays(Tensors):
  """Tensors of an .npz, whose missing keys mean a layout this reader does not know."""

  def take(self, name: str) -> np.ndarray:
    if name not in self:
      raise ValueError(f"{self.path} has no array '{name}': not an image ViT .npz in the "
                       f"vision_transformer or big_vision layout (unscanned encoder blocks).")
    return super().take(name)

  def dense(self, name: str) -> Params:
    """Flax Dense/DenseGeneral `name`: its kernel and bias (if any)."""
    return {k: self.take(f'{name}/{k}') for k in ('kernel', 'bias')
            if k == 'kernel' or f'{name}/bias' in self}

  def layer_norm(self, name: str) -> Params:
    return {'scale': self.take(f'{name}/scale'), 'bias': self.take(f'{name}/bias')}


def _read_npz(path: str) -> ImageViT:
  """vision_transformer / big_vision .npz (a local file or any tf.io.gfile path, e.g. the public
  gs://vit_models/...) -> ImageViT (flax kernels: names change, not layouts)."""
  with gfile.GFile(path, 'rb') as f, np.load(io.BytesIO(f.read())) as arrays:
    arrays = dict(arrays)
  prefix = next((p for p in _NPZ_PREFIXES if f'{p}embedding/kernel' in arrays), '')
  t = _NpzArrays(arrays, path, prefix)
  layout = 'vision_transformer' if NPZ_LAYOUTS['vision_transformer'][0] in t else 'big_vision'
  pos_name, attn_name, norm_name, mlp_name = NPZ_LAYOUTS[layout]

  def block(i: int) -> Params:
    name = f'Transformer/encoderblock_{i}'
    attn = f'{name}/{attn_name}'
    return {'norm_attn': t.layer_norm(f'{name}/LayerNorm_0'),
            'attn': {n: t.dense(f'{attn}/{n}') for n in ('query', 'key', 'value', 'out')},
            'norm_mlp': t.layer_norm(f'{name}/{norm_name}'),
            'mlp': {'fc1': t.dense(f'{name}/{mlp_name}/Dense_0'),
                    'fc2': t.dense(f'{name}/{mlp_name}/Dense_1')}}

  embedding = t.dense('embedding')
  num_layers = 0
  while f'Transformer/encoderblock_{num_layers}/LayerNorm_0/scale' in t:
    num_layers += 1
  if not num_layers:
    t.take('Transformer/encoderblock_0/LayerNorm_0/scale')  # Raises, naming the layout.
  params = {'embedding': {'proj': embedding},
            'pos_embedding': {'embedding': t.take(pos_name)},
            'encoder': dict({f'block_{i}': block(i) for i in range(num_layers)},
                            norm=t.layer_norm('Transformer/encoder_norm'))}
  if 'cls' in t:
    params['cls'] = {'token': t.take('cls')}
  if 'pre_logits/kernel' in t:  # The head reads a Dense + tanh this library does not have.
    _drop(t, ('pre_logits/kernel', 'pre_logits/bias', 'head/kernel', 'head/bias'))
  elif 'head/kernel' in t:
    params['head'] = t.dense('head')
  t.check_all_taken()
  return ImageViT(params, NPZ_ACTIVATION, NPZ_LAYER_NORM_EPS, path)


def _drop(tensors: Tensors, names: Sequence[str]):
  """Takes and discards the `names` present (parts no video model uses), logging them."""
  dropped = [n for n in names if n in tensors]
  for name in dropped:
    tensors.take(name)
  if dropped:
    log.info('%s: not used by video models, dropped: %s', tensors.path, ', '.join(dropped))


def resize_grid(grid: np.ndarray, size: Sequence[int]) -> np.ndarray:
  """Position embeddings (gh, gw, D) -> (size[0], size[1], D), bilinear (no antialiasing)."""
  if tuple(grid.shape[:2]) == tuple(size):
    return grid
  return np.asarray(jax.image.resize(jnp.asarray(grid), (*size, grid.shape[-1]), 'bilinear',
                                     antialias=False))


def pos_table(vit: ImageViT, grid: Sequence[int], num_frames: int, with_cls: bool) -> np.ndarray:
  """The ViT's position table (1, [1 +] g * g, D) -> (1, [1 +] num_frames * nh * nw, D).

  The g x g grid is resized to `grid` (nh, nw) and tiled `num_frames` times, in token order
  (frame, position); the class token's row is kept if `with_cls`.
  """
  table = vit.params['pos_embedding']['embedding'][0]
  cls, patches = (table[:1], table[1:]) if vit.has_cls else (table[:0], table)
  side = math.isqrt(len(patches))
  if side * side != len(patches):
    raise ValueError(f'{vit.path}: {len(patches)} patch position embeddings do not form a square '
                     f'grid.')
  patches = resize_grid(patches.reshape(side, side, -1), grid).reshape(-1, table.shape[-1])
  patches = np.tile(patches, (num_frames, 1))
  return (np.concatenate([cls, patches]) if with_cls else patches)[None]


def inflate_kernel(kernel: np.ndarray, t: int, method: str) -> np.ndarray:
  """Patch kernel (h, w, C, D) -> tubelet kernel (t, h, w, C, D).

  'average': kernel / t in every frame (filter inflation); 'central_frame': kernel at t // 2,
  zeros elsewhere. On a video whose frames are all one image both give the image's embedding.
  """
  if method == 'average':
    return np.repeat(kernel[None] / t, t, axis=0)
  if method == 'central_frame':
    tubelet = np.zeros((t,) + kernel.shape, kernel.dtype)
    tubelet[t // 2] = kernel
    return tubelet
  raise ValueError(f"config.init_from.kernel_init='{method}' is not one of {KERNEL_INITS}.")


def _check_fits(vit: ImageViT, model: nn.Module):
  """Raises naming config.model.FIELD where the ViT's sizes differ from the model's; warns where
  its activation or LayerNorm eps differ."""
  fields = dict(vit.sizes(), qkv_bias=vit.qkv_bias)
  for field, value in fields.items():
    if hasattr(model, field) and getattr(model, field) != value:
      raise ValueError(f'{vit.path} is a ViT with {field}={value}, but config.model.{field}='
                       f'{getattr(model, field)}: set --config.model.{field}={value}.')
  for field in ('hidden_act', 'layer_norm_eps'):
    ours, theirs = getattr(model, field, None), getattr(vit, field)
    if ours is not None and ours != theirs:
      log.warning('%s was trained with %s=%s but config.model.%s=%s; set --config.model.%s=%s to '
                  'match it.', vit.path, field, theirs, field, ours, field, theirs)


def _tokens(name: str, model: nn.Module, video_shape: Optional[Sequence[int]]):
  """(tubelet (t, h, w), nt, (nh, nw)) of `model` (config.model.name `name`) on videos (T, H, W)."""
  if name == 'timesformer':
    return (1, model.patch_size, model.patch_size), 1, (model.image_size // model.patch_size,) * 2
  if video_shape is None:
    raise ValueError('ViViT needs video_shape (T, H, W) = (config.dataset.num_frames, '
                     'config.dataset.crop_size, config.dataset.crop_size) to size its tokens.')
  tubelet = embed.tubelet_shape(model.tokenizer, model.patch_size)
  nt, nh, nw = (n // p for n, p in zip(video_shape, tubelet))
  return tubelet, nt, (nh, nw)


def video_params(vit: ImageViT, model_config: ml_collections.ConfigDict, *,
                 video_shape: Optional[Sequence[int]] = None, kernel_init: str = 'central_frame',
                 load_head: bool = False) -> Params:
  """The params of `models.build(model_config)` that come from `vit` (a partial tree).

  ViViT Models 1, 3, 4: embedding, [cls,] pos_embedding (tiled over nt), encoder blocks (Model 3's
  temporal attention stays out). Model 2: embedding, spatial_cls, spatial_pos_embedding (one
  frame), spatial_encoder. TimeSformer: embedding, cls, pos_embedding, the blocks' spatial parts.
  `kernel_init` is one of KERNEL_INITS ('random' leaves the embedding out); `head` only if
  `load_head`. video_shape (T, H, W) is needed for ViViT.
  """
  if model_config.name not in ('vivit', 'timesformer'):
    raise ValueError(f"config.model.name='{model_config.name}' cannot be initialised from an "
                     f"image ViT; supported: vivit, timesformer.")
  if kernel_init not in KERNEL_INITS:
    raise ValueError(f"config.init_from.kernel_init='{kernel_init}' is not one of {KERNEL_INITS}.")
  model = models.build(model_config)
  _check_fits(vit, model)
  tubelet, nt, grid = _tokens(model_config.name, model, video_shape)
  if tuple(tubelet[1:]) != vit.patch_size:
    raise ValueError(f'{vit.path} has {vit.patch_size} patches but config.model.patch_size='
                     f'{model_config.patch_size} cuts {tuple(tubelet[1:])}: set the spatial patch '
                     f'size to {vit.patch_size}.')
  with_cls = getattr(model, 'classifier', 'token') == 'token'
  if with_cls and not vit.has_cls:
    raise ValueError(f"{vit.path} has no class token: set config.model.classifier='gap'.")
  factorised = getattr(model, 'variant', None) == 'factorised_encoder'
  prefix = 'spatial_' if factorised else ''
  params = {f'{prefix}pos_embedding': {'embedding': pos_table(vit, grid, 1 if factorised else nt,
                                                               with_cls)},
            f'{prefix}encoder': vit.params['encoder']}
  if with_cls:
    params[f'{prefix}cls'] = vit.params['cls']
  if kernel_init != 'random':
    proj = dict(vit.params['embedding']['proj'])
    if model_config.name == 'vivit':
      proj['kernel'] = inflate_kernel(proj['kernel'], tubelet[0], kernel_init)
    params['embedding'] = {'proj': proj}
  if load_head:
    params['head'] = _head(vit, model.num_classes)
  return params


def _head(vit: ImageViT, num_classes: int) -> Params:
  """The ViT's classifier, if it has one for `num_classes` classes."""
  if 'head' not in vit.params:
    raise ValueError(f'{vit.path} has no usable classifier head (a ViTModel, or a head behind '
                     f'pre_logits): set config.init_from.load_head=False.')
  classes = vit.params['head']['bias'].shape[0]
  if classes != num_classes:
    raise ValueError(f'{vit.path} classifies {classes} classes but config.model.num_classes='
                     f'{num_classes}: set config.init_from.load_head=False to train a new head, '
                     f'or config.model.num_classes={classes}.')
  return vit.params['head']


def _init_fn(model_config: ml_collections.ConfigDict, video_shape: Sequence[int]):
  """rng -> unboxed params of `models.build(model_config)` on videos (T, H, W, 3)."""
  model = models.build(model_config)
  video = jnp.zeros((1, *video_shape, 3), jnp.float32)
  return lambda rng: nn.unbox(model.init(rng, video, train=False)['params'])


def fresh_params(model_config: ml_collections.ConfigDict, video_shape: Sequence[int],
                 seed: int = 0) -> Params:
  """Numpy params of `models.build(model_config)` freshly initialised on videos (T, H, W, 3).

  Uses 'rbg' keys: on CPU their init compiles several times faster than threefry's.
  """
  init = jax.jit(_init_fn(model_config, video_shape))
  return jax.tree.map(np.asarray, init(jax.random.key(seed, impl='rbg')))


def init_from_vit(model_config: ml_collections.ConfigDict, path: str, *,
                  video_shape: Optional[Sequence[int]] = None, kernel_init: str = 'central_frame',
                  load_head: bool = False, fresh: Optional[Params] = None,
                  seed: int = 0) -> Params:
  """The `params` of `models.build(model_config)` initialised from the image ViT at `path`.

  What the ViT fills is `video_params`; every other leaf comes from `fresh` (default: a fresh
  init with `seed`, run only if the ViT leaves some leaf unfilled). video_shape (T, H, W):
  ViViT's input; TimeSformer's comes from its config. Returns a nested dict of numpy arrays.
  """
  loaded = traverse_util.flatten_dict(video_params(
      read_vit(path), model_config, video_shape=video_shape, kernel_init=kernel_init,
      load_head=load_head))
  if model_config.name == 'timesformer':
    video_shape = (model_config.num_frames, model_config.image_size, model_config.image_size)
  if fresh is None:
    shapes = traverse_util.flatten_dict(
        jax.eval_shape(_init_fn(model_config, video_shape), jax.random.key(seed)))
    fresh = {} if set(shapes) <= set(loaded) else fresh_params(model_config, video_shape, seed)
  else:
    shapes = traverse_util.flatten_dict(fresh)
  for key, value in loaded.items():
    if key not in shapes or shapes[key].shape != value.shape:
      raise ValueError(f"{path}: {'/'.join(key)} {value.shape} does not fit the model's "
                       f"{getattr(shapes.get(key), 'shape', None)}; check video_shape "
                       f"{video_shape}.")
  flat = {k: np.asarray(v) for k, v in traverse_util.flatten_dict(fresh).items()}
  flat.update({k: np.asarray(v, shapes[k].dtype) for k, v in loaded.items()})
  return traverse_util.unflatten_dict(flat)
