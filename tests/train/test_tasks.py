"""Classification loss and accuracy, multi-view averaging and the masked-video-modeling loss
against numpy references."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


def _softmax(logits):
  e = np.exp(logits - logits.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _eval(task, batches):
  """The task's evaluator result over eval batches of logits (numpy) and batch fields."""
  evaluator = task.evaluator()
  for logits, batch in batches:
    out = task.eval_outputs(jnp.asarray(logits), {k: jnp.asarray(v) for k, v in batch.items()})
    evaluator.add(jax.device_get(out))
  return evaluator.result()


def test_views_average_probabilities_not_logits():
  # Two views of one video: averaged logits [-3, .5, -2] pick class 1; averaged probabilities
  # [.49, .37, .13] pick class 0, the label.
  logits = np.array([[4.0, 0.0, -4.0], [-10.0, 1.0, 0.0]], np.float32)
  assert np.argmax(logits.mean(0)) == 1
  batch = {'label': np.array([0, 0]), 'mask': np.ones(2, np.float32), 'video_id': np.array([7, 7])}
  result = _eval(tasks.Classification(num_classes=3), [(logits, batch)])
  probs = _softmax(logits.astype(np.float64)).mean(0)
  assert np.argmax(probs) == 0
  assert result['eval/top1'] == 1.0 and result['eval/top5'] == 1.0
  assert result['eval/count'] == 1.0 and result['eval/views'] == 2.0
  np.testing.assert_allclose(result['eval/loss'], -np.log(probs[0]), rtol=1e-6)


def test_view_averager_matches_numpy_with_padding_and_views_split_over_batches():
  rng = np.random.default_rng(0)
  num_videos, views, k = 7, 4, 10
  logits = rng.normal(size=(num_videos, views, k)).astype(np.float32) * 3
  labels = rng.integers(0, k, size=num_videos)
  # Pipeline order (the views of a video consecutive), cut into batches of 6 with padding rows
  # that carry video id 0 and a confident wrong class: they must change nothing.
  rows = [(logits[v, i], labels[v], v) for v in range(num_videos) for i in range(views)]
  rows += [(np.eye(k)[(labels[0] + 1) % k] * 50, 0, 0)] * (6 - len(rows) % 6)
  batches = []
  for start in range(0, len(rows), 6):
    chunk = rows[start:start + 6]
    batches.append((np.stack([r[0] for r in chunk]).astype(np.float32),
                    {'label': np.array([r[1] for r in chunk], np.int32),
                     'video_id': np.array([r[2] for r in chunk], np.int32),
                     'mask': np.array([start + i < num_videos * views for i in range(6)],
                                      np.float32)}))
  result = _eval(tasks.Classification(num_classes=k), batches)
  probs = _softmax(logits.astype(np.float64)).mean(1)
  rank = (probs > probs[np.arange(num_videos), labels][:, None]).sum(-1)  # No ties here.
  expected = {'eval/loss': -np.log(probs[np.arange(num_videos), labels]).mean(),
              'eval/top1': (rank == 0).mean(), 'eval/top5': (rank < 5).mean(),
              'eval/count': num_videos, 'eval/views': views}
  assert 0 < expected['eval/top1'] < expected['eval/top5'] < 1  # The metrics can tell apart.
  assert set(result) == set(expected)
  for name, value in expected.items():
    np.testing.assert_allclose(result[name], value, rtol=1e-5, err_msg=name)


def test_view_averager_ties_break_like_argmax():
  # Views [.6, .4, 0] and [.4, .6, 0] average to an exact tie between classes 0 and 1.
  evaluator = tasks.ViewAverager()
  probs = np.array([[.6, .4, 0], [.4, .6, 0]] * 2, np.float32)
  evaluator.add({'probs': probs, 'label': np.array([0, 0, 1, 1]), 'mask': np.ones(4),
                 'video_id': np.array([3, 3, 5, 5])})
  result = evaluator.result()
  assert result['eval/top1'] == 0.5  # Class 0 first, as argmax: a hit for video 3 only.
  assert result['eval/top5'] == 1.0 and result['eval/count'] == 2.0


