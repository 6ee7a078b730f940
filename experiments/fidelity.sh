#!/usr/bin/env bash
# Proxy fidelity (docs/finalize.md): a space swept at its own (proxy) fidelity, every trial to
# its end, then `mnsearch finalize` of chosen configurations at full fidelity (5 epochs on every
# training image), then the report with the fidelity section. Resumable: rerun the same command
# and finished trials are kept (the journal is committed under experiments/results/fidelity/).
#
#   experiments/fidelity.sh search_spaces/paper_v1_grid.yaml --top 16
#   experiments/fidelity.sh search_spaces/blocks.yaml --spread 12
#
# `--spread N` picks N configurations spread over block types and cost: per block type, the
# smallest and largest α at the largest and smallest ρ (N / 3 per type, N = 12).
set -euo pipefail
space=$1; shift
name=$(basename "$space" .yaml)
out=experiments/results/fidelity/$name
storage=$out/studies.journal
artifacts=${MNSEARCH_ARTIFACTS:-mnsearch-artifacts}
python=${PYTHON:-python}
mkdir -p "$out"
log() { echo "$(date -u +%FT%TZ) $*" | tee -a "$out/log.txt"; }
started=$(date +%s)

log "proxy: mnsearch sweep $space --storage $storage --no-early-stopping"
"$python" -m mnsearch sweep "$space" --storage "$storage" --artifacts "$artifacts" \
  --out "$out/proxy" --no-early-stopping
log "proxy done: $(( $(date +%s) - started )) s since the start"

selection=("$@")
if [ "${1:-}" = "--spread" ]; then
  trials=$("$python" - "$storage" "$name" <<'PY'
import sys, optuna
from mnsearch.search.storage import open_existing_storage
study = optuna.load_study(study_name=sys.argv[2], storage=open_existing_storage(sys.argv[1]))
done = [t for t in study.trials if t.state.name == "COMPLETE" and "duplicate_of" not in t.user_attrs]
chosen = []
for block in sorted({t.params["block"] for t in done}):
    mine = [t for t in done if t.params["block"] == block]
    for alpha in (min(t.params["alpha"] for t in mine), max(t.params["alpha"] for t in mine)):
        for rho in (max(t.params["rho"] for t in mine), min(t.params["rho"] for t in mine)):
            chosen += [t.number for t in mine if t.params["alpha"] == alpha and t.params["rho"] == rho]
print(",".join(map(str, sorted(set(chosen)))))
PY
)
  selection=(--trials "$trials")
fi
final_started=$(date +%s)
log "final: mnsearch finalize --study $name ${selection[*]} --epochs 5"
"$python" -m mnsearch finalize --study "$name" --storage "$storage" --artifacts "$artifacts" \
  --out "$out/final" --epochs 5 "${selection[@]}"
log "final done: $(( $(date +%s) - final_started )) s of finalize, $(( $(date +%s) - started )) s in all"
"$python" -m mnsearch report --study "$name" --storage "$storage" --out "$out/report.html" --force
log "report: $out/report.html"
