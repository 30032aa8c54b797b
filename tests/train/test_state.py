"""train/state.py: the state's layout is planned without computing it, and the state is made
directly into that layout, with the RNG streams its model declares (tiny models, SGD: no
optimizer state to compile)."""
import jax
import ml_collections
import optax

from tests.helpers import tiny_config
from vivit_jax import models
from vivit_jax.train import sharding, state as state_lib


def _plan(model_config, mesh_sizes, video_shape):
  mesh = sharding.make_mesh(mesh_sizes, jax.devices()[:8])
  rules = tuple(tuple(r) for r in tiny_config().sharding_rules)
  return state_lib.plan_train_state(models.build(model_config), optax.sgd(0.1), video_shape,
                                    mesh=mesh, rules=rules, seed=0)


def test_the_made_state_has_the_planned_shapes_and_shardings():
  config = tiny_config()
  config.model.update(hidden_size=64, num_heads=8, mlp_dim=128, num_layers=1)
  abstract, shardings, make = _plan(config.model, dict(data=1, fsdp=8, model=1),
                                    (8, 4, 16, 16, 3))
  state = make()
  assert int(state.step) == 0 and not state.batch_stats
  assert jax.tree.structure(state) == jax.tree.structure(abstract)
  for planned, made, layout in zip(*(jax.tree.leaves(t) for t in (abstract, state, shardings))):
    assert (made.shape, made.dtype) == (planned.shape, planned.dtype)
    assert made.sharding == planned.sharding == layout
  kernel = state.params['encoder']['block_0']['mlp']['fc1']['kernel']
  assert kernel.sharding.shard_shape(kernel.shape) == (8, 128)  # 'embed' split over fsdp=8.


def test_a_model_drawing_masks_at_init_gets_its_stream():
  """videomae_pretrain declares 'masking' (models.rng_streams): its init, traced to plan the
  state, draws a mask."""
  model_config = ml_collections.ConfigDict(dict(
      name='videomae_pretrain', patch_size=4, tubelet_size=2, hidden_size=16, num_layers=1,
      num_heads=2, mlp_dim=32, decoder_hidden_size=16, decoder_num_layers=1,
      decoder_num_heads=2, decoder_mlp_dim=32))
  assert 'masking' in models.rng_streams(models.build(model_config))
  abstract, _, _ = _plan(model_config, dict(data=8, fsdp=1, model=1), (8, 4, 16, 16, 3))
  assert 'decoder' in abstract.params
