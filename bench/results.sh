#!/bin/sh
# bench/results.sh - the measurement of bench/RESULTS.md's section "Data path
# at the memory limit" (issue 13): kv-bench against LMDB (and RocksDB and
# SQLite when built) on the issue's workloads, bytes per key after the load
# and after an update pass, index-bench, and index-bench --calibrate; then
# the section's tables, targets met or missed, and the misses per operation
# that the timing implies next to those the design expects.
#
#   bench/results.sh [--quick] [--build DIR] [--out DIR] [--results FILE]
#
#   --build DIR     the configured build directory holding bench/kv-bench and
#                   bench/index-bench [.]
#   --out DIR       where the raw outputs go [bench-results]
#   --results FILE  a RESULTS.md whose block between the "datapath:begin" and
#                   "datapath:end" markers is replaced (without it, the
#                   section is only written to OUTDIR/datapath.md)
#   --quick         tiny keyspace and durations: checks the script, measures
#                   nothing (the section says so)
#
# `make bench-results` runs it with --results $(srcdir)/bench/RESULTS.md.
# Environment: RESULTS_ENGINES (comma list; default txkv, lmdb and every
# peer engine this kv-bench was built with), RESULTS_KEYS [1m],
# RESULTS_DURATION [3], RESULTS_WARMUP [1].  Each figure comes from one run
# (no repetition): about 7-9 minutes on two cores with every engine.
# Measure on a quiet machine (no builds, tests or other benchmarks): the
# load average at the start and at the end is written into the section.
# Workloads this kv-bench does not know (multiget, readn; --batch) are
# skipped, and the section says so.  Exit status: 1 if a kv-bench or
# index-bench run failed, 2 on a usage or setup error.
set -u

build=.
out=bench-results
results=
quick=0
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --build) build=$2; shift ;;
    --out) out=$2; shift ;;
    --results) results=$2; shift ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//; /^set -u/d'; exit 0 ;;
    *) echo "results.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

kvb=$build/bench/kv-bench
ib=$build/bench/index-bench
for p in "$kvb" "$ib"; do
    if [ ! -x "$p" ]; then
        echo "results.sh: $p is not built (make bench/kv-bench bench/index-bench)" >&2
        exit 2
    fi
done
command -v python3 >/dev/null 2>&1 || { echo "results.sh: python3 is needed for the tables" >&2; exit 2; }
if [ -n "$results" ] && ! { grep -q '^<!-- datapath:begin' "$results" && grep -q '^<!-- datapath:end' "$results"; }; then
    echo "results.sh: $results has no datapath:begin/datapath:end markers" >&2
    exit 2
