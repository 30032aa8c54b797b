"""The speed benchmark's outputs: benchmarks/<device>-<date>.json per run and benchmarks/README.md,
one table per run, regenerated from every such JSON."""
import datetime
import glob
import json
import os
import platform

import jax

README_INTRO = """# Speed: our jitted train step vs. Hugging Face PyTorch

`python tools/benchmark.py models` times, per preset, our one jitted train step
(`vivit_jax.train.step.make_train_step`, forward + loss + backward + optimizer update, on one
device) and, where transformers has the same model (ViViT Model 1, VideoMAE pre-training and
fine-tuning, TimeSformer), the Hugging Face PyTorch model of the same configuration (same sizes,
clip, optimizer and gradient clipping; SDPA attention where transformers has it). On CPU the
presets run at reduced sizes (`configs/speed_benchmark.py`: width 192, 4 layers, short
64^2 clips; CNNs at a quarter of their width; our encoders unrolled: `scan_layers` made XLA:CPU's
backward 25-35% slower) in float32 on both sides; on a GPU at their real sizes, ours in bfloat16
with cudnn attention, theirs under bf16 autocast.

Columns: GFLOPs/clip is XLA's cost analysis of the whole train step divided by the batch (the
forward alone is in the JSON), of the model unscanned, without remat and with XLA attention, so
that every layer and attention product counts once (`flops.counting_config`); step ms the median
over the timed steps after warm-up; MFU the achieved train-step FLOP/s over the device's matmul
rate measured in the same run (bf16 on GPU, float32 on CPU); memory the compiled step's argument
+ output + temporary bytes (the device's peak bytes in use, where it keeps statistics, are in the
JSON); ratio = our clips/s / theirs. `--profile_steps N` adds where the step's time goes (op
kinds, forward/backward/optimizer, layers, top ops: `tools/benchmarks/speed/profile.py`);
`--find_max_batch` the largest batch per device, with and without remat.

Phases (models with an HF peer): our forward (the loss), forward + backward (loss and every
gradient, no optimizer) and train step against HF's, each pair timed back to back in every round;
the last column gives ours / HF median ms and HF ms / our ms (> 1: ours faster). Where XLA gives
no cost analysis, FLOPs are analytic (marked *).

On a GPU: `OUT_DIR=$OUT tools/gpu_benchmark.sh all` runs every preset in one device call (no new
model after 7 minutes, stopped at 9 1/3; the script says what to carry), then copy its JSON here
and run `python -m tools.benchmarks.speed.report benchmarks`.
"""


def device_name(device=None) -> str:
  """'cpu-x86_64-2core' on CPU, else the device kind in lower case with dashes ('nvidia-h200')."""
  device = device or jax.devices()[0]
  if device.platform == 'cpu':
    return f'cpu-{platform.machine()}-{os.cpu_count()}core'
  return '-'.join(device.device_kind.lower().split())


def today() -> str:
  return datetime.date.today().isoformat()


def stem(record: dict) -> str:
  """'<device>-<date>', then '-<tag>' where the run has one (runs of a day in parts)."""
  return '-'.join([record['device'], record['date']] + ([record['tag']] if record.get('tag')
                                                        else []))


def write(record: dict, out: str) -> str:
  """Writes OUT/<stem>.json and regenerates OUT/README.md; returns this run's table."""
  with open(os.path.join(out, f'{stem(record)}.json'), 'w') as f:
    json.dump(record, f, indent=1)
  regenerate(out)
  return table(record)


def regenerate(out: str):
  """Rewrites OUT/README.md from every models record OUT/*-<date>*.json (e.g. after copying in a
  GPU run's JSON: `python -m tools.benchmarks.speed.report benchmarks`)."""
  records = []
  for path in sorted(glob.glob(os.path.join(out, '*-????-??-??*.json'))):
    with open(path) as f:
      loaded = json.load(f)
    if loaded.get('benchmark') == 'models':
      records.append(loaded)
  with open(os.path.join(out, 'README.md'), 'w') as f:
    f.write('\n'.join([README_INTRO] + [table(r) for r in records]))


def _number(value, digits: int = 1) -> str:
  return '-' if value is None else f'{value:,.{digits}f}'


def _gib(value) -> str:
  return '-' if value is None else f'{value / 2 ** 30:.2f} GiB'


