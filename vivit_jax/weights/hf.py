"""Hugging Face checkpoints -> (config.model, variables) for `vivit_jax.models.build`.

`load_pretrained(path)` reads a directory written by `save_pretrained` (config.json +
model.safetensors) and hands it to the reader in READERS for config.json's `model_type`. Reading
needs `safetensors` (the `interop` extra), imported only when called; torch is never needed.
"""
import json
import os
from typing import Any, Callable

import ml_collections
import numpy as np

from vivit_jax.models import layers
from vivit_jax.weights import resnet2d
from vivit_jax.weights.tensors import Tensors, check_supported

Params = dict[str, Any]
# Hugging Face TimesformerConfig defaults, for fields a config.json leaves out.
TIMESFORMER_DEFAULTS = dict(
    image_size=224, patch_size=16, num_frames=8, hidden_size=768, num_hidden_layers=12,
    num_attention_heads=12, intermediate_size=3072, hidden_act='gelu', hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0, layer_norm_eps=1e-6, qkv_bias=True,
    attention_type='divided_space_time', drop_path_rate=0.0)
# Hugging Face VivitConfig defaults.
VIVIT_DEFAULTS = dict(
    image_size=224, num_frames=32, tubelet_size=(2, 16, 16), hidden_size=768,
    num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, hidden_act='gelu_fast',
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, layer_norm_eps=1e-6, qkv_bias=True)
# Hugging Face VideoMAEConfig defaults (v5 names its q/v bias switch `qv_bias`, v4 `qkv_bias`).
VIDEOMAE_DEFAULTS = dict(
    image_size=224, patch_size=16, num_channels=3, num_frames=16, tubelet_size=2,
    hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    hidden_act='gelu', hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    layer_norm_eps=1e-12, use_mean_pooling=True, decoder_num_attention_heads=6,
    decoder_hidden_size=384, decoder_num_hidden_layers=4, decoder_intermediate_size=1536,
    norm_pix_loss=True)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # transformers' IMAGENET_DEFAULT_MEAN / _STD.
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_pretrained(path: str) -> tuple[ml_collections.ConfigDict, dict[str, Params]]:
  """A `save_pretrained` directory -> (model config for `models.build`, variables: {'params':
  numpy tree}, with 'batch_stats' too for models with BatchNorm).

  Supported `model_type`s: the keys of READERS.
  """
  config_path, weights_path = (os.path.join(path, f) for f in ('config.json', 'model.safetensors'))
  for file in (config_path, weights_path):
    if not os.path.isfile(file):
      raise FileNotFoundError(f'{file} not found: load_pretrained needs a directory written by '
                              f'Hugging Face save_pretrained (config.json + one model.safetensors).')
  with open(config_path) as f:
    hf_config = json.load(f)
  model_type = hf_config.get('model_type')
  if model_type not in READERS:
    raise ValueError(f"{config_path}: model_type '{model_type}' is not supported; supported: "
                     f"{', '.join(READERS)}.")
  from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
  tensors = Tensors(load_file(weights_path), weights_path, prefix=f'{model_type}.')
  config, params = READERS[model_type](hf_config, tensors)
  tensors.check_all_taken()
  return config, params if model_type in STATEFUL else {'params': params}


def _vit_block_rest(tensors: Tensors, name: str) -> Params:
  """The parts every HF ViT-style layer `name` shares: its two LayerNorms and the MLP."""
  return {'norm_attn': tensors.layer_norm(f'{name}.layernorm_before'),
          'norm_mlp': tensors.layer_norm(f'{name}.layernorm_after'),
          'mlp': {'fc1': tensors.linear(f'{name}.intermediate.dense'),
                  'fc2': tensors.linear(f'{name}.output.dense')}}


def _patch_embedding(tensors: Tensors) -> Params:
  """HF `embeddings.patch_embeddings.projection` (a Conv2d or Conv3d) -> embed.TubeletEmbed
  params, the kernel made channels-last ([t,] h, w, C, D)."""
  proj = tensors.take('embeddings.patch_embeddings.projection.weight')  # (D, C, [t,] h, w)
  return {'proj': {'kernel': np.moveaxis(proj, (0, 1), (-1, -2)),
                   'bias': tensors.take('embeddings.patch_embeddings.projection.bias')}}


