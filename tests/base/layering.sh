#!/bin/sh
# tests/base/layering.sh - build-aux/check-layering passes on this tree, and
# fails on copies of it into which an upward include, a pair of modules
# including each other, or a program including a library header was put.
: "${top_srcdir:?run me through make check}"
check=$top_srcdir/build-aux/check-layering
tmp=$(mktemp -d "${TMPDIR:-/tmp}/txkv-layering.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }

out=$(sh "$check" "$top_srcdir" 2>&1)
ok $? "the tree keeps the module order"
printf '%s\n' "$out" | grep -q '^not ok' && echo "$out" | sed 's/^/# /'

# broken SRC-FILE LINE: a copy of src/, tools/ and bench/ with LINE added to
# SRC-FILE; prints what check-layering says and returns its status.
broken() {
    rm -rf "$tmp/t" && mkdir -p "$tmp/t" &&
        cp -R "$top_srcdir/src" "$top_srcdir/tools" "$top_srcdir/bench" "$tmp/t/" &&
        chmod -R u+w "$tmp/t" &&
        printf '%s\n' "$2" >>"$tmp/t/$1" &&
        sh "$check" "$tmp/t" >"$tmp/out" 2>&1
}

broken src/record/record.c '#include "txn/txn.h"'
[ $? -ne 0 ] && grep -q 'includes txn/txn.h (txn), a module above it' "$tmp/out"
ok $? "an upward include (record -> txn) fails"

broken src/lock/lock.h '#include "gc/gc.h"'
[ $? -ne 0 ] && grep -q 'gc <-> lock' "$tmp/out"
ok $? "two modules including each other (lock <-> gc) fail"

broken src/txn/txn.c '#include "lock/lock-int.h"'
[ $? -ne 0 ] && grep -q 'private to lock' "$tmp/out"
ok $? "a module's private header included from another module fails"

broken tools/kv-cli.c '#include "txn/txn.h"'
[ $? -ne 0 ] && grep -q 'tools/kv-cli.c includes txn/txn.h' "$tmp/out"
ok $? "a program including a library header fails"

echo "1..$n"