def table(record: dict) -> str:
  """The markdown section of one run."""
  rows = ['| model | size | clip (T x S^2) x batch | params (M) | GFLOPs/clip | compile s | '
          'step ms | clips/s | MFU | memory | HF clips/s | ratio | ours / HF ms: fwd, '
          'fwd+bwd, step |',
          '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  for r in record['rows']:
    if 'error' in r or 'skipped' in r:
      text = f"failed: {_cell(r['error'])}" if 'error' in r else f"skipped: {r['skipped']}"
      rows.append(f"| {r['model']} | {record['size']} | {text} |" + ' |' * 10)
      continue
    hf = r.get('hf') or {}
    gflops = _number(r['gflops_train_per_clip'], 2) + (
        '*' if (r.get('flops_source') or {}).get('train') == 'analytic' else '')
    rows.append(
        f"| {r['model']} | {record['size']} | {r['clip']} x {r['batch']} | "
        f"{r['params'] / 1e6:.2f} | {gflops} | "
        f"{_number(r['compile_s'])} | {_number(r['step_ms'])} | {_number(r['clips_per_s'])} | "
        f"{_number(100 * r['mfu'])}% | {_gib(r['compiled_memory_bytes'])} | "
        f"{_number(hf.get('clips_per_s'))} | {_number(r.get('ratio'), 2)} | "
        f"{_phase_cell(r.get('phases'))} |")
  extra = [f"- {note}" for note in record['notes']]
  if any((r.get('flops_source') or {}).get('train') == 'analytic' for r in record['rows']):
    extra.append('- GFLOPs marked * are analytic (3 x the forward\'s matrix products and '
                 'convolutions, flops.analytic_flops): XLA gave no cost analysis.')
  if record.get('max_batch'):
    extra.append('- Largest batch that fits on one device: ' + '; '.join(
        _max_batch(m) for m in record['max_batch']) + '.')
  profiles = [_profile(r) for r in record['rows'] if r.get('profile')]
  return '\n'.join([
      f"## {record['device']}, {record['date']} ({record['size']} sizes"
      f"{', ' + record['tag'] if record.get('tag') else ''})", '',
      f"Matmul rate measured in the run: {record['matmul_tflops']:.3f} TFLOP/s "
      f"({record['matmul_dtype']}, {record['matmul_size']}^2). {record['software']}.", '',
      *rows, '', *extra, '',
      *(['Where our step\'s device time goes (`--profile_steps`: shares of the summed op time '
         'of the traced steps, which on CPU overlap across threads; by kind, by phase, then the '
         'top ops and their layers):', '', *profiles, ''] if profiles else []),
      f"Regenerate: `{record['command']}`.", ''])


def _phase_cell(phases) -> str:
  """'112 / 160 (1.43x); 401 / 388 (0.97x); ...' (ours ms / HF ms (HF/ours)) per phase, or '-'."""
  if not phases:
    return '-'
  return '; '.join(f"{p['ours_ms']:,.0f} / {p['hf_ms']:,.0f} ({p['ratio']:.2f}x)"
                   for p in phases)


def _cell(text: str) -> str:
  return ' '.join(text.split())[:200].replace('|', '/')


def _max_batch(m: dict) -> str:
  """'vivit1 remat=none: 40 (48 does not fit; memory analysis predicted 42)'."""
  text = f"{m['model']} remat={m['remat']}: {m['batch']}"
  details = [f"{m['fails_at']} does not fit"] if m.get('fails_at') else []
  if m.get('predicted') is not None:
    details.append(f"compiled memory predicted {m['predicted']}")
  return text + (f" ({'; '.join(details)})" if details else '')


def _shares(rows: list, limit: int) -> str:
  return ', '.join(f"{r['name']} {100 * r['share']:.0f}%" for r in rows[:limit])


def _profile(r: dict) -> str:
  """One bullet: device ms per step, kinds, phases, the top 3 ops."""
  p = r['profile']
  top = '; '.join(f"{o['name']} ({o['kind']}, {o['layer']}) {100 * o['share']:.0f}%"
                  for o in p['top_ops'][:3])
  return (f"- {r['model']}: ops {p['device_ms_per_step']:,.1f} ms per step of "
          f"{r['step_ms']:,.1f}. Kinds: {_shares(p['by_kind'], 5)}. Phases: "
          f"{_shares(p['by_phase'], 4)}. Top ops: {top}.")


if __name__ == '__main__':
  import sys  # pylint: disable=import-outside-toplevel
  regenerate(sys.argv[1] if len(sys.argv) > 1 else 'benchmarks')
