#!/bin/sh
# tests/bench/smoke.sh - kv-bench runs every workload on every engine, isolation
# level and scheme for a blink on a small keyspace, and its outputs hold
# together: exit status, the CSV header and rows, the JSON, unsupported rows,
# --txns counts, bad options (exit 2), and --plot with and without gnuplot;
# each peer engine built (rocksdb-txn, rocksdb-occ, sqlite; # SKIP when
# absent) runs every workload at each level it provides (n/a where it does
# not) and reads exactly the bytes txkv reads, rmw --batch included; multiget
# and readn read the same bytes, and so does rmw with and without --batch;
# a --verify row says OK.
# Not a measurement: each row commits 300 transactions.  TAP output for automake's tap-driver.
#
#   top_builddir=BUILD sh tests/bench/smoke.sh
set -u

bench="${top_builddir:-.}/bench/kv-bench"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kv-bench-smoke.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

workloads="ycsb-a ycsb-b ycsb-c ycsb-d ycsb-e ycsb-f read update rmw scan bank multiget readn"
header="engine,workload,isolation,cc,threads,keys,value_size,theta,txns,"
header="${header}txn_per_sec,ops_per_sec,abort_rate,p50_us,p99_us,p999_us,bytes_per_key,engine_version,"
header="${header}load_bytes_per_key,rss_load_per_key,pass_bytes_per_key,rss_pass_per_key"
n=0
failed=0

planned=42
echo "1..$planned"

ok() { # ok COND-STATUS DESCRIPTION
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        failed=$((failed + 1))
    fi
}

skip() {
    n=$((n + 1))
    echo "ok $n # SKIP $1"
}

if [ ! -x "$bench" ]; then
    echo "Bail out! $bench is not built"
    exit 1
fi

# ---- --help, --version, bad options ------------------------------------------
"$bench" --help >"$tmp/out" 2>&1
rc=$?
grep -q '^usage: kv-bench' "$tmp/out"
ok $((rc + $?)) "--help exits 0 with a usage line"

"$bench" --version >"$tmp/out" 2>&1
rc=$?
grep -q '^kv-bench (txkv) ' "$tmp/out"
ok $((rc + $?)) "--version exits 0 and names the version"
grep -q '^engine txkv: ' "$tmp/out" && grep -q '^engine rocksdb-txn: ' "$tmp/out" &&
    grep -q '^engine sqlite: ' "$tmp/out"
ok $? "--version names every engine, built or not"
cp "$tmp/out" "$tmp/version"

bad_option() { # bad_option DESCRIPTION ARGS...
    what=$1
    shift
    "$bench" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    test "$rc" -eq 2 && test -s "$tmp/err" && ! test -s "$tmp/out"
    st=$?
    [ $st -eq 0 ] || { echo "# exit $rc; stderr:"; sed 's/^/#   /' "$tmp/err"; }
    ok $st "bad option exits 2 with a message: $what"
}
bad_option "unknown workload" --workload ycsb-z
bad_option "theta 1" --theta 0,1
bad_option "zero threads" --threads 0
bad_option "unknown option" --frobnicate
bad_option "--duration with --txns" --duration 1 --txns 10
bad_option "--verify-txns 0" --verify --verify-txns 0

# ---- the whole matrix -----------------------------------------------------------
KV_BENCH_GNUPLOT=/nonexistent/gnuplot "$bench" --workload all --engine txkv,lmdb \
    --isolation rc,si,ser --cc occ,2pl --threads 2 --theta 0.9 --keys 500 \
    --txns 300 --warmup 0 --csv "$tmp/all.csv" --json "$tmp/all.json" \
    --plot "$tmp/plots" >"$tmp/all.out" 2>"$tmp/all.err"
rc=$?
[ $rc -eq 0 ] || { echo "# exit $rc"; sed 's/^/#   /' "$tmp/all.err" "$tmp/all.out"; }
ok $rc "every workload x engine x isolation x cc runs and exits 0"

test "$(head -n 1 "$tmp/all.csv")" = "$header"
ok $? "the CSV header is exact"

