"""Optimizers chosen by name from `config.optimizer`, with warmup + cosine decay.

  adamw  AdamW (b1, b2, eps) with decoupled weight decay.
  sgd    SGD with momentum (`momentum`, default 0.9; `nesterov`, default False) and L2 weight
         decay added to the gradient before the momentum (ViViT, TimeSformer).
Both decay kernels and embeddings only (see _decay_mask) and clip the global gradient norm first.
"""
import jax
import optax


def make_schedule(opt_config, num_steps: int) -> optax.Schedule:
  """Linear warmup from 0 to `learning_rate`, then cosine decay to `end_learning_rate`."""
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=opt_config.learning_rate,
      warmup_steps=opt_config.warmup_steps,
      decay_steps=max(num_steps, opt_config.warmup_steps + 1),
      end_value=opt_config.end_learning_rate)


def _decay_mask(params):
  """Weight decay on kernels and embeddings (ndim > 1), not on biases and norm scales."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def _adamw(opt_config, schedule) -> optax.GradientTransformation:
  return optax.adamw(schedule, b1=opt_config.b1, b2=opt_config.b2, eps=opt_config.eps,
                     weight_decay=opt_config.weight_decay, mask=_decay_mask)


def _sgd(opt_config, schedule) -> optax.GradientTransformation:
  return optax.chain(
      optax.add_decayed_weights(opt_config.weight_decay, mask=_decay_mask),
      optax.sgd(schedule, momentum=opt_config.get('momentum', 0.9),
                nesterov=opt_config.get('nesterov', False)))


OPTIMIZERS = {'adamw': _adamw, 'sgd': _sgd}


def make_optimizer(opt_config, num_steps: int):
  """Returns (optax transformation, learning-rate schedule) for `config.optimizer`."""
  if opt_config.name not in OPTIMIZERS:
    raise ValueError(f"Unknown optimizer '{opt_config.name}' (config.optimizer.name); "
                     f'available: {", ".join(OPTIMIZERS)}.')
  schedule = make_schedule(opt_config, num_steps)
  tx = optax.chain(optax.clip_by_global_norm(opt_config.grad_clip_norm),
                   OPTIMIZERS[opt_config.name](opt_config, schedule))
  return tx, schedule
