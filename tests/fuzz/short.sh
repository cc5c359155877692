#!/bin/sh
# tests/fuzz/short.sh - a short libFuzzer run of each fuzz target, as TAP: the
# fuzzing build's `make check` (CI's fuzz step).  Each target runs for
# FUZZ_SHORT_TIME seconds (default 20) from the repository's corpus, with
# new inputs kept in $top_builddir/fuzz-corpus/NAME (as `make fuzz` does);
# a crash, leak, sanitizer report, timeout or violated property fails the
# test, and the input that did it is left in $top_builddir/fuzz-artifacts/.
# Replay one with:  ./tests/fuzz/fuzz-NAME fuzz-artifacts/fuzz-NAME-crash-...
set -u
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
time=${FUZZ_SHORT_TIME:-20}
flags=${FUZZ_FLAGS:--max_len=1024 -len_control=0 -timeout=10 -detect_leaks=0}

echo "1..2"
n=0
for name in cli api; do
    n=$((n + 1))
    bin=$top_builddir/tests/fuzz/fuzz-$name
    corpus=$top_builddir/fuzz-corpus/$name
    art=$top_builddir/fuzz-artifacts
    log=$top_builddir/tests/fuzz/short-$name.out
    if [ ! -x "$bin" ]; then
        echo "not ok $n - fuzz-$name: $bin is not built (configure --enable-fuzzing)"
        continue
    fi
    mkdir -p "$corpus" "$art"
    # shellcheck disable=SC2086 # $flags is a list of options
    if "$bin" $flags -max_total_time="$time" -print_final_stats=1 \
        -artifact_prefix="$art/fuzz-$name-" "$corpus" "$top_srcdir/tests/fuzz/corpus/$name" \
        >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        echo "ok $n - fuzz-$name: $time s, ${runs:-?} inputs (${rate:-?}/s), ${cov:-cov: ?}"
    else
        echo "not ok $n - fuzz-$name: the fuzzer failed (its output: $log)"
        grep -E 'property violated|ERROR: |SUMMARY: |Test unit written to|==[0-9]+==' "$log" |
            head -20 | sed 's/^/# /'
        tail -15 "$log" | sed 's/^/# /'
    fi
done