for w in $workloads; do
    # lmdb: one row; txkv: 3 isolations x 2 schemes, each measured (CSV) or unsupported (table)
    lm=$(grep -c "^lmdb,$w,ser,lmdb,2," "$tmp/all.csv")
    tx=$(grep -c "^txkv,$w,\(rc\|si\|ser\),\(occ\|2pl\),2," "$tmp/all.csv")
    occ=$(grep -c "^txkv,$w,\(rc\|si\|ser\),occ,2," "$tmp/all.csv")
    un=$(grep -c "^txkv  *$w .*unsupported" "$tmp/all.out")
    test "$lm" -eq 1 && test "$occ" -eq 3 && test $((tx + un)) -eq 6
    st=$?
    [ $st -eq 0 ] || echo "# $w: lmdb rows $lm, txkv rows $tx (occ $occ), unsupported $un"
    ok $st "$w: one lmdb row, three txkv occ rows, 2pl measured or marked unsupported"
done

awk -F, 'NR > 1 && (NF != 21 || $17 == "" || $9 != 300 || $10 + 0 <= 0 || $12 < 0 || $12 > 1 ||
                    $13 + 0 <= 0 || $13 > $14 + 0 || $14 > $15 + 0 || $16 + 0 <= 0 ||
                    $18 + 0 <= 0 || $20 != "" || $21 != "") {
             print "# bad row: " $0; bad = 1 }
         END { exit bad }' "$tmp/all.csv"
ok $? "every CSV row: 21 fields, exactly --txns 300 commits, ordered percentiles, a version, the load footprint, no update pass"

rows=$(grep -c '"engine":' "$tmp/all.json")
test "$rows" -eq 91 && grep -q '"status": "ok"' "$tmp/all.json"
ok $? "the JSON has all 91 rows ($rows)"

grep -q 'gnuplot is not on PATH' "$tmp/all.err"
ok $? "--plot without gnuplot says so on stderr (and exit status was 0)"

# ---- --duration: rows are timed, and the bank's auditor audits while transfers run ------------
"$bench" --workload read,bank --engine txkv,lmdb --isolation si --cc occ --threads 2 \
    --keys 300 --duration 0.2 --warmup 0.01 --csv "$tmp/dur.csv" >"$tmp/out" 2>&1
rc=$?
awk -F, 'NR > 1 { rows++ } END { exit rows != 4 }' "$tmp/dur.csv" &&
    test "$(grep -c '^[a-z]* *bank .*audits=[1-9]' "$tmp/out")" -eq 2
st=$?
[ $((rc + st)) -eq 0 ] || sed 's/^/#   /' "$tmp/out"
ok $((rc + st)) "--duration 0.2: four rows, exit 0, concurrent bank audits on both engines"

# ---- one thread, no warm-up, --txns: both engines read exactly the same bytes ------------------
"$bench" --workload all --engine txkv,lmdb --isolation si --cc occ --threads 1 --theta 0.9 \
    --keys 400 --txns 1000 --warmup 0 --json "$tmp/same.json" >"$tmp/out" 2>&1
rc=$?
awk '/"engine":/ { w = $0; sub(/.*"workload": "/, "", w); sub(/".*/, "", w)
                   c = $0; sub(/.*"checksum": "/, "", c); sub(/".*/, "", c)
                   if (/"engine": "lmdb"/) lm[w] = c; else tx[w] = c; n++ }
     END { for (w in tx)
               if (tx[w] != lm[w]) { print "# " w ": txkv " tx[w] ", lmdb " lm[w]; bad = 1 }
           exit bad || n != 26 }' "$tmp/same.json"
ok $((rc + $?)) "same seed, one thread: txkv and LMDB checksum the same values in every workload"

# ---- batched reads: multiget and readn, rmw with and without --batch read the same bytes -------
# (one thread, same seed: the same keys in the same transactions); txkv's rows use txkv_get_many
"$bench" --workload rmw,multiget,readn --engine txkv,lmdb --isolation rc,si,ser --cc occ,2pl \
    --threads 1 --theta 0.9 --keys 400 --txns 300 --warmup 0 --json "$tmp/nobatch.json" \
    >"$tmp/out" 2>&1
