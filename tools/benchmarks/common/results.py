"""A benchmark's result files, OUT/STEM.json and OUT/STEM.md, and the facts every record notes."""
import json
import os
import platform


def write(record: dict, out: str, table: str) -> str:
  """Writes `record` to OUT/STEM.json and `table` to OUT/STEM.md (STEM: record['benchmark'],
  e.g. data_pipeline for `tools/benchmark.py data`); returns the table."""
  stem = record['benchmark']
  with open(os.path.join(out, f'{stem}.json'), 'w') as f:
    json.dump(record, f, indent=1)
  with open(os.path.join(out, f'{stem}.md'), 'w') as f:
    f.write(table)
  return table


def machine() -> str:
  return (f'{platform.machine()}, {os.cpu_count()} CPUs (times are not comparable across '
          f'machines; accuracies are)')
