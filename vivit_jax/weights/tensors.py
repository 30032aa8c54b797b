"""A checkpoint's named tensors (read from safetensors or .npz), taken once each by a reader
(weights/hf.py, weights/resnet2d.py, weights/vit.py)."""
from typing import Any

import numpy as np

Params = dict[str, Any]


class Tensors:
  """A checkpoint's named arrays, each taken once; `check_all_taken` reports any left over.

  A `prefix` (the base model's name inside a task model, e.g. 'timesformer.') is stripped.
  """

  def __init__(self, arrays: dict[str, np.ndarray], path: str, prefix: str):
    self.path = path
    self._arrays = {k.removeprefix(prefix): v for k, v in arrays.items()}

  def __contains__(self, name: str) -> bool:
    return name in self._arrays

  def names(self) -> list[str]:
    """The names not yet taken."""
    return list(self._arrays)

  def shape(self, name: str) -> tuple[int, ...]:
    return tuple(int(n) for n in self._arrays[name].shape)

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

  def attention_out(self, name: str, heads: int) -> Params:
    """torch Linear `name` (D, heads * hd) -> layers.Attention 'out' params, kernel (heads, hd, D)."""
    out = self.linear(name)
    return {'kernel': out['kernel'].reshape(heads, -1, out['bias'].shape[0]), 'bias': out['bias']}

  def check_all_taken(self):
    if self._arrays:
      raise ValueError(f'{self.path}: {len(self._arrays)} tensors have no place in the model, '
                       f'e.g. {sorted(self._arrays)[:5]}.')



def check_supported(path: str, checks: tuple[tuple[str, Any, bool], ...], supported: str):
  """Raises ValueError for the first (config.json field, value, ok) that is not ok."""
  for field, value, ok in checks:
    if not ok:
      raise ValueError(f'config.json of {path}: {field}={value!r} is not supported ({supported}).')
