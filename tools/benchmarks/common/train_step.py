"""The library's one train step of a config over a mesh of given devices, built but not run: what
the speed benchmark times (speed.ours) and what compile-only targets compile (compile_only.aot)."""
import dataclasses

import jax
import jax.numpy as jnp

from vivit_jax.train import loop, sharding


@dataclasses.dataclass
class TrainStep:
  """A jitted train step (`run`: (state, batch) -> (state, metrics), the state donated) and the
  planned experiment it belongs to (`exp`: model, task, mesh, rules, state layout)."""
  run: object
  exp: loop.Experiment

  def abstract_batch(self, video_shape) -> dict:
    """jax.ShapeDtypeStructs of a batch of videos `video_shape` (B, T, H, W, 3): video, label and
    the model's extra inputs, float32 (labels int32), sharded like the step's batches."""
    def spec(shape, dtype=jnp.float32):
      return jax.ShapeDtypeStruct(shape, dtype, sharding=self.exp.batch_sharding)
    batch = {'video': spec(video_shape), 'label': spec(video_shape[:1], jnp.int32)}
    batch.update({k: spec(s) for k, s in self.exp.extra_input_shapes.items()})
    return batch


def build(config, video_shape, devices) -> TrainStep:
  """The train step of `config` (`loop.plan`) over a mesh of `devices` for videos `video_shape`
  (B, T, H, W, 3)."""
  exp = loop.plan(config, sharding.make_mesh(config.mesh, devices=list(devices)), video_shape)
  return TrainStep(exp.train_step(), exp)
