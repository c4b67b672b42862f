#!/usr/bin/env bash
# Write docs/results/<NAME>.json and .md (NAME defaults to TASK) from a results root (see docs/results/README.md).
#
#   [NAME=file-stem] ci/publish-results.sh RESULTS TASK TABLE "HEADER LINE" ["HEADER LINE" ...]
#
# The .json is `xhbench leaderboard --format json` (the input of `xhbench compare`); the .md
# holds the header lines given (command, commit, machine), the leaderboard with --cost
# (steps, crops, seconds per run), the variants and diagnostics, and each table of TABLE
# (comma-separated, e.g. table1,downstream) with the paper's reported rows where it has them.
set -euo pipefail
results=$1 task=$2 table=$3
shift 3
out=docs/results
name=${NAME:-$task}
mkdir -p $out
x() { python3 -m xhbench "$@" 2>/dev/null; }
x leaderboard --task $task --results $results --format json > $out/$name.json
{
  echo "# $task, default profile"
  echo
  for line in "$@"; do echo "- $line"; done
  echo "- JSON: [$name.json]($name.json) (\`xhbench compare\` input)."
  echo
  echo "## Leaderboard with cost"
  echo
  x leaderboard --task $task --results $results --cost
  echo
  echo "## Variants and diagnostics"
  echo
  x leaderboard --task $task --results $results --diagnostics
  echo
  for t in ${table//,/ }; do
    echo
    echo "## $t"
    echo
    x leaderboard --task $task --results $results --table $t --with-reported
  done
} > $out/$name.md
echo "wrote $out/$name.json and $out/$name.md"
