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

# Every CNN run before "Two-second windows" used 3 s windows, the default then: they pass --window 3.
# The first five runs predate today's defaults: they name the options of their time
# (loss weights, best epoch by window macro-F1, no pretrained backbone).
OLD=(--balance weights --select-by window_macro_f1)
run svm            --model svm
run lstm-defaults  --model lstm "${OLD[@]}"
run cnn-e10        --model cnn --members 1 --window 3 --epochs 10 --patience 4 --from-scratch "${OLD[@]}"
run cnn-e10-recipe --model cnn --members 1 --window 3 --epochs 10 --patience 4 --from-scratch --balance weights --select-by clip_accuracy \
                   --augment-options '{"p_eq": 0.5, "eq_db": 9, "p_bandlimit": 0.3}'
run cnn-e10-balanced --model cnn --members 1 --window 3 --epochs 10 --patience 4 --from-scratch --balance sampler --select-by clip_accuracy
run cnn-e10-small  --model cnn --members 1 --epochs 10 --patience 4 --from-scratch --balance weights --window 5 --mixup 0.4 \
                   --select-by clip_accuracy --model-options '{"width": 0.5, "dropout": 0.5}'

# Pretraining, measured honestly: one backbone per fold, pretrained on the set's music without
# that fold's test tracks (--exclude), then today's defaults fine-tuned from it ({fold}).
for k in 0 1 2 3 4; do
  [[ -f "$RUNS/backbone-fold$k/report.md" ]] && continue
  rm -rf "${RUNS:?}/backbone-fold$k"
  "${H[@]}" pretrain "$DATA/manifest.csv" --exclude "$RUNS/svm/fold-$k/splits.json" --out "$RUNS/backbone-fold$k" \
    --epochs 8 --batch-size 64 -q "${EXTRA[@]}"
done
run cnn-e10-pretrained --model cnn --members 1 --window 3 --epochs 10 --patience 4 --select-by clip_accuracy --backbone "$RUNS/backbone-fold{fold}"
run lstm-new-defaults --model lstm   # today's defaults
run probe-pretrained --model probe --backbone "$RUNS/backbone-fold{fold}"

# The small-data curve (issue 12): the same folds, each keeping 10%, 25% or 50% of every label's
# training tracks (validation and test unchanged); the per-fold backbones are those above.
CURVE=()
for f in 0.1 0.25 0.5; do
  run svm-$f --model svm --train-fraction $f
  run probe-$f --model probe --backbone "$RUNS/backbone-fold{fold}" --train-fraction $f
  run scratch-$f --model cnn --members 1 --window 3 --epochs 10 --patience 4 --select-by clip_accuracy --from-scratch --train-fraction $f
  run pretrained-$f --model cnn --members 1 --window 3 --epochs 10 --patience 4 --select-by clip_accuracy --backbone "$RUNS/backbone-fold{fold}" --train-fraction $f
  CURVE+=(--run SVM $f "$RUNS/svm-$f" --run "linear probe" $f "$RUNS/probe-$f" \
          --run "CNN from scratch" $f "$RUNS/scratch-$f" --run "CNN from the fold's backbone" $f "$RUNS/pretrained-$f")
done
.venv/bin/python benchmarks/small_data_curve.py --baseline SVM --out "$RUNS/small-data-curve.png" --table "$RUNS/small-data-curve.md" \
  "${CURVE[@]}" --run SVM 1 "$RUNS/svm" --run "linear probe" 1 "$RUNS/probe-pretrained" \
  --run "CNN from scratch" 1 "$RUNS/cnn-e10-balanced" --run "CNN from the fold's backbone" 1 "$RUNS/cnn-e10-pretrained"

"${H[@]}" compare "$RUNS"/cnn-e10 "$RUNS"/cnn-e10-balanced "$RUNS"/cnn-e10-pretrained "$RUNS"/cnn-e10-recipe \
  "$RUNS"/cnn-e10-small "$RUNS"/lstm-defaults "$RUNS"/lstm-new-defaults "$RUNS"/probe-pretrained "$RUNS"/svm --out "$RUNS/table.md"

