#!/usr/bin/env bash
# Full Fashion-MNIST training runs behind the README's accuracy table (issue 3).
# Command: bash experiments/fashion_accuracy.sh [RUN ...]   (all runs: about 40 minutes on 2 cores)
# With RUN names (e.g. v2-1.0-paper-b64-native) only those run. Finished runs are skipped on a rerun. Each run writes runs/fashion-<name>/{metrics.json,spec.yaml,checkpoint.*}; this script copies
# the metrics to experiments/results/ and appends one CSV row per run.
set -euo pipefail
cd "$(dirname "$0")/.."
results=experiments/results/fashion_accuracy.csv
[ -f "$results" ] || echo "run,arch,alpha,schedule,epochs,test_accuracy,seconds_per_epoch,images_per_second,wall_seconds" > "$results"
selected=" $* "
run() {
  local name=$1; shift
  if [ "$selected" != "  " ] && [[ "$selected" != *" $name "* ]]; then return; fi
  if [ -f "experiments/results/fashion-$name.json" ]; then return; fi  # finished earlier
  rm -rf "runs/fashion-$name"
  .venv/bin/mnsearch train "$@" --epochs 10 --out "runs/fashion-$name"
  cp "runs/fashion-$name/metrics.json" "experiments/results/fashion-$name.json"
  .venv/bin/python - "$name" "$results" <<'PY'
import json, sys
name, results = sys.argv[1], sys.argv[2]
m = json.load(open(f"experiments/results/fashion-{name}.json"))
import yaml
spec = yaml.safe_load(open(f"runs/fashion-{name}/spec.yaml"))
row = [name, spec["family"], spec["alpha"], spec["stride_schedule"], m["epochs_done"],
       round(m["test_accuracy"], 4), round(m["train_seconds"] / m["epochs_done"], 1),
       round(m["images_per_second"]), round(m["wall_seconds"])]
open(results, "a").write(",".join(map(str, row)) + "\n")
PY
}
run v1-0.25-paper v1 --alpha 0.25 --batch-size 128
run v2-1.0-paper v2 --batch-size 128
run v2-1.0-paper-ema v2 --batch-size 128 --ema 0.999   # weight EMA, evaluated after precise BN
run v1-0.25-paper-b64 v1 --alpha 0.25 --batch-size 64   # twice the optimizer steps in 10 epochs
run v2-1.0-paper-b64 v2 --batch-size 64
# the same two after BatchNorm's hand-written backward pass (ops.batch_norm_activation)
run v1-0.25-paper-b64-bnvjp v1 --alpha 0.25 --batch-size 64
run v2-1.0-paper-b64-bnvjp v2 --batch-size 64
# and on the native CPU kernels (mnsearch.native), under tcmalloc (mnsearch.allocator)
run v1-0.25-paper-b64-native v1 --alpha 0.25 --batch-size 64
run v2-1.0-paper-b64-native v2 --batch-size 64
run v1-0.25-stem1 v1 --alpha 0.25 --schedule stem1
