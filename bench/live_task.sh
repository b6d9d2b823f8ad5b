#!/bin/sh
# live_task.sh BASE_S - one test of bench/live.sh: sleeps BASE_S seconds times the
# slowdown of the worker that runs it.
#
# Tests inherit the environment of the worker that runs them (drover worker, or a lane
# of the pull-queue baseline), which is how bench/live.sh gives machines of one host
# different speeds:
#   DROVER_BENCH_SLOWDOWN  factor every test's sleep is multiplied by (default 1): a
#                          worker started with 3 is a machine three times slower
#   DROVER_BENCH_HANG_DIR  straggler scenario: once this directory exists, the first
#   DROVER_BENCH_HANG_COUNT  COUNT tests started on this worker (claimed with mkdir, so
#   DROVER_BENCH_HANG_S      concurrent slots never take the same one) sleep HANG_S more
base=$1
extra=0
if [ -n "${DROVER_BENCH_HANG_DIR:-}" ] && [ -d "$DROVER_BENCH_HANG_DIR" ]; then
    i=1
    while [ "$i" -le "${DROVER_BENCH_HANG_COUNT:-0}" ]; do
        if mkdir "$DROVER_BENCH_HANG_DIR/$i" 2>/dev/null; then
            extra=${DROVER_BENCH_HANG_S:-10}
            break
        fi
        i=$((i + 1))
    done
fi
exec sleep "$(awk -v b="$base" -v f="${DROVER_BENCH_SLOWDOWN:-1}" -v e="$extra" \
    'BEGIN { printf "%.3f", b * f + e }')"
