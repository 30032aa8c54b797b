"""The memory table (`python tools/benchmark.py memory`): how much device memory each paper
preset's train step needs on an H200 and on one TPU v5e chip, and the largest batch that fits,
from compile-only builds on this CPU (compile_only.aot); no accelerator is used.

An arm is (preset, target, attention kernel, remat). For each arm the train step is compiled at
`batch` clips and XLA's `memory_analysis()` gives its bytes (arguments + outputs + temporaries -
aliased: what the step holds on the device). The largest batch is searched with compiles: the
bytes are close to affine in the batch (state and program fixed, activations per clip), so two
compiles predict the boundary and a few more confirm it (the largest batch that fits and the one
above it that does not).
"""
import dataclasses
import datetime
import math
import platform
import subprocess
import time
from typing import Callable, Optional

from tools.benchmarks.compile_only import aot

DEFAULT_BATCH = 8
SECOND_BATCH = 16  # The other point of the affine prediction.
MAX_BATCH = 4096
XLA_ROWS = ('vivit1',)  # Presets that also get attention_impl='xla' rows, for comparison.
GIB = 2 ** 30


@dataclasses.dataclass(frozen=True)
class Arm:
  preset: str
  target: str
  attention_impl: Optional[str]  # None: the model has no attention choice (CNNs).
  remat: Optional[str]  # None: the model has no remat option.


def arms(configs: dict, targets, remats=('none', 'full'), xla_rows=XLA_ROWS) -> list[Arm]:
  """The arms of presets `configs` (name -> config) on each of `targets`: attention 'auto' (and
  'xla' for the presets in `xla_rows`) where the model has `attention_impl`, each of `remats`
  where it has `remat`."""
  out = []
  for target in targets:
    for name, config in configs.items():
      m = config.model
      impls = ((('auto', 'xla') if name in xla_rows else ('auto',))
               if 'attention_impl' in m else (None,))
      for impl in impls:
        for remat in (remats if 'remat' in m else (None,)):
          out.append(Arm(name, target, impl, remat))
  return out


def arm_config(config, arm: Arm):
  """A copy of `config` with the arm's attention kernel and remat."""
  config = config.copy_and_resolve_references()
  if arm.attention_impl is not None:
    config.model.attention_impl = arm.attention_impl
  if arm.remat is not None:
    config.model.remat = arm.remat
  return config


def _measure(result: aot.Result, target: aot.Target) -> Optional[int]:
  """The bytes compared with the target's capacity (estimated for a compiler's refusal)."""
  del target
  return result.memory_bytes


def fits(result: aot.Result, target: aot.Target) -> bool:
  if result.oom is not None:
    return False
  return target.capacity_bytes is None or _measure(result, target) <= target.capacity_bytes


def _affine(points: list[tuple[int, int]]) -> Optional[tuple[float, float]]:
  """(fixed, per_clip) of bytes = fixed + per_clip * batch through the two points of distinct
  batches in `points` ((batch, bytes), most relevant last), or None."""
  for i in range(len(points) - 1, 0, -1):
    for j in range(i - 1, -1, -1):
      (b1, m1), (b0, m0) = points[i], points[j]
      if b1 != b0:
        per_clip = max((m1 - m0) / (b1 - b0), 1.0)
        return m0 - per_clip * b0, per_clip
  return None


