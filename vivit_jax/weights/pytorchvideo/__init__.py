"""PyTorchVideo / PySlowFast model-zoo checkpoints -> our variables {'params', 'batch_stats'}.

A model-zoo file (`X3D_M.pyth`, a torch pickle) holds the state dict under 'model_state'; the
caller turns its tensors into numpy arrays (`{name: t.numpy()}`). One module per architecture
holds its name map; `variables(state_dict, model)` picks it by the model's class.
"""
from typing import Mapping

import flax.linen as nn
import numpy as np

from vivit_jax import models
from vivit_jax.weights.pytorchvideo import mvit, x3d

# Our model class -> its converter (state dict, model) -> variables.
CONVERTERS = {models.x3d.X3D: x3d.x3d_variables,
              models.mvit.MViT: mvit.mvit_variables}


def variables(state_dict: Mapping[str, np.ndarray], model: nn.Module) -> dict:
  """`state_dict` as `model`'s variables; raises ValueError for a model no map covers."""
  convert = CONVERTERS.get(type(model))
  if convert is None:
    raise ValueError(f'No PyTorchVideo checkpoint converts to a {type(model).__name__}; '
                     f'convertible: {", ".join(c.__name__ for c in CONVERTERS)}.')
  return convert(state_dict, model)
