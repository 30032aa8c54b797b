"""What each parallelism strategy (config.mesh) does to the layout of the train state on 8 devices:
FSDP shards parameters and optimizer state over 'fsdp', tensor parallelism shards attention heads
and MLP hidden units over 'model', data parallelism replicates everything. (That every strategy
trains to the same numbers as 1 device: tests/train/test_step.py.)"""
import jax
import numpy as np
import pytest

from configs import common
from tests.configs.test_presets import CNN, with_arg
from tests.helpers import tiny_config
from vivit_jax import models
from vivit_jax.train import optim, sharding, state as state_lib


def _abstract_state(mesh_sizes: dict, config=None):
  """The abstract TrainState of `config` (default: the tiny ViViT, every axis divisible by 8)
  laid out on a mesh of `mesh_sizes` over 8 devices."""
  if config is None:
    config = tiny_config()
    config.model.update(hidden_size=64, num_heads=8, mlp_dim=128)
  config.mesh.update(mesh_sizes)
  mesh = sharding.make_mesh(config.mesh, jax.devices()[:8])
  tx, _ = optim.make_optimizer(config.optimizer, config.train.num_steps)
  ds = config.dataset
  model, shape = models.build(config.model), (8, ds.num_frames, ds.crop_size, ds.crop_size, 3)
  abstract, _, _ = state_lib.plan_train_state(
      model, tx, shape, mesh=mesh, rules=tuple(config.sharding_rules), seed=0,
      extra_input_shapes=models.extra_input_shapes(model, shape))
  return abstract


def _bytes(tree, *, per_device: bool) -> int:
  """Bytes of the arrays in `tree`: whole, or the largest shard one device holds."""
  def size(x):
    shape = x.sharding.shard_shape(x.shape) if per_device else x.shape
    return int(np.prod(shape)) * x.dtype.itemsize
  return sum(size(x) for x in jax.tree.leaves(tree) if hasattr(x, 'sharding'))


def _spec(state, suffix: str):
  """PartitionSpec of the one parameter whose path ends with `suffix`."""
  flat = jax.tree_util.tree_flatten_with_path(state.params)[0]
  specs = [x.sharding.spec for path, x in flat
           if jax.tree_util.keystr(path, simple=True, separator='/').endswith(suffix)]
  assert specs, suffix
  return specs[0]


@pytest.fixture(scope='module')
def states():
  return {name: _abstract_state(sizes) for name, sizes in {
      'data': dict(data=8, fsdp=1, model=1), 'fsdp': dict(data=1, fsdp=8, model=1),
      'tensor': dict(data=2, fsdp=1, model=4)}.items()}


def test_data_parallel_replicates_the_state(states):
  state = states['data']
  assert _bytes(state.params, per_device=True) == _bytes(state.params, per_device=False)
  assert _bytes(state.opt_state, per_device=True) == _bytes(state.opt_state, per_device=False)


def test_fsdp_divides_parameter_and_optimizer_bytes_per_device_by_the_fsdp_factor(states):
  state = states['fsdp']
  for tree in (state.params, state.opt_state):
    ratio = _bytes(tree, per_device=False) / _bytes(tree, per_device=True)
    # Only the few parameters without an 'embed' axis (e.g. the MLP biases) stay whole.
    assert 7.0 < ratio <= 8.0, ratio
  assert _bytes(states['data'].params, per_device=True) / _bytes(state.params,
                                                                 per_device=True) > 7.0


def test_tensor_parallel_splits_heads_and_mlp_over_model(states):
  state = states['tensor']
  qkv, mlp_in, mlp_out = (_spec(state, s) for s in ('query/kernel', 'mlp/fc1/kernel',
                                                    'mlp/fc2/kernel'))
  assert 'model' in tuple(qkv) and 'model' in tuple(mlp_in) and 'model' in tuple(mlp_out)
  ratio = _bytes(state.params, per_device=False) / _bytes(state.params, per_device=True)
  assert 2.5 < ratio <= 4.0, ratio  # Embeddings, norms and the head stay whole.


@pytest.mark.parametrize('spec', CNN)
def test_fsdp_splits_the_largest_cnn_kernels(spec):
  """The default rules map the CNNs' logical axes ('conv_in', 'conv_out', 'lstm'): under FSDP
  the largest kernel of each tiny CNN preset is split over the 8 devices, not replicated."""
  state = _abstract_state(dict(data=1, fsdp=8, model=1), common.load(with_arg(spec, 'tiny')))
  largest = max(jax.tree.leaves(state.params), key=lambda x: x.size)
  assert largest.ndim >= 2 and largest.sharding.shard_shape(largest.shape)[-2] * 8 == (
      largest.shape[-2]), (spec, largest.shape, largest.sharding.spec)