# int8 against fp32, fold by fold, on the device runtime.
.venv/bin/python benchmarks/bench_int8_folds.py "$RUNS/cnn-e10"
.venv/bin/python benchmarks/bench_int8_folds.py "$RUNS/cnn-e10-balanced"

# Run-to-run noise and averaging (docs/EXPERIMENTS.md): today's defaults again, three candidates
# against them, test-time crops on cnn-e10-balanced, then every run of the family averaged.
# The recipe of the runs below: the best epoch chosen by validation clip accuracy, as the CNN did
# by default until its last epoch was kept instead (the end of this script).
E10=(--model cnn --members 1 --window 3 --epochs 10 --patience 4 --from-scratch --select-by clip_accuracy)
run r0-defaults "${E10[@]}"
run mixup10 "${E10[@]}" --mixup 1.0
run avg998 "${E10[@]}" --average-weights 0.998
run crop25 "${E10[@]}" --augment-options '{"crop_jitter": 0.25}'
.venv/bin/python benchmarks/test_time_crops.py "$RUNS/cnn-e10-balanced"
FAMILY=("$RUNS"/cnn-e10-balanced "$RUNS"/r0-defaults "$RUNS"/mixup10 "$RUNS"/avg998 "$RUNS"/crop25)
.venv/bin/python benchmarks/ensemble_folds.py "${FAMILY[@]}" --out "$RUNS/ensemble-gain.json"
[[ -f "$RUNS/ensemble5/metrics.json" ]] || { rm -rf "$RUNS/ensemble5"; "${H[@]}" ensemble "${FAMILY[@]}" --out "$RUNS/ensemble5" -q; }
.venv/bin/python benchmarks/bench_int8_folds.py "$RUNS/ensemble5" --format tflite

# One network of the default size taught by the five-run average (distillation), and two more
# candidates against today's defaults: stronger SpecAugment, and a classifier that keeps the bands apart.
run distilled "${E10[@]}" --teacher "$RUNS/ensemble5" --distill-weight 0.7 --distill-temperature 3
run specaug-strong "${E10[@]}" --augment-options '{"p_mask": 1.0, "freq_width": 16, "time_width": 32}'
run pool-time "${E10[@]}" --model-options '{"pool": "time"}'

# The LSTM study (resumes if killed; each trial is five fold trainings). Trial 0 is the base:
# the LSTM defaults of the time (loss weights, best epoch by window macro-F1).
.venv/bin/python -c "from pyharmonies.training.config import TrainConfig as T; from pathlib import Path; \
T(data='$DATA/manifest.csv', model='lstm', balance='weights', select_by='window_macro_f1').save(Path('$RUNS/lstm-base.json'))"
"${H[@]}" tune "$DATA/manifest.csv" --model lstm --trials 5 --folds 5 --epochs 15 --out "$RUNS/tune-lstm" --quiet \
  --base-config "$RUNS/lstm-base.json"

# Pitch shift and time stretch: two settings, fixed before either ran.
run pitch-tempo "${E10[@]}" --augment-options '{"p_pitch": 0.5, "pitch_semitones": 2, "p_stretch": 0.5, "stretch": 0.15}'
run pitch-tempo-strong "${E10[@]}" --augment-options '{"p_pitch": 0.8, "pitch_semitones": 3, "p_stretch": 0.8, "stretch": 0.25}'
# Every full-width run of the family on these folds averaged (the distilled ones learnt from five of them: left out).
.venv/bin/python benchmarks/ensemble_folds.py "${FAMILY[@]}" "$RUNS"/specaug-strong "$RUNS"/pool-time \
  "$RUNS"/pitch-tempo "$RUNS"/pitch-tempo-strong --out "$RUNS/ensemble9.json"

# Half-width CNNs: nine random draws of today's defaults on the same folds (--split-seed 0); three of
# them averaged are what `train --members 3 --model-options '{"width": 0.5}'` trains (member i: seed + i).
NARROW=()
for s in 0 1 2 3 4 5 6 7 8; do
  run narrow-w05-s$s "${E10[@]}" --seed $s --split-seed 0 --model-options '{"width": 0.5}'
  NARROW+=("$RUNS"/narrow-w05-s$s)
