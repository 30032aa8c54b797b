"""train/checkpoint.py on tiny states: only finite states are saved, `keep` old checkpoints are
kept, and a checkpoint restores onto another mesh. Faults end to end (damaged checkpoints, another
model or optimizer, a full disk): tests/test_faults.py."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from vivit_jax.train import checkpoint, sharding, state as state_lib


def _tiny_state(step_number: int, value: float = 1.0):
  return state_lib.TrainState(step=jnp.int32(step_number), params={'w': jnp.full(8, value)},
                              batch_stats={}, opt_state={})


def _saved_steps(directory) -> list[int]:
  return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


def test_a_non_finite_state_is_never_saved(tmp_path):
  ckpt = checkpoint.Checkpointer(str(tmp_path), every_steps=1, keep=2, model_config={})
  with pytest.raises(checkpoint.NonFiniteStateError, match='Refusing to checkpoint step 1'):
    ckpt.save(_tiny_state(1, jnp.nan), 1)
  ckpt.close()
  assert not _saved_steps(tmp_path)


def test_keep_one_keeps_only_the_final_checkpoint(tmp_path):
  ckpt = checkpoint.Checkpointer(str(tmp_path), every_steps=1, keep=1, model_config={})
  for s in (1, 2, 3):
    ckpt.save(_tiny_state(s, float(s)), s)
  ckpt.close()
  assert _saved_steps(tmp_path) == [3]


def test_restores_onto_another_mesh(tmp_path):
  """Saved replicated on a data-parallel mesh, restored split over 'fsdp' on another."""
  devices = jax.devices()[:8]
  ckpt = checkpoint.Checkpointer(str(tmp_path), every_steps=1, keep=1, model_config={})
  saved = _tiny_state(2)
  saved = saved.replace(params={'w': jnp.arange(8, dtype=jnp.float32)})
  ckpt.save(saved, 2)
  ckpt.close()
  mesh = sharding.make_mesh(dict(data=2, fsdp=4, model=1), devices)
  split = NamedSharding(mesh, PartitionSpec('fsdp'))
  whole = NamedSharding(mesh, PartitionSpec())
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=whole), saved)
  target = target.replace(params={'w': jax.ShapeDtypeStruct((8,), jnp.float32, sharding=split)})
  reader = checkpoint.Checkpointer(str(tmp_path), every_steps=1, keep=1, model_config={})
  restored = reader.restore_latest(target)
  reader.close()
  assert restored.params['w'].sharding.shard_shape((8,)) == (2,)
  np.testing.assert_array_equal(jax.device_get(restored.params['w']), np.arange(8))
  assert int(restored.step) == 2
