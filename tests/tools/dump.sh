#!/bin/sh
# tests/tools/dump.sh: .dump and .load round-trip binary keys and values.
. "${top_srcdir:?run me through make check}/tests/tools/lib.sh"
plan 7

cp "$CLI_DATA/bad.kv" "$tmp/bad.kv"
check dump 1
cmp -s "$tmp/first.kv" "$CLI_DATA/dump.kv"
ok $? "the dump file is as documented"

run_cli -c '.load first.kv; .dump second.kv'
[ "$st" -eq 0 ] && cmp -s "$tmp/first.kv" "$tmp/second.kv"
ok $? ".load then .dump gives the same file"

run_cli -f "$tmp/first.kv" -c '.dump third.kv'
[ "$st" -eq 0 ] && cmp -s "$tmp/first.kv" "$tmp/third.kv"
ok $? "a dump is also a script"

run_cli -c 'BEGIN; .load first.kv; COUNT; ROLLBACK; COUNT'
[ "$out" = 'OK
OK (8 keys)
8
OK
0' ]
ok $? ".load in a transaction goes away with ROLLBACK"

run_cli --format json -c '.load first.kv; GET "\xff\xfe"; GET "\x00"'
[ "$out" = '{"ok":true,"keys":8}
{"key_hex":"fffe","value":"high bytes"}
{"key":"\u0000","value":"key is one NUL byte"}' ]
ok $? "binary keys in JSON"
