#!/usr/bin/env bash
# The GPU speed run (benchmarks/README.md) in parts that each fit one short device call:
#
#   tools/gpu_benchmark.sh targets    ViViT-B/16x2 Model 1 and VideoMAE-B pre-training against HF
#                                     (bf16, cudnn attention), with profiles
#   tools/gpu_benchmark.sh max_batch  the largest ViViT-B/16x2 batch per GPU, remat none and full
#   tools/gpu_benchmark.sh rest       every other preset (ViViT 2-4, VideoMAE fine-tuning,
#                                     TimeSformer, I3D, SlowFast, C3D)
#
# Each writes benchmarks/<device>-<date>-<part>.json (after every model, so a run cut short keeps
# what it measured) and regenerates benchmarks/README.md, into OUT_DIR (default benchmarks/).
# SIZE=tiny runs the same parts at CPU sizes (a dry run of this script).
#
# The GPU machine lacks ml_collections: carry it as a wheel in .whl/ (git-ignored). Here, once:
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl ml_collections==1.1.0
set -euo pipefail
cd "$(dirname "$0")/.."
part=${1:?name a part: targets, max_batch or rest}
size=${SIZE:-real}
out=${OUT_DIR:-benchmarks}
mkdir -p "$out"
# JAX allocates on demand up to 95% of the GPU (torch's HF peer runs in the same process).
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 XLA_PYTHON_CLIENT_PREALLOCATE=false \
  XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
if ! python3 -c 'import ml_collections' 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/vivit_site .whl/*.whl
  export PYTHONPATH=/tmp/vivit_site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
run() { python3 tools/benchmark.py models --size "$size" --out "$out" --tag "$part" "$@"; }
case $part in
  targets) run --models vivit1,videomae_pretrain --steps 20 --profile_steps 3 ;;
  max_batch) run --models vivit1 --steps 6 --find_max_batch --remat_arms none,full \
               --max_batch_tolerance 0.1 ;;
  rest) run --models videomae_finetune,timesformer,vivit2,vivit3,vivit4,i3d,slowfast,c3d \
          --steps 12 --profile_steps 2 ;;
  *) echo "unknown part '$part': targets, max_batch or rest" >&2; exit 2 ;;
esac
