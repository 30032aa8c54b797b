"""The benchmarks whose results are committed under benchmarks/, run by `python tools/benchmark.py
NAME [flags]`: one module per benchmark, NAME.py, the code only it uses in a subpackage.

A benchmark module's docstring says what question it answers, its command and its runtime; it
defines its own flags (those several benchmarks read are in common/options.py) and

  run(workdir: str, out: str) -> dict     measures, in the scratch `workdir`; the result record
  write(record: dict, out: str) -> str    writes the record's files into `out`; the markdown table

Adding a benchmark is adding its module here. Subpackages are not benchmarks:
  common/        what several benchmarks share: options, result files, timed training runs
  speed/         `models`: our train step timed against its Hugging Face peer
  compile_only/  `memory`: train steps compiled for accelerators this machine does not have
"""
import pkgutil


def names() -> list[str]:
  """The benchmarks: this package's modules (not its subpackages), sorted."""
  return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.ispkg)
