"""A benchmark's result files (common.results): STEM.json holds the record, STEM.md the table."""
import json
import os

from tools.benchmarks.common import results


def test_write_names_the_files_after_the_record(tmp_path):
  record = dict(benchmark='data_pipeline', clips=80)
  assert results.write(record, str(tmp_path), '# table\n') == '# table\n'
  assert sorted(os.listdir(tmp_path)) == ['data_pipeline.json', 'data_pipeline.md']
  assert json.loads((tmp_path / 'data_pipeline.json').read_text()) == record
  assert (tmp_path / 'data_pipeline.md').read_text() == '# table\n'
  assert f'{os.cpu_count()} CPUs' in results.machine()