def largest_batch(compile_at: Callable[[int], aot.Result], target: aot.Target,
                  known: Optional[dict] = None, second: int = SECOND_BATCH,
                  limit: int = MAX_BATCH, max_compiles: int = 6) -> dict:
  """The largest batch whose train step fits `target`, by compiles (`compile_at(b)`).

  From the results `known` (batch -> Result, e.g. the table's batch) and a compile at `second`,
  predicts the boundary (bytes affine in the batch), then compiles at the prediction and next to
  it until a batch that fits and the next one that does not are both compiled ('exact'), or
  `max_compiles` new compiles are spent.
  Returns {'largest': the largest batch found to fit (0: none), 'refused': the smallest found not
  to (None: none up to `limit`), 'exact': refused == largest + 1, 'predicted': the first
  prediction, 'fixed_bytes', 'per_clip_bytes': the affine fit it came from, 'compiles': [{batch,
  bytes, fits, compile_s}] in the order made}.
  """
  results = dict(known or {})
  made = []

  def get(b):
    if b not in results:
      results[b] = compile_at(b)
      made.append(b)
    return results[b]

  get(second)
  predicted = fit = None
  for _ in range(max_compiles + 1):
    good = max((b for b, r in results.items() if fits(r, target)), default=0)
    bad = min((b for b, r in results.items() if not fits(r, target)), default=None)
    if (bad is not None and bad <= good + 1) or (bad is None and good >= limit):
      break
    if len(made) >= max_compiles:
      break
    # Fit through the measured points nearest the boundary: the largest that fits and the
    # smallest that does not; else the two nearest on the side that has points.
    with_bytes = sorted((b, _measure(r, target)) for b, r in results.items()
                        if _measure(r, target) is not None)
    below = [p for p in with_bytes if fits(results[p[0]], target)]
    above = [p for p in with_bytes if not fits(results[p[0]], target)]
    near = below[-1:] + above[:1]
    line = _affine(near if len(near) == 2 else below[-2:] if below else above[:2])
    hi = bad - 1 if bad is not None else limit
    if line is None or target.capacity_bytes is None:
      candidate = hi if bad is not None else min(limit, max(1, 2 * good))
    else:
      fixed, per_clip = line
      guess = math.floor((target.capacity_bytes - fixed) / per_clip)
      if predicted is None:
        predicted, fit = guess, line
      candidate = min(max(guess, good + 1), hi)
    if candidate in results:  # The prediction is a batch already compiled: step next to it.
      candidate = good + 1 if fits(results[candidate], target) or candidate <= good else hi
    get(candidate)
  good = max((b for b, r in results.items() if fits(r, target)), default=0)
  bad = min((b for b, r in results.items() if not fits(r, target)), default=None)
  return dict(largest=good, refused=bad, exact=bad is not None and bad == good + 1,
              predicted=predicted, fixed_bytes=None if fit is None else int(fit[0]),
              per_clip_bytes=None if fit is None else int(fit[1]),
              compiles=[dict(batch=b, bytes=_measure(results[b], target),
                             fits=fits(results[b], target),
                             compile_s=round(results[b].compile_s, 1)) for b in made])


def row(arm: Arm, result: aot.Result, target: aot.Target) -> dict:
  """The table row of `arm` compiled at its batch."""
  return dict(preset=arm.preset, target=arm.target, attention_impl=arm.attention_impl,
              remat=arm.remat, batch=result.batch_size,
              kernel=result.kernel if arm.attention_impl else None,
              memory_bytes=result.memory_bytes, argument_bytes=result.argument_bytes,
              output_bytes=result.output_bytes, temp_bytes=result.temp_bytes,
              alias_bytes=result.alias_bytes, oom=result.oom, fits=fits(result, target),
              compile_s=round(result.compile_s, 1))


