#!/bin/sh
# tests/tools/commands.sh: every kv-cli command and the three output formats.
. "${top_srcdir:?run me through make check}/tests/tools/lib.sh"
plan 16

check commands 0
check formats 1
# SAVEPOINT, ROLLBACK TO, RELEASE: nested, by name, errors outside a transaction
check savepoints 1

run_cli -c '.timer on; PUT a 1; .timer off; GET a'
printf '%s\n' "$out" | sed -n 2p | grep -Eq '^Time: [0-9]+\.[0-9]{3} ms$'
ok $? ".timer on prints the time after the result"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 3 ]
ok $? ".timer off stops it"

run_cli -c 'PUT a 1; PUT b 2; DEL a; STATS'
printf '%s\n' "$out" | grep -qx 'keys: 1' && printf '%s\n' "$out" | grep -qx 'commits: 3' &&
    printf '%s\n' "$out" | grep -qx 'active_txns: 0'
ok $? "STATS counts commits and keys"
[ "$(printf '%s\n' "$out" | grep -c ': [0-9]*$')" -eq 12 ]
ok $? "STATS prints the twelve counters"

run_cli --format json -c 'PUT a 1; STATS'
printf '%s\n' "$out" | sed -n 2p | grep -Eq '^\{"commits":1,.*"oldest_snapshot_age_us":[0-9]+\}$'
ok $? "STATS in JSON is one object"

run_cli --format=csv -c 'PUT "a b" "1,2"; SCAN'
[ "$out" = 'status
OK
key,value
a b,"1,2"' ]
ok $? "--format=csv"

run_cli --isolation serializable --cc optimistic -c '.isolation; .cc; BEGIN; .sessions'
[ "$out" = 'SERIALIZABLE
OPTIMISTIC
OK
* T1       transaction  SERIALIZABLE OPTIMISTIC, txn 1' ]
ok $? "--isolation and --cc set the session defaults"

run_cli --isolation=read-committed -c '@T9 .isolation'
[ "$out" = '[T9] READ COMMITTED' ]
ok $? "new sessions take the defaults of the options"

out=$(printf 'PUT a 1\nGET a\n' | "$KVCLI" 2>&1)
[ "$out" = 'OK
1' ]
ok $? "commands from a pipe, no prompt"

run_cli -c 'HELP' -c '.help'
printf '%s\n' "$out" | grep -q '^  SCAN \[from \[to\]\] \[LIMIT n\]' &&
    printf '%s\n' "$out" | grep -q '^  \.dump \[FILE\]'
ok $? "HELP and .help list the commands"
