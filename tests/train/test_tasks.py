"""Classification loss and accuracy against a numpy reference."""
import jax.numpy as jnp
import numpy as np

from vivit_jax.train import tasks


def test_loss_and_accuracy_match_numpy_with_mask():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(6, 7)).astype(np.float32)
  labels = np.array([0, 1, 2, 3, 4, 5])
  mask = np.array([1, 1, 1, 1, 0, 0], np.float32)
  task = tasks.Classification(num_classes=7, label_smoothing=0.1)
  loss, sums = task.loss(jnp.asarray(logits), {'label': jnp.asarray(labels), 'mask': mask})
  targets = np.full((6, 7), 0.1 / 7) + 0.9 * np.eye(7)[labels]
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  per_example = -(targets * log_probs).sum(-1)
  np.testing.assert_allclose(loss, per_example[:4].mean(), rtol=1e-6)
  ranks = (logits > logits[np.arange(6), labels][:, None]).sum(-1)  # No ties here.
  assert float(sums['top1_sum']) == float(((ranks == 0) * mask).sum())
  assert float(sums['top5_sum']) == float(((ranks < 5) * mask).sum())
  assert float(sums['count']) == 4.0


def test_equal_logits_are_not_a_hit_for_every_class():
  task = tasks.Classification(num_classes=10)
  _, sums = task.loss(jnp.zeros((10, 10)), {'label': jnp.arange(10)})
  assert float(sums['top1_sum']) == 1.0 and float(sums['top5_sum']) == 5.0