def run(configs: dict, targets, *, batch: int = DEFAULT_BATCH, remats=('none', 'full'),
        xla_rows=XLA_ROWS, find_largest: bool = True, largest_remat: Optional[str] = 'full',
        second: int = SECOND_BATCH,
        compile_fn: Callable = aot.compile_train_step, sources: Optional[dict] = None,
        on_update: Callable[[dict], None] = lambda record: None, log=print) -> dict:
  """The memory record of presets `configs` (name -> real-size config) on `targets` (names of
  aot.TARGETS): one row per arm (see `arms`) at `batch`; with `find_largest`, the largest batch
  of the 'auto' arms (and of attention-free models) with remat `largest_remat` (None: every
  remat; the presets of `xla_rows` get it for every remat); `on_update(record)` after every
  row. `sources`: preset name -> its config file, for the report."""
  record = dict(benchmark='memory', batch=batch, xla_rows=list(xla_rows),
                targets={t: dict(description=aot.target(t).description,
                                 capacity_bytes=aot.target(t).capacity_bytes,
                                 capacity_note=aot.target(t).capacity_note) for t in targets},
                presets=dict(sources or {}), rows=[], versions=versions(),
                compiler_options={t: aot.COMPILER_OPTIONS[aot.target(t).platform]
                                  for t in targets}, machine=f'{platform.machine()} CPU (compile-only)',
                commit=_commit(), date=datetime.date.today().isoformat())
  todo = arms(configs, targets, remats, xla_rows)
  start = time.perf_counter()
  for i, arm in enumerate(todo):
    target = aot.target(arm.target)
    config = arm_config(configs[arm.preset], arm)

    def compile_at(b, config=config, arm=arm):
      result = compile_fn(config, b, arm.target)
      log(f'  [{time.perf_counter() - start:6.0f}s] {arm.preset} {arm.target} '
          f'attention={arm.attention_impl} remat={arm.remat} batch {b}: ' + _describe(result))
      return result

    log(f'memory {i + 1}/{len(todo)}: {arm}')
    try:
      result = compile_at(batch)
    except Exception as error:  # pylint: disable=broad-except
      record['rows'].append(dict(dataclasses.asdict(arm), batch=batch,
                                 error=f'{type(error).__name__}: {str(error)[:500]}'))
      on_update(record)
      continue
    entry = row(arm, result, target)
    if (find_largest and target.capacity_bytes is not None and arm.attention_impl in (None, 'auto')
        and (largest_remat is None or arm.remat in (None, largest_remat)
             or arm.preset in xla_rows)):
      try:
        entry['largest_batch'] = largest_batch(compile_at, target, {batch: result}, second)
      except Exception as error:  # pylint: disable=broad-except
        entry['largest_batch'] = dict(error=f'{type(error).__name__}: {str(error)[:500]}')
    record['rows'].append(entry)
    on_update(record)
  record['seconds'] = round(time.perf_counter() - start)
  on_update(record)
  return record


def _describe(result: aot.Result) -> str:
  if result.oom is not None:
    needs = '' if result.memory_bytes is None else f' (needs {result.memory_bytes / GIB:.2f} GiB)'
    return f'refused: out of memory{needs}, {result.compile_s:.0f}s'
  return (f'{result.memory_bytes / GIB:.2f} GiB (temp {result.temp_bytes / GIB:.2f}), '
          f'kernel {result.kernel}, {result.compile_s:.0f}s')


def versions() -> dict:
  import importlib.metadata as metadata  # pylint: disable=import-outside-toplevel
  out = {}
  for name in ('jax', 'jaxlib', 'jax-cuda12-plugin', 'jax-cuda12-pjrt', 'libtpu', 'flax'):
    try:
      out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      out[name] = None
  return out


def _commit() -> Optional[str]:
  try:
    return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True,
                          text=True, check=True, timeout=10,
                          cwd=__file__.rsplit('/', 2)[0]).stdout.strip() or None
  except Exception:  # pylint: disable=broad-except
    return None


def _gib(n: Optional[int]) -> str:
  return '-' if n is None else f'{n / GIB:.2f}'


def _largest(entry: dict) -> str:
  lb = entry.get('largest_batch')
  if not lb:
    return '-'
  if 'error' in lb:
    return 'error'
  if lb['refused'] is None:
    return f">= {lb['largest']}"
  return f"{lb['largest']}" if lb['exact'] else f"{lb['largest']} (< {lb['refused']})"


def headline(record: dict, preset: str = 'vivit1') -> list[str]:
  """Markdown lines: `preset`'s bytes at the table's batch per kernel and remat, and its largest
  batch, on each target."""
  out = []
  for name, t in record['targets'].items():
    rows = [r for r in record['rows'] if r['target'] == name and r['preset'] == preset
            and 'error' not in r]
    if not rows:
      continue
    cells = [f"{r['attention_impl']} ({r['kernel']}) remat {r['remat']}: "
             + (f"{_gib(r['memory_bytes'])} GiB" if r['oom'] is None else 'refused' + (
                 f" (needs ~{_gib(r['memory_bytes'])} GiB)" if r['memory_bytes'] else ''))
             for r in rows]
    largest = [f"{r['attention_impl']} remat {r['remat']}: {_largest(r)}" for r in rows
               if r.get('largest_batch')]
    out.append(f"- **{preset} on {name}** ({_gib(t['capacity_bytes'])} GiB), batch "
               f"{record['batch']}: " + '; '.join(cells) + '. Largest batch: '
               + ('; '.join(largest) or '-') + '.')
  return (['## Headline', ''] + out + ['']) if out else []


