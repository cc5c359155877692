#!/bin/sh
# bench/peers.sh - the measurement of bench/RESULTS.md's section "txkv
# against RocksDB and SQLite": kv-bench's peers matrix, then its tables.
#
#   bench/peers.sh [KV-BENCH [OUTDIR]]      (make bench-peers runs it)
#
# Matrix: workloads ycsb-a, ycsb-b, rmw, bank, scan; 1 and 2 threads;
# theta 0, 0.5, 0.99; engines txkv (rc, si, ser x occ, 2pl), rocksdb-txn
# and rocksdb-occ (rc, si, ser), sqlite (ser; rc and si are n/a), every row
# also --verify'd.  390 measured rows plus 60 n/a; with the defaults below
# about 7-9 minutes on two cores.  Environment:
#   PEERS_KEYS      items loaded per row [100k]
#   PEERS_DURATION  timed seconds per row [0.6]
#   PEERS_WARMUP    untimed seconds per row [0.2]
#   PEERS_VERIFY    transactions per --verify run, 0 for none [1000]
#   PEERS_RESULTS   a RESULTS.md whose peers section (between the
#                   "peers:begin" and "peers:end" markers) is replaced
# Writes OUTDIR (default bench-peers): peers.csv, peers.json, peers.txt
# (kv-bench's table), peers.md (the section, ready for RESULTS.md) and,
# with gnuplot, charts/.  Exit status: kv-bench's (1 if a row failed or a
# verification found an anomaly).  Run it on a quiet machine: the load
# average before and after is written into the section.
set -u

bench=${1:-./bench/kv-bench}
out=${2:-bench-peers}
keys=${PEERS_KEYS:-100k}
duration=${PEERS_DURATION:-0.6}
warmup=${PEERS_WARMUP:-0.2}
verify=${PEERS_VERIFY:-1000}

if [ ! -x "$bench" ]; then
    echo "peers.sh: $bench is not built" >&2
    exit 2
fi
for e in rocksdb-txn rocksdb-occ sqlite; do
    if "$bench" --version | grep -q "^engine $e: not built"; then
        echo "peers.sh: kv-bench was built without $e: $("$bench" --version | grep "^engine $e:")" >&2
        exit 2
    fi
done
mkdir -p "$out" || exit 2

verify_args=
[ "$verify" -gt 0 ] && verify_args="--verify --verify-txns $verify"
args="--workload ycsb-a,ycsb-b,rmw,bank,scan --engine txkv,rocksdb-txn,rocksdb-occ,sqlite \
--isolation rc,si,ser --cc occ,2pl --threads 1,2 --theta 0,0.5,0.99 --keys $keys \
--key-size 16 --value-size 100 --duration $duration --warmup $warmup --seed 1 $verify_args"
plot=
command -v gnuplot >/dev/null 2>&1 && plot="--plot $out/charts"

load0=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
# shellcheck disable=SC2086
"$bench" $args --csv "$out/peers.csv" --json "$out/peers.json" $plot >"$out/peers.txt"
rc=$?
load1=$(cut -d' ' -f1-3 /proc/loadavg)
secs=$(($(date +%s) - start))

versions=$("$bench" --version | sed -n 's/^engine \([a-z-]*\): \(.*\)/\1 \2/p' | tr '\n' ',' |
    sed 's/,$//; s/,/, /g')

