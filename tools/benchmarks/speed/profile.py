"""Where a compiled train step spends its time: a jax.profiler trace of a few steps, each device op
(the trace's `hlo_op`) looked up in the compiled HLO and summed by kind (matmul, convolution,
cuDNN attention, elementwise fusion, ...), by phase (forward, backward, optimizer) and by layer.
"""
import collections
import dataclasses
import glob
import gzip
import json
import os
import re
import tempfile

import jax

TOP = 10  # Ops and layers listed.
# `  [ROOT] %name = <type> opcode(...`; types hold no ' word(' so the first one is the opcode.
_INSTRUCTION = re.compile(r'^\s*(?:ROOT\s+)?%([\w.\-]+) = .*? ([a-z][a-z0-9\-]*)\(')
_COMPUTATION = re.compile(r'^(?:ENTRY\s+)?%([\w.\-]+) ')
_CALLED = re.compile(r'(?:calls|to_apply|body|condition|called_computations)=\{?%([\w.\-]+)')
_TARGET = re.compile(r'custom_call_target="([^"]+)"')
_OP_NAME = re.compile(r'op_name="([^"]+)"')
# Control flow: the ops of its computations are traced (and counted) on their own.
_CONTROL_FLOW = ('while', 'conditional', 'call')
_COLLECTIVES = ('all-reduce', 'all-gather', 'reduce-scatter', 'all-to-all',
                'collective-permute')
# Name-stack parts that are JAX transformations or scan/remat plumbing, not layers.
_PLUMBING = re.compile(r'^(jit|jvp|transpose|vmap|checkpoint|remat|pjit|while|body|cond|'
                       r'closed_call|rematted_computation|custom_jvp_call|custom_vjp_call)\b'
                       r'|\.body$|^$')


@dataclasses.dataclass
class Hlo:
  """A compiled HLO module: instruction name -> Instruction; computation name -> the names of
  its instructions."""
  instructions: dict
  computations: dict


@dataclasses.dataclass
class Instruction:
  opcode: str
  target: str | None  # custom_call_target.
  op_name: str | None  # JAX's name stack; a fusion's is that of its last named instruction.
  called: tuple  # Computations it calls (fused, reductions, loop bodies).


def parse_hlo(text: str) -> Hlo:
  """Compiled HLO text (`compiled.as_text()`) -> Hlo."""
  hlo, current = Hlo({}, collections.defaultdict(list)), None
  for line in text.splitlines():
    if not line.startswith(' '):
      match = _COMPUTATION.match(line)
      current = match.group(1) if match and line.rstrip().endswith('{') else current
      continue
    match = _INSTRUCTION.match(line)
    if match:
      target, op_name = _TARGET.search(line), _OP_NAME.search(line)
      hlo.instructions[match.group(1)] = Instruction(
          match.group(2), target and target.group(1), op_name and op_name.group(1),
          tuple(_CALLED.findall(line)))
      hlo.computations[current].append(match.group(1))
  for instruction in hlo.instructions.values():
    if instruction.op_name is None:  # XLA's fusions: the op_name of what they fuse.
      names = [hlo.instructions[i].op_name for c in instruction.called
               for i in hlo.computations.get(c, ()) if hlo.instructions[i].op_name]
      instruction.op_name = names[-1] if names else None
  return hlo


def _contents(hlo: Hlo, name: str, seen: set) -> tuple[set, set]:
  """(opcodes, custom-call targets) of instruction `name` and every computation it calls."""
  instruction = hlo.instructions[name]
  opcodes, targets = {instruction.opcode}, {instruction.target} - {None}
  for computation in set(instruction.called) - seen:
    seen.add(computation)
    for inner in hlo.computations.get(computation, ()):
      inner_opcodes, inner_targets = _contents(hlo, inner, seen)
      opcodes |= inner_opcodes
      targets |= inner_targets
  return opcodes, targets


_DATA_MOVEMENT = {'fusion', 'copy', 'transpose', 'bitcast', 'parameter', 'tuple',
                  'get-tuple-element', 'dynamic-slice', 'dynamic-update-slice', 'slice',
                  'concatenate', 'pad', 'broadcast', 'constant', 'reshape'}


def op_kind(hlo: Hlo, name: str) -> str:
  """The kind of HLO instruction `name` (else of a kernel so named): 'attention (cuDNN)',
  'matmul', 'convolution', 'collective', 'copy/transpose', 'reduction', 'elementwise' or
  'other'."""
  if name in hlo.instructions:
    opcodes, targets = _contents(hlo, name, set())
    words = ' '.join(targets).lower()
  else:
    opcodes, words = set(), name.lower()
  if any(w in words for w in ('fmha', 'sdpa', 'flash')):
    return 'attention (cuDNN)'
  if 'convolution' in opcodes or '$conv' in words or ('conv' in words and not opcodes):
    return 'convolution'
  if 'dot' in opcodes or any(w in words for w in ('gemm', 'matmul', 'xmma', 'cutlass')):
    return 'matmul'
  if opcodes & set(_COLLECTIVES):
    return 'collective'
  if 'reduce' in opcodes or 'reduce-window' in opcodes:
    return 'reduction'
  if opcodes and opcodes <= _DATA_MOVEMENT:
    return 'copy/transpose'
  return 'elementwise' if 'fusion' in opcodes else 'other'


