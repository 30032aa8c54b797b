"""Mixup and CutMix: the mixed video and targets against their definitions, the Beta weight,
the exact CutMix box weight, the switch between modes, label smoothing and jit."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vivit_jax.train import mixup, tasks

B, T, H, W, C, K = 4, 3, 8, 12, 2, 5


def _batch(seed: int = 0):
  """A random video (B, T, H, W, C), where no pixel equals its mirror's, and distinct labels."""
  rng = np.random.default_rng(seed)
  video = rng.normal(size=(B, T, H, W, C)).astype(np.float32)
  labels = np.array([0, 3, 1, 4])
  return video, labels


def _one_hot(labels):
  return np.eye(K, dtype=np.float32)[labels]


def _lam(targets, labels):
  """The weight of the original example, read from mixed one-hot targets (labels all differ)."""
  return np.asarray(targets)[0, labels[0]]


@functools.partial(jax.jit, static_argnames=('mixup_alpha', 'cutmix_alpha'))
def _mix_seeds(seeds, video, targets, switch_prob=0.5, *, mixup_alpha, cutmix_alpha):
  """`mixup.mix` for each seed (vmapped): videos (S, B, ...) and targets (S, B, K)."""
  return jax.vmap(lambda s: mixup.mix(jax.random.key(s), video, targets, mixup_alpha=mixup_alpha,
                                      cutmix_alpha=cutmix_alpha, switch_prob=switch_prob))(seeds)


def _is_cutmix(mixed, video):
  """Per seed: every pixel is exactly the original's or its mirror's (no blend)."""
  mixed = np.asarray(mixed)
  return ((mixed == video) | (mixed == video[::-1])).all(axis=tuple(range(1, mixed.ndim)))


def test_no_alpha_leaves_the_batch_unchanged():
  video, labels = _batch()
  out_video, out_targets = mixup.mix(jax.random.key(0), video, _one_hot(labels), mixup_alpha=0.0,
                                     cutmix_alpha=0.0)
  np.testing.assert_array_equal(out_video, video)
  np.testing.assert_array_equal(out_targets, _one_hot(labels))


def test_mixup_blends_video_and_targets_with_the_same_weight():
  video, labels = _batch()
  targets = _one_hot(labels)
  lams = []
  for mixed, mixed_targets in zip(*_mix_seeds(jnp.arange(5), video, targets, mixup_alpha=0.8,
                                               cutmix_alpha=0.0)):
    lam = _lam(mixed_targets, labels)
    lams.append(lam)
    np.testing.assert_allclose(mixed_targets, lam * targets + (1 - lam) * targets[::-1],
                               atol=1e-6)
    np.testing.assert_allclose(mixed, lam * video + (1 - lam) * video[::-1], atol=1e-5)
    np.testing.assert_allclose(np.sum(mixed_targets, axis=1), 1.0, atol=1e-6)
  assert 0 < min(lams) and max(lams) < 1 and len(set(lams)) == 5  # Drawn anew per seed.


@pytest.mark.parametrize('alpha', [0.4, 2.0])
def test_mixup_weight_follows_beta_alpha_alpha(alpha):
  video, labels = _batch()
  _, targets = _mix_seeds(jnp.arange(2000), video, _one_hot(labels), mixup_alpha=alpha,
                          cutmix_alpha=0.0)
  lam = np.asarray(targets)[:, 0, labels[0]]
  # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)); 2000 draws: the std errors are < 0.01.
  np.testing.assert_allclose(lam.mean(), 0.5, atol=0.03)
  np.testing.assert_allclose(lam.var(), 1 / (4 * (2 * alpha + 1)), rtol=0.12)


def test_cutmix_pastes_one_box_in_every_frame_weighted_by_its_exact_area():
  video, labels = _batch()
  targets = _one_hot(labels)
  seeds = jnp.arange(64)
  mixed, mixed_targets = _mix_seeds(seeds, video, targets, mixup_alpha=0.0, cutmix_alpha=1.0)
  mixed, mixed_targets = np.asarray(mixed), np.asarray(mixed_targets)
  assert _is_cutmix(mixed, video).all()
  areas = []
  for out, out_targets in zip(mixed, mixed_targets):
    pasted = out != video  # (B, T, H, W, C): where the mirror's pixels came in.
    box = pasted[0, 0, :, :, 0]
    assert (pasted == box[None, None, :, :, None]).all()  # Every example, frame and channel.
    np.testing.assert_array_equal(out[pasted], video[::-1][pasted])
    rows, cols = np.nonzero(box.any(1))[0], np.nonzero(box.any(0))[0]
    if box.any():  # One solid rectangle.
      assert box.sum() == len(rows) * len(cols) == box[rows[0]:rows[-1] + 1,
                                                       cols[0]:cols[-1] + 1].sum()
    area = box.mean()
    areas.append(area)
    lam = 1.0 - area  # Exactly the area left to the original, not the drawn Beta value.
    np.testing.assert_allclose(out_targets, lam * targets + (1 - lam) * targets[::-1], atol=1e-6)
    np.testing.assert_allclose(out_targets.sum(1), 1.0, atol=1e-6)
  assert len(set(areas)) > 10 and 0 < np.mean(areas) < 1  # Boxes of many sizes.


@pytest.mark.parametrize('switch_prob', [0.0, 0.5, 1.0])
def test_both_enabled_switch_between_mixup_and_cutmix(switch_prob):
  video, labels = _batch()
  mixed, targets = _mix_seeds(jnp.arange(200), video, _one_hot(labels), switch_prob,
                              mixup_alpha=0.8, cutmix_alpha=1.0)
  cut = _is_cutmix(mixed, video)
  lam = np.asarray(targets)[:, 0, labels[0]][:, None, None, None, None, None]
  blend = np.isclose(mixed, lam * video + (1 - lam) * video[::-1], atol=1e-5).reshape(200, -1)
  assert (cut | blend.all(1)).all()  # Each seed is one mode or the other.
  if switch_prob == 0.0:
    assert blend.all() and cut.mean() < 0.05  # (CutMix-like only where lam is 0 or 1.)
  elif switch_prob == 1.0:
    assert cut.all()
  else:
    assert 0.35 < cut.mean() < 0.65


def test_label_smoothing_then_mixing_in_prepare_under_jit():
  video, labels = _batch()
  smoothing = 0.1
  task = tasks.Classification(num_classes=K, label_smoothing=smoothing, mixup_alpha=0.8)
  batch = {'video': jnp.asarray(video), 'label': jnp.asarray(labels)}
  out = jax.jit(task.prepare)(batch, jax.random.key(3))
  smooth = (1 - smoothing) * _one_hot(labels) + smoothing / K
  # The target of label 0: lam * (0.9 + 0.02) + (1 - lam) * 0.02.
  lam = (np.asarray(out['targets'])[0, labels[0]] - smoothing / K) / (1 - smoothing)
  assert 0.02 < lam < 0.98
  np.testing.assert_allclose(out['targets'], lam * smooth + (1 - lam) * smooth[::-1], atol=1e-6)
  np.testing.assert_allclose(out['video'], lam * video + (1 - lam) * video[::-1], atol=1e-5)
  np.testing.assert_array_equal(out['label'], labels)
  # Without mixing: the smoothed one-hot targets, the video as it was.
  plain = tasks.Classification(num_classes=K, label_smoothing=smoothing)
  out = jax.jit(plain.prepare)(batch, jax.random.key(3))
  np.testing.assert_allclose(out['targets'], smooth, atol=1e-7)
  np.testing.assert_array_equal(out['video'], video)