fi
mkdir -p "$out" || exit 2
rm -f "$out"/*.csv "$out"/*.txt "$out"/datapath.md

if [ $quick = 1 ]; then
    keys=${RESULTS_KEYS:-10k} duration=${RESULTS_DURATION:-0.05} warmup=${RESULTS_WARMUP:-0}
    ib_keys=10000 ib_duration=0.05 calib=--calibrate=16
else
    keys=${RESULTS_KEYS:-1m} duration=${RESULTS_DURATION:-3} warmup=${RESULTS_WARMUP:-1}
    ib_keys=1000000 ib_duration=2 calib=--calibrate
fi

# Engines: txkv, lmdb and every peer this kv-bench was built with.
if [ -n "${RESULTS_ENGINES:-}" ]; then
    engines=$RESULTS_ENGINES
else
    engines=txkv,lmdb
    for e in rocksdb-occ rocksdb-txn sqlite; do
        "$kvb" --version | grep -q "^engine $e: not built" || engines=$engines,$e
    done
fi
# Workloads: skip the ones this kv-bench does not know (its option parser
# rejects an unknown name before it sees --help).
known() { "$kvb" "$@" --help >/dev/null 2>&1; }
workloads=
skipped=
for w in read update ycsb-a scan multiget readn; do
    if known -w "$w"; then workloads=$workloads${workloads:+,}$w; else skipped="$skipped $w"; fi
done
batch=0
if known --batch; then batch=1; else skipped="$skipped rmw--batch"; fi

common="--keys $keys --key-size 16 --value-size 100 --theta 0 --duration $duration --warmup $warmup --seed 1"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
rc=0
run() { # run NAME PROGRAM ARGS...: stdout to OUT/NAME.txt, the status remembered
    name=$1; shift
    echo "results.sh: $name: $*" >&2
    "$@" >"$out/$name.txt" || { echo "results.sh: $name failed (exit $?)" >&2; rc=1; }
}

run calibrate "$ib" $calib --csv "$out/calibrate.csv"
run index "$ib" --structure hash,btree --ops lookup,scan100 --threads 1,2 --keys $ib_keys \
    --duration $ib_duration --csv "$out/index.csv"
# shellcheck disable=SC2086
run kv "$kvb" --workload "$workloads" --engine "$engines" --isolation si --cc occ --threads 1,2 \
    $common --csv "$out/kv.csv"
# shellcheck disable=SC2086
run rmw "$kvb" --workload rmw --engine "$engines" --isolation ser --cc occ,2pl --threads 1,2 \
    --ops-per-txn 10 $common --csv "$out/rmw.csv"
if [ $batch = 1 ]; then
    # shellcheck disable=SC2086
    run rmwbatch "$kvb" --workload rmw --batch --engine txkv --isolation ser --cc occ,2pl \
        --threads 2 --ops-per-txn 10 $common --csv "$out/rmwbatch.csv"
fi
# Bytes per key: after the load, and after every key was rewritten once and
# the engine's garbage collection settled (--update-pass); one thread, one
# process per engine so that its RSS growth is its own.
fcommon=$(echo "$common" | sed 's/--duration [^ ]*/--duration 0.2/; s/--warmup [^ ]*/--warmup 0/')
for e in $(echo "$engines" | tr ',' ' '); do
    iso=si
    [ "$e" = sqlite ] && iso=ser # its only level
    # shellcheck disable=SC2086
    run "footprint-$e" "$kvb" --workload read --engine "$e" --isolation $iso --cc occ --threads 1 \
        --update-pass $fcommon --csv "$out/footprint-$e.csv"
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
secs=$(($(date +%s) - start))

debug=no
grep -q '^#define TXKV_DEBUG 1' "$build/config.h" 2>/dev/null && debug=yes
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine=$(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
    echo "load0=$load0"
    echo "load1=$load1"
    echo "secs=$secs"
    echo "rc=$rc"
    echo "quick=$quick"
    echo "debug=$debug"
    echo "keys=$keys"
    echo "ib_keys=$ib_keys"
    echo "duration=$duration"
    echo "warmup=$warmup"
    echo "engines=$engines"
    echo "skipped=$skipped"
    echo "versions=$("$kvb" --version | sed -n 's/^engine \([a-z-]*\): \(.*\)/\1 \2/p' | grep -v 'not built' | paste -sd, - | sed 's/,/, /g')"
    echo "allocator=$("$kvb" --version | sed -n 's/^allocator: //p')"
} >"$out/meta.txt"

python3 - "$out" <<'EOF' || { echo "results.sh: the tables could not be written" >&2; exit 1; }
import csv, os, sys

out = sys.argv[1]
meta = dict(l.rstrip('\n').split('=', 1) for l in open(os.path.join(out, 'meta.txt')))

def rows(name):
    p = os.path.join(out, name + '.csv')
    return list(csv.DictReader(open(p))) if os.path.exists(p) and os.path.getsize(p) else []

def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

def k(v):  # 1234567 -> 1.23M; 999950 -> 1M (the unit after rounding, not "1e+03K")
    if v is None:
        return '-'
    for div, suf in ((1e6, 'M'), (1e3, 'K')):
        if float('%.3g' % v) >= div:
            return '%.3g%s' % (v / div, suf)
    return '%.3g' % v

kv = rows('kv') + rows('rmw')
batch = rows('rmwbatch')

def find(src, engine, workload, threads, iso=None, cc=None):
    for r in src:
        if (r['engine'] == engine and r['workload'] == workload and int(r['threads']) == threads
                and (iso is None or r['isolation'] == iso) and (cc is None or r['cc'] == cc)):
            return r
    return None

def rate(r, col='txn_per_sec'):
    return num(r[col]) if r else None

cal = rows('calibrate')
dep = num(cal[0]['dependent_ns']) if cal else None
ovl = num(cal[0]['overlapped_ns']) if cal else None

