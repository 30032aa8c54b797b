"""Parameter layouts of scanned and unrolled transformer encoders (config.model.scan_layers).

Unrolled, an encoder holds one subtree per block, `block_0` ... `block_{L-1}`; scanned
(encoder.stacked_blocks with scan_layers), one subtree `blocks` whose leaves have a leading axis of
L. Checkpoint conversion (Hugging Face, ViT) writes the unrolled layout; `stack` and `unstack`
convert whole trees, at any depth, so either layout loads into either model.
"""
import re
from typing import Any

import numpy as np

STACKED = 'blocks'  # Name of the scanned blocks' subtree.
_BLOCK = re.compile(r'block_(\d+)')


def _block_index(name: str):
  match = _BLOCK.fullmatch(name)
  return int(match.group(1)) if match else None


def stack(tree: Any) -> Any:
  """Every dict holding `block_0..block_{L-1}` gets them as one `blocks` subtree, leaves stacked
  along a new leading axis (numpy); other entries are kept."""
  if not isinstance(tree, dict):
    return tree
  tree = {k: stack(v) for k, v in tree.items()}
  indices = sorted(i for i in map(_block_index, tree) if i is not None)
  if not indices:
    return tree
  if indices != list(range(len(indices))):
    raise ValueError(f'Cannot stack blocks {indices}: they must be block_0..block_{{L-1}}.')
  blocks = [tree.pop(f'block_{i}') for i in indices]
  return {**tree, STACKED: _map(lambda *leaves: np.stack([np.asarray(a) for a in leaves]),
                                *blocks)}


def unstack(tree: Any) -> Any:
  """Inverse of `stack`: every `blocks` subtree (leading axis L) becomes `block_0..block_{L-1}`."""
  if not isinstance(tree, dict):
    return tree
  tree = {k: unstack(v) for k, v in tree.items()}
  if STACKED not in tree:
    return tree
  blocks = tree.pop(STACKED)
  num_layers = _leaves(blocks)[0].shape[0]
  return {**tree, **{f'block_{i}': _map(lambda a, i=i: np.asarray(a)[i], blocks)
                     for i in range(num_layers)}}


def is_stacked(path_names) -> bool:
  """Whether a leaf at these path names (strings) lives in a scanned `blocks` subtree."""
  return STACKED in path_names


def _map(fn, *trees):
  """`fn` over the leaves of nested dicts of the same structure."""
  if isinstance(trees[0], dict):
    return {k: _map(fn, *(t[k] for t in trees)) for k in trees[0]}
  return fn(*trees)


def _leaves(tree) -> list:
  return ([leaf for v in tree.values() for leaf in _leaves(v)] if isinstance(tree, dict)
          else [tree])