rc=$?
"$bench" --workload rmw --engine txkv,lmdb --isolation rc,si,ser --cc occ,2pl --threads 1 \
    --theta 0.9 --keys 400 --txns 300 --warmup 0 --batch --json "$tmp/batch.json" \
    >"$tmp/batch.out" 2>&1
rc=$((rc + $?))
sums() { # sums JSON: "engine/workload/isolation/cc checksum" per measured row
    awk '/"engine":/ && /"status": "ok"/ {
             e = $0; sub(/.*"engine": "/, "", e); sub(/".*/, "", e)
             w = $0; sub(/.*"workload": "/, "", w); sub(/".*/, "", w)
             i = $0; sub(/.*"isolation": "/, "", i); sub(/".*/, "", i)
             s = $0; sub(/.*"cc": "/, "", s); sub(/".*/, "", s)
             c = $0; sub(/.*"checksum": "/, "", c); sub(/".*/, "", c)
             print e "/" w "/" i "/" s, c }' "$1"
}
sums "$tmp/nobatch.json" >"$tmp/nobatch.sums"
sums "$tmp/batch.json" >"$tmp/batch.sums"
# every rmw row equal with and without --batch; multiget = readn = rmw's reads' checksum per row
awk 'NR == FNR { base[$1] = $2; next } { n++; if (base[$1] != $2) { print "# " $1 ": " base[$1] " vs --batch " $2; bad = 1 } }
     END { exit bad || n != 7 }' "$tmp/nobatch.sums" "$tmp/batch.sums" &&
    awk '{ split($1, k, "/"); if (k[2] != "rmw") { n++; c[$2]++ } }
         END { for (x in c) m++; exit m != 1 || n != 14 }' "$tmp/nobatch.sums" &&
    test "$(grep -c '^txkv .* rmw .*batch=multiget' "$tmp/batch.out")" -eq 6 &&
    grep -q '^lmdb .* rmw .*batch=repeated-get' "$tmp/batch.out" &&
    grep -q '^# kv-bench .* batch$' "$tmp/batch.out"
st=$?
[ $((rc + st)) -eq 0 ] || { echo "# exit $rc"; sed 's/^/#   /' "$tmp/out" "$tmp/batch.out" "$tmp/nobatch.sums"; }
ok $((rc + st)) "rmw --batch reads what rmw reads (txkv: get_many); multiget and readn read the same"

# ---- a scan on a hash-only keyspace is unsupported, not failed ----------------------------
"$bench" --workload scan --engine txkv --index hash --isolation si --cc occ --keys 100 \
    --duration 0.02 --warmup 0 --csv "$tmp/hash.csv" >"$tmp/out" 2>&1
rc=$?
grep -q '^txkv-hash  *scan .*unsupported' "$tmp/out" && test "$(wc -l <"$tmp/hash.csv")" -eq 1
ok $((rc + $?)) "scan on --index hash: row unsupported, exit 0, no CSV row"

