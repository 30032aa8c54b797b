"""The device mesh and the mapping from logical axis names to mesh axes."""
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ('data', 'fsdp', 'model')


def make_mesh(mesh_config, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """Builds the ('data', 'fsdp', 'model') mesh sized by `config.mesh` (-1 fills the rest)."""
  devices = list(devices if devices is not None else jax.devices())
  sizes = [int(mesh_config[axis]) for axis in MESH_AXES]
  if sizes.count(-1) > 1:
    raise ValueError(f'config.mesh: at most one axis may be -1, got {dict(zip(MESH_AXES, sizes))}.')
  if -1 in sizes:
    known = math.prod(s for s in sizes if s != -1)
    if len(devices) % known:
      raise ValueError(f'config.mesh {dict(zip(MESH_AXES, sizes))}: {len(devices)} devices are not '
                       f'divisible by {known}; pick axis sizes whose product divides {len(devices)}.')
    sizes[sizes.index(-1)] = len(devices) // known
  if math.prod(sizes) != len(devices):
    raise ValueError(f'config.mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices '
                     f'but {len(devices)} are available; set the sizes so their product is '
                     f'{len(devices)} (or use -1 for one axis).')
  return jax.make_mesh(sizes, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES),
                       devices=devices)


def mesh_axes(logical_names, rules) -> PartitionSpec:
  """Logical names, e.g. ('batch', 'embed'), -> mesh PartitionSpec under `rules`."""
  return nn.logical_to_mesh_axes(logical_names, rules)


def _axis_size(mesh: Mesh, axes) -> int:
  """Number of shards for one PartitionSpec entry (None, 'data' or ('data', 'fsdp'))."""
  names = (axes,) if isinstance(axes, str) else tuple(axes or ())
  return math.prod(mesh.shape[name] for name in names)


def _fit_to_shape(spec: PartitionSpec, shape, mesh: Mesh) -> PartitionSpec:
  """Replicates every dimension that its mesh axes do not divide evenly."""
  padded = tuple(spec) + (None,) * (len(shape) - len(spec))
  return PartitionSpec(*(axes if dim % _axis_size(mesh, axes) == 0 else None
                         for dim, axes in zip(shape, padded)))


def unbox_abstract(tree):
  """`nn.unbox` for a tree outside jit (e.g. of `jax.eval_shape` results): no sharding
  constraint is applied."""
  return jax.tree.map(
      lambda x: x.unbox(apply_constraint=False) if isinstance(x, nn.Partitioned) else x,
      tree, is_leaf=lambda x: isinstance(x, nn.Partitioned))


def tree_shardings(abstract_boxed_tree, mesh: Mesh, rules):
  """Shardings for a tree whose leaves may be `nn.Partitioned` boxes with logical names.

  Unboxed leaves are replicated; boxed ones follow `rules`, replicating any dimension
  the mesh cannot split evenly. Returns a tree shaped like `nn.unbox(abstract_boxed_tree)`.
  """
  logical_specs = nn.get_partition_spec(abstract_boxed_tree)
  shapes = unbox_abstract(abstract_boxed_tree)

  def to_sharding(logical, leaf):
    spec = mesh_axes(tuple(logical), rules) if logical else PartitionSpec()
    return NamedSharding(mesh, _fit_to_shape(spec, np.shape(leaf), mesh))

  return jax.tree.map(to_sharding, logical_specs, shapes,
                      is_leaf=lambda x: isinstance(x, PartitionSpec))


def batch_sharding(mesh: Mesh, rules) -> NamedSharding:
  """Sharding of a batch's leading axis over the mesh axes mapped from 'batch'."""
  return NamedSharding(mesh, mesh_axes(('batch',), rules))


def batch_shards(mesh: Mesh, rules) -> int:
  """How many ways the batch axis is split."""
  return _axis_size(mesh, mesh_axes(('batch',), rules)[0])


def put_batch(batch: dict, sharding: NamedSharding) -> dict:
  """Places this process's numpy batch (leading axis = local examples) on the mesh."""
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}
