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

from vivit_jax.models import timesformer

Params = dict[str, Any]
# Hugging Face TimesformerConfig defaults, for fields a config.json leaves out.
TIMESFORMER_DEFAULTS = dict(
    image_size=224, patch_size=16, num_frames=8, hidden_size=768, num_hidden_layers=12,
    num_attention_heads=12, intermediate_size=3072, hidden_act='gelu', hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0, layer_norm_eps=1e-6, qkv_bias=True,
    attention_type='divided_space_time', drop_path_rate=0.0)


class Tensors:
  """A checkpoint's named arrays, each taken once; `check_all_taken` reports any left over.

  A `prefix` (the base model's name inside a task model, e.g. 'timesformer.') is stripped.
  """

  def __init__(self, arrays: dict[str, np.ndarray], path: str, prefix: str):
    self.path = path
    self._arrays = {k.removeprefix(prefix): v for k, v in arrays.items()}

  def __contains__(self, name: str) -> bool:
    return name in self._arrays

  def take(self, name: str) -> np.ndarray:
    if name not in self._arrays:
      raise ValueError(f"{self.path} has no tensor '{name}': not a checkpoint of the model its "
                       f"config.json describes.")
    return self._arrays.pop(name)

  def linear(self, name: str) -> Params:
    """torch Linear `name` (out, in) -> nn.Dense params, kernel (in, out)."""
    return {'kernel': self.take(f'{name}.weight').T, 'bias': self.take(f'{name}.bias')}

  def layer_norm(self, name: str) -> Params:
    return {'scale': self.take(f'{name}.weight'), 'bias': self.take(f'{name}.bias')}

  def check_all_taken(self):
    if self._arrays:
      raise ValueError(f'{self.path}: {len(self._arrays)} tensors have no place in the model, '
                       f'e.g. {sorted(self._arrays)[:5]}.')


def load_pretrained(path: str) -> tuple[ml_collections.ConfigDict, dict[str, Params]]:
  """A `save_pretrained` directory -> (model config for `models.build`, {'params': numpy tree}).

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
  return config, {'params': params}


def _timesformer(hf_config: dict[str, Any],
                 tensors: Tensors) -> tuple[ml_collections.ConfigDict, Params]:
  """TimesformerModel / TimesformerForVideoClassification -> timesformer.TimeSformer."""
  hf = {**TIMESFORMER_DEFAULTS, **hf_config}
  for field, value, ok in (
      ('attention_type', hf['attention_type'], hf['attention_type'] == 'divided_space_time'),
      ('hidden_act', hf['hidden_act'], hf['hidden_act'] in timesformer.ACTIVATIONS),
      ('image_size', hf['image_size'], isinstance(hf['image_size'], int)),
      ('patch_size', hf['patch_size'], isinstance(hf['patch_size'], int))):
    if not ok:
      raise ValueError(f'config.json of {tensors.path}: {field}={value!r} is not supported '
                       f"(divided_space_time attention, square int sizes, hidden_act one of "
                       f"{', '.join(timesformer.ACTIVATIONS)}).")
  width, heads = hf['hidden_size'], hf['num_attention_heads']

  def attention(name: str) -> Params:
    """TimeSformerAttention `name` -> layers.Attention params (q/k/v biases if qkv_bias)."""
    qkv = tensors.take(f'{name}.attention.qkv.weight').T.reshape(width, 3, heads, -1)
    params = {n: {'kernel': qkv[:, i]} for i, n in enumerate(('query', 'key', 'value'))}
    if hf['qkv_bias']:
      bias = tensors.take(f'{name}.attention.qkv.bias').reshape(3, heads, -1)
      for i, p in enumerate(params.values()):
        p['bias'] = bias[i]
    out = tensors.linear(f'{name}.output.dense')
    params['out'] = {'kernel': out['kernel'].reshape(heads, -1, width), 'bias': out['bias']}
    return params

  def block(i: int) -> Params:
    name = f'encoder.layer.{i}'
    return {'norm_temporal_attn': tensors.layer_norm(f'{name}.temporal_layernorm'),
            'temporal_attn': attention(f'{name}.temporal_attention'),
            'temporal_dense': tensors.linear(f'{name}.temporal_dense'),
            'norm_attn': tensors.layer_norm(f'{name}.layernorm_before'),
            'attn': attention(f'{name}.attention'),
            'norm_mlp': tensors.layer_norm(f'{name}.layernorm_after'),
            'mlp': {'fc1': tensors.linear(f'{name}.intermediate.dense'),
                    'fc2': tensors.linear(f'{name}.output.dense')}}

  proj = tensors.take('embeddings.patch_embeddings.projection.weight')  # (D, C, p, p)
  params = {
      'embedding': {'proj': {'kernel': proj.transpose(2, 3, 1, 0),
                             'bias': tensors.take('embeddings.patch_embeddings.projection.bias')}},
      'cls': {'token': tensors.take('embeddings.cls_token')},
      'pos_embedding': {'embedding': tensors.take('embeddings.position_embeddings')},
      'time_embedding': tensors.take('embeddings.time_embeddings'),
      'encoder': dict({f'block_{i}': block(i) for i in range(hf['num_hidden_layers'])},
                      norm=tensors.layer_norm('layernorm')),
  }
  if 'classifier.weight' in tensors:  # TimesformerModel has no classifier: features out.
    params['head'] = tensors.linear('classifier')
  config = ml_collections.ConfigDict(dict(
      name='timesformer',
      num_classes=params['head']['bias'].shape[0] if 'head' in params else 0,
      num_frames=hf['num_frames'],
      image_size=hf['image_size'],
      patch_size=hf['patch_size'],
      hidden_size=width,
      num_layers=hf['num_hidden_layers'],
      num_heads=heads,
      mlp_dim=hf['intermediate_size'],
      dropout_rate=float(hf['hidden_dropout_prob']),
      attention_dropout_rate=float(hf['attention_probs_dropout_prob']),
      stochastic_depth=float(hf['drop_path_rate']),
      attention_impl='xla',
      dtype='float32',
      param_dtype='float32',
      layer_norm_eps=float(hf['layer_norm_eps']),
      hidden_act=hf['hidden_act'],
      qkv_bias=bool(hf['qkv_bias']),
  ))
  return config, params


# config.json `model_type` -> reader(config.json dict, Tensors) -> (config.model, params).
READERS: dict[str, Callable[[dict[str, Any], Tensors],
                            tuple[ml_collections.ConfigDict, Params]]] = {
    'timesformer': _timesformer,
}
