#!/usr/bin/env bash
# Issue #15: a Fashion-MNIST front of accuracy against parameters (search_spaces/fashion_small.yaml),
# searched at low fidelity, then its chosen configurations trained long by `mnsearch finalize`.
# Everything lands in experiments/results/fashion_front/: the journal (both studies), the sweep's
# CSVs, the finals' checkpoints (committed while they run: a rerun on any machine resumes a
# killed final from its last epoch), and log.txt with the commands and their wall times.
#
#   experiments/fashion_front.sh sweep                    # the proxy sweep (stops after 3000 s)
#   experiments/fashion_front.sh final TRIALS [EPOCHS]    # finalize proxy trials "6,27,1"
#   experiments/fashion_front.sh ablation TRIAL [EPOCHS]  # the same final without random erasing
#   experiments/fashion_front.sh export TRIAL NAME        # a final trial exported to
#                                                         # $out/NAME, then `mnsearch evaluate`
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

step=${1:?"usage: $0 sweep|final TRIALS [EPOCHS]|ablation TRIAL [EPOCHS]|export TRIAL NAME"}
case "$step" in
  sweep)
    # Sweep checkpoints are scratch (only the front's are kept, and finals retrain from scratch).
    timed "$mnsearch" sweep search_spaces/fashion_small.yaml --storage "$storage" \
      --artifacts runs/fashion_front-artifacts --out "$out/sweep" --trials 120 --timeout 3000 \
      --seed 0 ;;
  final)
    timed "$mnsearch" finalize --study fashion_small --storage "$storage" --trials "$2" \
      --epochs "${3:-40}" --set erasing=0.5 --artifacts "$artifacts" --out "$out/final" ;;
  ablation)
    timed "$mnsearch" finalize --study fashion_small --storage "$storage" --trials "$2" \
      --epochs "${3:-40}" --final-study fashion_small-final-noerasing --artifacts "$artifacts" \
      --out "$out/final-noerasing" ;;
  export)
    # spec, weights and model card (no ONNX: the targets are accuracy), then the test split
    # read from the committed weights, as a reader of the results would check them
    timed "$mnsearch" export --study fashion_small-final --storage "$storage" --trial "$2" \
      --artifacts "$artifacts" --formats spec,weights,card --out "$out/$3"
    "$mnsearch" evaluate "$out/$3" --dataset fashion-mnist --split test --json \
      > "$out/$3/evaluate-test.json"
    log "evaluate $out/$3: $(cat "$out/$3/evaluate-test.json")" ;;
  *) echo "unknown step '$step'" >&2; exit 2 ;;
esac
