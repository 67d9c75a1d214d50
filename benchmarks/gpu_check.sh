#!/usr/bin/env bash
# The GPU check: one script, under 10 minutes on one H100, a table at the end (also when a step
# fails), a non-zero exit on any failure. It needs nothing but the repository and a Python with
# a CUDA build of torch; what that Python lacks (Hydra, OmegaConf) travels as wheels in .whl/.
#
#   benchmarks/gpu_check.sh --prepare                          # here, with network: fetch the wheels into .whl/
#   benchmarks/gpu_check.sh [--authors-dir PATH] [--out DIR]   # on the GPU machine (offline)
#   benchmarks/gpu_check.sh --dry-run [--out DIR]              # on a CPU at tiny sizes (CI runs this)
#
# Steps: (0) preflight: imports, and a CUDA build that sees a GPU (a CPU-only torch is a failure);
# (1) the CUDA-marked tests; (2) our training step on the paper's ViT-B/16 (batch 256, bf16) with
# MFU against the device's bf16 peak (chosen by its name, printed) and peak memory; (3) the
# authors' step on the same settings, from a checkout given with --authors-dir (skipped without);
# (4) a short real `latentmim pretrain` of ViT-S/16 on 128-px synthetic images with the NN monitor.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0; PREPARE=0; AUTHORS=""; OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --prepare) PREPARE=1 ;;
    --authors-dir) AUTHORS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    *) echo "gpu_check.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
PY="${PYTHON:-python3}"
[ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && PY=.venv/bin/python
WHEELS=.whl  # ignored by git; carried to the GPU machine

if [ "$PREPARE" = 1 ]; then
  # The GPU machines run Python 3.12 with torch, timm and the rest, but not Hydra and OmegaConf.
  mkdir -p "$WHEELS"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d "$WHEELS" "hydra-core>=1.3,<1.4" "omegaconf>=2.3,<2.4" \
    || { echo "gpu_check.sh: --prepare: pip could not download hydra-core / omegaconf" >&2; exit 2; }
  # OmegaConf's parser runtime exists on PyPI as a source archive only: build its (pure Python) wheel here.
  python3 -m pip wheel -q --no-deps -w "$WHEELS" "antlr4-python3-runtime==4.9.*" \
    || { echo "gpu_check.sh: --prepare: could not build the antlr4-python3-runtime wheel" >&2; exit 2; }
  echo "gpu_check.sh: wheels in $WHEELS/: $(ls "$WHEELS" | tr '\n' ' ')"
  exit 0
fi

OUT="${OUT:-$(mktemp -d)}"; mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! "$PY" -c "import hydra, omegaconf" 2>/dev/null && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$OUT/site" "$WHEELS"/*.whl \
    > "$OUT/wheels.log" 2>&1 && export PYTHONPATH="$PYTHONPATH:$OUT/site"
fi

echo "== 0/4 preflight"
if [ "$DRY" = 1 ]; then NEED_GPU=0; else NEED_GPU=1; fi
if ! "$PY" - "$NEED_GPU" <<'EOF'
import importlib, sys
for name in ("torch", "timm", "hydra", "omegaconf", "latentmim.cli.main"):
    try:
        importlib.import_module(name)
    except ImportError as err:
        hint = " (run benchmarks/gpu_check.sh --prepare where pip has network, then bring .whl/)" \
            if name in ("hydra", "omegaconf") else ""
        sys.exit(f"gpu_check.sh: preflight: cannot import {name}: {err}{hint}")
import torch
if sys.argv[1] == "1" and not torch.cuda.is_available():
    sys.exit(f"gpu_check.sh: preflight: torch {torch.__version__} sees no CUDA GPU "
             f"(CUDA build: {torch.version.cuda or 'none, a CPU-only torch'})")
where = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
print(f"torch {torch.__version__}, {where}")
EOF
then
  exit 2
fi

if [ "$DRY" = 1 ]; then
  DEV=cpu; CFG=tiny; PREC=fp32; STEPS=2; MODE=dry; T_TESTS=300; T_STEP=120; T_PRETRAIN=300
else
  DEV=cuda; CFG=vitb16_paper; PREC=bf16; STEPS=10; MODE=gpu; T_TESTS=180; T_STEP=120; T_PRETRAIN=240
fi
mapfile -t PRETRAIN < <("$PY" benchmarks/gpu_check_config.py "$MODE")

declare -a NAMES RESULTS
record() { NAMES+=("$1"); RESULTS+=("$2"); }
FAILED=0
why() { [ "$1" = 124 ] && echo "TIMEOUT after $2 s" || echo "FAILED"; }

echo "== 1/4 CUDA-marked tests"
timeout "$T_TESTS" "$PY" -m pytest -q -m cuda tests/cuda -p no:cacheprovider > "$OUT/cuda_tests.log" 2>&1
rc=$?
if [ $rc = 0 ] || { [ "$DRY" = 1 ] && [ $rc = 5 ]; }; then
  record "CUDA tests" "$(tail -1 "$OUT/cuda_tests.log")"
else
  record "CUDA tests" "$(why $rc "$T_TESTS"): $(tail -1 "$OUT/cuda_tests.log") (log: $OUT/cuda_tests.log)"; FAILED=1
fi

echo "== 2/4 our training step ($CFG, $PREC, $DEV)"
if timeout "$T_STEP" "$PY" benchmarks/throughput.py "$CFG" "$PREC" --device "$DEV" --steps "$STEPS" --warmup 2 --json \
     > "$OUT/ours.json" 2> "$OUT/ours.log"; then
  record "ours: $CFG $PREC" "$("$PY" benchmarks/gpu_check_report.py ours "$OUT/ours.json")"
else
  rc=$?; record "ours: $CFG $PREC" "$(why $rc "$T_STEP") (log: $OUT/ours.log)"; FAILED=1
fi

echo "== 3/4 the authors' step"
APREC=fp16; [ "$DRY" = 1 ] && APREC=fp32
if [ -z "$AUTHORS" ]; then
  record "authors: $CFG $APREC" "skipped: no --authors-dir"
elif timeout "$T_STEP" "$PY" benchmarks/authors_step.py --authors-dir "$AUTHORS" --config "$CFG" --device "$DEV" \
       --precision "$APREC" --steps "$STEPS" --warmup 2 > "$OUT/authors.json" 2> "$OUT/authors.log"; then
  record "authors: $CFG $APREC" "$("$PY" benchmarks/gpu_check_report.py authors "$OUT/authors.json" "$OUT/ours.json")"
else
  rc=$?; record "authors: $CFG $APREC" "$(why $rc "$T_STEP") (log: $OUT/authors.log)"; FAILED=1
fi

echo "== 4/4 a short real pretrain on synthetic"
T0=$(date +%s)
if timeout "$T_PRETRAIN" "$PY" -m latentmim.cli.main pretrain "${PRETRAIN[@]}" output_dir="$OUT" job_name=pretrain \
     log.progress=false > "$OUT/pretrain.log" 2>&1; then
  record "pretrain synthetic" "$("$PY" benchmarks/gpu_check_report.py pretrain "$OUT/pretrain/results.json" $(( $(date +%s) - T0 )))"
else
  rc=$?; record "pretrain synthetic" "$(why $rc "$T_PRETRAIN"): $(tail -1 "$OUT/pretrain.log") (log: $OUT/pretrain.log)"; FAILED=1
fi

echo
echo "| check | result |"
echo "|---|---|"
for i in "${!NAMES[@]}"; do echo "| ${NAMES[$i]} | ${RESULTS[$i]} |"; done
echo "(logs in $OUT; dry run: $DRY)"
exit $FAILED