# ---- the peers: every workload at every level they provide, the same bytes as txkv ------------
for e in rocksdb-txn rocksdb-occ sqlite; do
    if grep -q "^engine $e: not built" "$tmp/version"; then
        skip "$e: kv-bench was built without it"
        skip "$e: kv-bench was built without it"
        skip "$e: kv-bench was built without it"
        continue
    fi
    case " ${KVB_SKIP_ENGINES:-} " in *" $e "*)
        skip "$e: not in this build's tests (KVB_SKIP_ENGINES: the library is not TSan-instrumented)"
        skip "$e: not in this build's tests (KVB_SKIP_ENGINES: the library is not TSan-instrumented)"
        skip "$e: not in this build's tests (KVB_SKIP_ENGINES: the library is not TSan-instrumented)"
        continue ;;
    esac
    "$bench" --workload all --engine txkv,$e --isolation rc,si,ser --cc occ --threads 1 \
        --theta 0.9 --keys 400 --txns 300 --warmup 0 --json "$tmp/$e.json" >"$tmp/$e.out" 2>&1
    rc=$?
    # rocksdb: every level runs; sqlite: ser runs, rc and si are n/a
    want_ok=3
    [ "$e" = sqlite ] && want_ok=1
    got_ok=$(grep "\"engine\": \"$e\"" "$tmp/$e.json" | grep -c '"status": "ok"')
    got_na=$(grep "\"engine\": \"$e\"" "$tmp/$e.json" | grep -c '"status": "n/a"')
    test "$rc" -eq 0 && test "$got_ok" -eq $((13 * want_ok)) &&
        test "$got_na" -eq $((13 * (3 - want_ok))) && grep -q "^# $e " "$tmp/$e.out"
    st=$?
    [ $st -eq 0 ] || { echo "# exit $rc, ok $got_ok, n/a $got_na"; sed 's/^/#   /' "$tmp/$e.out"; }
    ok $st "$e: every workload runs at each level it provides, n/a at the others, mapping stated"
    awk -v e="$e" '/"engine":/ && /"status": "ok"/ {
                       w = $0; sub(/.*"workload": "/, "", w); sub(/".*/, "", w)
                       i = $0; sub(/.*"isolation": "/, "", i); sub(/".*/, "", i)
                       c = $0; sub(/.*"checksum": "/, "", c); sub(/".*/, "", c)
                       if ($0 ~ "\"engine\": \"" e "\"") peer[w "/" i] = c; else tx[w "/" i] = c }
         END { for (k in peer) { n++
                   if (peer[k] != tx[k]) { print "# " k ": txkv " tx[k] ", " e " " peer[k]; bad = 1 } }
               exit bad || n == 0 }' "$tmp/$e.json"
    ok $? "$e: one thread, same seed: the same bytes read as txkv in every workload"
    # rmw --batch: MultiGet, or GetForUpdate per key at ser (rocksdb); a loop of gets (sqlite)
    "$bench" --workload rmw --batch --engine $e --isolation rc,si,ser --cc occ --threads 1 \
        --theta 0.9 --keys 400 --txns 300 --warmup 0 --json "$tmp/$e-batch.json" \
        >"$tmp/$e-batch.out" 2>&1
    rc=$?
    sums "$tmp/$e-batch.json" >"$tmp/$e-batch.sums"
    awk -v want="$(grep '^txkv/rmw/si/occ ' "$tmp/nobatch.sums" | cut -d' ' -f2)" \
        '{ n++; if ($2 != want) { print "# " $0 ", txkv " want; bad = 1 } } END { exit bad || n == 0 }' \
        "$tmp/$e-batch.sums"
    st=$?
    [ $((rc + st)) -eq 0 ] || sed 's/^/#   /' "$tmp/$e-batch.out"
    ok $((rc + st)) "$e: rmw --batch runs at each level it provides and reads the same bytes as txkv"
done

# ---- --verify: a row's level checked on a recorded history ------------------------------------
"$bench" --workload update --engine txkv --isolation si --cc occ --threads 2 --keys 100 \
    --txns 100 --warmup 0 --verify --verify-txns 500 >"$tmp/out" 2>&1
rc=$?
grep -q '^txkv .* verified: OK' "$tmp/out"
ok $((rc + $?)) "--verify: a txkv si/occ row says verified: OK"

# ---- charts, when gnuplot is here ----------------------------------------------------------
if command -v gnuplot >/dev/null 2>&1; then
    "$bench" --workload update --engine txkv,lmdb --isolation si --cc occ --threads 1,2 \
        --theta 0,0.9 --keys 300 --duration 0.02 --warmup 0 --plot "$tmp/png" \
        >"$tmp/out" 2>&1
    rc=$?
    test -s "$tmp/png/throughput-update-theta0.png" && test -s "$tmp/png/aborts-update-t2.png"
    ok $((rc + $?)) "--plot writes PNG charts with gnuplot"
else
    skip "gnuplot is not installed"
fi

[ "$n" -eq "$planned" ] || echo "# ran $n tests, planned $planned"
exit 0