def table(record: dict) -> str:
  """benchmarks/memory.md of the record."""
  batch = record['batch']
  lines = ['# Train-step memory per device, compiled without a device', '',
           f"Each paper preset's real-size train step (`train.step.make_train_step`, bfloat16, "
           f"the preset's optimizer) compiled on a CPU for each target "
           f"(`tools/benchmarks/compile_only/aot.py`), at batch {batch} per device; bytes from "
           f"XLA's `memory_analysis()`: arguments + outputs + temporaries - aliased (donated "
           f"state). *kernel* is the attention that was "
           f"lowered (`auto`: chosen by the platform compiled for). *largest batch*: the largest "
           f"that fits the target, found by compiles (predicted from two batches, bytes ~ affine "
           f"in the batch, then confirmed: the batch above it does not fit; '(< n)' where the "
           f"search stopped before the batch above was checked). *refused*: the compiler "
           f"itself refused (TPU: temporaries over the chip's free HBM); the bytes it needs "
           f"are then its temporaries + the step's inputs and outputs less the donated state. "
           f"Largest batch '-': not searched (it is for the 'auto' kernel at remat full, models "
           f"without attention, and every remat of {', '.join(record.get('xla_rows', [])) or '-'}"
           f").", '']
  lines += headline(record)
  for name, t in record['targets'].items():
    rows = [r for r in record['rows'] if r['target'] == name]
    if not rows:
      continue
    lines += [f"## {t['description']}", '',
              f"Capacity: {_gib(t['capacity_bytes'])} GiB ({t['capacity_note']}).", '',
              f'| preset | attention | kernel | remat | GiB at batch {batch} | args GiB | '
              f'temp GiB | fits | largest batch | compile s |',
              '|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
      if 'error' in r:
        lines.append(f"| {r['preset']} | {r['attention_impl'] or '-'} | - | {r['remat'] or '-'}"
                     f" | error: {r['error'][:120].replace('|', '/')} | | | | | |")
        continue
      total = (_gib(r['memory_bytes']) if r['oom'] is None else
               f"refused (needs ~{_gib(r['memory_bytes'])})" if r['memory_bytes'] else 'refused')
      lines.append(f"| {r['preset']} | {r['attention_impl'] or '-'} | {r['kernel'] or '-'} | "
                   f"{r['remat'] or '-'} | {total} | {_gib(r['argument_bytes'])} | "
                   f"{_gib(r['temp_bytes'])} | {'yes' if r['fits'] else 'no'} | "
                   f"{_largest(r)} | {r['compile_s']} |")
    lines.append('')
  v = record['versions']
  if record.get('presets'):
    lines += ['Presets: ' + ', '.join(f'{n} `{p}`' for n, p in record['presets'].items()) + '.',
              '']
  options = record.get('compiler_options') or {}
  if options:
    lines += ['XLA options of the deviceless compiles: ' + '; '.join(
        f'{t}: ' + (', '.join(f'{k}={v}' for k, v in o.items()) or 'defaults')
        for t, o in options.items()) + ' (no device to autotune on; libtpu at its default '
        'effort takes 5+ minutes per step here, and the bytes barely differ: ViViT-B Model 1, '
        'xla attention, remat full, batch 2: 2.78 GiB at -1 vs 2.92 GiB at the default).', '']
  lines += [f"jax {v.get('jax')}, jax-cuda12-plugin {v.get('jax-cuda12-plugin')}, libtpu "
            f"{v.get('libtpu')}; commit {record.get('commit')}, {record.get('date')}; "
            f"{record.get('machine')}"
            + (f", {record['seconds']} s in all" if record.get('seconds') is not None else '')
            + (f"; {record['note']}." if record.get('note') else '.'),
            '', "Regenerate: `pip install -e '.[aot]'` then `python tools/benchmark.py memory`.",
            '']
  return '\n'.join(lines)
