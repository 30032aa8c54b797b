"""The library's train step built for the benchmarks (common.train_step): abstract state and batch
over the mesh of the given devices, the model's extra inputs included."""
import jax
import jax.numpy as jnp

from tests.helpers import tiny_config
from tools.benchmarks.common import train_step


def test_abstract_batch_matches_the_steps_inputs():
  config = tiny_config()
  video_shape = (2, 4, 16, 16, 3)
  built = train_step.build(config, video_shape, jax.devices('cpu')[:1])
  batch = built.abstract_batch(video_shape)
  assert set(batch) == {'video', 'label', *built.exp.extra_input_shapes}
  assert (batch['video'].shape, batch['video'].dtype) == (video_shape, jnp.float32)
  assert (batch['label'].shape, batch['label'].dtype) == ((2,), jnp.int32)
  assert all(b.sharding == built.exp.batch_sharding for b in batch.values())
  assert built.exp.mesh.devices.size == 1 and built.exp.abstract_state.step.shape == ()
  lowered = built.run.lower(built.exp.abstract_state, batch)
  assert 'dot_general' in lowered.as_text()
