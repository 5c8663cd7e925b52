#!/usr/bin/env bash
# The soundtracks experiments of docs/EXPERIMENTS.md, end to end (CPU: hours; a GPU: minutes).
#
#   bash benchmarks/soundtracks.sh [DATA_DIR] [RUNS_DIR]
#
# Builds the soundtracks set (issue 11's nine Debian packages) if DATA_DIR has no manifest,
# then runs each experiment as grouped 5-fold cross-validation by track with seed 0, so every
# run is tested on the same tracks, and tabulates them with `harmonies compare`. Each run's
# report.md holds mean ± std, a 95% interval, per-class figures, the pooled confusion matrix and
# the SVM baseline on the same folds. Extra arguments for every run: HARMONIES_EXTRA="--device cuda".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${1:-data/soundtracks}
RUNS=${2:-runs/soundtracks}
H=(.venv/bin/harmonies)
EXTRA=(${HARMONIES_EXTRA:-})

[[ -f "$DATA/manifest.csv" ]] || "${H[@]}" dataset soundtracks "$DATA"
mkdir -p "$RUNS"

run() {  # run NAME ARGS...: one 5-fold experiment, skipped when its summary exists
  local name=$1; shift
  [[ -f "$RUNS/$name/metrics.json" ]] && return 0
  rm -rf "${RUNS:?}/$name"
  "${H[@]}" train "$DATA/manifest.csv" --folds 5 --seed 0 --out "$RUNS/$name" -q "${EXTRA[@]}" "$@"
}

run svm            --model svm
run lstm-defaults  --model lstm
run cnn-e10        --model cnn --epochs 10 --patience 4
run cnn-e10-recipe --model cnn --epochs 10 --patience 4 --select-by clip_accuracy \
                   --augment-options '{"p_eq": 0.5, "eq_db": 9, "p_bandlimit": 0.3}'
run lstm-recipe    --model lstm --select-by clip_accuracy --augment-options '{"p_eq": 0.5, "eq_db": 9}'

"${H[@]}" compare "$RUNS"/svm "$RUNS"/lstm-defaults "$RUNS"/cnn-e10 "$RUNS"/cnn-e10-recipe "$RUNS"/lstm-recipe \
  --out "$RUNS/table.md"
