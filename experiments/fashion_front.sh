#!/usr/bin/env bash
# Issue #15: a Fashion-MNIST front of accuracy against parameters (search_spaces/fashion_small.yaml),
# searched at low fidelity, then its chosen configurations trained long by `mnsearch finalize`:
# the front's final study is fashion_small-final-noerasing (the proxy's recipe, 40 epochs, all
# 54,000 training images); fashion_small-final is the same with random erasing 0.5, which was
# measured worse (docs/fashion-front.md) and stopped.
# Everything lands in experiments/results/fashion_front/: the journal (both studies), the sweep's
# CSVs, the finals' checkpoints (committed while they run: a rerun on any machine resumes a
# killed final from its last epoch), and log.txt with the commands and their wall times.
#
#   experiments/fashion_front.sh sweep                    # the proxy sweep (stops after 3000 s)
#   experiments/fashion_front.sh tiny [SECONDS] [JOBS]    # the same for search_spaces/
#                                                         # fashion_tiny.yaml (< 100K params)
#   experiments/fashion_front.sh final TRIALS [EPOCHS] [JOBS]  # finalize proxy trials "6,1"
#   experiments/fashion_front.sh erasing TRIALS [EPOCHS]  # the same with random erasing 0.5
#   experiments/fashion_front.sh export TRIAL             # a final trial exported to
#                                                         # final-trial-TRIAL/, then evaluated
#   experiments/fashion_front.sh final-tiny TRIALS [EPOCHS] [JOBS]  # fashion_tiny's, the same
#   experiments/fashion_front.sh export-tiny TRIAL        # to tiny-final-trial-TRIAL/
#   experiments/fashion_front.sh mid|final-mid|export-mid ...  # the same for search_spaces/
#                                                         # fashion_mid.yaml (<= 300K params)
#   experiments/fashion_front.sh wide [SECONDS] [JOBS]    # search_spaces/fashion_wide.yaml: the
#                                                         # α ladder (0.35-1.0) of fashion_mid's
#                                                         # best final, for <= 1M (a 4-point grid)
#   experiments/fashion_front.sh long tiny|mid|wide TRIALS EPOCHS [JOBS]  # the same finals with a
#                                                         # longer schedule: final study
#                                                         # fashion_SPACE-final-EPOCHS, in
#                                                         # long-SPACE-EPOCHS/
#   experiments/fashion_front.sh long-erasing tiny|mid|wide TRIALS EPOCHS [JOBS]  # the same with
#                                                         # random erasing 0.5: final study
#                                                         # fashion_SPACE-final-EPOCHS-erasing,
#                                                         # in long-SPACE-EPOCHS-erasing/
#   experiments/fashion_front.sh export-long tiny|mid|wide EPOCHS TRIAL  # to SPACE-EPOCHS-trial-TRIAL/
#                                                         # (EPOCHS-erasing for those)
#   .venv/bin/python experiments/fashion_front_summary.py # finals.csv, targets.csv, front.png
#
# Each step is resumable: rerun the same command and finished trials are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
out=experiments/results/fashion_front
storage=$out/studies.journal
artifacts=$out/artifacts
mnsearch=${MNSEARCH:-.venv/bin/mnsearch}
mkdir -p "$out"
log() { echo "$(date -u +%FT%TZ) $*" | tee -a "$out/log.txt"; }
timed() {
  local started; started=$(date +%s)
  log "start: $*"
  "$@"
  log "done in $(( $(date +%s) - started )) s: $*"
}

# spec, weights and model card (no ONNX: the targets are accuracy), then the test split read
# from the committed weights, as a reader of the results would check them
export_final() {  # FINAL_STUDY TRIAL FOLDER
  timed "$mnsearch" export --study "$1" --storage "$storage" --trial "$2" \
    --artifacts "$artifacts" --formats spec,weights,card --out "$3"
  "$mnsearch" evaluate "$3" --dataset fashion-mnist --split test --json > "$3/evaluate-test.json"
  log "evaluate $3: $(cat "$3/evaluate-test.json")"
}

