#!/usr/bin/env bash
# CUDA check on a GPU machine without network (no CI machine has a GPU): smoke runs of one
# method per family on CUDA, then the default-profile ours vs swinunetr comparison over seeds
# 0-2 on the brats18_missing phantom, time-boxed to about 9 minutes. Results in $OUT.
# Prepare beside it: .whl/ with the pure-Python wheels the GPU image lacks (monai, nibabel,
# nilearn, pydicom, for its Python), and optionally .gpucache/phantoms, a phantom cache to
# skip writing the phantoms there.
set -uo pipefail
start=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
export XHBENCH_CACHE=/tmp/xhcache
mkdir -p $XHBENCH_CACHE
[ -d .gpucache/phantoms ] && cp -r .gpucache/phantoms $XHBENCH_CACHE/
OUT=${OUT:-$(mktemp -d)}
log=$OUT/log.txt
x() { python3 -m xhbench "$@"; }
left() { echo $(( $1 - ($(date +%s) - start) )); }
{
nvidia-smi -L; python3 -c "import torch, monai; print('torch', torch.__version__, 'monai', monai.__version__, 'cuda', torch.cuda.is_available())"
for spec in "brats18_missing swinunetr" "brats18_missing ours" "brats18_missing rfnet" \
            "brats23_transfer pix2pix3d" "brats23_transfer diffusion" "autopet_seg unetr"; do
  set -- $spec
  t0=$(date +%s)
  timeout 90 python3 -m xhbench run --task $1 --method $2 --profile smoke --device cuda \
      --out /tmp/res/smoke > /tmp/smoke-$2.log 2>&1
  echo "SMOKE $1 $2 rc=$? $(( $(date +%s) - t0 ))s"; tail -4 /tmp/smoke-$2.log
done
for seed in 0 1 2; do
  for m in swinunetr ours; do
    [ "$(left 520)" -gt 60 ] || { echo "SKIP default $m seed $seed: time"; continue; }
    t0=$(date +%s)
    timeout "$(left 530)" python3 -m xhbench run --task brats18_missing --method $m --seed $seed \
        --device cuda --out /tmp/res/default > /tmp/default-$m-$seed.log 2>&1
    echo "DEFAULT $m seed $seed rc=$? $(( $(date +%s) - t0 ))s"; tail -3 /tmp/default-$m-$seed.log
  done
done
x leaderboard --task brats18_missing --results /tmp/res/default --table table3 --against swinunetr
x leaderboard --task brats18_missing --results /tmp/res/default --diagnostics
x leaderboard --task brats18_missing --results /tmp/res/default --cost
x leaderboard --task brats18_missing --results /tmp/res/default --format json > $OUT/default.json
} 2>&1 | tee $log
tar czf $OUT/runs.tgz -C /tmp/res default --exclude='*.pt' 2>/dev/null
echo "total $(( $(date +%s) - start ))s"
