#!/bin/sh
# tests/tools/sessions.sh: sessions, @NAME, and commands that do not finish in time.
. "${top_srcdir:?run me through make check}/tests/tools/lib.sh"
plan 5

check sessions 0

# A command that takes longer than --wait is reported (a .sleep as sleeping) and the shell
# goes on; later commands of that session queue behind it; results print
# when they are ready (here: at the end of input, which waits for them).
run_cli --wait 1000 -c '@T2 .sleep 3' -c '@T2 GET a' -c 'PUT a 2' -c '.sessions'
[ "$st" -eq 0 ] && [ "$out" = '[T2] sleeping
[T2] queued behind its blocked command
OK
* T1       idle         defaults SNAPSHOT OPTIMISTIC
  T2       sleeping     defaults SNAPSHOT OPTIMISTIC
[T2] OK
[T2] 2' ]
ok $? "a slow command is reported blocked, its result printed later"

# Still blocked at the end of input: reported, exit 1, and the shell does not hang.
run_cli --wait 20 -c '@T2 .sleep 30'
[ "$st" -eq 1 ] && [ "$out" = '[T2] sleeping
[T2] (error) BLOCKED: still sleeping at the end of input; giving up on it' ]
ok $? "a command still blocked at the end is reported"

# A blocked command's result arrives while the shell waits for input.
{ echo '@T2 .sleep 0.2'; sleep 2; echo '.session'; } | "$KVCLI" --wait 50 >"$tmp/pipe.out" 2>&1
[ "$(cat "$tmp/pipe.out")" = '[T2] sleeping
[T2] OK
T1' ]
ok $? "results of blocked commands print while input is idle"