def test_rows_without_video_ids_are_separate_videos_across_batches():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(2, 4, 5)).astype(np.float32) * 3
  labels = rng.integers(0, 5, size=(2, 4))
  task = tasks.Classification(num_classes=5)
  result = _eval(task, [(logits[i], {'label': labels[i]}) for i in range(2)])
  probs = _softmax(logits.reshape(8, 5).astype(np.float64))
  assert result['eval/count'] == 8.0 and result['eval/views'] == 1.0
  np.testing.assert_allclose(result['eval/loss'],
                             -np.log(probs[np.arange(8), labels.reshape(8)]).mean(), rtol=1e-5)
  np.testing.assert_allclose(result['eval/top1'],
                             (probs.argmax(-1) == labels.reshape(8)).mean())


def test_masked_video_modeling_loss_is_masked_mean_of_per_example_mse():
  """The task weights the model's per-example MSE (`example_loss`) by the padding mask."""
  rng = np.random.default_rng(0)
  per_example = rng.uniform(0.5, 2.0, size=(5,)).astype(np.float32)
  mask = np.array([1, 0, 1, 1, 0], np.float32)
  task = tasks.MaskedVideoModeling()
  outputs = {'example_loss': jnp.asarray(per_example)}
  loss, sums = task.loss(outputs, {'mask': jnp.asarray(mask)})
  np.testing.assert_allclose(loss, per_example[mask > 0].mean(), rtol=1e-6)
  np.testing.assert_allclose(sums['loss_sum'], per_example[mask > 0].sum(), rtol=1e-6)
  assert float(sums['count']) == 3.0
  np.testing.assert_allclose(task.loss(outputs, {})[0], per_example.mean(), rtol=1e-6)
  evaluator = task.evaluator()
  for half in (slice(0, 2), slice(2, 5)):
    evaluator.add(jax.device_get(task.eval_outputs(
        {'example_loss': per_example[half]}, {'mask': mask[half]})))
  result = evaluator.result()
  np.testing.assert_allclose(result['eval/loss'], per_example[mask > 0].mean(), rtol=1e-6)
  assert result['eval/count'] == 3.0


def test_masked_video_modeling_loss_is_nan_for_a_bad_cube_mask_under_jit():
  from tests.models.test_videomae import _init, _pretrain, _tube, _video
  model = _pretrain()
  video = _video()
  variables = _init(model, video)
  task = tasks.MaskedVideoModeling()

  @jax.jit
  def loss(video, cube_mask):
    batch = {'video': video, 'cube_mask': cube_mask}
    outputs = model.apply(variables, video, train=False, rngs={'masking': jax.random.key(0)},
                          **tasks.model_kwargs(task, batch))
    return task.loss(outputs, batch)[0], outputs

  good = np.asarray(_tube(0))
  bad = good.copy()
  bad[0, np.argmin(bad[0])] = True  # One cube too many: the model cannot raise under jit.
  task_loss, outputs = loss(video, good)
  pred, target = np.asarray(outputs['pred'], np.float64), np.asarray(outputs['target'])
  np.testing.assert_allclose(outputs['example_loss'], ((pred - target) ** 2).mean(axis=(1, 2)),
                             rtol=1e-5)
  np.testing.assert_allclose(task_loss, outputs['loss'], rtol=1e-6)  # Same cubes per row.
  assert np.isfinite(task_loss)
  assert np.isnan(loss(video, bad)[0])


def test_tasks_check_their_dataset():
  """Classification needs the dataset's classes; masked video modelling takes any videos."""
  info = {'num_classes': 10}
  tasks.Classification(num_classes=10).check_dataset(info, 'synthetic_motion')
  tasks.MaskedVideoModeling().check_dataset(info, 'synthetic_motion')
  with pytest.raises(ValueError, match=r"num_classes=7 .*'synthetic_motion' has 10 .*"
                                       r"--config\.model\.num_classes=10"):
    tasks.Classification(num_classes=7).check_dataset(info, 'synthetic_motion')
