"""Tasks turn model outputs and a batch into a loss, on-device metrics and evaluation results.

A task is chosen by `config.task` and used by the one train step and the evaluation loop:
  prepare(batch, rng) -> batch        batch-level training augmentation (in the jitted step)
  model_inputs                        batch key -> keyword of `model.apply` it feeds, if present
  loss(outputs, batch) -> (loss, metric sums {'<name>_sum', 'count'})
  eval_outputs(outputs, batch) -> dict (on device, replicated to every process)
  evaluator() -> host accumulator: add(eval outputs as numpy), result() -> {'eval/...': float}
  check_dataset(info, name)           ValueError naming the fix if dataset `name` (its
                                      data.dataset_info) cannot serve the task
  evals                               names of train.evaluators run at each evaluation
"""
import collections

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vivit_jax.train import mixup


def _weights(batch, n):
  """Per-example weights (B,): the batch's padding mask, or ones."""
  return batch['mask'].astype(jnp.float32) if 'mask' in batch else jnp.ones((n,), jnp.float32)


def _hit_at_k(logits, labels, k):
  """(B,) 1.0 where the label is among the k largest logits (ties go to the lower class index,
  as argmax does, so equal logits never count as a hit for every class)."""
  top_k = jax.lax.top_k(logits, k)[1]
  return jnp.any(top_k == labels[:, None], axis=-1).astype(jnp.float32)


def ranking(probs: np.ndarray) -> np.ndarray:
  """(N, K) class indices from the most probable down: a stable sort, so ties rank the lower
  class first, as in training's top-k."""
  return np.argsort(-probs, axis=1, kind='stable')


def summarize(metric_sums, prefix: str) -> dict:
  """{'loss_sum', 'top1_sum', ..., 'count'} (host floats) -> {'prefix/loss': mean, ...}."""
  count = max(float(metric_sums['count']), 1.0)
  return {f'{prefix}/{k[:-4]}': float(v) / count
          for k, v in metric_sums.items() if k.endswith('_sum')}


class SumEvaluator:
  """Adds metric sums over evaluation batches; result() = their means + 'eval/count'."""

  def __init__(self):
    self.sums = None

  def add(self, sums: dict):
    self.sums = sums if self.sums is None else jax.tree.map(np.add, self.sums, sums)

  def result(self) -> dict:
    return {**summarize(self.sums, 'eval'), 'eval/count': float(self.sums['count'])}