# Expected misses per operation by design (an operation as kv-bench counts
# it: a get, a put, a record returned by a scan, a key of a multiget).
# D: dependent misses (each waits for the one before), O: misses that the
# data path overlaps (prefetched or batched), counted at the calibrated
# overlapped/dependent cost.  The design of issue 13; the lead corrects
# these after the record-layout change.
DESIGN = [
    # workload, iso, cc, D, O, justification
    ('read', 'si', 'occ', 2, 0, 'hash bucket line, then the record holding the newest version inline'),
    ('update', 'si', 'occ', 2, 0, 'the same lookup; the new version is written in place or into a fresh, cache-hot allocation'),
    ('ycsb-a', 'si', 'occ', 2, 0, 'half reads, half updates, 2 each'),
    ('scan', 'si', 'occ', 0, 1, 'one record line per key, prefetched several entries ahead; leaves read sequentially'),
    ('rmw', 'ser', 'occ', 1, 0, 'per key: get = bucket + record, put and commit validation hit the record already cached; 2 ops'),
    ('rmw', 'ser', '2pl', 1, 0, 'as occ; the lock table entry is assumed cached'),
    ('multiget', 'si', 'occ', 0, 2, 'all buckets prefetched, then all records: 2 misses per key, overlapped'),
    ('readn', 'si', 'occ', 2, 0, 'ten plain gets one after another: 2 dependent misses each'),
]
IB_DESIGN = [
    ('hash', 'lookup', 2, 0, 'bucket, then the node (the record holding hash_entry and key)'),
    ('btree', 'lookup', 3, 0, 'last inner level and leaf beyond the cache, then the key bytes in the record'),
]
TARGETS = {'read': 2.5, 'update': 10, 'ycsb-a': 8, 'scan': 1.2}

L = []
p = L.append
quick = meta['quick'] == '1'
p('<!-- datapath:begin (written by bench/results.sh; do not edit by hand) -->')
p('### Measured')
p('')
if quick:
    p('**`--quick` run: a check of bench/results.sh on a tiny keyspace, not a measurement.**')
    p('')
if meta['debug'] == 'yes':
    p('**Debug build (-O0, assertions): the figures do not describe txkv; use a release build.**')
    p('')
p('- date: %s; %s' % (meta['date'], meta['versions']))
p('- allocator: %s' % meta['allocator'])
p('- machine: %s' % meta['machine'])
p('- load average before / after: %s / %s; %s s in all; exit status %s' % (
    meta['load0'], meta['load1'], meta['secs'], meta['rc']))
p('- kv-bench: %s keys of 16 B, 100 B values, uniform, %s s per row after %s s warm-up, seed 1;'
  ' engines %s; one run per figure' % (meta['keys'], meta['duration'], meta['warmup'], meta['engines']))
if meta['skipped'].strip():
    p('- not run (this kv-bench lacks them):%s' % meta['skipped'])
p('')
p('#### Cost of a miss (`index-bench --calibrate`)')
p('')
p('Pointer chase, one 8-byte slot per 64-byte line, the lines in one random cycle;'
  ' dependent: one chain; overlapped: 8 chains interleaved.  ns per load.')
p('')
p('| working set | dependent | overlapped (8 in flight) |')
p('|---|---:|---:|')
for r in cal:
    b = int(r['working_set_bytes'])
    p('| %s | %.1f | %.1f |' % ('%d MiB' % (b >> 20) if b >= 1 << 20 else '%d KiB' % (b >> 10),
                               num(r['dependent_ns']), num(r['overlapped_ns'])))
p('')
p('#### Targets (txkv SNAPSHOT/optimistic unless said, against LMDB, same run)')
p('')
p('| workload | txkv 1 thr | LMDB 1 thr | txkv 2 thr | LMDB 2 thr | ratio at 2 thr | target | met |')
p('|---|---:|---:|---:|---:|---:|---:|---|')
def met(value, target, higher=True):
    if value is None:
        return '-'
    ok = value >= target if higher else value <= target
    return 'yes' if ok else '**no** (%+.0f%%)' % (100 * (value / target - 1))
for w, t in TARGETS.items():
    tx1, lm1 = rate(find(kv, 'txkv', w, 1, 'si', 'occ')), rate(find(kv, 'lmdb', w, 1))
    tx2, lm2 = rate(find(kv, 'txkv', w, 2, 'si', 'occ')), rate(find(kv, 'lmdb', w, 2))
    ratio = tx2 / lm2 if tx2 and lm2 else None
    p('| %s | %s | %s | %s | %s | %s | >= %gx | %s |' % (
        w, k(tx1), k(lm1), k(tx2), k(lm2), '%.2fx' % ratio if ratio else '-', t, met(ratio, t)))