def phase(op_name: str | None) -> str:
  """'backward' (under the gradient's transpose), 'forward' (under its jvp), 'optimizer/other'
  (the rest of the step) or 'unnamed' from a JAX op_name ('jit(step)/transpose(jvp(ViViT))/...')."""
  if not op_name:
    return 'unnamed'
  if 'transpose(' in op_name:
    return 'backward'
  return 'forward' if 'jvp(' in op_name else 'optimizer/other'


def layer(op_name: str | None) -> str:
  """The layer of a JAX op_name: its module path without transformations, methods, the primitive
  or block indices ('encoder/blocks/attn', 'slow/stage_*/block_*/conv_a')."""
  if not op_name:
    return '(no name)'
  parts = [p for p in op_name.split('/')[:-1] if not _PLUMBING.search(p) and '.' not in p
           and '(' not in p and ',' not in p]  # Methods, transformations, einsum specs.
  return '/'.join(re.sub(r'_\d+$', '_*', p) for p in parts) or '(top level)'


def device_op_times(trace_dir: str) -> collections.Counter:
  """Microseconds per `hlo_op` (per kernel inside a CUDA graph) in the perfetto trace under
  `trace_dir`: events of the device processes ('/device:...') where there are any (GPU, TPU),
  else of every process (CPU)."""
  path = sorted(glob.glob(os.path.join(trace_dir, '**', 'perfetto_trace.json.gz'),
                          recursive=True))[-1]
  with gzip.open(path) as f:
    trace = json.load(f)
  events = trace['traceEvents'] if isinstance(trace, dict) else trace
  names = {e['pid']: e['args'].get('name', '') for e in events
           if e.get('ph') == 'M' and e.get('name') == 'process_name'}
  devices = {pid for pid, name in names.items() if name.startswith('/device:')}
  times = collections.Counter()
  for e in events:
    op = (e.get('args') or {}).get('hlo_op')
    if e.get('ph') == 'X' and op and (not devices or e.get('pid') in devices):
      # A kernel of a CUDA graph (XLA's command buffers) is named after its fusion.
      times[e['name'] if op.startswith('command_buffer') else op] += e.get('dur', 0)
  return times


def _shares(totals: collections.Counter, steps: int, total: float, top: int | None = None):
  return [dict(name=name, ms_per_step=us / steps / 1e3, share=us / total)
          for name, us in totals.most_common(top)]


def summarize(times: collections.Counter, hlo: Hlo, steps: int) -> dict:
  """Device ms per step and, by kind, phase, layer and op (TOP of the last two), each with its
  ms per step and share of the device time; control-flow ops are left out (their bodies are
  counted)."""
  by_kernel_name = {re.sub(r'[.\-]', '_', name): name for name in hlo.instructions}
  rows = []  # (op, microseconds, kind, op_name)
  for op, us in times.items():
    op = op if op in hlo.instructions else by_kernel_name.get(op, op)
    instruction = hlo.instructions.get(op)
    if instruction is None or instruction.opcode not in _CONTROL_FLOW:
      rows.append((op, us, op_kind(hlo, op), instruction and instruction.op_name))
  total = sum(us for _, us, _, _ in rows) or 1.0
  groups = {key: collections.Counter() for key in ('kind', 'phase', 'layer', 'op')}
  for op, us, kind, op_name in rows:
    for key, value in (('kind', kind), ('phase', phase(op_name)), ('layer', layer(op_name)),
                       ('op', op)):
      groups[key][value] += us
  described = {op: dict(kind=kind, layer=layer(op_name)) for op, _, kind, op_name in rows}
  return dict(device_ms_per_step=total / steps / 1e3,
              by_kind=_shares(groups['kind'], steps, total),
              by_phase=_shares(groups['phase'], steps, total),
              by_layer=_shares(groups['layer'], steps, total, TOP),
              top_ops=[dict(row, **described[row['name']])
                       for row in _shares(groups['op'], steps, total, TOP)])


def profile_steps(run_step, compiled_text: str, steps: int = 3) -> dict:
  """summarize() of `steps` calls of `run_step()` (which waits for its step) traced with
  jax.profiler; `compiled_text` is the step's compiled HLO (`compiled.as_text()`)."""
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
    try:
      for _ in range(steps):
        run_step()
    finally:
      jax.profiler.stop_trace()
    times = device_op_times(trace_dir)
  return summarize(times, parse_hlo(compiled_text), steps)
