# tests/tools/lib.sh - sourced by tests/tools/*.sh and tests/isolation/run.sh:
# runs kv-cli on scripts and compares what it prints with expected files,
# printing TAP.
#
#   check NAME STATUS [OPTION...]  runs kv-cli -e [OPTION...] -f NAME.in (a copy of
#                                  tests/tools/cli/NAME.in) in a scratch directory,
#                                  so errors read NAME.in:LINE; two results: the
#                                  output equals tests/tools/cli/NAME.out, the exit
#                                  status is STATUS
#
# check passes --wait 3000: a command that is merely slow (a loaded machine,
# a sanitizer build) must not be reported blocked, and a script in which
# nothing blocks never waits that long.  Tests of blocking pass a shorter
# --wait and commands that block for several times as long.
#   run_cli [ARG...]               runs kv-cli; output in $out, status in $st
#   ok COND-STATUS DESCRIPTION     one TAP line
#
# The test environment exports top_srcdir and top_builddir (Makefile.am).
: "${top_srcdir:?run me through make check}" "${top_builddir:?run me through make check}"
KVCLI=$top_builddir/tools/kv-cli
# In the build tree tools/kv-cli is libtool's wrapper script, which forks a
# few sed processes on every run; these tests run kv-cli often, so they run
# the program behind it with the library it would have used.
if [ -x "$top_builddir/tools/.libs/kv-cli" ] && grep -q 'libtool' "$KVCLI" 2>/dev/null; then
    KVCLI=$top_builddir/tools/.libs/kv-cli
    LD_LIBRARY_PATH=$top_builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
fi
CLI_DATA=$top_srcdir/tests/tools/cli
KVCLI_HISTORY=
export KVCLI_HISTORY
LC_ALL=C
export LC_ALL
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvcli-test.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
tap_n=0
tap_failed=0

plan() { echo "1..$1"; }

ok() {
    tap_n=$((tap_n + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $tap_n - $2"
    else
        echo "not ok $tap_n - $2"
        tap_failed=$((tap_failed + 1))
    fi
}

run_cli() {
    out=$(cd "$tmp" && "$KVCLI" "$@" 2>&1)
    st=$?
}

check() {
    name=$1
    want=$2
    shift 2
    # a copy beside the scratch files, so that errors say NAME.in:LINE on every machine
    cp "$CLI_DATA/$name.in" "$tmp/$name.in"
    (cd "$tmp" && "$KVCLI" -e --wait 3000 "$@" -f "$name.in") >"$tmp/$name.got" 2>&1
    got_st=$?
    diff -u "$CLI_DATA/$name.out" "$tmp/$name.got" >"$tmp/$name.diff"
    d=$?
    [ $d -eq 0 ] || sed 's/^/# /' "$tmp/$name.diff"
    ok $d "$name: output as expected"
    [ "$got_st" -eq "$want" ]
    s=$?
    [ $s -eq 0 ] || echo "# exit status $got_st, want $want"
    ok $s "$name: exit status $want"
}

finish() { exit 0; }