for cc in ('occ', '2pl'):
    tx1, tx2 = rate(find(kv, 'txkv', 'rmw', 1, 'ser', cc)), rate(find(kv, 'txkv', 'rmw', 2, 'ser', cc))
    lm1, lm2 = rate(find(kv, 'lmdb', 'rmw', 1)), rate(find(kv, 'lmdb', 'rmw', 2))
    per = tx2 / 2 if tx2 else None
    p('| rmw 10-op SER %s (per thread at 2 thr) | %s | %s | %s | %s | %s | >= 150K/thr | %s |' % (
        cc, k(tx1), k(lm1), k(tx2), k(lm2), '%.2fx' % (tx2 / lm2) if tx2 and lm2 else '-',
        met(per, 150e3)))
for r in batch:
    per = num(r['txn_per_sec']) / 2
    p('| rmw 10-op SER %s --batch (per thread) | | | %s | | | >= 150K/thr | %s |' % (
        r['cc'], k(num(r['txn_per_sec'])), met(per, 150e3)))
def ops(e, w, t):
    return rate(find(kv, e, w, t, 'si', 'occ') if e == 'txkv' else find(kv, e, w, t), 'ops_per_sec')
if find(kv, 'txkv', 'multiget', 2, 'si', 'occ'):
    mg2, rn2 = ops('txkv', 'multiget', 2), ops('txkv', 'readn', 2)
    ratio = mg2 / rn2 if mg2 and rn2 else None
    p('| multiget 10 keys, keys/s (ratio: txkv multiget / readn, 2 thr) | %s | %s | %s | %s | %s | >= 3x | %s |' % (
        k(ops('txkv', 'multiget', 1)), k(ops('lmdb', 'multiget', 1)), k(mg2), k(ops('lmdb', 'multiget', 2)),
        '%.2fx' % ratio if ratio else '- (no readn)', met(ratio, 3)))
if find(kv, 'txkv', 'readn', 2, 'si', 'occ'):
    p('| readn: 10 gets in one txn, keys/s | %s | %s | %s | %s | | | |' % (
        k(ops('txkv', 'readn', 1)), k(ops('lmdb', 'readn', 1)), k(ops('txkv', 'readn', 2)),
        k(ops('lmdb', 'readn', 2))))
p('')
p('Peers in the same run (txn/s; SQLite provides SERIALIZABLE only, so its si rows are n/a):')
p('')
peers = sorted({r['engine'] for r in kv} - {'txkv', 'lmdb'})
if peers:
    p('| workload | threads | ' + ' | '.join(peers) + ' |')
    p('|---|---:|' + '---:|' * len(peers))
    for w in list(TARGETS) + ['rmw', 'multiget', 'readn']:
        for t in (1, 2):
            cells = [k(rate(find(kv, e, w, t))) for e in peers]
            if any(c != '-' for c in cells):
                p('| %s | %d | %s |' % (w, t, ' | '.join(cells)))
else:
    p('(none built or selected)')
p('')
p('#### Bytes per key (engine accounting; process RSS growth in brackets)')
p('')
p('Footprint after loading the keys, and after rewriting every key once'
  ' (`kv-bench --update-pass`: one transaction per 10000 keys, then the footprint'
  ' polled until it has not changed for 1 s, 15 s at most), each engine in a process of its own.  txkv: `txkv_stats().bytes`'
  ' / keys, both indexes; LMDB: pages x page size / entries.')
p('')
p('| engine | after load | after update pass | target |')
p('|---|---:|---:|---|')
fp = [r for f in sorted(os.listdir(out)) if f.startswith('footprint-') and f.endswith('.csv')
      for r in rows(f[:-4])]
fp.sort(key=lambda r: (r['engine'] != 'txkv', r['engine'] != 'lmdb', r['engine']))
for r in fp:
    def cell(a, b):
        return '%s (%s)' % (r[a] or '-', r[b] or '-')
    tgt = ''
    if r['engine'] == 'txkv':
        worst = max(num(r['load_bytes_per_key']) or 0, num(r['pass_bytes_per_key']) or 0)
        tgt = '<= 180: ' + met(worst, 180, higher=False)
    p('| %s | %s | %s | %s |' % (r['engine'], cell('load_bytes_per_key', 'rss_load_per_key'),
                                cell('pass_bytes_per_key', 'rss_pass_per_key'), tgt))
