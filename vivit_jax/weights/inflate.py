"""2D -> 3D inflation (Carreira & Zisserman 2017): a `ResNet2D`'s variables into a `ResNet3D`.

The two nets share parameter paths (models/resnet.py), so every 2D conv kernel (kh, kw, Cin,
Cout) becomes the 3D kernel (kt, kh, kw, Cin, Cout) at the same path, kt read from the 3D net:
  'average'        the kernel / kt in every frame (I3D; PySlowFast and mmaction2 inflate so);
  'central_frame'  the kernel at kt // 2, zeros elsewhere;
(weights/vit.py's `inflate_kernel`, as for ViT tubelets). BatchNorm scale/bias and running
mean/var and the head are copied. On a video whose frames are all one image, a conv of either
kind gives the 2D conv's output on that image wherever its temporal window lies inside the clip;
'central_frame' also at the clip's ends (the zero-padded taps carry zero weight), 'average' there
sees the zero padding: the first and last kt // 2 frames of each such conv differ.
"""
from typing import Any

import numpy as np
from flax import traverse_util

from vivit_jax.weights import vit

Variables = dict[str, Any]
MODES = ('average', 'central_frame')  # vit.KERNEL_INITS less 'random' (no kernel to inflate).


def _may_stay_fresh(path: tuple[str, ...]) -> bool:
  """3D-only parts a 2D ResNet cannot provide: non-local blocks, and the head of a 2D net
  without a classifier."""
  return path[1] == 'head' or any(p.startswith('nonlocal_') for p in path)


def inflate_resnet(variables_2d: Variables, variables_3d: Variables,
                   mode: str = 'average') -> Variables:
  """A ResNet2D's {'params', 'batch_stats'} -> the same leaves shaped for a ResNet3D.

  `variables_3d`: the 3D net's variables, or jax.eval_shape's ShapeDtypeStructs of them; only
  their shapes and dtypes are read. The result holds every leaf of `variables_2d` at the 3D
  shape and dtype; the 3D net's non-local blocks (and a head the 2D net lacks) are not in it:
  merge it into fresh variables (`init_from.merge_params` counts what stays fresh).
  Raises ValueError naming the paths where the nets differ (depth, widths, classes).
  """
  if mode not in MODES:
    raise ValueError(f"config.init_from.kernel_init='{mode}' cannot inflate a 2D ResNet: use one "
                     f"of {', '.join(MODES)} ('random' is for ViT patch embeddings).")
  flat2 = traverse_util.flatten_dict(variables_2d)
  flat3 = traverse_util.flatten_dict(variables_3d)
  unknown = sorted('/'.join(k) for k in flat2 if k not in flat3)
  missing = sorted('/'.join(k) for k in flat3 if k not in flat2 and not _may_stay_fresh(k))
  if unknown or missing:
    problems = [f'{len(names)} {what} (e.g. {", ".join(names[:3])})' for names, what in (
        (unknown, 'variables the 3D net lacks'), (missing, 'variables the 2D net lacks'))
                if names]
    raise ValueError(f'The 2D ResNet does not inflate into the 3D one: {"; ".join(problems)}. '
                     f'Give config.model the 2D net\'s depth.')
  inflated = set()
  for key, value in flat2.items():
    shape, target = tuple(value.shape), tuple(flat3[key].shape)
    if key[-1] == 'kernel' and len(target) == len(shape) + 1:
      inflated.add(key)
    if (target[1:] if key in inflated else target) != shape:
      raise ValueError(f"{'/'.join(key)}: the 2D net's {shape} does not fit the 3D net's "
                       f"{target}{' (kt, *2D)' * (key in inflated)}: set config.model.base_width "
                       f"(and num_classes, or init_from.load_head=False) to the 2D net's.")
  out = {}
  for key, value in flat2.items():
    value = np.asarray(value)
    if key in inflated:
      value = vit.inflate_kernel(value, flat3[key].shape[0], mode)
    out[key] = value.astype(flat3[key].dtype)
  return traverse_util.unflatten_dict(out)
