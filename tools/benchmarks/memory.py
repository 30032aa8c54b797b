"""How much device memory does each train step need, without a device? Each preset of
configs/speed_benchmark.py at its real size, compiled on this CPU for an NVIDIA H200 and
for one TPU v5e chip (compile-only devices, compile_only/aot.py; needs `pip install -e '.[aot]'`):
XLA's compiled bytes per preset x attention kernel (auto; also xla for --xla_models) x remat, and
the largest batch per device (compile_only/memory_table.py). Writes benchmarks/memory.{json,md}
after every row. Roughly 30 s (H200) to minutes (v5e) per compile on 2 CPU cores.

  python tools/benchmark.py memory [--models vivit1,...] [--targets h200,v5e] [--batch 8]
      [--remat_arms none,full] [--xla_models vivit1] [--nolargest_batch]
"""
import os

from absl import app, flags

from tools.benchmarks.common import options, results
from configs import speed_benchmark

_TARGETS = flags.DEFINE_list('targets', ['h200', 'v5e'], 'memory: compile-only devices to '
                             'compile for (tools/benchmarks/compile_only/aot.py TARGETS).')
_XLA_MODELS = flags.DEFINE_list('xla_models', ['vivit1'], "memory: models that also get "
                                "attention_impl='xla' rows, for comparison with 'auto'.")
_LARGEST_BATCH = flags.DEFINE_bool('largest_batch', True, 'memory: also search the largest '
                                   'batch per device (a few more compiles per row).')


def run(workdir: str, out: str) -> dict:
  """Compiled train-step bytes per preset, target, kernel and remat (memory_table.run)."""
  del workdir
  if not os.environ.get('JAX_PLATFORMS'):  # Compile-only targets: never touch a local device.
    import jax  # pylint: disable=import-outside-toplevel
    jax.config.update('jax_platforms', 'cpu')
  # pylint: disable-next=import-outside-toplevel
  from tools.benchmarks.compile_only import aot, memory_table
  try:
    names = speed_benchmark.check_names(options.MODELS.value or list(speed_benchmark.MODELS))
    problems = [p for p in map(aot.missing, _TARGETS.value) if p]
  except ValueError as error:
    raise app.UsageError(str(error)) from error
  if problems:
    raise app.UsageError('; '.join(problems))
  return memory_table.run({n: speed_benchmark.load_preset(n) for n in names}, _TARGETS.value,
                          batch=options.BATCH.value or memory_table.DEFAULT_BATCH,
                          remats=tuple(options.REMAT_ARMS.value),
                          xla_rows=tuple(_XLA_MODELS.value), find_largest=_LARGEST_BATCH.value,
                          sources={n: speed_benchmark.MODELS[n] for n in names},
                          on_update=lambda record: write(record, out))


def write(record: dict, out: str) -> str:
  from tools.benchmarks.compile_only import memory_table  # pylint: disable=import-outside-toplevel
  return results.write(record, out, memory_table.table(record))
