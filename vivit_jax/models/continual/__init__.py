"""Continual inference (Hedegaard & Iosifidis, ECCV 2022): a trained 3D CNN run one frame at a
time, each frame's logits equal to the clip model's on the last `receptive_field` frames with no
temporal padding, from the same variables.

  co = continual.build(config.model)                  # 'resnet3d' (CoSlow, CoI3D), 'x3d' (CoX3D)
  state = co.init_state(variables, batch_size, (H, W, C))
  state, logits = co.step(variables, state, frame)    # frame (B, H, W, C) -> (B, num_classes)
  state, logits = co.scan(variables, state, frames)   # (B, T, H, W, C) -> (B, T, num_classes)
"""
import dataclasses

import ml_collections

from vivit_jax import models
from vivit_jax.models.continual.model import ContinualModel, temporal_geometry
from vivit_jax.models.continual.resnet3d import CoResNet3D
from vivit_jax.models.continual.x3d import CoX3D
from vivit_jax.models.layers import check_int

TWINS = {'resnet3d': CoResNet3D, 'x3d': CoX3D}
# Models that cannot be continual, and why.
REFUSED = {
    name: 'it attends over all frames at once (bidirectional self-attention over time), so '
          'every output depends on future frames'
    for name in ('vivit', 'timesformer', 'videomae', 'videomae_pretrain')}


def _check_resnet3d(clip):
  """ValueError for the ResNet3D options CoResNet3D does not run frame by frame."""
  if any(map(len, clip.nonlocal_blocks)):
    raise ValueError(f'config.model.nonlocal_blocks={clip.nonlocal_blocks!r} cannot be '
                     f'continual: a non-local block attends over all frames of the clip, future '
                     f'ones included; use ((), (), (), ()) (I3D without non-local blocks).')
  if tuple(clip.temporal_strides) != (1,) * len(clip.temporal_strides) or clip.factorised:
    raise ValueError(f'config.model.temporal_strides={tuple(clip.temporal_strides)}, factorised='
                     f'{clip.factorised}: strided or (2+1)D temporal convs (R(2+1)D-R50) have no '
                     f'continual twin yet; continual ResNet3Ds: Slow, C2D, I3D.')


def build(model_config: ml_collections.ConfigDict, pool_window: int = 1,
          se_window: int = 1) -> ContinualModel:
  """The continual twin of the clip model `models.build(model_config)`.

  pool_window: frames (after the temporal stride) the global average pool averages; more
  smooths the prediction and lengthens the receptive field. se_window (CoX3D): frames the
  squeeze-excitation averages (1: the frame, as co3d's CoX3D). ValueError saying why for
  models that cannot be continual.
  """
  name = model_config.get('name')
  if name in REFUSED:
    raise ValueError(f"config.model.name='{name}' cannot be continual: {REFUSED[name]}. "
                     f"Continual models: {', '.join(TWINS)}.")
  if name not in TWINS:
    raise ValueError(f"config.model.name='{name}' has no continual twin; continual models: "
                     f"{', '.join(TWINS)}.")
  clip = models.build(model_config)
  if name == 'resnet3d':
    _check_resnet3d(clip)
  check_int('pool_window', pool_window, 'frames of the continual global average pool')
  extra = {'pool_window': pool_window}
  if name == 'x3d':
    check_int('se_window', se_window, 'frames of the continual squeeze-excitation')
    extra['se_window'] = se_window
  fields = {f.name: getattr(clip, f.name) for f in dataclasses.fields(clip)
            if f.init and f.name not in ('parent', 'name')}
  twin = TWINS[name](**fields, **extra)
  field, stride, offset = temporal_geometry(twin.temporal_windows())
  return ContinualModel(twin, field, stride, offset, twin.gated_state())
