"""Continual models (vivit_jax/models/continual): frame by frame from `init_state`, CoSlow, CoI3D
and CoX3D give the clip model's logits (temporal_padding='valid') on the last receptive_field
frames, with random weights and random BatchNorm statistics; `scan` equals a loop over `step`.
Run with -s to see the model shift against the clip model with temporal padding kept.
"""
import os
import runpy

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests.helpers import REPO
from vivit_jax import models
from vivit_jax.models import continual, resnet
from vivit_jax.models.continual import layers

FRAME = (32, 32, 3)
I3D_KERNELS = ((3,), (3, 1), (3, 1), (1, 3))
# Tiny clip models: base widths 4, 32 x 32 frames; ResNets of basic blocks (I3D-R50's bottlenecks
# in a slow test).
CONFIGS = {
    'slow': dict(name='resnet3d', num_classes=5, depth=10, base_width=4,
                 temporal_kernels=(1, 1, 3, 3)),
    'i3d': dict(name='resnet3d', num_classes=5, depth=18, base_width=4,
                temporal_kernels=I3D_KERNELS, stem_temporal_kernel=5, temporal_pool=2),
    'x3d': dict(name='x3d', num_classes=5, base_width=4, depth_factor=0.3, head_width=16,
                se_ratio=0.0),
}
STEPS_AFTER_WARMUP = 3  # Fresh predictions checked after the warm-up (sliding window).


def _config(kind, **overrides):
  return ml_collections.ConfigDict({**CONFIGS[kind], **overrides})


def _clip(kind, padding='valid', **overrides):
  return models.build(_config(kind, temporal_padding=padding, **overrides))


def _random_variables(model, video):
  """Random weights and BN statistics (every BN scale non-zero), logits of size ~1 on video."""
  variables = flax.linen.meta.unbox(model.init(jax.random.key(1), video, train=False))
  flat = flax.traverse_util.flatten_dict(variables)
  keys = dict(zip(flat, jax.random.split(jax.random.key(2), len(flat))))

  def draw(path, leaf):
    if path[-1] in ('mean', 'bias'):
      return 0.1 * jax.random.normal(keys[path], leaf.shape)
    if path[-1] in ('var', 'scale'):
      return jax.random.uniform(keys[path], leaf.shape, minval=0.5, maxval=1.5)
    return 0.1 * jax.random.normal(keys[path], leaf.shape) if 'head' in path else leaf

  variables = flax.traverse_util.unflatten_dict({p: draw(p, v) for p, v in flat.items()})
  size = float(jnp.abs(model.apply(variables, video, train=False)).max())
  variables['params']['head'] = jax.tree.map(lambda a: a / size, variables['params']['head'])
  return variables


class Run:
  """A continual model run over `warm-up + 2 strides` frames, and its clip twins."""

  def __init__(self, kind, **overrides):
    self.co = continual.build(_config(kind, **overrides))
    self.clip = jax.jit(lambda v, x, m=_clip(kind, **overrides): m.apply(v, x, train=False))
    field, stride = self.co.receptive_field, self.co.temporal_stride
    self.video = jax.random.normal(jax.random.key(0),
                                   (2, field + (STEPS_AFTER_WARMUP - 1) * stride) + FRAME)
    self.variables = _random_variables(_clip(kind, **overrides), self.video[:, :field])
    state = self.co.init_state(self.variables, 2, FRAME)
    self.state, self.logits = jax.jit(self.co.scan)(self.variables, state, self.video)

  def clip_logits(self, last):
    """The clip model (no temporal padding) on the receptive field ending at frame `last`."""
    return self.clip(self.variables, self.video[:, last + 1 - self.co.receptive_field:last + 1])


@pytest.fixture(scope='module', params=list(CONFIGS))
def run(request):
  return Run(request.param)


def test_last_step_equals_the_clip_model_without_temporal_padding(run):
  last = run.co.receptive_field - 1
  np.testing.assert_allclose(run.logits[:, last], run.clip_logits(last), atol=1e-5, rtol=0)


