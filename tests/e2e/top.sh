#!/usr/bin/env bash
# GET /api/v1/workers' pages (sort, dir, filter, offset, limit), then drover top, which
# reads one page of them per screen, in a real terminal (tmux, 100x24): a coordinator with 30 fake workers
# (drover stress, attached, holding tests that run for a while) and a real one; then
# keys sent with send-keys change what capture-pane shows: S reverses the order, s sorts
# by the next column, / filters, p pauses (a new suite does not show) and unpauses,
# Down and PgDn scroll, ? shows the help; q quits. `top --once` prints one page of the
# workers (--rows, --offset), not the whole fleet.
source "$(dirname "$0")/lib.sh"
command -v tmux >/dev/null || fail "tmux is missing (scripts/setup.sh installs it)"
start_coordinator
start_worker real-gpu --slots 1 --label cuda
"$DROVER" stress --url "$URL" --token "$DROVER_TOKEN" --worker-token "$DROVER_WORKER_TOKEN" \
    --workers 30 --tests 60 --duration-mean 60 --sigma 0 --time-limit 90 >"$WORK/stress.log" 2>&1 &
PIDS+=("$!")
wait_workers 31

sock="$WORK/tmux.sock"
stop_tmux() { tmux -S "$sock" kill-server 2>/dev/null || true; }
# cleanup exits with the status it finds in $?: keep the script's past stop_tmux.
trap 'rc=$?; stop_tmux; (exit $rc); cleanup' EXIT
tmux -S "$sock" -f /dev/null new-session -d -x 100 -y 24 \
    "env TERM=screen DROVER_URL=$URL DROVER_TOKEN=$DROVER_TOKEN '$DROVER' top --interval 0.5 2>'$WORK/top.err'"
screen() { tmux -S "$sock" capture-pane -p; }
keys() { tmux -S "$sock" send-keys "$@"; }
# The first worker line under the table's header.
first_row() { screen | awk '/^NAME /{getline; print $1; exit}'; }
shows() { screen | grep -q -- "$1"; }
rows_of() { screen | awk '/^NAME /{on=1; next} on && /^[a-z]/{print $1}'; }
# For wait_until, which runs a command anew each time (not a "$(...)" expanded once):
first_is() { [[ "$(first_row)" == "$1" ]]; }
first_not() { [[ "$(first_row)" != "$1" ]]; }
rows_are() { [[ "$(rows_of | tr '\n' ' ')" == "$1" ]]; }
more_rows_than() { (($(rows_of | wc -l) > $1)); }
line_not() { [[ "$(screen | grep "^$1")" != "$2" ]]; }

# GET /api/v1/workers pages as the feed does (what top asks for): sorted, filtered, cut,
# with the totals; a wrong parameter is named; without parameters the whole list.
api GET "/api/v1/workers?sort=name&dir=desc&offset=1&limit=5" >"$WORK/page.json"
api GET "/api/v1/workers?filter=CUDA" >"$WORK/cuda.json"
api GET "/api/v1/workers?limit=0" >"$WORK/bad.json"
api GET "/api/v1/workers" >"$WORK/all.json"
/usr/bin/python3 - "$WORK" <<'PYEOF' || fail "GET /api/v1/workers paging is wrong"
import json, sys
d = sys.argv[1]
def load(n, status="200"):
    lines = [l for l in open(f"{d}/{n}.json").read().split("\n") if l]
    assert lines[-1] == status, (n, lines)
    return json.loads(lines[0])
page, cuda, bad, full = load("page"), load("cuda"), load("bad", "400"), load("all")
names = sorted((w["name"] for w in full["workers"]), reverse=True)
assert len(names) == 31 and "matched" not in full, full.keys()
assert (page["total"], page["matched"], page["offset"], page["limit"]) == (31, 31, 1, 5), page
assert [w["name"] for w in page["workers"]] == names[1:6], (page["workers"], names)
assert [w["name"] for w in cuda["workers"]] == ["real-gpu"] and cuda["matched"] == 1, cuda
assert bad["field"] == "limit", bad
PYEOF

# --once: one page, as the terminal asks for one screen; the line under it says which.
"$DROVER" top --once --sort -name --rows 5 --offset 1 >"$WORK/once.out" 2>&1 ||
    fail "top --once: $(cat "$WORK/once.out")"
once_rows=$(awk '/^NAME /{on=1; next} on && /^[a-z]/ && !/^workers /{print $1}' "$WORK/once.out" | tr '\n' ' ')
[[ "$once_rows" == "stress-8 stress-7 stress-6 stress-5 stress-4 " ]] ||
    fail "top --once --rows 5 --offset 1 showed: $once_rows"
grep -q '^workers 2-6 of 31 shown' "$WORK/once.out" || fail "top --once: no page line: $(cat "$WORK/once.out")"
"$DROVER" top --once --rows 0 >/dev/null 2>&1 && fail "top --once --rows 0 was accepted"

wait_until 10 shows '^NAME '

wait_until 5 first_is real-gpu
# S: reversed (stress-9 is the last name).
keys S
wait_until 5 first_is stress-9
keys S
wait_until 5 first_is real-gpu
# s: the next column (health): the bottom line says so.
keys s
wait_until 5 shows 'sort health'
keys s s s  # health -> thermal -> load -> score
wait_until 5 shows 'sort score'
keys s s    # finished, then name again
wait_until 5 shows 'sort name'
# Scrolling: Down moves the table by one line, PgDn by a page.
before=$(first_row)
keys Down
wait_until 5 first_not "$before"
second=$(first_row)
keys NPage
wait_until 5 first_not "$second"
keys Home
wait_until 5 first_is real-gpu
# /: the filter keeps the workers with a cuda tag (the real one) only.
keys / c u d a Enter
wait_until 5 rows_are "real-gpu "
wait_until 5 shows 'filter: cuda'
keys / Escape
wait_until 5 more_rows_than 5
# p: paused, the counts stay as they were while a suite runs; p again: they move.
keys p
wait_until 5 shows PAUSED
tests_line=$(screen | grep '^tests:')
for i in 1 2 3; do echo "{\"name\":\"top-$i\",\"argv\":[\"true\"],\"requirements\":{\"tags\":[\"cuda\"]}}"; done >"$WORK/s.jsonl"
"$DROVER" run --run top "$WORK/s.jsonl" >"$WORK/run.out" 2>&1 || fail "the suite failed: $(cat "$WORK/run.out")"
sleep 1.5
[[ "$(screen | grep '^tests:')" == "$tests_line" ]] || fail "paused, the counts still moved"
keys Space
wait_until 5 line_not tests: "$tests_line"
shows PAUSED && fail "space did not resume"
# ?: the help; any key closes it; q quits.
keys '?'
wait_until 5 shows 'drover top: keys'
keys x
wait_until 5 bash -c "! tmux -S '$sock' capture-pane -p | grep -q 'drover top: keys'"
screen | sed -n 1,8p
keys q
wait_until 5 bash -c "! tmux -S '$sock' has-session 2>/dev/null"
[[ ! -s $WORK/top.err ]] || fail "top wrote to stderr: $(cat "$WORK/top.err")"
echo "e2e top: ok"