p('')
p('#### index-bench (%s keys)' % meta['ib_keys'])
p('')
ib = rows('index')
p('| structure | op | 1 thr ops/s | 2 thr ops/s per thread | target per thread | met (1 thr) |')
p('|---|---|---:|---:|---:|---|')
IB_T = {('hash', 'lookup'): 4e6, ('btree', 'lookup'): 2.5e6, ('btree', 'scan100'): 600e3}
def ibrate(s, o, t):
    for r in ib:
        if r['structure'] == s and r['op'] == o and int(r['threads']) == t:
            return num(r['ops_per_sec']) / t
    return None
for (s, o), t in IB_T.items():
    r1, r2 = ibrate(s, o, 1), ibrate(s, o, 2)
    p('| %s | %s | %s | %s | >= %s | %s |' % (s, o, k(r1), k(r2), k(t), met(r1, t)))
p('')
p('#### Misses per operation: by design, and implied by the timing')
p('')
p('Implied = (1e9 / per-thread ops/s) / dependent-miss ns (%s ns): the whole time of an'
  ' operation in dependent misses, CPU work included, so an upper bound.  Expected ='
  ' D + O x overlapped/dependent (%s / %s ns): D dependent and O overlapped misses by'
  ' design (the table in bench/results.sh).' % (
      '%.1f' % dep if dep else '-', '%.1f' % ovl if ovl else '-', '%.1f' % dep if dep else '-'))
p('')
p('| workload | ops/s per thread (1 thr / 2 thr) | by design (D + O) | expected | implied (1 thr / 2 thr) | why |')
p('|---|---:|---|---:|---:|---|')
def implied(per):
    return '%.2f' % (1e9 / per / dep) if per and dep else '-'
for w, iso, cc, d, o, why in DESIGN:
    r1, r2 = find(kv, 'txkv', w, 1, iso, cc), find(kv, 'txkv', w, 2, iso, cc)
    if not r1 and not r2:
        continue
    p1 = rate(r1, 'ops_per_sec')
    p2 = rate(r2, 'ops_per_sec') / 2 if r2 else None
    exp = d + o * ovl / dep if dep and ovl else None
    name = w if iso == 'si' else '%s %s/%s' % (w, iso, cc)
    p('| %s | %s / %s | %d + %d | %s | %s / %s | %s |' % (
        name, k(p1), k(p2), d, o, '%.2f' % exp if exp is not None else '-', implied(p1),
        implied(p2), why))
for s, o, d, ov, why in IB_DESIGN:
    r1, r2 = ibrate(s, o, 1), ibrate(s, o, 2)
    exp = d + ov * ovl / dep if dep and ovl else None
    p('| index-bench %s %s | %s / %s | %d + %d | %s | %s / %s | %s |' % (
        s, o, k(r1), k(r2), d, ov, '%.2f' % exp if exp is not None else '-', implied(r1),
        implied(r2), why))
p('')
p('#### kv-bench output')
p('')
p('The tables of the runs above (n/a rows, levels an engine lacks, left out).')
p('')
for name in ['kv', 'rmw', 'rmwbatch'] + sorted(f[:-4] for f in os.listdir(out)
                                                 if f.startswith('footprint-') and f.endswith('.txt')):
    path = os.path.join(out, name + '.txt')
    if os.path.exists(path):
        p('```')
        L.extend(l.rstrip('\n') for l in open(path) if l.strip() and '  n/a: ' not in l)
        p('```')
p('')
p('Raw outputs (CSV, tables) are in the build directory\'s `%s/`.' % os.path.basename(out.rstrip('/')))
p('<!-- datapath:end -->')
open(os.path.join(out, 'datapath.md'), 'w').write('\n'.join(L) + '\n')
EOF

if [ -n "$results" ]; then
    awk -v frag="$out/datapath.md" '
        /^<!-- datapath:begin/ { while ((getline l < frag) > 0) print l; skip = 1; next }
        /^<!-- datapath:end/ { skip = 0; next }
        !skip' "$results" >"$results.tmp" && mv "$results.tmp" "$results" &&
        echo "results.sh: updated $results"
fi
echo "results.sh: wrote $out/datapath.md ($secs s, exit status $rc)"
exit $rc
