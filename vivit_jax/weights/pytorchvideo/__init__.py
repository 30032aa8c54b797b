"""PyTorchVideo / PySlowFast model-zoo checkpoints -> our variables {'params', 'batch_stats'}.

A model-zoo file (`X3D_M.pyth`, a torch pickle) holds the state dict under 'model_state'; the
caller turns its tensors into numpy arrays (`{name: t.numpy()}`). One module per architecture
holds its name map; `variables(state_dict, model, load_head=, clip=)` picks it by the model's
class.
"""
from typing import Mapping, Sequence

import flax.linen as nn
import numpy as np

from vivit_jax import models
from vivit_jax.weights.pytorchvideo import mvit, resnet, slowfast, x3d

# Our model class -> its converter (state dict, model, *, load_head, clip) -> variables.
CONVERTERS = {
    models.x3d.X3D: x3d.x3d_variables,
    models.resnet.ResNet3D: resnet.resnet_variables,
    models.slowfast.SlowFast: slowfast.slowfast_variables,
    models.mvit.MViT: mvit.mvit_variables,
}


def is_pytorchvideo(names: Sequence[str]) -> bool:
  """Whether tensor `names` follow PyTorchVideo's module names (blocks.0. ...)."""
  return any(name.startswith('blocks.0.') for name in names)


def variables(state_dict: Mapping[str, np.ndarray], model: nn.Module, *, load_head: bool = True,
              clip: Sequence[int] | None = None) -> dict:
  """`state_dict` as `model`'s variables (without the classifier unless `load_head`) for clips
  `clip` (T, H, W; the converter's default if None); raises ValueError for a model no map
  covers."""
  convert = CONVERTERS.get(type(model))
  if convert is None:
    raise ValueError(f'No PyTorchVideo checkpoint converts to a {type(model).__name__}; '
                     f'convertible: {", ".join(c.__name__ for c in CONVERTERS)}.')
  return convert(state_dict, model, load_head=load_head, clip=clip)
