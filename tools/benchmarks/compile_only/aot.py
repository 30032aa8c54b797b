"""Compile-only devices: compile the train step for an accelerator this machine does not have.

  result = aot.compile_train_step(config, 8, 'h200')  # or 'v5e', 'cpu'
  result.memory_bytes          # arguments + outputs + temporaries - aliased

'h200' is a compile-only NVIDIA H200 built from XLA's GpuTargetConfig of that card (H200_TARGET)
by the `jax-cuda12-plugin` + `jax-cuda12-pjrt` wheels of the installed jax; 'v5e' is one chip of
a compile-only TPU v5e 2x2 slice (`jax.experimental.topologies`, needs `libtpu`); both wheels
come with `pip install -e '.[aot]'`. 'cpu' is this machine's first CPU device (tests).
No GPU or TPU is touched: XLA compiles for the target, and `memory_analysis()` reports the bytes
that program needs on it. The step is the library's one train step (common.train_step) over a
one-device mesh of the target, on abstract inputs (nothing is initialised), so the
attention kernels it traces, chosen for the mesh's platform (models/attention.py), are the ones
the real accelerator would run.
"""
import contextlib
import dataclasses
import functools
import math
import os
import re
import time
from typing import Optional

import jax

from tools.benchmarks.common import train_step
from vivit_jax.models import attention

# XLA's GpuTargetConfig (xla/stream_executor/device_description.proto, text format) of an NVIDIA
# H200 141GB HBM3e, as its stream executor reports it (compute capability 9.0, 132 SMs, cuDNN
# 9.10): what a deviceless GPU compile optimises for.
H200_TARGET = """\
gpu_device_info {
  threads_per_block_limit: 1024
  threads_per_warp: 32
  shared_memory_per_block: 49152
  shared_memory_per_core: 233472
  threads_per_core_limit: 2048
  core_count: 132
  fpus_per_core: 128
  block_dim_limit_x: 2147483647
  block_dim_limit_y: 65535
  block_dim_limit_z: 65535
  memory_bandwidth: 4800000000000
  l2_cache_size: 52428800
  clock_rate_ghz: 1.98
  device_memory_size: 151397597184
  shared_memory_per_block_optin: 232448
  cuda_compute_capability {
    major: 9
  }
  registers_per_core_limit: 65536
  registers_per_block_limit: 65536
}
platform_name: "CUDA"
dnn_version_info {
  major: 9
  minor: 10
  patch: 0
}
device_description_str: "NVIDIA H200 141GB HBM3e"
"""
GIB = 2 ** 30


@dataclasses.dataclass(frozen=True)
class Target:
  """A device to compile for: `capacity_bytes` is what one program may use on it."""
  name: str
  platform: str  # 'cuda' | 'tpu' | 'cpu'
  description: str
  capacity_bytes: Optional[int]
  capacity_note: str
  wheels: str  # What must be installed to compile for it.


TARGETS = {
    'h200': Target(
        'h200', 'cuda', 'NVIDIA H200 141GB HBM3e (compile-only, XLA GpuTargetConfig)',
        int(0.95 * 151397597184),
        "95% of its 141 GiB: tools/gpu_benchmark.sh's XLA_PYTHON_CLIENT_MEM_FRACTION",
        "jax-cuda12-plugin and jax-cuda12-pjrt of the installed jax (pip install -e '.[aot]')"),
    'v5e': Target(
        'v5e', 'tpu', 'TPU v5 lite (v5e), one chip of a compile-only 2x2 slice',
        int(15.75 * GIB), "of one chip's 16 GiB HBM, what libtpu calls available; it refuses "
        "to compile a step whose temporaries alone need more",
        "libtpu of the installed jax's `tpu` extra (pip install -e '.[aot]')"),
    'cpu': Target('cpu', 'cpu', 'this machine\'s CPU', None, 'no limit', 'nothing'),
}
# Deviceless GPU compiles cannot time kernels: choose them heuristically, and leave matmuls to
# cuBLAS (without autotuning, Triton's GEMM tiling refuses some of the step's dots: "Couldn't
# find output tile sizes").
# libtpu at its default effort takes 5+ minutes per real-size step on 2 CPU cores; at the lowest
# execution-time effort about 45 s, and the bytes barely move (ViViT-B Model 1, XLA attention,
# remat full, batch 2: 2.78 GiB vs 2.92 GiB at the default effort).
COMPILER_OPTIONS = {'cuda': {'xla_gpu_autotune_level': 0, 'xla_gpu_enable_triton_gemm': False},
                    'tpu': {'exec_time_optimization_effort': -1.0}, 'cpu': {}}
