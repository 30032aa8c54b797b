"""Model registry: `build(config.model)` makes the module named by `config.model.name`."""
import dataclasses
import importlib

import flax.linen as nn
import jax
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
    'mvit': 'mvit:MViT',
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


# Every RNG stream a model may use, in the order the train step and the state's init split their
# key (so a stream's key does not depend on which others a model uses). A model declares the
# streams it draws in training as RNG_STREAMS (default DEFAULT_RNG_STREAMS) and those it draws in
# evaluation too as EVAL_RNG_STREAMS (default none), keyed by EVAL_RNG_SEED so evaluations repeat.
RNG_STREAMS = ('dropout', 'drop_path', 'masking')
DEFAULT_RNG_STREAMS = ('dropout', 'drop_path')
EVAL_RNG_SEED = 0


def rng_streams(model: nn.Module) -> tuple[str, ...]:
  """The RNG streams `model` draws in training (its RNG_STREAMS)."""
  return tuple(getattr(model, 'RNG_STREAMS', DEFAULT_RNG_STREAMS))


def eval_rngs(model: nn.Module) -> dict:
  """`rngs` for `model.apply(..., train=False)`: its EVAL_RNG_STREAMS, each keyed by EVAL_RNG_SEED
  (videomae_pretrain: {'masking': key}); {} for most models."""
  return {name: jax.random.key(EVAL_RNG_SEED) for name in getattr(model, 'EVAL_RNG_STREAMS', ())}


def extra_inputs(model: nn.Module) -> tuple[str, ...]:
  """The batch keys `model` takes by keyword besides the video (its EXTRA_INPUTS: key -> shape
  of that input for a video shape; two_stream: ('flow',)); the train and eval steps pass them
  from the batch."""
  return tuple(getattr(model, 'EXTRA_INPUTS', {}))


def extra_input_shapes(model: nn.Module, video_shape) -> dict[str, tuple[int, ...]]:
  """Shapes of `extra_inputs(model)` for a video of `video_shape` (B, T, H, W, C), e.g. 'flow'
  (B, T - 1, H, W, 2)."""
  return {name: tuple(shape(tuple(video_shape)))
          for name, shape in getattr(model, 'EXTRA_INPUTS', {}).items()}
