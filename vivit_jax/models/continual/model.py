"""ContinualModel: a continual twin module run one frame at a time, with its state and timing."""
import dataclasses
import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

State = dict[str, Any]


def temporal_geometry(windows: Sequence[tuple[int, int]]) -> tuple[int, int, int]:
  """(receptive field, stride, offset) of a chain of temporal windows (kernel, stride), first to
  last: the output at frame t depends on frames t - receptive_field + 1 .. t, and with a stride
  (one strided window at most) it is fresh when (t - offset) % stride == 0."""
  field, stride, offset = 1, 1, 0
  for kernel, step in windows:
    field += (kernel - 1) * stride
    if step > 1:
      if stride > 1:
        raise ValueError('a continual model takes one temporal stride at most.')
      offset = field - 1
    stride *= step
  return field, stride, offset


@dataclasses.dataclass(frozen=True)
class ContinualModel:
  """A twin module (frame (B, H, W, C) -> logits (B, num_classes), past frames kept in its
  'state' collection) that uses the clip model's variables ({'params', 'batch_stats'}) as they are.

  After `receptive_field` frames from `init_state`, the logits of step t equal the clip model's
  with temporal_padding='valid' on frames t - receptive_field + 1 .. t. A model with a temporal
  stride (I3D's pool) gives fresh logits every `temporal_stride` frames (frames t with
  (t - emit_offset) % temporal_stride == 0) and repeats them in between: the layers after the
  strided one update their state only on those frames (computed every frame, kept by a select).
  """
  module: nn.Module
  receptive_field: int
  temporal_stride: int = 1
  emit_offset: int = 0
  gated: tuple[str, ...] = ()  # Top-level state entries after the strided layer.

  def init_state(self, variables: State, batch_size: int,
                 frame_shape: tuple[int, int, int]) -> State:
    """Zeros of fixed shapes: 'layers' (the module's), 'frames' (frames seen, int32) and
    'logits' (B, num_classes), the last fresh logits."""
    frame = jax.ShapeDtypeStruct((batch_size, *frame_shape), jnp.float32)
    logits, layers = jax.eval_shape(
        functools.partial(self.module.apply, mutable='state'), dict(variables), frame)
    zeros = lambda tree: jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), tree)  # noqa: E731
    return {'layers': zeros(dict(layers).get('state', {})), 'frames': jnp.zeros((), jnp.int32),
            'logits': zeros(logits)}

  def step(self, variables: State, state: State, frame: jax.Array) -> tuple[State, jax.Array]:
    """One frame (B, H, W, C) float32 -> (state, logits (B, num_classes)); pure, jit-able."""
    logits, layers = self.module.apply({**variables, 'state': state['layers']}, frame,
                                       mutable='state')
    layers = dict(layers).get('state', {})
    fresh = (state['frames'] - self.emit_offset) % self.temporal_stride == 0
    keep = functools.partial(jax.tree.map, functools.partial(jnp.where, fresh))
    layers = {k: keep(v, state['layers'][k]) if k in self.gated else v for k, v in layers.items()}
    logits = jnp.where(fresh, logits, state['logits'])
    return {'layers': layers, 'frames': state['frames'] + 1, 'logits': logits}, logits

  def scan(self, variables: State, state: State, frames: jax.Array) -> tuple[State, jax.Array]:
    """Frames (B, T, H, W, C) -> (state, logits (B, T, num_classes)): `step` under lax.scan."""
    state, logits = jax.lax.scan(functools.partial(self.step, variables), state,
                                 jnp.swapaxes(frames, 0, 1))
    return state, jnp.swapaxes(logits, 0, 1)
