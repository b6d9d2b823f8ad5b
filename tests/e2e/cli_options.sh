#!/usr/bin/env bash
# Every command reads its options from one table (src/cli/options.c): an unknown option or
# a bad value exits 2 and names the option; a command's --help lists its options from
# that table. No coordinator is needed: all of these fail before one is asked.
source "$(dirname "$0")/lib.sh"
# refused WANT CMD...: CMD exits 2 and its stderr holds WANT.
refused() {
    local want=$1 got=0
    shift
    "$DROVER" "$@" >"$WORK/out" 2>"$WORK/err" </dev/null || got=$?
    [[ $got -eq 2 ]] || fail "drover $*: exit $got, expected 2: $(cat "$WORK/err")"
    grep -qF -- "$want" "$WORK/err" || fail "drover $*: does not name $want: $(cat "$WORK/err")"
}
for cmd in status top report fleet worker coordinator stress demo sim submit run wait runs \
    cancel explain ctest pytest judge explain-config; do
    refused '"--no-such-option"' "$cmd" --no-such-option
done
refused '--workers' status --workers=yes
refused '--interval' top --interval 0
refused '--sort' top --sort bogus
refused '--url' report --junit r.xml --url
refused '--slots' worker --slots 0
refused '--log-format' worker --log-format xml
refused '--retention' coordinator --retention 0
refused '--heartbeat-timeout' coordinator --heartbeat-timeout -1
refused '--max-body' coordinator --max-body 5
refused '--scenario' stress --scenario none
refused '--grid-tests' stress --grid-tests 1,x
refused '--seed' demo --seed -1
refused '--workers' sim --workers 0
refused '--gpu-trace' sim --gpu-trace nodes.csv
refused '--wait-timeout' run --wait-timeout 0 -- true
refused '--wait-timeout' submit --wait-timeout 5 -- true
refused '--rerun-failures' submit --rerun-failures 101 -- true
refused '--priority' submit --priority 5000 -- true
refused '--shell' submit --shell=yes -- true
refused '--request-timeout' runs --request-timeout 0
# --help comes from the tables: an option of each, with its value and help.
for pair in "status:--test ID|NAME" "top:--interval S" "report:--junit FILE" "worker:--slots N" \
    "coordinator:--auth-timeout S" "stress:--grid-workers L" "demo:--seed N" \
    "sim:--max-time S" "run:--wait-timeout S" "submit:--priority N"; do
    "$DROVER" "${pair%%:*}" --help >"$WORK/help" || fail "${pair%%:*} --help failed"
    grep -qE "^  ${pair#*:} +[^ ]" "$WORK/help" || fail "${pair%%:*} --help lacks ${pair#*:}: $(cat "$WORK/help")"
done
echo ok
