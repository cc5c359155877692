#!/bin/sh
# tests/bench/wal-bench.sh - wal-bench runs each of its modes for a blink on
# a small keyspace and its output holds together: recovery times the three
# reopens; checkpoint --checkpoints 2 prints a row per checkpoint and the
# median line; sync prints a row per policy, or the one --sync names; bad
# options exit 2; nothing is left in --dir.
# Not a measurement: a few thousand keys, windows of tenths of a second.
# TAP output for automake's tap-driver.
#
#   top_builddir=BUILD sh tests/bench/wal-bench.sh
set -u

bench="${top_builddir:-.}/bench/wal-bench"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wal-bench-smoke.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
n=0

echo "1..12"

# ok COND-STATUS DESCRIPTION: one TAP line
ok() { n=$((n + 1)) && if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }

lines() { # lines FILE PATTERN: how many lines of FILE match PATTERN
    grep -c -- "$2" "$1"
}

mkdir "$tmp/d"
"$bench" --dir "$tmp/d" -k 3000 -u 3000 recovery >"$tmp/rec" 2>&1
ok $? "recovery: exit 0"
[ "$(lines "$tmp/rec" ' s ')" -ge 3 ]
ok $? "recovery: three reopens timed"

"$bench" --dir "$tmp/d" -k 3000 -t 2 -d 0.2 --checkpoints 2 checkpoint >"$tmp/ck" 2>&1
ok $? "checkpoint --checkpoints 2: exit 0"
[ "$(lines "$tmp/ck" '^[12] ')" -eq 2 ]
ok $? "checkpoint: a row for each checkpoint"
[ "$(lines "$tmp/ck" '^txn/s during: median [0-9]*% ')" -eq 1 ]
ok $? "checkpoint: the median line"

"$bench" --dir "$tmp/d" -k 3000 -t 2 -d 0.2 sync >"$tmp/sync" 2>&1
ok $? "sync: exit 0"
[ "$(lines "$tmp/sync" '^\(none\|interval\|commit\) *[0-9]')" -eq 3 ]
ok $? "sync: a row for each policy"
"$bench" --dir "$tmp/d" -k 3000 -t 1 -d 0.1 --sync interval sync >"$tmp/one" 2>&1
ok $? "sync --sync interval: exit 0"
[ "$(lines "$tmp/one" '^interval *[0-9]')" -eq 1 ] &&
    [ "$(lines "$tmp/one" '^\(none\|commit\) ')" -eq 0 ]
ok $? "sync --sync interval: that row alone"

"$bench" --dir "$tmp/d" --checkpoints 0 checkpoint >/dev/null 2>&1
[ $? -eq 2 ]
ok $? "--checkpoints 0: exit 2"
"$bench" --dir "$tmp/d" bogus >/dev/null 2>&1
[ $? -eq 2 ]
ok $? "an unknown mode: exit 2"

[ -z "$(ls -A "$tmp/d")" ]
ok $? "nothing left in --dir"