OOM_MARKERS = ('RESOURCE_EXHAUSTED', 'Out of memory', 'out of memory', 'Ran out of memory')


def target(name: str) -> Target:
  if name not in TARGETS:
    raise ValueError(f'Unknown compile target {name!r}; choose from {", ".join(TARGETS)}.')
  return TARGETS[name]


def missing(name: str) -> Optional[str]:
  """Why target `name` cannot be compiled for here (a missing wheel, with the fix), or None."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  modules = {'cuda': ('jax_plugins.xla_cuda12',), 'tpu': ('libtpu',),
             'cpu': ()}[target(name).platform]
  for module in modules:
    try:
      if importlib.util.find_spec(module) is None:
        raise ImportError(module)
    except ImportError:
      return f'{name} needs {target(name).wheels}; {module} is not importable'
  return None


@functools.cache
def device(name: str) -> jax.Device:
  """The compile-only device of target `name` (cached: one topology per process)."""
  problem = missing(name)
  if problem:
    raise RuntimeError(problem)
  platform = target(name).platform
  if platform == 'cpu':
    return jax.devices('cpu')[0]
  if platform == 'cuda':
    os.environ.setdefault('JAX_SKIP_CUDA_CONSTRAINTS_CHECK', '1')  # No CUDA runtime here.
    from jax._src import xla_bridge  # pylint: disable=import-outside-toplevel
    topology = xla_bridge.make_pjrt_topology('cuda', '', target_config=H200_TARGET,
                                             topology='1x1x1')
    return topology._make_compile_only_devices()[0]  # pylint: disable=protected-access
  from jax.experimental import topologies  # pylint: disable=import-outside-toplevel
  _libtpu_env()
  return topologies.get_topology_desc('v5e:2x2', 'tpu').devices[0]


def _libtpu_env():
  """Environment for a compile-only libtpu: it must not look for a TPU VM's workers (it would log
  errors) nor take /tmp/libtpu_lockfile exclusively (another process on this machine that merely
  imported jax may hold it: libtpu is only compiling here)."""
  for key, value in (('TPU_SKIP_MDS_QUERY', '1'), ('TPU_WORKER_HOSTNAMES', 'localhost'),
                     ('TPU_ACCELERATOR_TYPE', 'v5litepod-4'), ('ALLOW_MULTIPLE_LIBTPU_LOAD', '1')):
    os.environ.setdefault(key, value)


# Custom calls of the fused attention kernels in a lowered module, in order of precedence.
KERNEL_MARKERS = (('cudnn', '__cudnn$fmha'), ('pallas_tpu', 'tpu_custom_call'),
                  ('pallas_gpu', '__gpu$xla.gpu.triton'))


def kernel_of(module_text: str) -> str:
  """'cudnn', 'pallas_tpu', 'pallas_gpu' or 'xla' (no fused attention kernel) for a lowered
  module's text."""
  return next((name for name, marker in KERNEL_MARKERS if marker in module_text), 'xla')


def is_oom(error: Exception) -> bool:
  return any(marker in str(error) for marker in OOM_MARKERS)


