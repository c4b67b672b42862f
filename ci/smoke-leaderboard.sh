#!/usr/bin/env bash
# The smoke set that CI guards: fixed seed, smoke profile. Prints the leaderboard as JSON.
# Refresh the reference after an intended change with:
#   bash ci/smoke-leaderboard.sh "$(mktemp -d)" > ci/reference/smoke-leaderboard.json
set -euo pipefail
results=$1
for method in swinunetr ours rfnet; do
  xhbench run --task brats18_missing --method "$method" --profile smoke --seed 0 \
      --out "$results" >&2
done
xhbench leaderboard --task brats18_missing --results "$results" --format json
