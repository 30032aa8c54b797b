"""Tasks turn model outputs and a batch into a loss and on-device metrics."""
import jax
import jax.numpy as jnp
import optax


def _weights(batch, n):
  """Per-example weights (B,): the batch's padding mask, or ones."""
  return batch['mask'].astype(jnp.float32) if 'mask' in batch else jnp.ones((n,), jnp.float32)


def _hit_at_k(logits, labels, k):
  """(B,) 1.0 where the label is among the k largest logits (ties go to the lower class index,
  as argmax does, so equal logits never count as a hit for every class)."""
  top_k = jax.lax.top_k(logits, k)[1]
  return jnp.any(top_k == labels[:, None], axis=-1).astype(jnp.float32)


class Classification:
  """Softmax cross-entropy with label smoothing; top-1 / top-5 accuracy.

  Batch: {'video': (B, T, H, W, C), 'label': int (B,), optional 'mask': (B,)}.
  """

  def __init__(self, num_classes: int, label_smoothing: float = 0.0):
    self.num_classes = num_classes
    self.label_smoothing = label_smoothing

  def loss(self, logits, batch):
    """Returns (mean loss, metric sums): `*_sum` weighted by the mask, `count` its sum."""
    logits = logits.astype(jnp.float32)
    labels = batch['label']
    targets = optax.smooth_labels(jax.nn.one_hot(labels, self.num_classes),
                                  self.label_smoothing)
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


TASKS = {'classification': Classification}


def build_task(config):
  """The task named by `config.task` (default 'classification')."""
  name = config.get('task', 'classification')
  if name not in TASKS:
    raise ValueError(f"Unknown task '{name}' (config.task); available: {', '.join(TASKS)}.")
  return TASKS[name](config.model.num_classes, config.train.label_smoothing)


def summarize(metric_sums, prefix: str) -> dict:
  """{'loss_sum', 'top1_sum', ..., 'count'} (host floats) -> {'prefix/loss': mean, ...}."""
  count = max(float(metric_sums['count']), 1.0)
  return {f'{prefix}/{k[:-4]}': float(v) / count
          for k, v in metric_sums.items() if k.endswith('_sum')}
