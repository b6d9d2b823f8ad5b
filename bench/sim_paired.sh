#!/usr/bin/env bash
# sim_paired.sh - is one balancer better than another on seeds nobody tuned on? Runs
# `drover sim --scenario second_run` for one policy (composite) with two builds or two
# configs over many seeds and prints, for each, run 2 / lower bound (mean, its standard
# error, seeds within 1.05) and then the paired difference seed by seed (mean of
# log(B / A), its standard error, seeds better and worse by more than 0.1 %).
#
# Why: a single seed swings by several % on any change to placement (run 2 rests on what
# run 1 taught), and the standard error of a 100-seed mean is about 0.006 (docs/balancer.md,
# "The seed bars against held-out seeds"): a change is real when the paired difference is
# two or three standard errors from 0 on seeds it was not tuned on. The default seeds,
# 101-400, are outside test_sim's and bench/sim_seeds.sh's 1-100.
#
# Usage: bench/sim_paired.sh A B, each BUILD_DIR or BUILD_DIR:CONFIG (a balancer config
# file, e.g. one setting settings.backend_speed_prior; a config's default_scheduler
# gives composite its weights). Env SEEDS ("$(seq 101 400)"), WORKERS (100), TESTS
# (10000), POLICY (composite). About 0.3 s per seed and side at 100 workers in a Release
# build (cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release), 4 s at 1,000.
# Example: bench/sim_paired.sh build-release build-release:my.json
set -euo pipefail
[[ $# -eq 2 ]] || { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
command -v jq >/dev/null || { echo "bench/sim_paired: jq not found (scripts/setup.sh installs it)" >&2; exit 1; }
seeds=${SEEDS:-$(seq 101 400)}
workers=${WORKERS:-100}
tests=${TESTS:-10000}
policy=${POLICY:-composite}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# side NAME SPEC: one line per seed, "seed ratio", into $tmp/NAME
side() {
    local build=${2%%:*} config=() out=$tmp/$1
    [[ "$2" == *:* ]] && config=(--config "${2#*:}")
    [[ -x "$build/drover" ]] || { echo "bench/sim_paired: $build/drover not found" >&2; return 1; }
    for seed in $seeds; do
        "$build/drover" sim --scenario second_run --workers "$workers" --tests "$tests" \
            --seed "$seed" --no-timing --json --policies "$policy" "${config[@]}" |
            jq -r --arg s "$seed" '.[] | select(.run == 2) | "\($s) \(.ratio_to_bound)"'
    done >"$out"
}

echo "second_run, $workers workers, $tests tests, $policy run 2 / bound, $(wc -w <<<"$seeds") seeds"
side a "$1" &
pid=$!
side b "$2"
wait "$pid"
for s in a b; do
    spec=$1
    [[ $s == b ]] && spec=$2
    awk -v who="$s: $spec" '{ x = $2; n++; sum += x; sq += x * x; k += x <= 1.05 }
        END { m = sum / n; v = n > 1 ? (sq - n * m * m) / (n - 1) : 0
              printf "%-40s mean %.4f (standard error %.4f), within 1.05 on %d of %d\n",
                  who, m, sqrt(v > 0 ? v / n : 0), k, n }' "$tmp/$s"
done
join "$tmp/a" "$tmp/b" | awk '{ d = log($3 / $2); n++; sum += d; sq += d * d
        better += d < -0.001; worse += d > 0.001 }
    END { m = sum / n; v = n > 1 ? (sq - n * m * m) / (n - 1) : 0
          printf "b against a: mean log ratio %+.4f (standard error %.4f), b better on %d seeds, worse on %d\n",
              m, sqrt(v > 0 ? v / n : 0), better, worse }'
