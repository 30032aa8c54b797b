#!/usr/bin/env bash
# The GPU speed run (benchmarks/README.md). One device call runs every preset:
#
#   OUT_DIR=$OUT tools/gpu_benchmark.sh all   (device tool: carry .whl, timeout_s 600)
#
# A device call is at most 10 minutes of wall time and a session has 15 minutes of device time in
# all (machine start included), so `all` is sized for one call: our step and the HF peer's
# interleaved, STEPS (6) timed steps a side after 2 warm-up steps, no phases (forward and
# forward + backward cost two more compiles per transformer: PHASES=1 adds them) and no profile.
# Most of a model's time is compiling (not yet timed on a GPU: about 30-90 s estimated for a
# B-size transformer); the FLOP count lowers the unscanned step on the host CPU (GPU plugins give
# no cost analysis), seconds. Presets run in order of importance: the targets (ViViT-B Model 1, VideoMAE-B
# pre-training, TimeSformer-B), VideoMAE fine-tuning, ViViT Models 2-4, then the CNNs. No model
# starts after BUDGET_S (420) seconds: those get a "skipped" row; `timeout` stops the run at
# LIMIT_S (560) seconds, before the call's 600. The record is written after every model, so a run
# cut short keeps what it measured. Compile times on the GPU are estimates until a first run: if
# models were skipped, a second call runs just those, e.g.
#   OUT_DIR=$OUT MODELS=vivit4,i3d,slowfast,c3d TAG=all2 tools/gpu_benchmark.sh all
#
# Other parts, each one more call where device time is left:
#   targets    the three targets with profiles (--profile_steps 3) and phases
#   max_batch  the largest ViViT-B/16x2 batch per GPU, remat none and full
#
# Each writes <device>-<date>-<part or TAG>.json and regenerates README.md in OUT_DIR (default
# benchmarks/); copy the JSON into benchmarks/ and run `python -m tools.benchmarks.speed.report
# benchmarks` to add its table there. SIZE=tiny runs a part at CPU sizes (a dry run of this
# script): `SIZE=tiny BUDGET_S=900 LIMIT_S=1300 tools/gpu_benchmark.sh all` took 964 s on the
# shared 2-core CPU under a load of ~7, its budget reached after 6 of the 10 presets (the CNNs
# then got skipped rows); their CPU measurement is in benchmarks/README.md.
#
# The GPU machine lacks ml_collections: carry it as a wheel in .whl/ (git-ignored). Here, once:
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl ml_collections==1.1.0
# Do not set JAX_PLATFORMS=cuda there: the FLOP count needs JAX's CPU backend.
set -euo pipefail
cd "$(dirname "$0")/.."
part=${1:?name a part: all, targets or max_batch}
size=${SIZE:-real}
out=${OUT_DIR:-benchmarks}
steps=${STEPS:-6}
budget=${BUDGET_S:-420}
limit=${LIMIT_S:-560}
mkdir -p "$out"
# JAX allocates on demand up to 95% of the GPU (torch's HF peer runs in the same process).
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 XLA_PYTHON_CLIENT_PREALLOCATE=false \
  XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
if ! python3 -c 'import ml_collections' 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/vivit_site .whl/*.whl
  export PYTHONPATH=/tmp/vivit_site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
run() {
  timeout --signal=INT --kill-after=20 "$limit" python3 tools/benchmark.py models --size "$size" \
    --out "$out" --tag "${TAG:-$part}" --time_budget_s "$budget" "$@"
}
phases=--nophases
[[ ${PHASES:-0} == 1 ]] && phases=--phases
case $part in
  all) args=(--models "${MODELS:-vivit1,videomae_pretrain,timesformer,videomae_finetune,vivit2,vivit3,vivit4,i3d,slowfast,c3d}"
             --steps "$steps" "$phases") ;;
  targets) args=(--models vivit1,videomae_pretrain,timesformer --steps "$steps" --profile_steps 3
                 --phases) ;;
  max_batch) args=(--models vivit1 --steps 3 --nophases --find_max_batch --remat_arms none,full
                   --max_batch_tolerance 0.1) ;;
  *) echo "unknown part '$part': all, targets or max_batch" >&2; exit 2 ;;
esac
start=$SECONDS
rc=0
run "${args[@]}" || rc=$?
echo "gpu_benchmark.sh $part (SIZE=$size): $((SECONDS - start)) s, exit status $rc"
exit $rc