class ViewAverager:
  """Averages softmax probabilities over all views of each video (ids from the pipeline).

  result(): per video, {'eval/loss': -log p(label), 'eval/top1', 'eval/top5'} averaged over
  videos, 'eval/count' videos and 'eval/views' views per video.
  """

  def __init__(self):
    self.prob_sums, self.labels = {}, {}
    self.views = collections.Counter()
    self.num_unnamed = 0

  def add(self, out: dict):
    """Adds a batch of eval outputs (numpy): 'probs' (B, K), 'label', 'mask' (B,) and, where the
    batch had them, 'video_id' (B,); rows without ids are each a video of their own."""
    keep = out['mask'] > 0
    if 'video_id' in out:
      ids = out['video_id'][keep].tolist()
    else:  # Negative keys never meet the pipeline's ids (>= 0), nor other batches' rows.
      ids = list(range(-1 - self.num_unnamed, -1 - self.num_unnamed - int(keep.sum()), -1))
      self.num_unnamed += len(ids)
    for vid, probs, label in zip(ids, out['probs'][keep], out['label'][keep]):
      vid = int(vid)
      self.prob_sums[vid] = self.prob_sums.get(vid, 0.0) + probs.astype(np.float64)
      self.labels[vid] = int(label)
      self.views[vid] += 1

  def per_video(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(video ids (N,), view-averaged probabilities (N, K) float64, labels (N,)), ids sorted."""
    vids = sorted(self.prob_sums)
    probs = np.stack([self.prob_sums[v] / self.views[v] for v in vids])
    return np.array(vids), probs, np.array([self.labels[v] for v in vids])

  def result(self) -> dict:
    vids, probs, labels = self.per_video()
    ranks = ranking(probs)
    hits = ranks == labels[:, None]
    return {'eval/loss': float(np.mean(-np.log(np.maximum(probs[np.arange(len(vids)), labels],
                                                          1e-12)))),
            'eval/top1': float(np.mean(hits[:, :1].any(1))),
            'eval/top5': float(np.mean(hits[:, :5].any(1))),
            'eval/count': float(len(vids)),
            'eval/views': float(np.mean([self.views[int(v)] for v in vids]))}


class Classification:
  """Softmax cross-entropy with label smoothing and optional Mixup/CutMix; top-1 / top-5.

  Batch: {'video': (B, T, H, W, C), 'label': int (B,), optional 'mask': (B,) padding weights};
  evaluation batches also carry 'video_id' (B,): views of one video are averaged.
  """

  evals = ()
  model_inputs = {}

  def __init__(self, num_classes: int, label_smoothing: float = 0.0, mixup_alpha: float = 0.0,
               cutmix_alpha: float = 0.0, mixup_switch_prob: float = 0.5):
    self.num_classes = num_classes
    self.label_smoothing = label_smoothing
    self.mix = dict(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha,
                    switch_prob=mixup_switch_prob)

  def check_dataset(self, info: dict, name: str):
    if info['num_classes'] != self.num_classes:
      raise ValueError(f"config.model.num_classes={self.num_classes} but dataset '{name}' has "
                       f"{info['num_classes']} classes; set "
                       f"--config.model.num_classes={info['num_classes']}.")

  def _targets(self, labels):
    return optax.smooth_labels(jax.nn.one_hot(labels, self.num_classes), self.label_smoothing)

  def prepare(self, batch, rng):
    """Adds 'targets' (B, K): smoothed one-hot labels, mixed with the video if configured."""
    video, targets = mixup.mix(rng, batch['video'], self._targets(batch['label']), **self.mix)
    return {**batch, 'video': video, 'targets': targets}

  def loss(self, logits, batch):
    """Returns (mean loss, metric sums): `*_sum` weighted by the mask, `count` its sum."""
    logits = logits.astype(jnp.float32)
    labels = batch['label']
    targets = batch['targets'] if 'targets' in batch else self._targets(labels)
    weights = _weights(batch, logits.shape[0])
    per_example = optax.softmax_cross_entropy(logits, targets)
    count = jnp.sum(weights)
    metrics = {
        'loss_sum': jnp.sum(per_example * weights),
        'top1_sum': jnp.sum(_hit_at_k(logits, labels, 1) * weights),
        'top5_sum': jnp.sum(_hit_at_k(logits, labels, min(5, self.num_classes)) * weights),
        'count': count,
    }
    return metrics['loss_sum'] / jnp.maximum(count, 1.0), metrics

  def eval_outputs(self, logits, batch):
    """Per-view softmax probabilities (B, K) with the label, padding mask and (if the batch has
    one) video id; without ids, the evaluator takes every row for a video of its own."""
    out = {'probs': jax.nn.softmax(logits.astype(jnp.float32)), 'label': batch['label'],
           'mask': _weights(batch, logits.shape[0])}
    if 'video_id' in batch:
      out['video_id'] = batch['video_id']
    return out

  def evaluator(self):
    return ViewAverager()


class MaskedVideoModeling:
  """Masked-cube pixel regression (VideoMAE): the model returns {'example_loss', 'pred', ...}.

  The loss is the model's mean squared error per example (`example_loss` (B,)) weighted by the
  padding mask. A batch may carry an explicit 'cube_mask' (B, N) bool; when the model finds it
  invalid under jit its losses are NaN, so the train step skips the update instead of training on
  a wrong mask.
  """
  evals = ('reconstructions',)  # WORKDIR/reconstructions/step_N.png at each evaluation.
  model_inputs = {'cube_mask': 'mask'}  # An explicit mask replaces the model's random one.

  def prepare(self, batch, rng):
    del rng
    return batch

  def check_dataset(self, info: dict, name: str):
    del info, name  # Any video dataset: labels are not used.

  def loss(self, outputs, batch):
    per_example = outputs['example_loss']
    weights = _weights(batch, per_example.shape[0])
    metrics = {'loss_sum': jnp.sum(per_example * weights), 'count': jnp.sum(weights)}
    return metrics['loss_sum'] / jnp.maximum(metrics['count'], 1.0), metrics

  def eval_outputs(self, outputs, batch):
    return self.loss(outputs, batch)[1]

  def evaluator(self):
    return SumEvaluator()


def model_kwargs(task, batch: dict) -> dict:
  """The keyword arguments of `model.apply` that `task` feeds from `batch` (its model_inputs)."""
  return {keyword: batch[key] for key, keyword in task.model_inputs.items() if key in batch}


def build_task(config):
  """The task named by `config.task`."""
  name = config.task
  if name == 'classification':
    train = config.train
    return Classification(config.model.num_classes, train.label_smoothing, train.mixup_alpha,
                          train.cutmix_alpha, train.mixup_switch_prob)
  if name == 'masked_video_modeling':
    return MaskedVideoModeling()
  raise ValueError(f"Unknown task '{name}' (config.task); available: classification, "
                   f"masked_video_modeling.")
