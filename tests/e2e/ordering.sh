#!/usr/bin/env bash
# after and locks through real processes: a chain runs in order; a test after a failed
# setup is skipped (its reason says why) and a cleanup with run_anyway runs after both;
# tests sharing a lock never overlap; an exclusive test runs while nothing else does;
# duplicate names are refused with the names; and a coordinator killed while a test
# waits for one that runs keeps the order after its restart (the store keeps after).
source "$(dirname "$0")/lib.sh"
start_coordinator --recovery-grace 10
COORD_PORT=$PORT
start_worker w1 --slots 2
start_worker w2 --slots 2
wait_workers 2

log="$WORK/order.log"
# step NAME SECONDS [EXIT]: a test that logs its start and end around a sleep.
step() {
    local cmd="echo start $1 >>$log; sleep $2; echo end $1 >>$log; exit ${3:-0}"
    printf '{"name":"%s","command":"%s","shell":true' "$1" "$cmd"
}
{
    echo "["
    step a 0.3; echo '},'
    step b 0.2; echo ',"after":["a"]},'
    step c 0.1; echo ',"after":["b"]},'
    step setup 0.1 1; echo '},'
    step uses 0.1; echo ',"after":["setup"]},'
    step uses2 0.1; echo ',"after":["uses"]},'
    step cleanup 0.1; echo ',"after":["setup","uses"],"run_anyway":true},'
    step l1 0.3; echo ',"locks":["db"]},'
    step l2 0.3; echo ',"locks":["db","gpu"]},'
    step l3 0.3; echo ',"locks":["db"]},'
    step f1 0.4; echo '},'
    step f2 0.4; echo '},'
    step alone 0.5; echo ',"exclusive":true}'
    echo "]"
} >"$WORK/suite.json"

status=0
"$DROVER" run --run ordering "$WORK/suite.json" >"$WORK/run.out" 2>&1 || status=$?
cat "$WORK/run.out"
[[ $status -eq 1 ]] || fail "drover run exited $status, expected 1 (setup fails)"
cat "$log"

# line WORD NAME: the line number of "WORD NAME" in the log.
line() { grep -n -x "$1 $2" "$log" | head -n 1 | cut -d: -f1; }
before() { # before A_WORD A B_WORD B: A's line comes before B's
    local x y
    x=$(line "$1" "$2")
    y=$(line "$3" "$4")
    [[ -n "$x" && -n "$y" && $x -lt $y ]] || fail "expected '$1 $2' before '$3 $4' in the log"
}
before end a start b
before end b start c
before end setup start cleanup
[[ -z "$(line start uses)" && -z "$(line start uses2)" ]] || fail "a test after a failed setup ran"
[[ $(count_in skipped "&run=1") -eq 2 ]] || fail "expected 2 skipped, got $(count_in skipped "&run=1")"
api GET '/api/v1/tests?state=skipped' | head -n 1 | grep -q 'a test it runs after did not pass (after: setup)' ||
    fail "the skipped test does not say why"
[[ $(count_in passed "&run=1") -eq 10 ]] || fail "expected 10 passed, got $(count_in passed "&run=1")"

# Holders of db never overlap: between a start and its end no other db test starts.
# By name: an attempt moved away from a worker that had just started it is killed there
# and logs no end, then starts again elsewhere.
awk '/^start l[123]$/ { for (n in open) if (n != $2) bad = 1; open[$2] = 1 }
     /^end l[123]$/ { delete open[$2] } END { exit bad }' "$log" ||
    fail "two tests holding lock db ran at once"
# The exclusive test ran alone: nothing started or ended between its start and end.
s=$(line start alone)
e=$(line end alone)
[[ -n "$s" && $((e - s)) -eq 1 ]] || fail "the exclusive test did not run alone (lines $s..$e)"
open=$(head -n "$((s - 1))" "$log" |
    awk '/^start/ { open[$2] = 1 } /^end/ { delete open[$2] } END { for (n in open) printf "%s ", n }')
[[ -z "$open" ]] || fail "running when the exclusive test started: $open"

# Duplicate names are refused with the names, and nothing is stored.
dup=$(api POST '/api/v1/tests' --data-binary '[{"name":"x","argv":["true"]},{"name":"x","argv":["true"]}]')
[[ $(tail -n 1 <<<"$dup") == 400 ]] || fail "duplicate names accepted: $dup"
grep -q '\\"x\\" (tests\[0\] and tests\[1\])' <<<"$dup" || fail "the error does not name the duplicate: $dup"

# A restart while d2 waits for d1, which runs: d2 still runs after d1.
: >"$log"
{
    echo "["
    step d1 2; echo '},'
    step d2 0.1; echo ',"after":["d1"]}'
    echo "]"
} >"$WORK/restart.json"
out=$(api POST '/api/v1/tests?run=restart' --data-binary @"$WORK/restart.json")
grep -q '"count":2' <<<"$out" || fail "submit: $out"
wait_until 10 grep -q 'start d1' "$log"
kill -9 "$COORD_PID"
start_coordinator --recovery-grace 10
"$DROVER" wait 2 --timeout 60 || fail "the run did not pass after the restart"
cat "$log"
before end d1 start d2
echo ok