# The per-stage-width spaces (fashion_tiny, fashion_mid): a sweep with scratch checkpoints and
# the proxy recipe, its finals without erasing, their exports.
width_sweep() {  # SPACE OUT [SECONDS] [JOBS]
  timed "$mnsearch" sweep "search_spaces/fashion_$1.yaml" --storage "$storage" \
    --artifacts runs/fashion_front-artifacts --out "$out/$2" --trials 120 \
    --timeout "${3:-3000}" --jobs "${4:-1}" --seed 0
}
width_final() {  # SPACE OUT TRIALS [EPOCHS] [JOBS]
  timed "$mnsearch" finalize --study "fashion_$1" --storage "$storage" --trials "$3" \
    --epochs "${4:-40}" --jobs "${5:-1}" --final-study "fashion_$1-final-noerasing" \
    --artifacts "$artifacts" --out "$out/$2"
}

# A longer schedule of a per-stage-width front's models, in its own final study (finalize
# refuses to mix recipes in one): fashion_SPACE-final-EPOCHS[SUFFIX], in long-SPACE-EPOCHS[SUFFIX]/
long_final() {  # SUFFIX RECIPE ("" or a --set value) SPACE TRIALS EPOCHS [JOBS]
  local suffix=$1 recipe=()
  [ -n "$2" ] && recipe=(--set "$2")
  local space=${3:?"usage: $0 long[-erasing] tiny|mid|wide TRIALS EPOCHS [JOBS]"}
  local trials=${4:?} epochs=${5:?} jobs=${6:-1}
  timed "$mnsearch" finalize --study "fashion_$space" --storage "$storage" --trials "$trials" \
    --epochs "$epochs" --jobs "$jobs" "${recipe[@]}" \
    --final-study "fashion_$space-final-$epochs$suffix" --artifacts "$artifacts" \
    --out "$out/long-$space-$epochs$suffix"
}

usage="sweep|tiny|mid|wide [SECONDS] [JOBS]|final[-tiny|-mid] TRIALS [EPOCHS] [JOBS]"
usage="$usage|long[-erasing] tiny|mid|wide TRIALS EPOCHS [JOBS]"
usage="$usage|export-long tiny|mid|wide EPOCHS[-erasing] TRIAL"
step=${1:?"usage: $0 $usage|erasing TRIALS [EPOCHS]|export[-tiny|-mid] TRIAL"}
case "$step" in
  sweep)
    # Sweep checkpoints are scratch (only the front's are kept, and finals retrain from scratch).
    timed "$mnsearch" sweep search_spaces/fashion_small.yaml --storage "$storage" \
      --artifacts runs/fashion_front-artifacts --out "$out/sweep" --trials 120 --timeout 3000 \
      --seed 0 ;;
  tiny) width_sweep tiny sweep-tiny "${@:2}" ;;
  mid) width_sweep mid sweep-mid "${@:2}" ;;
  wide) width_sweep wide sweep-wide "${@:2}" ;;
  final)
    timed "$mnsearch" finalize --study fashion_small --storage "$storage" --trials "$2" \
      --epochs "${3:-40}" --jobs "${4:-1}" --final-study fashion_small-final-noerasing \
      --artifacts "$artifacts" --out "$out/final-noerasing" ;;
  final-tiny) width_final tiny final-tiny "${@:2}" ;;
  final-mid) width_final mid final-mid "${@:2}" ;;
  erasing)
    timed "$mnsearch" finalize --study fashion_small --storage "$storage" --trials "$2" \
      --epochs "${3:-40}" --set erasing=0.5 --artifacts "$artifacts" --out "$out/final" ;;
  export) export_final fashion_small-final-noerasing "$2" "$out/final-trial-$2" ;;
  export-tiny) export_final fashion_tiny-final-noerasing "$2" "$out/tiny-final-trial-$2" ;;
  export-mid) export_final fashion_mid-final-noerasing "$2" "$out/mid-final-trial-$2" ;;
  long) long_final "" "" "${@:2}" ;;
  long-erasing) long_final -erasing erasing=0.5 "${@:2}" ;;
  export-long)
    export_final "fashion_${2:?}-final-${3:?}" "${4:?}" "$out/$2-$3-trial-$4" ;;
  *) echo "unknown step '$step'" >&2; exit 2 ;;
esac
