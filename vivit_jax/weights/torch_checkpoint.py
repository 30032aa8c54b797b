"""PyTorch video-model checkpoints -> our variables, for config.init_from.path and
tools/convert_checkpoint.py.

A file (`X3D_M.pyth`, `r3d_18-b3b3357e.pth`, or any state dict as `.safetensors`) is read by
torch_state.read_state_dict; its tensor names tell the zoo it came from, and the zoo's converter
fills the model built from config.model, refusing a checkpoint of another architecture or size
with the first tensors that do not fit. The user brings the file: nothing is downloaded.
"""
from typing import Callable, Mapping, Sequence

import flax.linen as nn
import numpy as np

from vivit_jax.weights import pytorchvideo, torch_state, torchvision_video

# (state_dict, model, *, load_head, clip) -> variables.
Converter = Callable[..., torch_state.Variables]
# (zoo, recognises its tensor names, converter), tried in order.
ZOOS: tuple[tuple[str, Callable[[Sequence[str]], bool], Converter], ...] = (
    ('torchvision', torchvision_video.is_video_resnet, torchvision_video.variables),
    ('PyTorchVideo / PySlowFast', pytorchvideo.is_pytorchvideo, pytorchvideo.variables),
)
SUFFIXES = ('.pyth', '.pth', '.pt', '.safetensors')


def zoo_of(names: Sequence[str], path: str) -> tuple[str, Converter]:
  """(zoo name, converter) of a state dict with tensor `names`; ValueError if none is known."""
  for zoo, recognises, convert in ZOOS:
    if recognises(names):
      return zoo, convert
  raise ValueError(f'{path}: tensor names such as {list(names)[:3]} are from no model zoo this '
                   f'library converts ({", ".join(z for z, _, _ in ZOOS)}).')


def to_variables(state_dict: Mapping[str, np.ndarray], model: nn.Module, path: str, *,
                 load_head: bool, clip: Sequence[int]) -> torch_state.Variables:
  """`state_dict` (read from `path`) as the variables {'params'[, 'batch_stats']} of `model` on
  clips `clip` (T, H, W); without `load_head`, no classifier (its leaves stay fresh in the
  caller)."""
  zoo, convert = zoo_of(list(state_dict), path)
  try:
    return convert(state_dict, model, load_head=load_head, clip=tuple(clip))
  except ValueError as e:
    raise ValueError(f'{path} ({zoo}) does not fit config.model: {e}') from e
