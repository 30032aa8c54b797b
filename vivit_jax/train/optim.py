"""Optimizers chosen by name from `config.optimizer`, with warmup + cosine decay.

  adamw  AdamW (b1, b2, eps) with decoupled weight decay.
  sgd    SGD with momentum (`momentum`, default 0.9; `nesterov`, default False) and L2 weight
         decay added to the gradient before the momentum (ViViT, TimeSformer).
Both decay kernels and embeddings only (see _decay_mask) and clip the global gradient norm first.
`layer_decay` < 1 (layer-wise learning-rate decay, BEiT / VideoMAE fine-tuning) multiplies the
update of each parameter by layer_decay^(L + 1 - layer) (see `layer_ids`), so with AdamW its
learning rate and decoupled weight decay are both scaled, as in timm's param groups. Scanned
encoders (config.model.scan_layers: `TRUNK/blocks` leaves with a leading layer axis) get the same
per-layer scale along that axis, and the same weight-decay mask per layer.
"""
import logging
import re

import jax
import numpy as np
import optax

from vivit_jax.models import scan

log = logging.getLogger('vivit_jax')

# Top-level parameter names of the input embedding (layer 0 for layer_decay).
EMBEDDING_NAMES = ('embedding', 'cls', 'pos_embedding', 'time_embedding', 'spatial_cls',
                   'spatial_pos_embedding')
# Top-level modules whose `block_i` are the trunk's layers 1..L for layer_decay.
TRUNK_NAMES = ('encoder', 'spatial_encoder')


def make_schedule(opt_config, num_steps: int) -> optax.Schedule:
  """Linear warmup from 0 to `learning_rate`, then cosine decay to `end_learning_rate`; warns
  when the warm-up does not end before the run does."""
  if opt_config.warmup_steps >= num_steps:
    log.warning('config.optimizer.warmup_steps=%d >= config.train.num_steps=%d: the learning '
                'rate never reaches its peak %g and the run may stay near chance. Set '
                '--config.optimizer.warmup_steps=%d (a tenth of the run) or train longer.',
                opt_config.warmup_steps, num_steps, opt_config.learning_rate, num_steps // 10)
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=opt_config.learning_rate,
      warmup_steps=opt_config.warmup_steps,
      decay_steps=max(num_steps, opt_config.warmup_steps + 1),
      end_value=opt_config.end_learning_rate)


def _decay_mask(params):
  """Weight decay on kernels and embeddings (ndim > 1, not counting a scanned layer axis), not on
  biases and norm scales."""
  return jax.tree_util.tree_map_with_path(
      lambda path, p: p.ndim - scan.is_stacked(_path_names(path)) > 1, params)


def _adamw(opt_config, schedule) -> optax.GradientTransformation:
  return optax.adamw(schedule, b1=opt_config.b1, b2=opt_config.b2, eps=opt_config.eps,
                     weight_decay=opt_config.weight_decay, mask=_decay_mask)


def _sgd(opt_config, schedule) -> optax.GradientTransformation:
  return optax.chain(
      optax.add_decayed_weights(opt_config.weight_decay, mask=_decay_mask),
      optax.sgd(schedule, momentum=opt_config.get('momentum', 0.9),
                nesterov=opt_config.get('nesterov', False)))


OPTIMIZERS = {'adamw': _adamw, 'sgd': _sgd}


def _path_names(path) -> list[str]:
  return [str(getattr(k, 'key', getattr(k, 'name', k))) for k in path]


def layer_ids(params) -> tuple[object, int]:
  """(tree of layer ids like `params`, L): 0 for the embedding (EMBEDDING_NAMES), i + 1 for
  TRUNK_NAMES/block_i, L + 1 for the rest (final norms, head, decoder, a fresh temporal encoder),
  where L is the number of trunk blocks. A scanned trunk's `TRUNK/blocks` leaf (L, ...) gets the
  ids 1..L as an int array (L, 1, ...) that broadcasts against it."""
  def is_trunk(names):
    return len(names) > 1 and names[0] in TRUNK_NAMES

  def block(names):
    match = re.fullmatch(r'block_(\d+)', names[1]) if is_trunk(names) else None
    return int(match.group(1)) if match else None

  def stacked(names):
    return is_trunk(names) and names[1] == scan.STACKED

  flat = [(_path_names(p), leaf) for p, leaf in jax.tree_util.tree_flatten_with_path(params)[0]]
  num_layers = max([block(n) + 1 for n, _ in flat if block(n) is not None]
                   + [leaf.shape[0] for n, leaf in flat if stacked(n)], default=0)

  def layer(path, leaf):
    n = _path_names(path)
    if n[0] in EMBEDDING_NAMES:
      return 0
    if stacked(n):
      return np.arange(1, leaf.shape[0] + 1).reshape((-1,) + (1,) * (leaf.ndim - 1))
    i = block(n)
    return num_layers + 1 if i is None else i + 1

  return jax.tree_util.tree_map_with_path(layer, params), num_layers


def scale_by_layer_decay(decay: float) -> optax.GradientTransformation:
  """Multiplies each update by decay^(L + 1 - layer) (`layer_ids`); a ValueError if the params
  have no trunk blocks to decay over."""
  def scale(updates, params=None):
    del params
    ids, num_layers = layer_ids(updates)
    if not num_layers:
      raise ValueError(f'config.optimizer.layer_decay={decay} needs a model with '
                       f'{"/".join(TRUNK_NAMES)}/block_i (or scanned blocks) layers; set it to '
                       f'1.0 for this model.')
    return jax.tree.map(lambda u, i: u * decay ** (num_layers + 1 - i), updates, ids)

  return optax.stateless(scale)


def make_optimizer(opt_config, num_steps: int):
  """Returns (optax transformation, learning-rate schedule) for `config.optimizer`."""
  if opt_config.name not in OPTIMIZERS:
    raise ValueError(f"Unknown optimizer '{opt_config.name}' (config.optimizer.name); "
                     f'available: {", ".join(OPTIMIZERS)}.')
  schedule = make_schedule(opt_config, num_steps)
  layer_decay = opt_config.get('layer_decay', 1.0)  # In (0, 1]: train/validate.py.
  tx = optax.chain(optax.clip_by_global_norm(opt_config.grad_clip_norm),
                   OPTIMIZERS[opt_config.name](opt_config, schedule),
                   *([scale_by_layer_decay(layer_decay)] if layer_decay < 1 else []))
  return tx, schedule
