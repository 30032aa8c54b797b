"""A PyTorch state dict -> our variables {'params', 'batch_stats'}, through one name map per
architecture (weights/torchvision_video.py, weights/pytorchvideo/).

The model decides the layout: every leaf of its (abstract) variables asks the architecture's name
map for the torch tensor that fills it, so a state dict that lacks a tensor, holds one the model
has no place for, or holds one of another shape is refused naming the first such tensors.
Tensors become leaves as torch lays them out: a conv weight (O, I/groups, kt, kh, kw) a kernel
(kt, kh, kw, I/groups, O) (2D and 1D convs likewise), a Linear (O, I) a Dense kernel (I, O), then
reshaped to the leaf's shape where only the grouping of axes differs (a DenseGeneral's
(D, heads, head_dim)); BatchNorm/LayerNorm weight -> scale, running_mean/var -> batch_stats
mean/var; BatchNorm's num_batches_tracked is dropped. `read_state_dict` reads the file.
"""
from typing import Any, Callable, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

Variables = dict[str, Any]
Key = tuple[str, ...]  # (collection, *module path, leaf), e.g. ('params', 'stem_conv', 'kernel').
# Our (collection, leaf) -> PyTorch's parameter or buffer name.
LEAVES = {('params', 'kernel'): 'weight', ('params', 'scale'): 'weight',
          ('params', 'bias'): 'bias', ('batch_stats', 'mean'): 'running_mean',
          ('batch_stats', 'var'): 'running_var'}


# Where a checkpoint pickle keeps its state dict: PyTorchVideo / PySlowFast ('model_state'),
# Lightning and many trainers ('state_dict'), others ('model').
STATE_DICT_KEYS = ('model_state', 'state_dict', 'model')


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """The tensors of a PyTorch checkpoint file as {name: float32 numpy array}, in file order: a
  `.safetensors` file, or a torch pickle (`.pth`, `.pyth`, `.pt`: a state dict, or a dict holding
  one under a key of STATE_DICT_KEYS; read with weights_only, so no code in it runs)."""
  if path.endswith('.safetensors'):
    from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
    return {k: np.asarray(v, np.float32) for k, v in load_file(path).items()}
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError(f'Reading {path} (a torch pickle) needs PyTorch: pip install -e '
                      f'".[interop]", or save its state dict as .safetensors.') from e
  loaded = torch.load(path, map_location='cpu', weights_only=True)
  for key in STATE_DICT_KEYS:
    if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
      loaded = loaded[key]
      break
  if not isinstance(loaded, dict) or not all(torch.is_tensor(v) for v in loaded.values()):
    raise ValueError(f'{path} holds no state dict: expected a dict of tensors, or one under '
                     f'{" / ".join(STATE_DICT_KEYS)}.')
  return {k: v.float().numpy() for k, v in loaded.items()}


def is_head(key: Key) -> bool:
  """Whether leaf `key` belongs to the classifier (`head`, every model's last Dense)."""
  return key[1] == 'head'


def tensor_name(key: Key, module: str) -> str:
  """The torch name of leaf `key` of our module whose torch name is `module` ('layer1.0.conv1'
  + kernel -> 'layer1.0.conv1.weight')."""
  return f'{module}.{LEAVES[key[0], key[-1]]}'


def network_order(name: str) -> list[tuple]:
  """A sort key putting torch names in network order (blocks.2 before blocks.10)."""
  return [(0, int(p), '') if p.isdigit() else (1, 0, p) for p in name.split('.')]


def to_leaf(weight: np.ndarray, shape: Sequence[int]) -> np.ndarray:
  """A torch tensor -> our leaf of `shape`: convs (O, I, *window) -> (*window, I, O), matrices
  transposed, then reshaped to `shape` when only the grouping of axes differs."""
  weight = np.asarray(weight)
  if weight.ndim >= 3:
    weight = weight.transpose(*range(2, weight.ndim), 1, 0)
  elif weight.ndim == 2:
    weight = weight.T
  if weight.shape != tuple(shape) and weight.size == int(np.prod(shape)) and weight.ndim == 2:
    weight = weight.reshape(shape)
  return weight


def abstract_variables(model: nn.Module, video_shape: Sequence[int]) -> dict[Key, Any]:
  """`model`'s variables as flat {key: ShapeDtypeStruct}, from an init on (1, *video_shape) zeros
  (nothing computed)."""
  return traverse_util.flatten_dict(nn.unbox(jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros((1, *video_shape)), train=False))))


def to_variables(state_dict: Mapping[str, np.ndarray], abstract: Mapping[Key, Any],
                 name_of: Callable[[Key], str], *, described: str, fix: str,
                 load_head: bool = True,
                 ignored: Callable[[str], bool] = lambda name: False,
                 transform: Optional[Callable[[Key, np.ndarray], np.ndarray]] = None) -> Variables:
  """`state_dict` (torch name -> numpy array) as the variables of the model whose flat abstract
  variables are `abstract` (`abstract_variables`); `name_of(key)` names the tensor of each leaf.

  `transform(key, tensor)`, if given, replaces `to_leaf` for the leaves it returns an array for
  (it returns None for the rest). `ignored(name)` marks tensors the model does not need (beyond
  BatchNorm's num_batches_tracked). Without `load_head`, the classifier's tensors are skipped
  (fine-tuning to other classes) and its leaves are absent from the result. Raises ValueError
  naming the first missing, extra or misshaped tensors; `described` names the model ('X3D-M'),
  `fix` the config fields to check.
  """
  head = {name_of(key) for key in abstract if is_head(key)} if not load_head else set()
  names = {name_of(key): key for key in abstract if load_head or not is_head(key)}
  missing = sorted((name for name in names if name not in state_dict), key=network_order)
  if missing:
    raise ValueError(f'The state dict lacks {len(missing)} tensors of {described}, first '
                     f'{missing[:3]}: not a state dict of this architecture and size ({fix}).')
  extra = [name for name in state_dict if name not in names and name not in head
           and not ignored(name)
           and not name.endswith('.num_batches_tracked')]
  if extra:
    raise ValueError(f'The state dict has {len(extra)} tensors that {described} has no place '
                     f'for, first {sorted(extra, key=network_order)[:3]}: another architecture or '
                     f'size ({fix}).')
  flat = {}
  for name in sorted(names, key=network_order):
    key, tensor = names[name], state_dict[name]
    value = transform(key, tensor) if transform else None
    value = to_leaf(tensor, abstract[key].shape) if value is None else value
    if value.shape != abstract[key].shape:
      raise ValueError(f"The state dict's '{name}' {tuple(np.shape(tensor))} gives "
                       f"{'/'.join(key)} the shape {value.shape}, but {described} has "
                       f"{abstract[key].shape}: another size ({fix}).")
    flat[key] = np.asarray(value, abstract[key].dtype)
  return traverse_util.unflatten_dict(flat)
