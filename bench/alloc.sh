#!/bin/sh
# bench/alloc.sh - txkv under glibc's malloc, jemalloc and mimalloc, side by
# side (issue 13, part 5): builds kv-bench three times, in temporary build
# directories, with configure --with-allocator=glibc|jemalloc|mimalloc, and
# runs each on txkv: workloads read, update and ycsb-a, SNAPSHOT optimistic,
# 2 threads, 1M keys of 16 B, 100 B values, uniform.  Prints txn/s and
# bytes per key: txkv's own accounting (txkv_stats().bytes, the same under
# every allocator: it counts what txkv asks for) and the process's RSS growth
# per key, which is where an allocator's headers, size classes and
# fragmentation show; each after the load and after an update pass (every
# key rewritten once, kv-bench --update-pass).  Each workload runs in a
# process of its own, so that its RSS growth is its own.
#
#   bench/alloc.sh [--quick] [--src DIR] [--keep DIR] [--allocators LIST]
#
#   --src DIR         the source tree [the one holding this script]
#   --keep DIR        build in DIR/ALLOCATOR and keep the builds (a second
#                     run reuses them); default: a temporary directory,
#                     removed at the end
#   --allocators LIST comma list [glibc,jemalloc,mimalloc]
#   --quick           10k keys, 0.2 s rows: checks the script, measures nothing
#
# Environment: ALLOC_KEYS [1m], ALLOC_DURATION [3], ALLOC_WARMUP [1],
# ALLOC_CONFIGURE (extra configure arguments).  Builds are release builds
# (no --enable-debug).  An allocator whose library is missing (configure
# fails) is reported and left out.  Measure on a quiet machine; the load
# average before and after is printed.  About 3 x (build + 3 x 10 s).
set -u

src=$(cd "$(dirname "$0")/.." && pwd)
keep=
quick=0
allocators=glibc,jemalloc,mimalloc
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --src) src=$(cd "$2" && pwd) || exit 2; shift ;;
    --keep) keep=$2; shift ;;
    --allocators) allocators=$2; shift ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//; /^set -u/d'; exit 0 ;;
    *) echo "alloc.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ ! -x "$src/configure" ]; then
    echo "alloc.sh: $src/configure is missing (autoreconf -fi there first)" >&2
    exit 2
fi
if [ $quick = 1 ]; then
    keys=${ALLOC_KEYS:-10k} duration=${ALLOC_DURATION:-0.2} warmup=${ALLOC_WARMUP:-0}
else
    keys=${ALLOC_KEYS:-1m} duration=${ALLOC_DURATION:-3} warmup=${ALLOC_WARMUP:-1}
fi
if [ -n "$keep" ]; then
    mkdir -p "$keep" && top=$(cd "$keep" && pwd) || exit 2
else
    top=$(mktemp -d "${TMPDIR:-/tmp}/txkv-alloc.XXXXXX") || exit 2
    trap 'rm -rf "$top"' EXIT INT TERM
fi

workloads="read update ycsb-a"
rc=0
built=
for a in $(echo "$allocators" | tr ',' ' '); do
    b=$top/$a
    mkdir -p "$b" || exit 2
    if [ ! -x "$b/bench/kv-bench" ]; then
        echo "alloc.sh: building $a in $b" >&2
        # shellcheck disable=SC2086
        if ! (cd "$b" && "$src/configure" --with-allocator="$a" ${ALLOC_CONFIGURE:-} >configure.log 2>&1); then
            echo "alloc.sh: $a: configure failed:" >&2
            grep 'error:' "$b/configure.log" | tail -n 3 >&2
            rc=1
            continue
        fi
        if ! make -C "$b" -j2 bench/kv-bench >"$b/make.log" 2>&1; then
            echo "alloc.sh: $a: build failed (see $b/make.log)" >&2
            tail -n 5 "$b/make.log" >&2
            rc=1
            continue
        fi
    fi
    built="$built $a"
done
[ -n "$built" ] || { echo "alloc.sh: nothing built" >&2; exit 1; }

load0=$(cut -d' ' -f1-3 /proc/loadavg)
for a in $built; do
    b=$top/$a
    "$b/bench/kv-bench" --version | sed -n "s/^allocator: /alloc.sh: $a: /p" >&2
    for w in $workloads; do
        pass=
        [ "$w" != ycsb-a ] || pass=--update-pass # the pass once per allocator, after ycsb-a
        if ! "$b/bench/kv-bench" --engine txkv --workload "$w" --isolation si --cc occ --threads 2 \
            --keys "$keys" --key-size 16 --value-size 100 --duration "$duration" --warmup "$warmup" \
            --seed 1 $pass --csv "$b/$w.csv" >"$b/$w.txt"; then
            echo "alloc.sh: $a: $w failed (see $b/$w.txt)" >&2
            rc=1
        fi
    done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# The table: one column per allocator.  CSV columns are found by name.
col() { # col FILE NAME: the value of column NAME in FILE's first row
    [ -s "$1" ] && awk -F, -v n="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i }
                                      NR == 2 && c { print $c }' "$1"
}
echo "# alloc.sh: txkv si/occ, 2 threads, $keys keys of 16 B, 100 B values, uniform," \
    "${duration}s rows after ${warmup}s warm-up; load average before / after: $load0 / $load1"
[ $quick = 1 ] && echo "# --quick: a check of the script, not a measurement"
printf '%-34s' "figure"
for a in $built; do printf ' %12s' "$a"; done
printf '\n'
line() { # line LABEL FILE COLUMN
    printf '%-34s' "$1"
    for a in $built; do
        v=$(col "$top/$a/$2.csv" "$3")
        printf ' %12s' "${v:--}"
    done
    printf '\n'
}
for w in $workloads; do line "$w txn/s" "$w" txn_per_sec; done
line "txkv B/key after load" read load_bytes_per_key
line "RSS B/key after load" read rss_load_per_key
line "txkv B/key after ycsb-a" ycsb-a bytes_per_key
line "txkv B/key after ycsb-a + pass" ycsb-a pass_bytes_per_key
line "RSS B/key after ycsb-a + pass" ycsb-a rss_pass_per_key
[ -z "$keep" ] || echo "# builds and outputs kept in $top"
exit $rc
