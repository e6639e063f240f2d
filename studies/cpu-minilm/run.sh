#!/usr/bin/env bash
# Regenerates the CPU study from nothing, or resumes it: runs every grid stage that is not done
# yet (finished stages are found by their keys and skipped), then writes the report beside this
# file. Safe to stop at any moment and to run again, in this or a later session.
#
#   bash studies/cpu-minilm/run.sh                  # data from ../shared/data
#   XSTILTS_SHARED_DATA=/data STUDY_OUT=/big/disk bash studies/cpu-minilm/run.sh
#
# REPORT_ONLY=1 skips the grid and reports on whatever stages are finished; REPORT_SEEDS=0,1
# reports on those seeds only (the seeds every system has while the last one is still running).
# REPORT_FROM_SCORES=1 writes the report from the committed per-seed scores
# (scores.csv, a copy of the grid report's tables/scores.csv) instead of the run directory: the statistics that need the
# per-example predictions (example sampling in CIs, same-data flags, tokenizer covariates,
# model selection) are then unavailable and say so; the overlap probe is not re-run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
data="${XSTILTS_SHARED_DATA:-../shared/data}"
out="${STUDY_OUT:-runs/cpu-minilm}"
xstilts="${XSTILTS:-xstilts}"
command -v "$xstilts" >/dev/null || xstilts="$root/.venv/bin/xstilts"

if [ -n "${REPORT_FROM_SCORES:-}" ]; then
  # studies/cpu-minilm/scores.csv: the grid's per-seed official scores, kept beside the report
  # (whose tables/ the report rewrites); relative, so the report names it the same everywhere
  "$xstilts" report studies/cpu-minilm/scores.csv --output-dir "$here/report" \
    --benchmark xtreme-r --preamble "$here/PREAMBLE.md"
  cp "$here/report/report.md" "$here/REPORT.md"
  sed -i 's#](figures/#](report/figures/#g' "$here/REPORT.md"
  echo "report: $here/REPORT.md (HTML: $here/report/report.html)"
  exit 0
fi
if [ -z "${REPORT_ONLY:-}" ]; then
  "$xstilts" grid run "$here/grid.yaml" --data-dir "$data" --output-dir "$out" --quiet-tables
fi
# the report opens with what this study is (PREAMBLE.md) and how far the grid has got
preamble="$(mktemp)"
trap 'rm -f "$preamble"' EXIT
{
  cat "$here/PREAMBLE.md"
  printf '\n## Grid progress when this report was written\n\n```\n'
  "$xstilts" grid status "$here/grid.yaml" --data-dir "$data" --output-dir "$out" 2>/dev/null
  printf '```\n'
} > "$preamble"
# --grid: only this grid's current cells (the output dir also holds stages of its first sizes)
seeds=()
if [ -n "${REPORT_SEEDS:-}" ]; then seeds=(--seeds "$REPORT_SEEDS"); fi
"$xstilts" report "$out" --grid cpu-minilm --output-dir "$here/report" --benchmark xtreme-r \
  --preamble "$preamble" "${seeds[@]}"
# why Chinese XNLI gains with mostly [UNK] tokens: the lexical-overlap probe (XNLI-OVERLAP.md)
python="$root/.venv/bin/python"
[ -x "$python" ] || python=python
"$python" "$here/xnli_overlap.py" "$out" --grid cpu-minilm --data-dir "$data" \
  --output "$here/XNLI-OVERLAP.md" "${seeds[@]}"
cp "$here/report/report.md" "$here/REPORT.md"
sed -i 's#](figures/#](report/figures/#g' "$here/REPORT.md"
echo "report: $here/REPORT.md (HTML: $here/report/report.html)"
