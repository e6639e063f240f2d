#!/usr/bin/env bash
# The LoRA addendum of the CPU study: runs every grid stage not done yet (resumable: stages are
# found by their keys), then reports on it and compares it with the CPU study's full
# fine-tuning scores (compare.py). Output outside the repository (STUDY_OUT).
#
#   bash studies/cpu-minilm-peft/run.sh
#   REPORT_ONLY=1 REPORT_SEEDS=0 bash studies/cpu-minilm-peft/run.sh   # what is finished
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
data="${XSTILTS_SHARED_DATA:-/work/shared/data}"
out="${STUDY_OUT:-/work/peft-study/runs}"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=/work/main/.venv/bin/python
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"
xstilts=("$python" -m xstilts.cli)

mkdir -p "$out"
STUDY_LOGS=("$out/../grid.log" "$out/../grid2.log")
if [ -z "${REPORT_ONLY:-}" ]; then
  "${xstilts[@]}" grid run "$here/grid.yaml" --data-dir "$data" --output-dir "$out" --quiet-tables \
    2>&1 | tee -a "$out/../grid2.log"
  # same-load cost of one optimizer step, full vs LoRA (memory, time, checkpoint size)
  "$python" "$here/bench.py" "$here/report/bench.json" --steps 8 --rounds 2
fi
seeds=()
if [ -n "${REPORT_SEEDS:-}" ]; then seeds=(--seeds "$REPORT_SEEDS"); fi
"${xstilts[@]}" report "$out" --grid cpu-minilm-peft --output-dir "$here/report" \
  --benchmark xtreme-r "${seeds[@]}"
"$python" "$here/compare.py" "$out" "$here/report" \
  --full "$root/studies/cpu-minilm/report/tables/scores.csv" ${REPORT_SEEDS:+--seeds "$REPORT_SEEDS"} \
  --log "${STUDY_LOGS[@]:-}"