def _vit_params(tensors: Tensors, num_layers: int, block: Callable[[int], Params]) -> Params:
  """The HF ViT-style trunk: patch embedding (a Conv2d or Conv3d, made channels-last), CLS token,
  position table, encoder of `block(i)` for each layer, final norm, and the classifier if any
  (none in the base models: they give features)."""
  params = {
      'embedding': _patch_embedding(tensors),
      'cls': {'token': tensors.take('embeddings.cls_token')},
      'pos_embedding': {'embedding': tensors.take('embeddings.position_embeddings')},
      'encoder': dict({f'block_{i}': block(i) for i in range(num_layers)},
                      norm=tensors.layer_norm('layernorm')),
  }
  if 'classifier.weight' in tensors:
    params['head'] = tensors.linear('classifier')
  return params


def _common_config(hf: dict[str, Any], num_classes: int) -> dict[str, Any]:
  """config.model fields shared by the ViT-style HF video models (qkv_bias: 'qkv' or 'none' as
  HF's boolean `qkv_bias`)."""
  return dict(num_classes=num_classes, hidden_size=hf['hidden_size'],
              num_layers=hf['num_hidden_layers'], num_heads=hf['num_attention_heads'],
              mlp_dim=hf['intermediate_size'], dropout_rate=float(hf['hidden_dropout_prob']),
              attention_dropout_rate=float(hf['attention_probs_dropout_prob']),
              attention_impl='xla', dtype='float32', param_dtype='float32',
              layer_norm_eps=float(hf['layer_norm_eps']), hidden_act=hf['hidden_act'],
              qkv_bias='qkv' if hf['qkv_bias'] else 'none')


def _num_classes(params: Params) -> int:
  return params['head']['bias'].shape[0] if 'head' in params else 0


