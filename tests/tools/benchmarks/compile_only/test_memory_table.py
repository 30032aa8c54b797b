"""The memory table (compile_only.memory_table): the largest-batch search finds the exact
boundary in few compiles; real CPU compiles of a small step give bytes that grow with the batch,
a confirmed largest batch and the table's row."""
import dataclasses

import pytest

from tests.helpers import tiny_config
from tools.benchmarks.compile_only import aot, memory_table


def _fake_compiles(bytes_at, target):
  """compile_at(b) -> aot.Result from `bytes_at(b)`, refusing like the TPU compiler (an OOM
  result with estimated bytes) when `target` is named 'refuses'; and the batches asked."""
  asked = []

  def compile_at(b):
    asked.append(b)
    n = bytes_at(b)
    if target.name == 'refuses' and n > target.capacity_bytes:
      return aot.Result(target.name, b, 1.0, memory_bytes=n, oom='RESOURCE_EXHAUSTED')
    return aot.Result(target.name, b, 1.0, memory_bytes=n, temp_bytes=n)
  return compile_at, asked


@pytest.mark.parametrize('name', ['fake', 'refuses'])
@pytest.mark.parametrize('capacity', [1000, 5555, 123_456])
def test_largest_batch_search_is_exact_in_few_compiles(name, capacity):
  target = aot.Target(name, 'cpu', 'fake', capacity, '', '')
  # Affine with an alignment wobble, like XLA's buffers.
  bytes_at = lambda b: 300 + 37 * b + 8 * (b % 3)
  truth = max(b for b in range(1, 10_000) if bytes_at(b) <= capacity)
  compile_at, asked = _fake_compiles(bytes_at, target)
  found = memory_table.largest_batch(compile_at, target, {8: compile_at(8)})
  assert (found['largest'], found['refused'], found['exact']) == (truth, truth + 1, True)
  assert len(asked) <= 5, asked  # b8, b16, then the prediction and its neighbours.
  assert abs(found['predicted'] - truth) <= max(1, 0.03 * truth)
  assert abs(found['per_clip_bytes'] - 37) <= 8


def test_largest_batch_when_nothing_fits_or_everything_does():
  small = aot.Target('fake', 'cpu', 'fake', 100, '', '')
  compile_at, _ = _fake_compiles(lambda b: 1000 + b, small)
  found = memory_table.largest_batch(compile_at, small, {8: compile_at(8)})
  assert (found['largest'], found['refused']) == (0, 1)
  huge = aot.Target('fake', 'cpu', 'fake', 10 ** 12, '', '')
  compile_at, _ = _fake_compiles(lambda b: 1000 + b, huge)
  found = memory_table.largest_batch(compile_at, huge, {8: compile_at(8)}, limit=64)
  assert (found['largest'], found['refused']) == (64, None)


def test_arms_cover_kernels_and_remat_where_the_model_has_them():
  vit, cnn = tiny_config(), tiny_config()
  del cnn.model['attention_impl']
  got = memory_table.arms({'vivit1': vit, 'cnn': cnn}, ['h200'], ('none', 'full'))
  assert {(a.preset, a.attention_impl, a.remat) for a in got} == {
      ('vivit1', 'auto', 'none'), ('vivit1', 'auto', 'full'), ('vivit1', 'xla', 'none'),
      ('vivit1', 'xla', 'full'), ('cnn', None, 'none'), ('cnn', None, 'full')}
  config = memory_table.arm_config(vit, got[0])
  assert (config.model.attention_impl, config.model.remat) == (got[0].attention_impl,
                                                                got[0].remat)


def _mlp_step(config, b, target_name):
  """A stand-in for aot.compile_train_step that compiles fast: one SGD step of a 2-layer MLP on
  (b, 64, 32) inputs, compiled for the CPU (activations per clip, fixed weights)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  del config

  def step(w, x):
    loss = lambda w: jnp.mean(jnp.tanh(jnp.tanh(x @ w[0]) @ w[1]) ** 2)
    return jax.tree.map(lambda p, g: p - 0.1 * g, w, jax.grad(loss)(w))
  w = [jax.ShapeDtypeStruct((32, 256), jnp.float32), jax.ShapeDtypeStruct((256, 32), jnp.float32)]
  x = jax.ShapeDtypeStruct((b, 64, 32), jnp.float32)
  compiled = jax.jit(step, donate_argnums=0).trace(w, x).lower().compile()
  m = compiled.memory_analysis()
  return aot.Result(target_name, b, 0.0, kernel='xla', temp_bytes=m.temp_size_in_bytes,
                    memory_bytes=m.argument_size_in_bytes + m.output_size_in_bytes
                    + m.temp_size_in_bytes - m.alias_size_in_bytes,
                    argument_bytes=m.argument_size_in_bytes, output_bytes=m.output_size_in_bytes,
                    alias_bytes=m.alias_size_in_bytes)


def test_table_confirms_the_largest_batch_with_real_compiles(monkeypatch):
  """memory_table.run over real CPU compiles (a small step whose bytes grow with the batch)
  against a made-up capacity between batches 37 and 38: the row, the largest batch (confirmed
  by compiling it and the next), and the table's row."""
  at = {b: _mlp_step(None, b, 'cpu') for b in (8, 16)}
  per_clip = (at[16].memory_bytes - at[8].memory_bytes) / 8
  assert per_clip > 64 * 32 * 4  # At least the input of one clip.
  capacity = int(at[8].memory_bytes + 29.5 * per_clip)
  monkeypatch.setitem(aot.TARGETS, 'cpu_small', dataclasses.replace(
      aot.TARGETS['cpu'], name='cpu_small', capacity_bytes=capacity, capacity_note='test'))
  record = memory_table.run({'tiny': tiny_config()}, ['cpu_small'], remats=('none',),
                            largest_remat=None, compile_fn=_mlp_step, log=lambda _: None)
  (row,) = record['rows']
  assert row['memory_bytes'] == at[8].memory_bytes and row['fits'] and row['batch'] == 8
  largest = row['largest_batch']
  assert largest['exact'] and largest['refused'] == largest['largest'] + 1
  assert len(largest['compiles']) <= 4
  compiled = {c['batch']: c for c in largest['compiles']}
  assert compiled[largest['largest']]['bytes'] <= capacity < compiled[largest['refused']]['bytes']
  assert abs(largest['largest'] - 37) <= 2  # Affine, give or take XLA's buffer alignment.

  text = memory_table.table(record)
  assert f"| tiny | auto | xla | none | {row['memory_bytes'] / 2 ** 30:.2f} |" in text
  assert f"| yes | {largest['largest']} |" in text
