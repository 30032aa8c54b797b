"""Model registry: `build(config.model)` makes the module named by `config.model.name`."""
import dataclasses
import importlib
import inspect

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

# config.model.name -> 'module:Class' in vivit_jax.models; a family is imported when first built.
MODELS = {
    'vivit': 'vivit:ViViT',
    'timesformer': 'timesformer:TimeSformer',
    'videomae': 'videomae:VideoMAE',
    'videomae_pretrain': 'videomae:VideoMAEPretrain',
    'resnet2d': 'resnet:ResNet2D',
    'resnet3d': 'resnet:ResNet3D',
    'c3d': 'c3d:C3D',
    'r2plus1d': 'r2plus1d:R2Plus1D',
    'x3d': 'x3d:X3D',
    'cnn_lstm': 'recurrent:CNNLSTM',
    'conv_gru': 'recurrent:ConvGRU',
    'slowfast': 'slowfast:SlowFast',
    'single_frame': 'fusion:SingleFrame',
    'late_fusion': 'fusion:LateFusion',
    'early_fusion': 'fusion:EarlyFusion',
    'two_stream': 'two_stream:TwoStream',
}


def model_class(name: str) -> type:
  """The Module class registered as `name` (ValueError listing the names if there is none)."""
  if name not in MODELS:
    raise ValueError(f"Unknown model '{name}' (config.model.name); available: "
                     f"{', '.join(MODELS)}")
  module, cls = MODELS[name].split(':')
  return getattr(importlib.import_module(f'vivit_jax.models.{module}'), cls)


def build(model_config: ml_collections.ConfigDict) -> nn.Module:
  """The module `MODELS[model_config.name]` with every other field as an attribute.

  Fields ending in 'dtype' may be strings ('float32', 'bfloat16'). Unknown names, unknown or
  missing fields and unsupported values raise ValueError naming the config field.
  """
  kwargs = model_config.to_dict()
  name = kwargs.pop('name', None)
  cls = model_class(name)
  fields = {f.name: f for f in dataclasses.fields(cls)
            if f.init and f.name not in ('parent', 'name')}
  unknown = sorted(set(kwargs) - set(fields))
  if unknown:
    raise ValueError(f"config.model.{unknown[0]} is not a field of {name}; fields: "
                     f"{', '.join(sorted(fields))}")
  missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
             and f.default_factory is dataclasses.MISSING]
  if missing:
    raise ValueError(f"{name} needs config.model.{', config.model.'.join(missing)}")
  for field, value in kwargs.items():
    if field.endswith('dtype') and isinstance(value, str):
      try:
        kwargs[field] = jnp.dtype(value)
      except TypeError as e:
        raise ValueError(f"config.model.{field}='{value}' is not a dtype "
                         f"(e.g. 'float32', 'bfloat16')") from e
  return cls(**kwargs)


EXTRA_INPUTS = ('flow',)  # Batch keys a model may take besides the video, by keyword.


def extra_inputs(model: nn.Module) -> tuple[str, ...]:
  """The batch keys of EXTRA_INPUTS that `model.__call__` takes (two_stream: ('flow',)); the
  train and eval steps pass them from the batch."""
  parameters = inspect.signature(model.__call__).parameters
  return tuple(name for name in EXTRA_INPUTS if name in parameters)


def extra_input_shapes(model: nn.Module, video_shape) -> dict[str, tuple[int, ...]]:
  """Shapes of `extra_inputs(model)` for a video of `video_shape` (B, T, H, W, C): 'flow'
  (B, T - 1, H, W, 2)."""
  b, t, h, w = video_shape[:4]
  shapes = {'flow': (b, t - 1, h, w, 2)}
  return {name: shapes[name] for name in extra_inputs(model)}