def needed_bytes_from_error(error: Exception) -> Optional[int]:
  """The temporaries' bytes an out-of-memory compile error says the program needs, where it
  says (TPU: '... memory required for HLO temporaries (84.50G) exceeds available HBM
  (15.75G)'), else None."""
  match = re.search(r'temporaries \(([\d.]+)([KMGT]?)\)', str(error))
  if not match:
    return None
  scale = {'': 1, 'K': 2 ** 10, 'M': 2 ** 20, 'G': GIB, 'T': 2 ** 40}[match.group(2)]
  return int(float(match.group(1)) * scale)


@dataclasses.dataclass
class Result:
  """One compile of the train step: bytes from `memory_analysis()`, or the OOM `error`."""
  target: str
  batch_size: int
  compile_s: float
  # arguments + outputs + temporaries - aliased; for an OOM refusal (estimated), the
  # temporaries it says it needed + the step's inputs and outputs less the donated state.
  memory_bytes: Optional[int] = None
  argument_bytes: Optional[int] = None
  output_bytes: Optional[int] = None
  temp_bytes: Optional[int] = None
  alias_bytes: Optional[int] = None
  oom: Optional[str] = None  # The compiler's out-of-memory message, when it refused.
  kernel: Optional[str] = None  # The attention kernel in the lowered step (KERNEL_MARKERS).


def lower_train_step(config, batch_size: int, device_, lowering_platforms=None):
  """The train step of `config` (common.train_step over a mesh of `device_`: one device or a
  list) lowered for batches of `batch_size` on abstract inputs; `lowering_platforms`, e.g.
  ('tpu',), lowers it for another platform than the devices' (no compile), with its kernels."""
  devices = [device_] if isinstance(device_, jax.Device) else list(device_)
  ds = config.dataset
  video_shape = (batch_size, ds.num_frames, ds.crop_size, ds.crop_size, 3)
  built = train_step.build(config, video_shape, devices)
  return built.run.lower(built.exp.abstract_state, built.abstract_batch(video_shape),
                         lowering_platforms=lowering_platforms)


def compile_train_step(config, batch_size: int, target_name: str) -> Result:
  """Compiles the train step of `config` at `batch_size` for target `target_name`; an
  out-of-memory refusal by the compiler is a Result with `oom` set, other errors propagate."""
  dev = device(target_name)
  platform = target(target_name).platform
  start = time.perf_counter()
  try:
    with attention.assume_cudnn() if platform == 'cuda' else contextlib.nullcontext():
      lowered = lower_train_step(config, batch_size, dev)
    compiled = lowered.compile(compiler_options=COMPILER_OPTIONS[platform] or None)
  except Exception as error:  # pylint: disable=broad-except
    if not is_oom(error):
      raise
    temp = needed_bytes_from_error(error)
    lowered = locals().get('lowered')
    return Result(target_name, batch_size, time.perf_counter() - start,
                  kernel=kernel_of(lowered.as_text()) if lowered is not None else None,
                  memory_bytes=temp + io_bytes(lowered) if temp and lowered is not None else None,
                  temp_bytes=temp, oom=str(error).strip()[:500])
  seconds = time.perf_counter() - start
  m = compiled.memory_analysis()
  return Result(target_name, batch_size, seconds, kernel=kernel_of(lowered.as_text()),
                memory_bytes=int(m.argument_size_in_bytes + m.output_size_in_bytes
                                 + m.temp_size_in_bytes - m.alias_size_in_bytes),
                argument_bytes=int(m.argument_size_in_bytes),
                output_bytes=int(m.output_size_in_bytes), temp_bytes=int(m.temp_size_in_bytes),
                alias_bytes=int(m.alias_size_in_bytes))


def io_bytes(lowered) -> int:
  """Arguments + outputs - donated arguments of a lowered step, from its shapes (what
  memory_analysis() adds to the temporaries, the donated state aliased to the new state)."""
  size = lambda x: math.prod(x.shape) * getattr(x.dtype, 'itemsize', 0)
  args = jax.tree.leaves(lowered.args_info)
  return int(sum(size(a) for a in args if not a.donated)
             + sum(size(o) for o in jax.tree.leaves(lowered.out_info)))
