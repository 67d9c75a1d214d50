#!/usr/bin/env bash
# The prepared GPU check (issue 10): one script, <= 10 minutes on one GPU, a table at the end,
# non-zero exit on any failure.
#
#   benchmarks/gpu_check.sh [--authors-dir PATH] [--out DIR]     # on the GPU machine
#   benchmarks/gpu_check.sh --dry-run [--authors-dir PATH]       # on a CPU, tiny sizes (CI runs this)
#
# Steps: (1) the CUDA-marked tests (every method's step in bf16/fp16, EMA, resume, SDPA kernel,
# eval suites); (2) our training throughput on the paper's ViT-B/16 step (batch 256, bf16) with
# MFU and peak memory; (3) the authors' step on the same settings in their fp16 autocast, from a
# checkout given with --authors-dir (skipped without one); (4) a short real `latentmim pretrain`
# on synthetic at 128 px in bf16 with the NN monitor. A dry run does the same on CPU with tiny
# sizes, in fp32: it proves the script works before GPU minutes are spent on it.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0; AUTHORS=""; OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --authors-dir) AUTHORS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    *) echo "gpu_check.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
PY="${PYTHON:-python}"
[ -x .venv/bin/python ] && PY="${PYTHON:-.venv/bin/python}"
OUT="${OUT:-$(mktemp -d)}"; mkdir -p "$OUT"
if [ "$DRY" = 1 ]; then
  DEV=cpu; CFG=tiny; PREC=fp32; STEPS=2
  PRETRAIN=(dataset=synthetic synthetic.num_train=64 synthetic.num_val=32 synthetic.image_size=24 grid_size=4
            patch_size=4 patch_gap=2 encoder=vit_tiny embed_dim=32 depth=2 num_heads=2 num_vis=4 decoder_depth=1
            decoder_embed_dim=16 decoder_num_heads=2 proj.mlp_dim=32 batch_size=16 epochs=1 nn_train_images=64
            nn_val_images=32 env.device=cpu env.precision=fp32 env.workers=0 baselines=true)
else
  DEV=cuda; CFG=vitb16_paper; PREC=bf16; STEPS=10
  # 128-px synthetic, ViT-S/16 (8x8 grid), a few epochs: the monitor runs after each epoch
  PRETRAIN=(dataset=synthetic synthetic.num_train=20000 synthetic.num_val=2000 synthetic.image_size=160 grid_size=8
            patch_size=16 patch_gap=4 encoder=vit_small num_vis=8 decoder_embed_dim=256 decoder_num_heads=8
            proj.mlp_dim=1024 batch_size=256 epochs=3 warmup_frac=0.1 target_tau_frac=0.02 lr=1e-3
            nn_train_images=5000 nn_val_images=2000 env.device=cuda env.precision=bf16 env.workers=8 baselines=true)
fi

declare -a NAMES RESULTS
record() { NAMES+=("$1"); RESULTS+=("$2"); }
FAILED=0

echo "== 1/4 CUDA-marked tests"
if "$PY" -m pytest -q -m cuda tests/cuda -p no:cacheprovider > "$OUT/cuda_tests.log" 2>&1; then
  record "CUDA tests" "$(tail -1 "$OUT/cuda_tests.log")"
else
  record "CUDA tests" "FAILED: $(tail -1 "$OUT/cuda_tests.log") (log: $OUT/cuda_tests.log)"; FAILED=1
fi

echo "== 2/4 our training step ($CFG, $PREC, $DEV)"
if "$PY" benchmarks/throughput.py "$CFG" "$PREC" --device "$DEV" --steps "$STEPS" --warmup 2 --json \
     > "$OUT/ours.json" 2> "$OUT/ours.log"; then
  record "ours: $CFG $PREC" "$("$PY" benchmarks/gpu_check_report.py ours "$OUT/ours.json")"
else
  record "ours: $CFG $PREC" "FAILED (log: $OUT/ours.log)"; FAILED=1
fi

echo "== 3/4 the authors' step"
if [ -z "$AUTHORS" ]; then
  record "authors: $CFG fp16" "skipped: no --authors-dir"
else
  APREC=fp16; [ "$DRY" = 1 ] && APREC=fp32
  if "$PY" benchmarks/authors_step.py --authors-dir "$AUTHORS" --config "$CFG" --device "$DEV" --precision "$APREC" \
       --steps "$STEPS" --warmup 2 > "$OUT/authors.json" 2> "$OUT/authors.log"; then
    record "authors: $CFG $APREC" "$("$PY" benchmarks/gpu_check_report.py authors "$OUT/authors.json" "$OUT/ours.json")"
  else
    record "authors: $CFG $APREC" "FAILED (log: $OUT/authors.log)"; FAILED=1
  fi
fi

echo "== 4/4 a short real pretrain on synthetic"
T0=$(date +%s)
if "$PY" -m latentmim.cli.main pretrain "${PRETRAIN[@]}" output_dir="$OUT" job_name=pretrain log.progress=false \
     > "$OUT/pretrain.log" 2>&1; then
  record "pretrain synthetic" "$("$PY" benchmarks/gpu_check_report.py pretrain "$OUT/pretrain/results.json" $(( $(date +%s) - T0 )))"
else
  record "pretrain synthetic" "FAILED (log: $OUT/pretrain.log)"; FAILED=1
fi

echo
echo "| check | result |"
echo "|---|---|"
for i in "${!NAMES[@]}"; do echo "| ${NAMES[$i]} | ${RESULTS[$i]} |"; done
echo "(logs in $OUT; dry run: $DRY)"
exit $FAILED
