"""The library's one train step of a config over a mesh of given devices, built but not run: what
the speed benchmark times (speed.ours) and what compile-only targets compile (compile_only.aot)."""
import dataclasses

import jax
import jax.numpy as jnp

from vivit_jax import models
from vivit_jax.train import optim, sharding, state as state_lib, step, tasks


@dataclasses.dataclass
class TrainStep:
  """A jitted train step and what it runs on."""
  run: object  # (state, batch) -> (state, metrics), the state donated.
  abstract_state: object  # jax.ShapeDtypeStructs of the state, with their shardings.
  make_state: object  # () -> the initial state on the mesh.
  batch_sharding: object
  extra_input_shapes: dict  # The model's inputs beyond the video: name -> shape.
  model: object
  task: object
  mesh: object
  rules: tuple

  def abstract_batch(self, video_shape) -> dict:
    """jax.ShapeDtypeStructs of a batch of videos `video_shape` (B, T, H, W, 3): video, label and
    the model's extra inputs, float32 (labels int32), sharded like the step's batches."""
    def spec(shape, dtype=jnp.float32):
      return jax.ShapeDtypeStruct(shape, dtype, sharding=self.batch_sharding)
    batch = {'video': spec(video_shape), 'label': spec(video_shape[:1], jnp.int32)}
    batch.update({k: spec(s) for k, s in self.extra_input_shapes.items()})
    return batch


def build(config, video_shape, devices) -> TrainStep:
  """`make_train_step` of `config` over a mesh of `devices` for videos `video_shape`
  (B, T, H, W, 3)."""
  mesh = sharding.make_mesh(config.mesh, devices=list(devices))
  rules = tuple(tuple(r) for r in config.sharding_rules)
  model = models.build(config.model)
  tx, schedule = optim.make_optimizer(config.optimizer, config.train.num_steps)
  extra = models.extra_input_shapes(model, video_shape)
  abstract, shardings, make_state = state_lib.plan_train_state(
      model, tx, video_shape, mesh=mesh, rules=rules, seed=config.seed,
      extra_input_shapes=extra)
  batch_sharding = sharding.batch_sharding(mesh, rules)
  train_step = step.make_train_step(model, tasks.build_task(config), tx, schedule, mesh=mesh,
                                    rules=rules, state_shardings=shardings,
                                    batch_sharding=batch_sharding, seed=config.seed)
  return TrainStep(train_step, abstract, make_state, batch_sharding, extra, model,
                   tasks.build_task(config), mesh, rules)
