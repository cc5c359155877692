#!/bin/sh
# run.sh SPEC - runs one isolation spec through kv-cli under the six
# configurations (READ COMMITTED, SNAPSHOT, SERIALIZABLE x OPTIMISTIC,
# PESSIMISTIC) and prints TAP: one result for each configuration, passing
# when kv-cli printed exactly the transcript the spec expects for it.
# tests/isolation/README describes the spec format; spec.awk reads it.
#
# ISOLATION_WAIT (ms, default 1000) is kv-cli's --wait: how long a command
# may take before it is reported blocked.  It must be long enough that a
# command that merely runs slowly (a sanitizer build on a loaded machine)
# is not taken for a blocked one; every blocking step costs that long.
. "${top_srcdir:?run me through make check}/tests/tools/lib.sh"
spec=${1:?usage: run.sh SPEC}
name=$(basename "$spec" .spec)
wait_ms=${ISOLATION_WAIT:-1000}
AWK=${AWK:-awk}

plan 6
for cfg in rc/occ si/occ ser/occ rc/2pl si/2pl ser/2pl; do
    case $cfg in
    rc/*) level=read-committed ;;
    si/*) level=snapshot ;;
    ser/*) level=serializable ;;
    esac
    case $cfg in
    */occ) cc=optimistic ;;
    */2pl) cc=pessimistic ;;
    esac
    what="$name: $level $cc"
    if ! $AWK -v cfg="$cfg" -v script="$tmp/script" -v expect="$tmp/expect" \
        -f "$top_srcdir/tests/isolation/spec.awk" "$spec" 2>"$tmp/err"; then
        sed 's/^/# /' "$tmp/err"
        ok 1 "$what (the spec is malformed)"
        continue
    fi
    (cd "$tmp" && "$KVCLI" -e --wait "$wait_ms" --isolation="$level" --cc="$cc" -f "$tmp/script") \
        >"$tmp/raw" 2>&1
    st=$?
    # Error messages are cut after the error's name, as in the expectation.
    sed 's/^\(\(\[[A-Za-z0-9_]*\] \)\{0,1\}(error) [A-Z_]*\):.*/\1/' "$tmp/raw" >"$tmp/got"
    diff -u "$tmp/expect" "$tmp/got" >"$tmp/diff"
    d=$?
    if [ $d -ne 0 ]; then
        echo "# $what: expected (-) and printed (+):"
        sed 's/^/#   /' "$tmp/diff"
    fi
    if [ $st -gt 1 ]; then
        echo "# kv-cli exited with status $st"
        d=1
    fi
    ok $d "$what"
done
finish
