"""The import graph of vivit_jax (read from the source with `ast`): no cycles, and every import
points down the layers below or stays inside its own package."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / 'vivit_jax'
# Lowest first. A module may import its own top-level package (vivit_jax.X) and the layers below;
# packages of one layer do not import each other.
LAYERS = (
    ('console', 'distributed', 'saved'),  # What a run saved; terminal and process set-up.
    ('data', 'models'),
    ('weights', 'visualize'),  # Pretrained weights into models; pictures of model outputs.
    ('train',),  # The loop, step, tasks, checkpoints, evaluators.
    ('evaluate', 'predict', 'main'),  # Programs.
    ('stream',),  # Frame by frame, with predict's frame checks.
)


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _imports(path: pathlib.Path, modules: set[str]) -> set[str]:
  """The vivit_jax modules `path` imports (anywhere in it, lazily or not): `from a import b`
  counts as a.b when that is a module, else as a."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      found |= {f'{node.module}.{a.name}' if f'{node.module}.{a.name}' in modules
                else node.module for a in node.names}
  return {m for m in found if m in modules}


def _graph() -> dict[str, set[str]]:
  paths = {_module_name(p): p for p in PACKAGE.rglob('*.py')}
  return {name: _imports(path, set(paths)) for name, path in paths.items()}


def _layer(module: str) -> tuple[int, str]:
  """(layer index, top-level package) of a vivit_jax module; the package itself is layer -1."""
  parts = module.split('.')
  if len(parts) == 1:
    return -1, ''
  top = parts[1]
  for i, layer in enumerate(LAYERS):
    if top in layer:
      return i, top
  raise AssertionError(f'{module} is in no layer: add vivit_jax.{top} to LAYERS in {__file__}.')


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One import cycle of `graph`, as the list of its modules, or None."""
  state = {}

  def visit(node, stack):
    state[node] = 'open'
    stack.append(node)
    for dep in sorted(graph[node]):
      if state.get(dep) == 'open':
        return stack[stack.index(dep):] + [dep]
      if dep not in state and (found := visit(dep, stack)):
        return found
    state[node] = 'done'
    stack.pop()
    return None

  for node in sorted(graph):
    if node not in state and (found := visit(node, [])):
      return found
  return None


def _upward(graph: dict[str, set[str]]) -> list[str]:
  """'a -> b' for every import of a higher layer, or of another package of the same layer."""
  bad = []
  for module, deps in sorted(graph.items()):
    layer, top = _layer(module)
    for dep in sorted(deps):
      dep_layer, dep_top = _layer(dep)
      if dep_layer > layer or (dep_layer == layer and dep_top != top):
        bad.append(f'{module} -> {dep}')
  return bad


def test_no_import_cycles():
  cycle = _cycle(_graph())
  assert cycle is None, f'Import cycle: {" -> ".join(cycle)}'


def test_imports_point_only_down():
  assert _upward(_graph()) == []


def test_the_checks_catch_cycles_and_upward_imports():
  graph = {'vivit_jax.models.a': {'vivit_jax.models.b'}, 'vivit_jax.models.b':
           {'vivit_jax.models.a'}, 'vivit_jax.train.loop': {'vivit_jax.models.a'},
           'vivit_jax.data.x': {'vivit_jax.models.a', 'vivit_jax.train.loop'}}
  assert _cycle(graph) == ['vivit_jax.models.a', 'vivit_jax.models.b', 'vivit_jax.models.a']
  assert _upward(graph) == ['vivit_jax.data.x -> vivit_jax.models.a',
                            'vivit_jax.data.x -> vivit_jax.train.loop']
  with pytest.raises(AssertionError, match='LAYERS'):
    _layer('vivit_jax.newpackage.x')


def test_imports_are_absolute():
  """Relative imports would escape the graph above."""
  relative = [f'{path}:{node.lineno}' for path in sorted(PACKAGE.rglob('*.py'))
              for node in ast.walk(ast.parse(path.read_text()))
              if isinstance(node, ast.ImportFrom) and node.level]
  assert relative == []
