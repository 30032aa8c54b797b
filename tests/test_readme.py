"""README.md holds: its tables render (a separator under each header, every row the header's
column count, no blank line inside), every repo path, module and tool it names exists, nothing
points outside the repo, and the default job's figures are those benchmarks/default_job.json
measured."""
import glob
import itertools
import json
import os
import re

import pytest

from tests.helpers import REPO

README = open(os.path.join(REPO, 'README.md')).read()
ARCHITECTURE = open(os.path.join(REPO, 'docs/architecture.md')).read()
# Repo paths: configs/..., tools/..., not preceded by a path or word (gs://B/tools/ is not one).
PATH = re.compile(r'(?<![\w/.$~-])((?:configs|tools|vivit_jax|benchmarks|notebooks|tests|docs)/'
                  r'[\w./{},<>*-]*)')
MODULE = re.compile(r'\bvivit_jax(?:\.\w+)+')


def _prose(text: str) -> list[tuple[int, str]]:
  """(line number, line) of `text` outside ``` code blocks."""
  fenced = False
  lines = []
  for number, line in enumerate(text.splitlines(), 1):
    if line.startswith('```'):
      fenced = not fenced
    elif not fenced:
      lines.append((number, line))
  return lines


def _tables(text: str) -> list[list[tuple[int, str]]]:
  """Runs of consecutive table lines ('|' first) outside code blocks."""
  runs = itertools.groupby(_prose(text), key=lambda item: item[1].startswith('|'))
  return [list(group) for is_table, group in runs if is_table]


def _cells(row: str) -> int:
  """Columns of a GitHub table row: pipes split cells (even in `code`), except escaped ones."""
  return len(re.split(r'(?<!\\)\|', row.strip().strip('|')))


def test_tables_render():
  tables = _tables(README)
  assert len(tables) >= 5
  for table in tables:
    (first, header), *rows = table
    assert len(rows) >= 2 and re.fullmatch(r'\|(\s*:?-+:?\s*\|)+', rows[0][1]), (
        f'README.md:{first}: a table needs a header and a |---| row (a blank line inside a '
        f'table starts a new one)')
    for number, row in rows:
      assert _cells(row) == _cells(header), f'README.md:{number}: {_cells(row)} columns, ' \
                                            f'the header has {_cells(header)}'


def _expand(path: str) -> list[str]:
  """Glob patterns of a path as written: {a,b} expanded, placeholders (X, NAME, <device>) as *,
  trailing punctuation dropped."""
  path = path.rstrip('.,')
  match = re.search(r'\{([^{}]*)\}', path)
  if match:
    return [p for option in match[1].split(',')
            for p in _expand(path[:match.start()] + option + path[match.end():])]
  return [re.sub(r'<[^>]*>|\b[A-Z]+\b', '*', path)]


def _missing_paths(text: str) -> list[tuple[str, str]]:
  return [(path, pattern) for path in sorted(set(PATH.findall(text))) for pattern in _expand(path)
          if not glob.glob(os.path.join(REPO, pattern))]


def test_named_paths_exist():
  assert {'configs/default.py', 'configs/video_folder.py', 'tools/build_dataset.py',
          'benchmarks/default_job.md', 'notebooks/colab_tpu.ipynb',
          'docs/architecture.md'} <= set(PATH.findall(README))
  assert not _missing_paths(README), f'README.md names paths that do not exist: ' \
                                     f'{_missing_paths(README)}'


def test_architecture_doc_names_existing_paths_and_modules():
  """docs/architecture.md's paths exist and so do the vivit_jax packages of its layout."""
  assert not _missing_paths(ARCHITECTURE), _missing_paths(ARCHITECTURE)
  layout = ARCHITECTURE[ARCHITECTURE.index('## Layout'):ARCHITECTURE.index('## Layers')]
  named = set(re.findall(r'^  (\w+)/ ', layout, re.M))
  assert {'saved', 'data', 'models', 'weights', 'train'} <= named
  assert all(os.path.isdir(os.path.join(REPO, 'vivit_jax', n)) or
             os.path.isdir(os.path.join(REPO, 'tools', n)) for n in named), named


def test_named_commands_and_modules_exist():
  tools = re.findall(r'python (tools/\w+\.py)', README)
  assert 'tools/build_dataset.py' in tools
  assert not [t for t in tools if not os.path.isfile(os.path.join(REPO, t))]
  commands = set(re.findall(r'python -m (vivit_jax\.\w+)', README))
  assert commands == {'vivit_jax.main', 'vivit_jax.evaluate', 'vivit_jax.predict',
                      'vivit_jax.stream'}
  for name in sorted(set(MODULE.findall(README)) | commands):
    parts = name.split('.')
    modules = [i for i in range(len(parts), 0, -1) if _module_file(parts[:i])]
    assert modules, f'README.md names {name}: no such module'
    rest = parts[modules[0]:]
    if rest:  # A name defined in the module (function, class or constant).
      source = open(_module_file(parts[:modules[0]])).read()
      assert re.search(rf'^(def |class )?{rest[0]}\b', source, re.M), f'{name}: no {rest[0]}'


def _module_file(parts: list[str]) -> str | None:
  base = os.path.join(REPO, *parts)
  return next((p for p in (base + '.py', os.path.join(base, '__init__.py'))
               if os.path.isfile(p)), None)


def test_nothing_outside_the_repo():
  assert '../' not in README and 'OWNER' not in README
  links = re.findall(r'\]\(([^)#]+)\)', README)
  assert not [link for link in links if '://' not in link
              and not os.path.exists(os.path.join(REPO, link))]


@pytest.mark.parametrize('path', ['README.md', 'configs/default.py'])
def test_default_job_figures_are_the_benchmarks(path):
  record = json.load(open(os.path.join(REPO, 'benchmarks/default_job.json')))
  text = ' '.join(open(os.path.join(REPO, path)).read().split())  # Lines joined.
  low, high = map(float, re.search(r'top-1 (\d\.\d+)-(\d\.\d+) over seeds', text).groups())
  assert len(record['runs']) >= 2
  assert all(low <= run['top1'] <= high for run in record['runs'])
  v = record['versions']
  assert f"jax {v['jax']}, flax {v['flax']}, tensorflow {v['tensorflow']}" in text
  assert 'benchmarks/default_job.md' in text