def _vivit(hf_config: dict[str, Any], tensors: Tensors) -> tuple[ml_collections.ConfigDict, Params]:
  """VivitModel / VivitForVideoClassification -> vivit.ViViT Model 1 with a CLS token.

  VivitModel's pooler (dense + tanh on the CLS token, unused by the classifier) is not kept: the
  model with num_classes 0 returns the final CLS token.
  """
  hf = {**VIVIT_DEFAULTS, **hf_config}
  width, heads = hf['hidden_size'], hf['num_attention_heads']
  check_supported(tensors.path, (
      ('hidden_act', hf['hidden_act'], hf['hidden_act'] in layers.ACTIVATIONS),
      ('head_dim', hf.get('head_dim'), hf.get('head_dim', width // heads) * heads == width)),
      f"hidden_act one of {', '.join(layers.ACTIVATIONS)}; head_dim = hidden_size / heads")

  def attention(name: str) -> Params:
    """VivitAttention `name` (query, key, value, output.dense) -> layers.Attention params."""
    params = {}
    for n in ('query', 'key', 'value'):
      kernel = tensors.take(f'{name}.attention.{n}.weight').T.reshape(width, heads, -1)
      params[n] = {'kernel': kernel}
      if hf['qkv_bias']:
        params[n]['bias'] = tensors.take(f'{name}.attention.{n}.bias').reshape(heads, -1)
    return dict(params, out=tensors.attention_out(f'{name}.output.dense', heads))

  def block(i: int) -> Params:
    name = f'encoder.layer.{i}'
    return {'attn': attention(f'{name}.attention'), **_vit_block_rest(tensors, name)}

  for pooler in ('pooler.dense.weight', 'pooler.dense.bias'):
    if pooler in tensors:
      tensors.take(pooler)
  params = _vit_params(tensors, hf['num_hidden_layers'], block)
  config = ml_collections.ConfigDict(dict(
      name='vivit', variant='spatio_temporal', tokenizer='tubelet', classifier='token',
      patch_size=tuple(hf['tubelet_size']), stochastic_depth=0.0,
      **_common_config(hf, _num_classes(params))))
  return config, params


def _timesformer(hf_config: dict[str, Any],
                 tensors: Tensors) -> tuple[ml_collections.ConfigDict, Params]:
  """TimesformerModel / TimesformerForVideoClassification -> timesformer.TimeSformer."""
  hf = {**TIMESFORMER_DEFAULTS, **hf_config}
  check_supported(tensors.path, (
      ('attention_type', hf['attention_type'], hf['attention_type'] == 'divided_space_time'),
      ('hidden_act', hf['hidden_act'], hf['hidden_act'] in layers.ACTIVATIONS),
      ('image_size', hf['image_size'], isinstance(hf['image_size'], int)),
      ('patch_size', hf['patch_size'], isinstance(hf['patch_size'], int))),
      f"divided_space_time attention, square int sizes, hidden_act one of "
      f"{', '.join(layers.ACTIVATIONS)}")
  width, heads = hf['hidden_size'], hf['num_attention_heads']

  def attention(name: str) -> Params:
    """TimeSformerAttention `name` -> layers.Attention params (q/k/v biases if qkv_bias)."""
    qkv = tensors.take(f'{name}.attention.qkv.weight').T.reshape(width, 3, heads, -1)
    params = {n: {'kernel': qkv[:, i]} for i, n in enumerate(('query', 'key', 'value'))}
    if hf['qkv_bias']:
      bias = tensors.take(f'{name}.attention.qkv.bias').reshape(3, heads, -1)
      for i, p in enumerate(params.values()):
        p['bias'] = bias[i]
    return dict(params, out=tensors.attention_out(f'{name}.output.dense', heads))

  def block(i: int) -> Params:
    name = f'encoder.layer.{i}'
    return {'norm_temporal_attn': tensors.layer_norm(f'{name}.temporal_layernorm'),
            'temporal_attn': attention(f'{name}.temporal_attention'),
            'temporal_dense': tensors.linear(f'{name}.temporal_dense'),
            'attn': attention(f'{name}.attention'),
            **_vit_block_rest(tensors, name)}

  params = dict(_vit_params(tensors, hf['num_hidden_layers'], block),
                time_embedding=tensors.take('embeddings.time_embeddings'))
  config = ml_collections.ConfigDict(dict(
      name='timesformer', num_frames=hf['num_frames'], image_size=hf['image_size'],
      patch_size=hf['patch_size'], stochastic_depth=float(hf['drop_path_rate']),
      **_common_config(hf, _num_classes(params))))
  return config, params


def _videomae(hf_config: dict[str, Any],
              tensors: Tensors) -> tuple[ml_collections.ConfigDict, Params]:
  """VideoMAEForVideoClassification -> 'videomae'; VideoMAEModel -> 'videomae' with num_classes 0
  (its features: `last_hidden_state.mean(1)` with use_mean_pooling, i.e. fc_norm=False, else
  `last_hidden_state[:, 0]`); VideoMAEForPreTraining -> 'videomae_pretrain'.

  The class is read from config.json's `architectures`, else from the tensors (a decoder means
  pre-training, `fc_norm` or `classifier` classification). The q/v biases are read under either
  spelling: transformers v4 `attention.attention.q_bias`/`v_bias`, v5 `query.bias`/`value.bias`.
  A pre-training model's config gets mask_type 'tube', mask_ratio 0.9, decoder_mask_ratio 0 (HF
  takes the mask as an input); its targets un-normalise with ImageNet mean/std for 3 channels and
  not at all otherwise, as HF.
  """
  hf = {**VIDEOMAE_DEFAULTS, **hf_config}
  qv_bias = bool(hf.get('qv_bias', hf.get('qkv_bias', True)))
  size, patch = hf['image_size'], hf['patch_size']
  check_supported(tensors.path, (
      ('hidden_act', hf['hidden_act'], hf['hidden_act'] in layers.ACTIVATIONS),
      ('patch_size', patch, isinstance(patch, int) or (
          isinstance(patch, (list, tuple)) and len(set(patch)) == 1)),
      ('image_size', size, isinstance(size, (int, list, tuple)))),
      f"square patches, hidden_act one of {', '.join(layers.ACTIVATIONS)}")
  patch = patch if isinstance(patch, int) else int(patch[0])
  architectures = hf.get('architectures') or []
  if 'VideoMAEForPreTraining' in architectures or (
      not architectures and 'decoder.head.weight' in tensors):
    kind = 'pretraining'
  elif 'VideoMAEForVideoClassification' in architectures or (
      not architectures and ('fc_norm.weight' in tensors or 'classifier.weight' in tensors)):
    kind = 'classification'
  else:
    kind = 'model'

  def attention(name: str, width: int, heads: int) -> Params:
    """VideoMAEAttention `name` -> layers.Attention params (q and v biases, no k bias)."""
    params = {n: {'kernel': tensors.take(f'{name}.attention.{n}.weight').T.reshape(width, heads, -1)}
              for n in ('query', 'key', 'value')}
    if qv_bias:
      for n, v4_name in (('query', 'q_bias'), ('value', 'v_bias')):
        key = f'{name}.attention.{n}.bias'
        key = key if key in tensors else f'{name}.attention.{v4_name}'
        params[n]['bias'] = tensors.take(key).reshape(heads, -1)
    return dict(params, out=tensors.attention_out(f'{name}.output.dense', heads))

  def blocks(prefix: str, num_layers: int, width: int, heads: int) -> Params:
    return {f'block_{i}': {'attn': attention(f'{prefix}.{i}.attention', width, heads),
                           **_vit_block_rest(tensors, f'{prefix}.{i}')}
            for i in range(num_layers)}

  width, heads = hf['hidden_size'], hf['num_attention_heads']
  encoder = blocks('encoder.layer', hf['num_hidden_layers'], width, heads)
  if not hf['use_mean_pooling']:
    encoder['norm'] = tensors.layer_norm('layernorm')
  params = {'embedding': _patch_embedding(tensors), 'encoder': encoder}
  common = _common_config(dict(hf, qkv_bias=qv_bias), 0)
  del common['num_classes']
  common = dict(common, patch_size=patch, tubelet_size=hf['tubelet_size'], stochastic_depth=0.0,
                qkv_bias='qv' if qv_bias else 'none')

  if kind == 'pretraining':
    dec_width, dec_heads = hf['decoder_hidden_size'], hf['decoder_num_attention_heads']
    decoder = blocks('decoder.decoder_layers', hf['decoder_num_hidden_layers'], dec_width,
                     dec_heads)
    params.update(
        encoder_to_decoder={'kernel': tensors.take('encoder_to_decoder.weight').T},
        mask_token=tensors.take('mask_token'),
        decoder=dict(decoder, norm=tensors.layer_norm('decoder.norm'),
                     head=tensors.linear('decoder.head')))
    channels = hf['num_channels']
    config = dict(
        name='videomae_pretrain', decoder_hidden_size=dec_width,
        decoder_num_layers=hf['decoder_num_hidden_layers'], decoder_num_heads=dec_heads,
        decoder_mlp_dim=hf['decoder_intermediate_size'], mask_type='tube', mask_ratio=0.9,
        decoder_mask_ratio=0.0, norm_pix_loss=bool(hf['norm_pix_loss']),
        pixel_mean=IMAGENET_MEAN if channels == 3 else (0.0,) * channels,
        pixel_std=IMAGENET_STD if channels == 3 else (1.0,) * channels,
        encoder_norm=not hf['use_mean_pooling'], **common)
  else:
    fc_norm = bool(hf['use_mean_pooling']) and kind == 'classification'
    if fc_norm:
      params['fc_norm'] = tensors.layer_norm('fc_norm')
    if 'classifier.weight' in tensors:
      params['head'] = tensors.linear('classifier')
    config = dict(name='videomae', num_classes=_num_classes(params),
                  use_mean_pooling=bool(hf['use_mean_pooling']), fc_norm=fc_norm, **common)
  return ml_collections.ConfigDict(config), params


def _resnet(hf_config: dict[str, Any],
            tensors: Tensors) -> tuple[ml_collections.ConfigDict, Params]:
  """ResNetModel / ResNetForImageClassification -> 'resnet2d' {'params', 'batch_stats'}
  (weights/resnet2d.py)."""
  return resnet2d.from_hf(hf_config, tensors)


# config.json `model_type` -> reader(config.json dict, Tensors) -> (config.model, params), or
# (config.model, variables {'params', 'batch_stats'}) for the model_types in STATEFUL.
READERS: dict[str, Callable[[dict[str, Any], Tensors],
                            tuple[ml_collections.ConfigDict, Params]]] = {
    'timesformer': _timesformer,
    'vivit': _vivit,
    'videomae': _videomae,
    'resnet': _resnet,
}
STATEFUL = ('resnet',)
