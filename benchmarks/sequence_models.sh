#!/usr/bin/env bash
# Issue 14's figures: the sequence models (LSTM windowed and streamed, transformer) beside the
# CNN and the SVM, 5 folds by track, on the instrument corpus and the soundtracks set; int8
# against fp32 fold by fold; the decision-latency curves; the LSTM's per-hop cost both ways.
#
#   bash benchmarks/sequence_models.sh [INSTRUMENTS_DIR] [SOUNDTRACKS_DIR] [RUNS_DIR]
#
# CPU: hours (the soundtracks CNN dominates); each step is skipped when its output exists, so a
# killed run resumes. docs/EXPERIMENTS.md ("Sequence models") holds the figures of one run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
INSTRUMENTS=${1:-data/demo}
SOUNDTRACKS=${2:-data/soundtracks}
RUNS=${3:-runs/sequence}
H=(.venv/bin/harmonies)
PY=.venv/bin/python

# The instrument corpus as `make demo` builds it (60 tunes x 6 families, 8 s); the soundtracks
# set of issue 11 (nine Debian game packages).
[[ -f "$INSTRUMENTS/manifest.csv" ]] || "${H[@]}" dataset instruments "$INSTRUMENTS" --tunes 60 --seconds 8
[[ -f "$SOUNDTRACKS/manifest.csv" ]] || "${H[@]}" dataset soundtracks "$SOUNDTRACKS"

run() {  # run DATA NAME ARGS...: one 5-fold experiment, skipped when its summary exists
  local data=$1 name=$2; shift 2
  [[ -f "$RUNS/$name/metrics.json" ]] && return 0
  rm -rf "${RUNS:?}/$name"
  "${H[@]}" train "$data/manifest.csv" --folds 5 --seed 0 --out "$RUNS/$name" -q "$@"
}

# Instrument corpus: the demo's 2 s windows; today's defaults otherwise (the CNN at the demo's 20 epochs).
run "$INSTRUMENTS" instruments/svm --model svm
run "$INSTRUMENTS" instruments/lstm --model lstm --window 2
run "$INSTRUMENTS" instruments/cnn --model cnn --window 2 --epochs 20
run "$INSTRUMENTS" instruments/transformer --model transformer --window 2
# Soundtracks: today's defaults (the CNN at the 10-epoch budget of docs/EXPERIMENTS.md).
run "$SOUNDTRACKS" soundtracks/svm --model svm
run "$SOUNDTRACKS" soundtracks/lstm --model lstm
run "$SOUNDTRACKS" soundtracks/cnn --model cnn --epochs 10 --patience 4
run "$SOUNDTRACKS" soundtracks/transformer --model transformer

for set in instruments soundtracks; do
  data=$INSTRUMENTS; [[ $set == soundtracks ]] && data=$SOUNDTRACKS
  for model in cnn lstm transformer; do  # each fold's int8 bundle (RUN/bundles/fold-K), int8 against fp32
    [[ -f "$RUNS/$set/$model/int8.json" ]] || $PY benchmarks/bench_int8_folds.py "$RUNS/$set/$model"
  done
  for k in 0 1 2 3 4; do  # the LSTM as listen runs it: stateful, a fresh stream per clip
    "${H[@]}" evaluate "$RUNS/$set/lstm/bundles/fold-$k" "$data/manifest.csv" --streaming -q \
      | tee "$RUNS/$set/lstm/bundles/fold-$k.streaming.txt"
  done
  # Accuracy against seconds heard, as listen answers (each LSTM bundle statefully), every
  # model's int8 bundles of the five folds pooled; per clip, and per track on the soundtracks.
  "${H[@]}" evaluate "$RUNS/$set/cnn/bundles" "$data/manifest.csv" --latency-curve -q --out "$RUNS/$set/latency" \
    --with "$RUNS/$set/lstm/bundles" --with "$RUNS/$set/transformer/bundles" --names CNN,LSTM,transformer
  if [[ $set == soundtracks ]]; then
    "${H[@]}" evaluate "$RUNS/$set/cnn/bundles" "$data/manifest.csv" --latency-curve -q --per track \
      --out "$RUNS/$set/latency-tracks" --with "$RUNS/$set/lstm/bundles" --with "$RUNS/$set/transformer/bundles" \
      --names CNN,LSTM,transformer
  fi
done

# The LSTM's cost per hop on one core, streamed (hop and step models) against the window model re-run.
$PY benchmarks/bench_streaming.py --json > "$RUNS/bench_streaming.json"