def test_sliding_window_after_warm_up(run):
  """Each fresh prediction (every temporal_stride frames) equals the clip model on its window;
  in between the last one is repeated."""
  stride = run.co.temporal_stride
  for k in range(STEPS_AFTER_WARMUP):
    t = run.co.receptive_field - 1 + k * stride
    np.testing.assert_allclose(run.logits[:, t], run.clip_logits(t), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(run.logits[:, t:t + stride], run.logits[:, t:t + 1].repeat(
        min(stride, run.logits.shape[1] - t), axis=1))


def test_model_shift_against_the_clip_model_with_temporal_padding(run, request):
  """The clip model as trained ('same' padding) on the receptive field differs: printed."""
  last = run.co.receptive_field - 1
  kind = request.node.callspec.params['run']
  padded = _clip(kind, 'same').apply(run.variables, run.video[:, :last + 1], train=False)
  shift = float(jnp.abs(run.logits[:, last] - padded).max())
  print(f'\n{kind}: model shift (max |logit difference|, logits ~1) {shift:.4f} over '
        f'{last + 1} frames')
  assert np.isfinite(shift) and shift > 1e-4


def test_scan_equals_a_loop_over_step(run):
  step = jax.jit(run.co.step)
  state = run.co.init_state(run.variables, 2, FRAME)
  for t in range(run.video.shape[1]):
    state, logits = step(run.variables, state, run.video[:, t])
    np.testing.assert_allclose(logits, run.logits[:, t], atol=1e-6, rtol=0)
  jax.tree.map(np.testing.assert_array_equal, state, run.state)


@pytest.mark.slow  # 30 s: Slow-R50's 16 bottlenecks at base width 4 (I3D's pool: test above).
def test_bottleneck_slow_sliding_window():
  run = Run('slow', depth=50)
  for k in range(STEPS_AFTER_WARMUP):
    t = run.co.receptive_field - 1 + k * run.co.temporal_stride
    np.testing.assert_allclose(run.logits[:, t], run.clip_logits(t), atol=1e-5, rtol=0)


def test_receptive_fields_at_paper_sizes():
  i3d = runpy.run_path(os.path.join(REPO, 'configs/cnn/i3d_r50_k400.py'))['get_config']()
  x3d_m = runpy.run_path(os.path.join(REPO, 'configs/cnn/x3d_k400.py'))['get_config']('M')
  slow = ml_collections.ConfigDict(dict(name='resnet3d', num_classes=400))  # Slow-R50 defaults.
  fields = {name: (co.receptive_field, co.temporal_stride) for name, co in (
      ('slow', continual.build(slow)), ('i3d', continual.build(i3d.model)),
      ('x3d_m', continual.build(x3d_m.model)))}
  assert fields == {'slow': (19, 1), 'i3d': (36, 2), 'x3d_m': (57, 1)}
  assert continual.build(i3d.model, pool_window=4).receptive_field == 36 + 3 * 2


def test_longer_pool_window_equals_the_clip_model_on_more_frames():
  run = Run('slow')
  co = continual.build(_config('slow'), pool_window=3)
  assert co.receptive_field == run.co.receptive_field + 2
  frames = run.video[:, :co.receptive_field]
  _, logits = jax.jit(co.scan)(run.variables, co.init_state(run.variables, 2, FRAME), frames)
  np.testing.assert_allclose(logits[:, -1], run.clip(run.variables, frames), atol=1e-5, rtol=0)


def test_squeeze_excitation_shift():
  """CoX3D's squeeze-excitation averages the last se_window frames, the clip model's the whole
  clip: not equal (printed)."""
  run = Run('x3d', se_ratio=0.0625)
  last = run.co.receptive_field - 1
  shift = float(jnp.abs(run.logits[:, last] - run.clip_logits(last)).max())
  print(f'\nx3d: squeeze-excitation shift (max |logit difference|, logits ~1, se_window 1) '
        f'{shift:.5f}')
  assert np.isfinite(shift) and shift > 1e-5


@pytest.mark.parametrize('cache', ['pre', 'post'])
def test_temporal_conv_caches_equal_the_clip_conv(cache):
  x = jax.random.normal(jax.random.key(0), (2, 7, 6, 6, 5))
  clip = resnet.conv(8, (3, 3, 3), (1, 2, 2), temporal_padding='valid', dtype=jnp.float32,
                     param_dtype=jnp.float32, name=None)
  params = flax.linen.meta.unbox(clip.init(jax.random.key(1), x))
  conv = layers.TemporalConv(8, (3, 3, 3), 2, cache=cache)
  state = jax.tree.map(jnp.zeros_like, conv.init(jax.random.key(2), x[:, :1])['state'])
  assert list(state) == [{'pre': 'frames', 'post': 'partial_sums'}[cache]]
  outputs = []
  for t in range(x.shape[1]):
    y, variables = conv.apply({**params, 'state': state}, x[:, t:t + 1], mutable='state')
    outputs.append(y)
    state = variables['state']
  np.testing.assert_allclose(np.concatenate(outputs, 1)[:, 2:], clip.apply(params, x), atol=1e-5)


@pytest.mark.parametrize('name, why', [('vivit', 'bidirectional self-attention'),
                                       ('timesformer', 'future frames'),
                                       ('slowfast', 'no continual twin')])
def test_refuses_models_that_cannot_be_continual(name, why):
  with pytest.raises(ValueError, match=why):
    continual.build(ml_collections.ConfigDict({'name': name}))


def test_refuses_non_local_blocks():
  config = _config('i3d', nonlocal_blocks=((), (0,), (), ()))
  with pytest.raises(ValueError, match=r'nonlocal_blocks.*future.*\(\(\), \(\), \(\), \(\)\)'):
    continual.build(config)


def test_refuses_unknown_temporal_padding():
  with pytest.raises(ValueError, match="temporal_padding='causal'.*same"):
    _clip('slow', 'causal')