done
.venv/bin/python benchmarks/ensemble_folds.py "${NARROW[@]}" --out "$RUNS/narrow-ensembles.json"
for first in 0 3 6; do
  name=narrow3-s$first
  [[ -f "$RUNS/$name/metrics.json" ]] || { rm -rf "${RUNS:?}/$name"
    "${H[@]}" ensemble "$RUNS"/narrow-w05-s{$first,$((first + 1)),$((first + 2))} --out "$RUNS/$name" -q; }
done
.venv/bin/python benchmarks/bench_int8_folds.py "$RUNS/narrow3-s3" --format tflite

# The epoch budget: the 30 epochs and patience 8 that were the CNN's default, measured at last
# (worse than 10 epochs and patience 4, which became the default).
run cnn-e30 --model cnn --members 1 --window 3 --epochs 30 --patience 8 --select-by clip_accuracy
run window6 "${E10[@]}" --window 6   # 6 s windows alone (every 3 s: half the windows, half the steps)

# Mean and max pooling, and a 20-epoch schedule run to its end (both stopped after the folds that
# docs/EXPERIMENTS.md reports, to free the CPU; here they run all five).
run meanmax "${E10[@]}" --model-options '{"pool": "meanmax"}'
run cnn-e20 "${E10[@]}" --epochs 20 --patience 20
# Class priors put back after balanced training, post hoc (nothing retrained).
.venv/bin/python benchmarks/prior_correction.py "$RUNS/cnn-e30" "$RUNS/window6" --out "$RUNS/prior-correction.json"
# Which epoch to keep: today's defaults with the best epoch chosen by validation, trained to the end of
# the schedule (--patience 10), so that its last.pt holds the last epoch of the same run (what
# --select-by last keeps); then today's CNN defaults, which keep the last epoch, with another draw.
run nostop "${E10[@]}" --patience 10
.venv/bin/python benchmarks/last_epoch.py "$RUNS/nostop" "$RUNS/window6" "$RUNS/cnn-e20" "$RUNS/meanmax" --out "$RUNS/last-epoch.json"
run last-s1 --model cnn --members 1 --window 3 --from-scratch --seed 1 --split-seed 0
# Training on the validation tracks too: today's defaults with --val 0, two draws on the same test folds.
run val0-s0 --model cnn --members 1 --window 3 --from-scratch --seed 0 --split-seed 0 --val 0
run val0-s1 --model cnn --members 1 --window 3 --from-scratch --seed 1 --split-seed 0 --val 0
# Two more single-network candidates: 2 s windows, and every track of a class equally likely.
run win2   --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --window 2
run win2-s1 --model cnn --members 1 --from-scratch --seed 1 --split-seed 0 --window 2
run win2-s2 --model cnn --members 1 --from-scratch --seed 2 --split-seed 0 --window 2   # the third and fourth draws,
run win2-s3 --model cnn --members 1 --from-scratch --seed 3 --split-seed 0 --window 2   # after which 2 s became the default
.venv/bin/python benchmarks/bench_int8_folds.py "$RUNS/win2-s2"
[[ -f "$RUNS/ensemble-win2/metrics.json" ]] || { rm -rf "$RUNS/ensemble-win2"; "${H[@]}" ensemble "$RUNS"/win2 "$RUNS"/win2-s{1,2,3} --out "$RUNS/ensemble-win2" -q; }
run tracks --model cnn --members 1 --window 3 --from-scratch --seed 0 --split-seed 0 --balance tracks
# With 2 s windows the default: 1.5 s windows, and clip-level targets (bags of 4 windows of one clip).
run win1.5 --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --window 1.5
run bag4   --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --clip-bag 4
# What one network can hold or see: width 1.5 (412 kB int8, over the 250 kB budget), 128 mels from a 2048-point FFT.
run w15    --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --model-options '{"width": 1.5}'
echo '{"n_fft": 2048, "n_mels": 128}' > "$RUNS/mel128.json"
run mel128 --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --feature-config "$RUNS/mel128.json"
# Three training options: stronger regularisation, a lower peak learning rate, one standardisation for the whole log-mel.
run reg    --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --weight-decay 0.05 --model-options '{"dropout": 0.5}'
run lr1e-3 --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --lr 1e-3
run global --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --normalize global
# The receptive field: 1 x 1 depthwise kernels in the deep stages (43 x 43 and 19 x 19 of the log-mel), and in frequency only.
run rf43   --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --model-options '{"kernels": [[3,3],[3,3],[3,3],[1,1],[1,1]]}'
run rf19   --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --model-options '{"kernels": [[3,3],[3,3],[1,1],[1,1],[1,1]]}'
run rf43f  --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --model-options '{"kernels": [[3,3],[3,3],[3,3],[1,3],[1,3]]}'
# Softer targets: label smoothing 0.2 (the default 0.05).
run ls0.2  --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --label-smoothing 0.2
# Another track of the same class played along (p_mix_class): half the windows, then every one; two more draws of 0.5.
run mix0.5    --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --augment-options '{"p_mix_class": 0.5}'
run mix1.0    --model cnn --members 1 --from-scratch --seed 0 --split-seed 0 --augment-options '{"p_mix_class": 1.0}'
run mix0.5-s1 --model cnn --members 1 --from-scratch --seed 1 --split-seed 0 --augment-options '{"p_mix_class": 0.5}'
run mix0.5-s2 --model cnn --members 1 --from-scratch --seed 2 --split-seed 0 --augment-options '{"p_mix_class": 0.5}'
# Small averaged networks inside the 250 kB int8 budget: three at width 0.4 (226 kB) and two at width 0.6 (239 kB),
# each member an ordinary run on the same folds; averaged by benchmarks/ensemble_folds.py (as `train --members` averages).
for s in 0 1 2; do run w04-s$s --model cnn --members 1 --from-scratch --seed $s --split-seed 0 --model-options '{"width": 0.4}'; done
for s in 0 1; do run w06-s$s --model cnn --members 1 --from-scratch --seed $s --split-seed 0 --model-options '{"width": 0.6}'; done
.venv/bin/python benchmarks/ensemble_folds.py "$RUNS"/w04-s{0,1,2} --out "$RUNS/ensemble-w04.json"
.venv/bin/python benchmarks/ensemble_folds.py "$RUNS"/w06-s{0,1} --out "$RUNS/ensemble-w06.json"
# A second draw of the width-0.4 triple (seeds 3-5), then today's CNN default, which is that recipe: `train`
# with no options trains three width-0.4 members (seeds 0-2), the same networks as w04-s{0,1,2} averaged.
for s in 3 4 5; do run w04-s$s --model cnn --members 1 --from-scratch --seed $s --split-seed 0 --model-options '{"width": 0.4}'; done
.venv/bin/python benchmarks/ensemble_folds.py "$RUNS"/w04-s{3,4,5} --out "$RUNS/ensemble-w04-s345.json"
# Two more members, then every subset of the eight, by size: the mean over all 56 triples is the default's
# expected score.
for s in 6 7; do run w04-s$s --model cnn --members 1 --from-scratch --seed $s --split-seed 0 --model-options '{"width": 0.4}'; done
.venv/bin/python benchmarks/ensemble_folds.py "$RUNS"/w04-s{0,1,2,3,4,5,6,7} --out "$RUNS/ensemble-w04-all8.json"
run cnn-defaults --model cnn
# Deep mutual learning: the default's three width-0.4 members trained together, each pulled towards the
# others' mean answer (KL weight 1); two draws.
for s in 0 3; do run dml-s$s --model cnn --members 3 --mutual 1 --seed $s --split-seed 0; done
# Members trained another way, mixed into the default's triples (benchmarks/ensemble_mix.py): one width-0.4
# member with random EQ and low-pass, one with pitch shift and time stretch, five that each hold out other
# validation tracks (--val-seed), so that together they train on every non-test track.
run d04-eq --model cnn --members 1 --from-scratch --seed 20 --split-seed 0 --model-options '{"width": 0.4}' --augment-options '{"p_eq": 0.5, "p_bandlimit": 0.3}'
run d04-ps --model cnn --members 1 --from-scratch --seed 21 --split-seed 0 --model-options '{"width": 0.4}' --augment-options '{"p_pitch": 0.5, "p_stretch": 0.5}'
for i in 0 1 2 3 4; do run rv-s3$i --model cnn --members 1 --from-scratch --seed 3$i --split-seed 0 --val-seed 13$i --model-options '{"width": 0.4}'; done
.venv/bin/python benchmarks/ensemble_mix.py "$RUNS"/w04-s{0,1,2,3,4,5,6,7} --with "$RUNS"/d04-eq "$RUNS"/d04-ps --out "$RUNS/mix-eqps.json"
.venv/bin/python benchmarks/ensemble_mix.py "$RUNS"/w04-s{0,1,2,3,4,5,6,7} --with "$RUNS"/rv-s3{0,1,2,3,4} --out "$RUNS/mix-rv.json"
# Members that hold out their own validation tracks, with one normaliser over every non-test track (what
# `train --members 3 --member-val own` trains, one run per member); seeds 0-2 averaged by `harmonies ensemble`.
for s in 0 1 2 3 4; do run bg-s$s --model cnn --members 1 --from-scratch --seed $s --split-seed 0 --val-seed $s --normalize-over train+val --model-options '{"width": 0.4}'; done
[[ -f "$RUNS/bg-ens012/metrics.json" ]] || "${H[@]}" ensemble "$RUNS"/bg-s{0,1,2} --out "$RUNS/bg-ens012" -q
.venv/bin/python benchmarks/bench_int8_folds.py "$RUNS/bg-ens012" --format tflite
.venv/bin/python benchmarks/ensemble_mix.py "$RUNS"/w04-s{0,1,2,3,4,5,6,7} --with "$RUNS"/bg-s{0,1,2,3,4} --out "$RUNS/mix-bg.json"
.venv/bin/python benchmarks/ensemble_mix.py "$RUNS"/w04-s{0,1,2,3,4,5,6,7} --with "$RUNS"/bg-s{0,1,2,3,4} "$RUNS"/rv-s3{0,1,2,3,4} --out "$RUNS/mix-bgrv.json"
.venv/bin/python benchmarks/bench_int8_folds.py "$RUNS/cnn-defaults" --format tflite
# The SVM as one more member: the default's triples (and single members) fused with the baseline's calibrated
# probabilities at a fixed weight 0.3 and at a weight chosen on validation; the same with a linear softmax
# instead of the SVM, and with chroma statistics; then longer test windows than the training ones.
.venv/bin/python benchmarks/svm_fusion.py "$RUNS"/w04-s{0,1,2,3,4,5,6,7} --out "$RUNS/svm-fusion.json"
.venv/bin/python benchmarks/svm_fusion.py "$RUNS"/w04-s{0,1,2,3,4,5,6,7} --k 1 --out "$RUNS/svm-fusion-k1.json"
.venv/bin/python benchmarks/svm_fusion.py "$RUNS"/bg-s{0,1,2,3,4} --out "$RUNS/svm-fusion-bg.json"
.venv/bin/python benchmarks/svm_fusion.py "$RUNS"/rv-s3{0,1,2,3,4} --out "$RUNS/svm-fusion-rv.json"
.venv/bin/python benchmarks/svm_fusion.py "$RUNS"/w06-s{0,1} --k 2 --out "$RUNS/svm-fusion-w06.json"
.venv/bin/python benchmarks/svm_fusion.py "$RUNS"/dml-s0 --k 1 --out "$RUNS/svm-fusion-dml.json"
.venv/bin/python benchmarks/svm_fusion.py "$RUNS"/w04-s{0,1,2,3,4,5,6,7} --classifier logistic --out "$RUNS/logistic-fusion.json"
.venv/bin/python benchmarks/svm_fusion.py "$RUNS"/w04-s{0,1,2,3,4,5,6,7} --features frame_vector chroma --out "$RUNS/chroma-fusion.json"
.venv/bin/python benchmarks/test_window_length.py "$RUNS"/w04-s{0,1,2,3,4,5,6,7} --out "$RUNS/test-window-length.json"
# `train --fuse-svm`, end to end: the default's seed-0 triple (w04-s0..2 averaged, what `train --folds 5` builds)
# fused with the SVM at 0.3, each fold exported int8 and evaluated by the device runtime on its test clips;
# then a fresh draw of the default (seeds 20-22) trained with the option.
[[ -f "$RUNS/fused-w04-012/metrics.json" ]] || "${H[@]}" ensemble "$RUNS"/w04-s{0,1,2} --out "$RUNS/fused-w04-012" -q
for k in 0 1 2 3 4; do
  .venv/bin/python -c "from pyharmonies.training.fusion import ensure_fused; ensure_fused('$RUNS/fused-w04-012/fold-$k', 0.3)"
  "${H[@]}" export "$RUNS/fused-w04-012/fold-$k" --int8 --format tflite --out "$RUNS/fused-w04-012/bundles/fold-$k"
  "${H[@]}" evaluate "$RUNS/fused-w04-012/bundles/fold-$k" "$DATA" --split test -q --out "$RUNS/fused-w04-012/bundles/eval-$k"
