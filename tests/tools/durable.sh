#!/bin/sh
# tests/tools/durable.sh: kv-cli DIR keeps the database in a directory;
# .checkpoint and .info; a directory in use or not a database is refused.
. "${top_srcdir:?run me through make check}/tests/tools/lib.sh"
plan 9

run_cli "$tmp/db" -c 'PUT a 1; PUT b 2; DEL b'
[ "$st" -eq 0 ] && [ -f "$tmp/db/FORMAT" ]
ok $? "kv-cli DIR creates a database in DIR"

run_cli "$tmp/db" -c 'GET a; GET b'
[ "$out" = '1
(nil)' ]
ok $? "a second run sees the first one's commits"

run_cli "$tmp/db" --sync none -c '.info'
case $out in *"database: $tmp/db"*"sync: none"*"log_bytes: "*"checkpoint_ts: 0"*"recovered_bytes_dropped: 0"*) r=0 ;; *) r=1 ;; esac
ok $r ".info shows the directory, the policy and the log"

run_cli "$tmp/db" -c 'PUT c 3; .checkpoint; .info'
case $out in *"checkpoint_ts: 0"*) r=1 ;; *"checkpoint_ts: "*) r=0 ;; *) r=1 ;; esac
ok $r ".checkpoint writes a checkpoint"

run_cli "$tmp/db" -c 'COUNT'
[ "$out" = 2 ]
ok $? "checkpoint + log recovered"

run_cli -c '.checkpoint'
[ "$st" -ne 0 ] && case $out in *INVALID*) true ;; *) false ;; esac
ok $? ".checkpoint in memory fails with INVALID"

run_cli -c '.info'
[ "$out" = 'database: (in memory)' ]
ok $? ".info in memory"

mkdir "$tmp/other" && echo hello >"$tmp/other/notes"
run_cli "$tmp/other" -c 'COUNT'
[ "$st" -eq 1 ] && case $out in *INVALID*) true ;; *) false ;; esac && [ "$(ls "$tmp/other")" = notes ]
ok $? "a directory that is not a database is refused and left alone"

printf 'junk-bytes' >>"$(ls "$tmp"/db/wal-*.log | tail -n 1)"
run_cli "$tmp/db" -c 'COUNT'
case $out in *"10 bytes dropped"*2) r=0 ;; *) r=1 ;; esac
ok $r "a torn log tail is cut and reported"
finish
