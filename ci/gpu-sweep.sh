#!/usr/bin/env bash
# Default-profile sweeps on a GPU machine without network (the published tables in
# docs/results/ were made this way).
#
#   OUT=... ci/gpu-sweep.sh PLAN SECONDS
#
# PLAN holds one `xhbench sweep` argument list per line (`#` starts a comment). Lines that
# start with `pre:` run first, one after the other (e.g. a run that trains the cached
# reference segmenter the later runs share); the other lines then run at the same time, one
# sweep each, all under one time box of SECONDS from the start. Runs left unfinished by the
# time box are reported as such by `xhbench runs list`; finished ones are aggregated.
# Results: $OUT/log.txt and $OUT/results.tgz holding tables/<task>.json (`xhbench
# leaderboard --format json`), tables/<task>.txt (the table, --cost and --diagnostics) and
# res/ (the run folders without weights; res/.logs the sweeps' logs), and for the transfer
# tasks tables/figures/<task>/ (`xhbench figures --results`, the methods side by side on the
# first test case) when the time box leaves room. A results root carried in as
# .gpucache/results is resumed: finished runs of the same settings are not run again.
#
# Prepare beside it (both ignored by git, passed with `carry`): .whl/ with the pure-Python
# wheels the GPU image lacks (monai, nibabel, nilearn, pydicom, for its Python), and
# .gpucache/ holding an XHBENCH_CACHE (phantoms/) and optionally results/. TABLES=0 skips the
# tables and figures (make them from the archive's res/ instead); RESERVE (45) is the seconds
# kept for them and the archive.
set -uo pipefail
start=$(date +%s)
plan=$1 budget=$2
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export XHBENCH_CACHE=/tmp/xhcache
mkdir -p $XHBENCH_CACHE /tmp/res
[ -d .gpucache/phantoms ] && cp -r .gpucache/phantoms $XHBENCH_CACHE/
[ -d .gpucache/results ] && cp -r .gpucache/results/. /tmp/res/
OUT=${OUT:-$(mktemp -d)}
log=$OUT/log.txt
reserve=${RESERVE:-45}  # seconds kept after the sweeps for the tables and the archive
left() { echo $(( budget - reserve - ($(date +%s) - start) )); }
sweep() { timeout "$(left)" python3 -m xhbench sweep --device ${DEVICE:-cuda} --out /tmp/res "$@"; }
{
nvidia-smi -L
python3 -c "import torch, monai; print('torch', torch.__version__, 'monai', monai.__version__, 'cuda', torch.cuda.is_available())"
echo "commit $(cat .commit 2>/dev/null || echo unknown)"
grep -v '^\s*#' "$plan" | grep '^pre:' | sed 's/^pre://' | while read -r line; do
  t0=$(date +%s); eval "sweep $line" > /tmp/pre.log 2>&1
  echo "PRE rc=$? $(( $(date +%s) - t0 ))s: $line"; tail -3 /tmp/pre.log
done
i=0
while read -r line; do
  i=$((i + 1))
  ( t0=$(date +%s); eval "sweep $line" > /tmp/sweep-$i.log 2>&1
    echo "SWEEP $i rc=$? $(( $(date +%s) - t0 ))s: $line"; grep -E "^(FAILED|failed|Error)" /tmp/sweep-$i.log | head -5 ) &
done < <(grep -v '^\s*#' "$plan" | grep -v '^pre:' | grep -v '^\s*$')
wait
echo "sweeps done at $(( $(date +%s) - start ))s"
python3 -m xhbench runs list --results /tmp/res 2>&1 | tail -40
mkdir -p /tmp/res/.logs /tmp/tables
cp /tmp/sweep-*.log /tmp/pre.log /tmp/res/.logs/ 2>/dev/null
[ "${TABLES:-1}" = 1 ] && for task in $(grep -o -- '--tasks [a-z0-9_]*' "$plan" | awk '{print $2}' | sort -u); do
  python3 -m xhbench leaderboard --task $task --results /tmp/res --format json > /tmp/tables/$task.json 2>/dev/null
  { python3 -m xhbench leaderboard --task $task --results /tmp/res
    python3 -m xhbench leaderboard --task $task --results /tmp/res --cost
    python3 -m xhbench leaderboard --task $task --results /tmp/res --diagnostics; } > /tmp/tables/$task.txt 2>&1
done
# transfer tasks: the methods side by side on the first test case (needs the weights, which
# stay here), only if the time box leaves room
[ "${TABLES:-1}" = 1 ] && for task in $(grep -o -- '--tasks [a-z0-9_]*_transfer' "$plan" | awk '{print $2}' | sort -u); do
  [ "$(left)" -gt 20 ] && timeout "$(left)" python3 -m xhbench figures --results /tmp/res \
    --task $task --cases 1 --out /tmp/tables/figures/$task >> /tmp/tables/figures.log 2>&1
done
} 2>&1 | tee $log
# one archive: the device returns only a few files per call
tar czf $OUT/results.tgz --exclude='*.pt' --exclude='*.nii.gz' --exclude='*.npy' -C /tmp res tables
echo "total $(( $(date +%s) - start ))s" | tee -a $log
