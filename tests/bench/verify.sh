#!/bin/sh
# tests/bench/verify.sh - kv-bench --verify: on every engine this kv-bench was
# built with, at every level the engine provides, a short concurrent run of
# read-modify-writes is recorded and the history checker finds nothing the
# row's level forbids ("verified: OK"); and on a txkv whose optimistic
# commits skip validation (tests/bench/kv-bench-broken --break-validation, built
# against the convenience library) the same check finds the anomaly, prints
# it, and kv-bench exits 1.  Engines not built are skipped (# SKIP).
# Bounded: small runs; the broken run gets at most 5 seeds to show an
# anomaly (one is found in the first almost always).  TAP output.
#
#   top_builddir=BUILD sh tests/bench/verify.sh
set -u

bench="${top_builddir:-.}/bench/kv-bench"
broken="${top_builddir:-.}/tests/bench/kv-bench-broken"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kv-bench-verify.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
n=0
planned=7

echo "1..$planned"

ok() { # ok COND-STATUS DESCRIPTION
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi
}

for p in "$bench" "$broken"; do
    [ -x "$p" ] || { echo "Bail out! $p is not built"; exit 1; }
done

"$bench" --version >"$tmp/version" 2>&1

for e in txkv lmdb rocksdb-txn rocksdb-occ sqlite; do
    if grep -q "^engine $e: not built" "$tmp/version"; then
        n=$((n + 1))
        echo "ok $n # SKIP $e: kv-bench was built without it"
        continue
    fi
    case " ${KVB_SKIP_ENGINES:-} " in *" $e "*)
        n=$((n + 1))
        echo "ok $n # SKIP $e: not in this build's tests (KVB_SKIP_ENGINES: the library is not TSan-instrumented)"
        continue ;;
    esac
    "$bench" --verify --verify-txns 1500 --engine "$e" --workload update --isolation rc,si,ser \
        --cc occ,2pl --threads 2 --keys 50 --txns 50 --warmup 0 --json "$tmp/$e.json" \
        >"$tmp/$e.out" 2>&1
    rc=$?
    # every row that ran is verified OK; rows the engine cannot run are n/a
    okrows=$(grep -c '"status": "ok"' "$tmp/$e.json")
    verified=$(grep -c '"verified": "OK"' "$tmp/$e.json")
    test "$rc" -eq 0 && test "$okrows" -gt 0 && test "$verified" -eq "$okrows" &&
        test "$(grep -c 'verified: OK' "$tmp/$e.out")" -eq "$okrows"
    st=$?
    [ $st -eq 0 ] || { echo "# exit $rc, $okrows rows ran, $verified verified"; sed 's/^/#   /' "$tmp/$e.out"; }
    ok $st "$e: --verify finds no anomaly at any level it provides ($verified rows)"
done

# The same test build, validation on: OK (so a failure below is the switch's doing).
"$broken" --verify --verify-txns 1500 --engine txkv --workload update --isolation si,ser \
    --cc occ --threads 2 --keys 50 --txns 50 --warmup 0 >"$tmp/control.out" 2>&1
rc=$?
test "$rc" -eq 0 && test "$(grep -c 'verified: OK' "$tmp/control.out")" -eq 2
st=$?
[ $st -eq 0 ] || sed 's/^/#   /' "$tmp/control.out"
ok $st "kv-bench-broken without --break-validation: verified OK at si and ser"

# Validation off: lost updates and cycles, found, printed, exit 1.
found=0
for seed in 1 2 3 4 5; do
    "$broken" --break-validation --verify --verify-txns 3000 --engine txkv --workload update \
        --isolation si,ser --cc occ --threads 2 --keys 50 --txns 50 --warmup 0 --seed "$seed" \
        >"$tmp/broken.out" 2>"$tmp/broken.err"
    rc=$?
    if [ "$rc" -eq 1 ] && [ "$(grep -c '^txkv .* verified: ANOMALY ' "$tmp/broken.out")" -eq 2 ] &&
        grep -q '^#   \(lost update\|G-single\|cycle\|G0\|G1c\): ' "$tmp/broken.out" &&
        grep -q 'NOT VERIFIED' "$tmp/broken.err"; then
        found=1
        break
    fi
done
[ $found -eq 1 ] || sed 's/^/#   /' "$tmp/broken.out" "$tmp/broken.err"
ok $((1 - found)) "validation off: --verify finds the anomaly at si and ser and exits 1 (seed $seed)"
grep '^#   ' "$tmp/broken.out" | head -n 3

[ "$n" -eq "$planned" ] || echo "# ran $n tests, planned $planned"
exit 0