done
run fused-s20 --model cnn --from-scratch --seed 20 --split-seed 0 --fuse-svm 0.3
.venv/bin/python benchmarks/bench_svm_fusion.py "$RUNS/fused-w04-012/bundles/fold-0" --audio "$DATA/flare/battle_theme_001.wav"
# A supervised start from synthetic audio: one width-0.4 CNN trained on the instrument corpus (200 tunes x 6
# families, nothing of the soundtracks), then width-0.4 members fine-tuned from it (--init) on the same folds.
[[ -f data/instruments200/manifest.csv ]] || "${H[@]}" dataset instruments data/instruments200 --tunes 200 -q
[[ -f "$RUNS/instr-w04/metrics.json" ]] || "${H[@]}" train data/instruments200/manifest.csv --model cnn --members 1 \
  --model-options '{"width": 0.4}' --seed 0 --out "$RUNS/instr-w04" -q
for s in 0 1 2 3; do run ipt-s$s --model cnn --members 1 --seed $s --split-seed 0 --init "$RUNS/instr-w04"; done
.venv/bin/python benchmarks/ensemble_folds.py "$RUNS"/ipt-s{0,1,2,3} --out "$RUNS/ensemble-ipt.json"
# The SVM as a teacher: width-0.4 members taught the SVM's cross-fitted answers (--teacher svm: weight 0.5,
# temperature 1), every triple averaged, then fused with the SVM as the default's triples were.
for s in 0 1 2 3 4 5; do
  run svmt-s$s --model cnn --members 1 --from-scratch --seed $s --split-seed 0 --model-options '{"width": 0.4}' --teacher svm
