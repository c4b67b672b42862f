#!/usr/bin/env bash
# Write docs/results/<TASK>.json and .md from a results root (see docs/results/README.md).
#
#   ci/publish-results.sh RESULTS TASK TABLE "HEADER LINE" ["HEADER LINE" ...]
#
# The .json is `xhbench leaderboard --format json` (the input of `xhbench compare`); the .md
# holds the header lines given (command, commit, machine), the leaderboard with --cost
# (steps, crops, seconds per run), the variants and diagnostics, and the paper-shaped TABLE
# with the reported rows.
set -euo pipefail
results=$1 task=$2 table=$3
shift 3
out=docs/results
mkdir -p $out
x() { python3 -m xhbench "$@" 2>/dev/null; }
x leaderboard --task $task --results $results --format json > $out/$task.json
{
  echo "# $task, default profile"
  echo
  for line in "$@"; do echo "- $line"; done
  echo "- JSON: [$task.json]($task.json) (\`xhbench compare\` input)."
  echo
  echo "## Leaderboard with cost"
  echo
  x leaderboard --task $task --results $results --cost
  echo
  echo "## Variants and diagnostics"
  echo
  x leaderboard --task $task --results $results --diagnostics
  echo
  echo "## The paper's $table beside the measured rows"
  echo
  x leaderboard --task $task --results $results --table $table --with-reported
} > $out/$task.md
echo "wrote $out/$task.json and $out/$task.md"
