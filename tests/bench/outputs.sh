#!/bin/sh
# tests/bench/outputs.sh - kv-bench's outputs and its command line, as a user
# meets them: --json keeps counts exact and rates at full precision (parsed
# with python3's json module); a failed --json, --plot or stdout is reported
# as what it is, never as a failed row, and exits 1; --plot without gnuplot
# still writes its script, with paths relative to its folder and "1 thread"
# in the titles; empty and repeated list items are usage errors; an
# unsupported row says why; --help says what the default run costs.
# Each run is a few hundred transactions on a small keyspace.  TAP output.
#
#   top_builddir=BUILD sh tests/bench/outputs.sh
set -u

bench="${top_builddir:-.}/bench/kv-bench"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kv-bench-outputs.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
n=0
planned=14
echo "1..$planned"

ok() { # ok COND-STATUS DESCRIPTION
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi
}

skip() {
    n=$((n + 1))
    echo "ok $n # SKIP $1"
}

[ -x "$bench" ] || { echo "Bail out! $bench is not built"; exit 1; }
small="--engine txkv --isolation si --cc occ --keys 300 --warmup 0"

# ---- bug 4: --json precision -----------------------------------------------------
# Over a million records read: a count that %g would print as 1.2e+06.
# shellcheck disable=SC2086
"$bench" --workload scan $small --keys 12000 --scan-length 10000 --txns 250 \
    --json "$tmp/big.json" >"$tmp/out" 2>&1
rc=$?
if command -v python3 >/dev/null 2>&1; then
    python3 - "$tmp/big.json" <<'EOF'
import json, sys
rows = [r for r in json.load(open(sys.argv[1]))["rows"] if r["status"] == "ok"]
bad = 0
for r in rows:
    for k in ("txns", "aborts", "ops", "notfound"):
        if type(r[k]) is not int:
            print("# %s is %r, not an integer" % (k, r[k])); bad = 1
    if r["ops"] <= 10**6:
        print("# ops %r: the run read too little to test" % r["ops"]); bad = 1
    for rate, count in (("txn_per_sec", "txns"), ("ops_per_sec", "ops")):
        if abs(r[rate] * r["seconds"] - r[count]) > 1e-9 * r[count]:
            print("# %s %r x seconds %r != %s %r" % (rate, r[rate], r["seconds"], count, r[count]))
            bad = 1
sys.exit(bad or len(rows) != 1)
EOF
    ok $((rc + $?)) "--json: counts are exact integers, rates keep full precision"
else
    skip "python3 is not installed"
fi

# ---- bug 6 and bug 8: an output that cannot be written ----------------------------
# shellcheck disable=SC2086
"$bench" --workload read $small --txns 100 --json /dev/full >"$tmp/out" 2>"$tmp/err"
rc=$?
test "$rc" -eq 1 && grep -q -- '--json /dev/full: No space left on device' "$tmp/err" &&
    ! grep -q 'FAILED' "$tmp/err" && grep -q 'was not written' "$tmp/err"
st=$?
[ $st -eq 0 ] || { echo "# exit $rc"; sed 's/^/#   /' "$tmp/err"; }
ok $st "--json on a full disk: says so, no row FAILED, exit 1"

# shellcheck disable=SC2086
KV_BENCH_GNUPLOT=false "$bench" --workload read $small --threads 1,2 --txns 100 \
    --plot "$tmp/failplot" >"$tmp/out" 2>"$tmp/err"
rc=$?
test "$rc" -eq 1 && grep -q 'kv-bench.gp failed' "$tmp/err" && ! grep -q 'FAILED' "$tmp/err"
st=$?
[ $st -eq 0 ] || { echo "# exit $rc"; sed 's/^/#   /' "$tmp/err"; }
ok $st "a failing gnuplot: says so, no row FAILED, exit 1"

# shellcheck disable=SC2086
"$bench" --workload read $small --txns 100 >/dev/full 2>"$tmp/err"
rc=$?
test "$rc" -eq 1 && grep -q 'standard output: No space left on device' "$tmp/err"
st=$?
[ $st -eq 0 ] || { echo "# exit $rc"; sed 's/^/#   /' "$tmp/err"; }
ok $st "stdout on a full disk: says so, exit 1"

# ---- --plot without gnuplot: the script is written, relative, to run later ---------------
# shellcheck disable=SC2086
KV_BENCH_GNUPLOT=/nonexistent/gnuplot "$bench" --workload update $small --threads 1,2 \
    --theta 0,0.5 --txns 100 --plot "$tmp/plots" >"$tmp/out" 2>"$tmp/err"
rc=$?
gp="$tmp/plots/kv-bench.gp"
test "$rc" -eq 0 && grep -q 'gnuplot is not on PATH' "$tmp/err" && grep -q 'kv-bench.gp' "$tmp/err" &&
    test -s "$gp"
ok $? "--plot without gnuplot: says so, writes kv-bench.gp, exit 0"
grep -q "^set output 'throughput-update-theta0.png'" "$gp" && ! grep -q "$tmp" "$gp"
ok $? "the script's paths are relative to its folder"
grep -q "(1 thread)'" "$gp" && grep -q "(2 threads)'" "$gp"
ok $? "chart titles say 1 thread, 2 threads"
if command -v gnuplot >/dev/null 2>&1; then
    mv "$tmp/plots" "$tmp/moved" && (cd "$tmp/moved" && gnuplot kv-bench.gp) >/dev/null 2>&1 &&
        test -s "$tmp/moved/throughput-update-theta0.png" && test -s "$tmp/moved/aborts-update-t1.png"
    ok $? "the script runs later, in its folder, after the folder moved"
else
    skip "gnuplot is not installed"
fi

# ---- list options: empty and repeated items ----------------------------------------------
bad_option() { # bad_option DESCRIPTION PATTERN ARGS...
    what=$1 pat=$2
    shift 2
    "$bench" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    test "$rc" -eq 2 && grep -q -- "$pat" "$tmp/err" && ! test -s "$tmp/out"
    st=$?
    [ $st -eq 0 ] || { echo "# exit $rc; stderr:"; sed 's/^/#   /' "$tmp/err"; }
    ok $st "usage error: $what"
}
bad_option "-t 1,,2" "empty item" -t 1,,2
bad_option "-t 1,2,1" "given twice" -t 1,2,1
bad_option "--isolation rc,read-committed" "given twice" --isolation rc,read-committed
bad_option "--theta 0.5," "empty item" --theta 0.5,

# ---- unsupported rows say why; --help says what the default run costs -----------------------
"$bench" --workload scan --engine txkv --index hash --isolation si --cc occ --keys 100 \
    --txns 10 --warmup 0 >"$tmp/out" 2>"$tmp/err"
rc=$?
test "$rc" -eq 0 && grep -q 'unsupported: a hash-only keyspace (--index hash) cannot scan' "$tmp/out" &&
    grep -q '1 row unsupported' "$tmp/err" && ! grep -q 'by this build' "$tmp/err"
st=$?
[ $st -eq 0 ] || { echo "# exit $rc"; sed 's/^/#   /' "$tmp/out" "$tmp/err"; }
ok $st "a scan on a hash-only keyspace: unsupported, and why"

"$bench" --help | grep -q 'about a minute, and up to about$'
ok $? "--help says how long the default run takes"

[ "$n" -eq "$planned" ] || echo "# ran $n tests, planned $planned"
exit 0
