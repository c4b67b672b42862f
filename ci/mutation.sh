#!/usr/bin/env bash
# Mutation testing of the protocol code (docs/testing.md, "Mutation testing"):
#   ci/mutation.sh                 every protocol file's mutants, in one mutmut run
#   ci/mutation.sh FILE...         these files' (e.g. src/xhbench/leaderboard/paired.py)
#   ci/mutation.sh --changed BASE  the protocol files changed since BASE (committed or not;
#                                  from its merge base with HEAD); nothing to do (exit 0)
#                                  when none changed or BASE is not a commit here
#   ci/mutation.sh --list BASE     only print those files
# Then the score of what ran and its survivors (`mutmut show NAME` shows one). Needs the
# `mutation` extra (pip install -e '.[test,mutation]'). Extra mutmut arguments: MUTMUT_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."

# The mutated functions of each protocol file, as mutmut globs (a file's other functions
# are generated but not run: the tasks' protocol set in docs/testing.md says why).
T=xhbench.tasks
declare -A GLOBS=(
    [src/xhbench/metrics/overlap.py]="xhbench.metrics.overlap.*"
    [src/xhbench/metrics/intensity.py]="xhbench.metrics.intensity.*"
    [src/xhbench/metrics/structural.py]="xhbench.metrics.structural.*"
    [src/xhbench/metrics/autopet.py]="xhbench.metrics.autopet.*"
    [src/xhbench/metrics/pet.py]="xhbench.metrics.pet.*"
    [src/xhbench/metrics/surface.py]="xhbench.metrics.surface.*"
    [src/xhbench/metrics/_inputs.py]="xhbench.metrics._inputs.*"
    [src/xhbench/leaderboard/aggregate.py]="xhbench.leaderboard.aggregate.*"
    [src/xhbench/leaderboard/paired.py]="xhbench.leaderboard.paired.*"
    [src/xhbench/leaderboard/compare.py]="xhbench.leaderboard.compare.*"
    [src/xhbench/leaderboard/agreement.py]="xhbench.leaderboard.agreement.*"
    [src/xhbench/leaderboard/paper_tables.py]="xhbench.leaderboard.paper_tables.*"
    [src/xhbench/imaging.py]="xhbench.imaging.*"
    [src/xhbench/tasks/base.py]="$T.base.x_parse_pairs* $T.base.xǁTaskǁinputs*
        $T.base.xǁTaskǁtrain_cases* $T.base.xǁTaskǁtest_cases* $T.base.xǁTaskǁ_limit*"
    [src/xhbench/tasks/brats18_missing.py]="$T.brats18_missing.x_preprocess*
        $T.brats18_missing.x__lesionwise_rows* $T.brats18_missing.xǁBraTS18Missingǁ[!cr_]*
        $T.brats18_missing.xǁBraTS18Missingǁ_extra*"
    [src/xhbench/tasks/synthesis.py]="$T.synthesis.x_* $T.synthesis.xǁSynthesisTaskǁ[!c]*"
    [src/xhbench/tasks/brats23_transfer.py]="$T.brats23_transfer.xǁZScoreSynthesisFormatǁnormalise_target*
        $T.brats23_transfer.xǁBraTS23Transferǁ[nph]*"
    [src/xhbench/tasks/autopet_seg.py]="$T.autopet_seg.xǁAutoPETSegǁ[!c]*"
    [src/xhbench/tasks/autopet_transfer.py]="$T.autopet_transfer.xǁPetCtConfigǁvalidate*
        $T.autopet_transfer.xǁWindowSynthesisFormatǁnormalise_target*
        $T.autopet_transfer.xǁPetCtSynthesisTaskǁ[!cn]*
        $T.autopet_transfer.xǁPetCtSynthesisTaskǁnormalise__*"
    [src/xhbench/tasks/hnscc_nsclc_transfer.py]="$T.hnscc_nsclc_transfer.xǁHNSCCNSCLCTransferǁ[!cdp_]*
        $T.hnscc_nsclc_transfer.xǁHNSCCNSCLCTransferǁprepare*"
    [src/xhbench/methods/reference.py]="xhbench.methods.reference.*"
    [src/xhbench/methods/threshold.py]="xhbench.methods.threshold.*"
)

if [[ "${1:-}" == --changed || "${1:-}" == --list ]]; then
    base=${2:?usage: ci/mutation.sh --changed BASE}
    files=()
    if since=$(git merge-base "$base" HEAD 2>/dev/null); then
        mapfile -t files < <(git diff --name-only "$since" -- "${!GLOBS[@]}" | sort)
    elif [[ "$1" == --changed ]]; then
        echo "mutation: $base is not a commit of this checkout: nothing to compare with"
    fi
    if [[ "$1" == --list ]]; then
        ((${#files[@]} == 0)) || printf '%s\n' "${files[@]}"
        exit 0
    fi
    if ((${#files[@]} == 0)); then
        echo "mutation: no protocol file changed since $base"
        exit 0
    fi
elif (($#)); then
    files=("$@")
else
    mapfile -t files < <(printf '%s\n' "${!GLOBS[@]}" | sort)
fi
globs=()
for file in "${files[@]}"; do
    [[ -n "${GLOBS[$file]:-}" ]] || { echo "mutation: $file is not a protocol file" >&2; exit 2; }
    read -ra some <<< "${GLOBS[$file]//$'\n'/ }"
    globs+=("${some[@]}")
done
echo "mutation: ${files[*]}"

# ci/mutation_plugin.py: a frozen heap for the garbage collector; the tests that killed the
# function's other mutants first, then the fastest (2-5x fewer seconds per mutant; the
# same verdicts).
export PYTHONPATH="$PWD/ci${PYTHONPATH:+:$PYTHONPATH}"
export PYTEST_ADDOPTS="-p mutation_plugin${PYTEST_ADDOPTS:+ $PYTEST_ADDOPTS}"
# One worker: on two shared cores a second one was slower (docs/testing.md).
# shellcheck disable=SC2086
mutmut run --max-children 1 ${MUTMUT_ARGS:-} "${globs[@]}" | tr '\r' '\n' |
    LC_ALL=C grep --line-buffered -avP '^\xe2[\xa0-\xa3]'  # not the progress spinner's lines
python ci/mutation_score.py "${globs[@]}"
