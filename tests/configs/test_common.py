"""configs/common.py: the one reading of a preset argument, the dataset constants every preset
uses, the tiny training and the SGD recipe."""
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs import common
from tests.configs.test_presets import ALL
from vivit_jax.train import optim

OPTIONS = dict(variant=('i3d', 'nonlocal'), size=('B', 'L'))


@pytest.mark.parametrize('arg, expected', [
    (None, (False, 'i3d', 'B')),
    ('', (False, 'i3d', 'B')),
    ('tiny', (True, 'i3d', 'B')),
    ('nonlocal', (False, 'nonlocal', 'B')),
    ('variant=nonlocal,size=L', (False, 'nonlocal', 'L')),
    ('L,tiny,nonlocal', (True, 'nonlocal', 'L')),
])
def test_parse_arg(arg, expected):
  args = common.parse_arg(arg, 'configs/x.py', **OPTIONS)
  assert (args.tiny, args.variant, args.size) == expected


@pytest.mark.parametrize('arg, token', [
    ('tiyn', 'tiyn'), ('tiny,huge', 'huge'), ('size=nonlocal', 'size=nonlocal'),
    ('depth=50', 'depth=50'), ('B,L', 'L'), ('tiny_nonlocal', 'tiny_nonlocal'),
])
def test_unknown_argument_is_one_line_naming_the_valid_ones(arg, token):
  with pytest.raises(ValueError, match=f"Unknown preset argument '{token}'") as error:
    common.parse_arg(arg, 'configs/x.py', **OPTIONS)
  message = str(error.value)
  assert '\n' not in message and 'configs/x.py' in message
  assert 'tiny, variant=i3d|nonlocal, size=B|L' in message


def test_load_reads_path_and_argument():
  assert (common.load('configs/cnn/i3d_r50_k400.py:tiny,nonlocal').to_dict()
          == common.load('configs/cnn/i3d_r50_k400.py:variant=nonlocal,tiny').to_dict())
  assert common.load('configs/default.py').to_dict() == common.default_config().to_dict()


def test_the_default_job_refuses_an_argument():
  with pytest.raises(ValueError, match=r"'tiyn' in configs/default.py.*--config\.a\.b=value"):
    common.load('configs/default.py:tiyn')


def test_kinetics_presets_count_the_same_training_clips():
  """Steps per epoch from KINETICS400_TRAIN_CLIPS in every family: ViViT 30 epochs of 64,
  TimeSformer 15 of 8, I3D 196 of 64, VideoMAE-B fine-tuning 75 of 384."""
  clips = common.KINETICS400_TRAIN_CLIPS
  assert common.load('configs/vivit/k400.py').train.num_steps == 30 * (clips // 64)
  assert common.load('configs/timesformer/base_8x224.py').train.num_steps == 15 * (clips // 8)
  assert common.load('configs/cnn/i3d_r50_k400.py').train.num_steps == 196 * (clips // 64)
  assert common.load('configs/videomae/finetune.py:B').train.num_steps == 75 * (clips // 384)


@pytest.mark.parametrize('spec', [s for s in ALL if ':' not in s])
def test_tiny_training_keeps_the_optimizer(spec):
  full, tiny = common.load(spec), common.load(f'{spec}:tiny')
  assert (tiny.dataset.name, tiny.init_from.path) == ('synthetic_motion', '')
  assert tiny.optimizer.name == full.optimizer.name or spec.endswith(('cnn_lstm.py',
                                                                       'conv_gru.py'))
  if tiny.optimizer.name == 'sgd':
    assert tiny.optimizer.momentum == full.optimizer.momentum
    assert tiny.optimizer.warmup_steps == common.TINY_WARMUP_STEPS
    assert tiny.train.num_steps == common.TINY_STEPS


def _sgd_config(**fields):
  config = ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=0.1, end_learning_rate=0.0, warmup_steps=0, weight_decay=0.01,
      grad_clip_norm=common.NO_CLIPPING))
  config.update(fields)
  return config


@pytest.mark.parametrize('fields, momentum, nesterov', [
    ({}, 0.9, False),  # Defaults, as for configs/default.py's optimizer section.
    ({'momentum': 0.5, 'nesterov': True}, 0.5, True),
])
def test_sgd_matches_hand_computed_updates(fields, momentum, nesterov):
  """The presets' SGD (common.set_sgd), unclipped (NO_CLIPPING), against hand-computed steps."""
  params = {'kernel': jnp.ones((2, 2)), 'bias': jnp.ones((2,))}
  grads = {'kernel': jnp.full((2, 2), 0.5), 'bias': jnp.full((2,), -0.5)}
  tx, schedule = optim.make_optimizer(_sgd_config(**fields), num_steps=10)
  opt_state, p = tx.init(params), params
  expected, trace = {k: np.asarray(v) for k, v in params.items()}, {k: 0.0 for k in params}
  for i in range(2):
    updates, opt_state = tx.update(grads, opt_state, p)
    p = optax.apply_updates(p, updates)
    for k in params:  # L2 decay on kernels only, then (Nesterov) momentum.
      g = np.asarray(grads[k]) + (0.01 * expected[k] if k == 'kernel' else 0.0)
      trace[k] = g + momentum * trace[k]
      expected[k] = expected[k] - float(schedule(i)) * (g + momentum * trace[k] if nesterov
                                                        else trace[k])
  for k in params:
    np.testing.assert_allclose(p[k], expected[k], rtol=1e-6)


def test_set_sgd_schedule_in_epochs():
  config = common.default_config()
  common.set_sgd(config, learning_rate=0.1, epochs=3, warmup_epochs=0.5, steps_per_epoch=10,
                 momentum=0.9, nesterov=False, weight_decay=0.0, grad_clip_norm=1.0)
  assert (config.optimizer.name, config.optimizer.warmup_steps, config.train.num_steps) == (
      'sgd', 5, 30)
