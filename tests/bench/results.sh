#!/bin/sh
# tests/bench/results.sh - the measuring tools of bench/RESULTS.md hold
# together (not a measurement; no figure is judged): index-bench
# --calibrate prints its method and two working sets; kv-bench names its
# allocator and, with --update-pass, writes the footprint after the load and
# after the pass; bench/results.sh --quick replaces exactly the datapath
# block of a RESULTS.md and leaves the rest of the file alone, and refuses a
# file without the markers.  TAP output for automake's tap-driver.
#
#   top_srcdir=SRC top_builddir=BUILD sh tests/bench/results.sh
set -u

src=${top_srcdir:-.}
build=${top_builddir:-.}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kv-bench-results.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
n=0
echo "1..7"
ok() { # ok STATUS DESCRIPTION
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi
}
for p in bench/kv-bench bench/index-bench; do
    [ -x "$build/$p" ] || { echo "Bail out! $build/$p is not built"; exit 1; }
done

"$build/bench/index-bench" --calibrate=8 --csv "$tmp/cal.csv" >"$tmp/cal.txt" 2>&1
rc=$?
grep -q '^# calibrate: pointer chase, one 8-byte slot per 64-byte line' "$tmp/cal.txt" &&
    grep -q '^8MiB ' "$tmp/cal.txt" && grep -q '^256KiB ' "$tmp/cal.txt"
ok $((rc + $?)) "index-bench --calibrate=8 states its method and measures 8 MiB and 256 KiB"
awk -F, 'NR == 1 && $0 != "working_set_bytes,dependent_ns,overlapped_ns" { bad = 1 }
         NR > 1 && !($2 + 0 > 0 && $3 + 0 > 0) { bad = 1 }
         END { exit bad || NR != 3 }' "$tmp/cal.csv"
ok $? "--calibrate --csv: a header and two rows of positive figures"

"$build/bench/kv-bench" --version >"$tmp/version" 2>&1
grep -q '^allocator: [a-z]* (configure --with-allocator=[a-z]*; malloc from ' "$tmp/version"
ok $? "kv-bench --version names the allocator serving malloc"

engines=txkv,lmdb
"$build/bench/kv-bench" -w update -e $engines -i si -c occ -k 2000 -n 200 --warmup 0 \
    --update-pass --csv "$tmp/pass.csv" >"$tmp/pass.txt" 2>&1
rc=$?
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i }
         NR > 1 { rows++; if (!($c["load_bytes_per_key"] + 0 > 0 && $c["pass_bytes_per_key"] + 0 > 0 &&
                               $c["bytes_per_key"] + 0 > 0)) bad = 1 }
         END { exit bad || rows != 2 }' "$tmp/pass.csv"
ok $((rc + $?)) "kv-bench --update-pass: both engines give the footprint after the load and after the pass"

if ! command -v python3 >/dev/null 2>&1; then
    for i in 1 2 3; do n=$((n + 1)); echo "ok $n # SKIP python3 is not installed"; done
    exit 0
fi
cp "$src/bench/RESULTS.md" "$tmp/R.md"
RESULTS_ENGINES=$engines RESULTS_KEYS=2k sh "$src/bench/results.sh" --quick --build "$build" \
    --out "$tmp/out" --results "$tmp/R.md" >"$tmp/results.log" 2>&1
rc=$?
[ $rc -eq 0 ] || sed 's/^/# /' "$tmp/results.log" | tail -n 20
test "$(grep -c '^<!-- datapath:begin' "$tmp/R.md")" -eq 1 &&
    test "$(grep -c '^<!-- datapath:end' "$tmp/R.md")" -eq 1 &&
    sed -n '/^<!-- datapath:begin/,/^<!-- datapath:end/p' "$tmp/R.md" >"$tmp/section" &&
    grep -q '^\*\*`--quick` run' "$tmp/section" &&
    grep -q '^| read | ' "$tmp/section" && grep -q '^| txkv | ' "$tmp/section" &&
    grep -q '^| hash | lookup | ' "$tmp/section" && grep -q '^| 8 MiB \|^| 16 MiB ' "$tmp/section" &&
    grep -q '^- load average before / after: ' "$tmp/section"
ok $((rc + $?)) "results.sh --quick fills the datapath block: targets, bytes per key, index-bench, calibration, load average"
sed '/^<!-- datapath:begin/,/^<!-- datapath:end/d' "$src/bench/RESULTS.md" >"$tmp/before"
sed '/^<!-- datapath:begin/,/^<!-- datapath:end/d' "$tmp/R.md" >"$tmp/after"
cmp -s "$tmp/before" "$tmp/after"
ok $? "results.sh leaves everything outside the datapath block unchanged"
printf '# no markers\n' >"$tmp/plain.md"
sh "$src/bench/results.sh" --quick --build "$build" --out "$tmp/out2" --results "$tmp/plain.md" \
    >/dev/null 2>&1
test $? -eq 2 && test "$(cat "$tmp/plain.md")" = "# no markers"
ok $? "results.sh refuses (exit 2) a file without the datapath markers, before measuring"