{
    echo '<!-- peers:begin (written by bench/peers.sh; do not edit by hand) -->'
    echo '### Measured'
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); kv-bench: $versions"
    echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
    echo "- load average before / after: $load0 / $load1; $secs s in all; kv-bench exit status $rc"
    echo "- command: \`kv-bench $args\`"
    echo
    echo '#### Targets'
    echo
    echo 'SNAPSHOT, 2 threads, theta 0.5, same run: txn/s of txkv against the RocksDB'
    echo 'engine with the same scheme.'
    echo
    awk -F, 'NR > 1 && $3 == "si" && $5 == 2 && $8 == 0.5 &&
             ($2 == "ycsb-a" || $2 == "rmw") { v[$1 "/" $4 "/" $2] = $10 }
         END {
             print "| workload | scheme | txkv txn/s | RocksDB txn/s | txkv / RocksDB | target | met |"
             print "|---|---|---:|---:|---:|---:|---|"
             n = split("ycsb-a rmw", w, " ")
             for (i = 1; i <= n; i++) {
                 split("occ rocksdb-occ 2pl rocksdb-txn", p, " ")
                 for (j = 1; j <= 4; j += 2) {
                     t = v["txkv/" p[j] "/" w[i]]; r = v[p[j + 1] "/" p[j] "/" w[i]]
                     q = (r > 0) ? t / r : 0
                     printf "| %s | %s (txkv) vs %s | %.0f | %.0f | %.2fx | >= 3x | %s |\n",
                         w[i], p[j], p[j + 1], t, r, q, (q >= 3) ? "yes" : "**no**"
                 }
             }
         }' "$out/peers.csv"
    echo
    echo '#### txn/s (abort %) per workload'
    echo
    echo 'Columns: engine level/scheme; rows: threads and theta.  n/a: the engine'
    echo 'does not provide the level (SQLite: serializable only).'
    for w in ycsb-a ycsb-b rmw bank scan; do
        echo
        echo "**$w**"
        echo
        awk -F, -v w="$w" 'NR > 1 && $2 == w {
                 col = $1 " " $3 "/" $4; row = $5 " thr, theta " $8
                 if (!(col in seen)) { seen[col] = 1; cols[++nc] = col }
                 if (!(row in rseen)) { rseen[row] = 1; rows[++nr] = row }
                 cell[row, col] = sprintf("%.0f (%.1f%%)", $10, 100 * $12) }
             END {
                 printf "| threads, theta |"
                 for (c = 1; c <= nc; c++) printf " %s |", cols[c]
                 printf " sqlite rc, si |\n|---|"
                 for (c = 1; c <= nc; c++) printf "---:|"
                 printf "---|\n"
                 for (r = 1; r <= nr; r++) {
                     printf "| %s |", rows[r]
                     for (c = 1; c <= nc; c++)
                         printf " %s |", ((rows[r], cols[c]) in cell) ? cell[rows[r], cols[c]] : "-"
                     printf " n/a |\n"
                 }
             }' "$out/peers.csv"
    done
    echo
    echo '#### --verify'
    echo
    if [ "$verify" -gt 0 ]; then
        ok=$(grep -c '"verified": "OK"' "$out/peers.json")
        bad=$(grep -c '"verified": "\(anomaly\|error\)"' "$out/peers.json")
        echo "Every measured row was followed by a $verify-transaction history check at its"
        echo "level: $ok rows verified OK, $bad not."
        grep 'verified: \(ANOMALY\|ERROR\)' "$out/peers.txt" | sed 's/^/    /'
    else
        echo 'Not run (PEERS_VERIFY=0).'
    fi
    echo
    echo "The whole table is in \`$out/peers.txt\`; charts (txn/s against threads per theta,"
    echo "abort rate against theta per thread count) in \`$out/charts\`."
    echo '<!-- peers:end -->'
} >"$out/peers.md"

if [ -n "${PEERS_RESULTS:-}" ]; then
    if grep -q '^<!-- peers:begin' "$PEERS_RESULTS" && grep -q '^<!-- peers:end' "$PEERS_RESULTS"; then
        awk -v frag="$out/peers.md" '
            /^<!-- peers:begin/ { while ((getline l < frag) > 0) print l; skip = 1; next }
            /^<!-- peers:end/ { skip = 0; next }
            !skip' "$PEERS_RESULTS" >"$PEERS_RESULTS.tmp" && mv "$PEERS_RESULTS.tmp" "$PEERS_RESULTS" &&
            echo "peers.sh: updated $PEERS_RESULTS"
    else
        echo "peers.sh: $PEERS_RESULTS has no peers:begin/peers:end markers; see $out/peers.md" >&2
    fi
fi
echo "peers.sh: wrote $out/peers.md ($secs s, exit status $rc)"
exit $rc