done
.venv/bin/python benchmarks/ensemble_folds.py "$RUNS"/svmt-s{0,1,2,3,4,5} --out "$RUNS/ensemble-svmt.json"
.venv/bin/python benchmarks/svm_fusion.py "$RUNS"/svmt-s{0,1,2,3,4,5} --k 3 --out "$RUNS/svm-fusion-svmt.json"
for s in 0 1 2; do  # a weaker teacher
  run svmt25-s$s --model cnn --members 1 --from-scratch --seed $s --split-seed 0 --model-options '{"width": 0.4}' \
    --teacher svm --distill-weight 0.25
done
.venv/bin/python benchmarks/ensemble_folds.py "$RUNS"/svmt25-s{0,1,2} --out "$RUNS/ensemble-svmt25.json"
.venv/bin/python benchmarks/svm_fusion.py "$RUNS"/svmt25-s{0,1,2} --k 3 --out "$RUNS/svm-fusion-svmt25.json"
# The fused SVM on whole recordings: the statistics of the whole file, or the mean answer of its 10 s pieces.
.venv/bin/python benchmarks/svm_long_files.py "$RUNS/svm" --out "$RUNS/svm-long-files.json"
# How a clip's windows are pooled: mean probability (every report's), mean log-probability, vote.
.venv/bin/python benchmarks/clip_pooling.py "$RUNS/nostop" "$RUNS/last-s1" "$RUNS/win2" "$RUNS/tracks" --out "$RUNS/clip-pooling.json"
.venv/bin/python benchmarks/clip_pooling.py "$RUNS"/win2 "$RUNS"/win2-s{1,2,3} --out "$RUNS/clip-pooling-win2.json"
# What the SVM baseline's choice of C on validation costs it (a diagnostic read on the test folds).
.venv/bin/python benchmarks/svm_c.py "$DATA" --seed 0 --cache .cache/features --out "$RUNS/svm-c.json"
