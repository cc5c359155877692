#!/bin/sh
# tests/base/example.sh - the program of txkv(3)'s EXAMPLES section is
# tests/base/example.c: it builds against <txkv.h> and the installed
# library's exports (libtxkv.la), runs and prints the expected accounts,
# and the generated man page holds it byte for byte (the page is turned
# back into C: \e, \-, \(aq and a leading \& undone).
: "${top_srcdir:?run me through make check}" "${top_builddir:?run me through make check}"
n=0
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/txkv-example.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

"$top_builddir/tests/base/example" >"$tmp/out" 2>"$tmp/err"
rc=$?
ok $rc "the example program exits 0"
sed 's/^/# /' "$tmp/err"
printf 'alice = 70\nbob = 80\n' >"$tmp/want"
cmp -s "$tmp/out" "$tmp/want"
ok $? "it prints the accounts after the transfer, the overdraft refused"
sed 's/^/# /' "$tmp/out"

page=$top_builddir/man/txkv.3
# The lines between .EX and .EE of the EXAMPLES section, unescaped.
awk '
/^\.SH / { inex = ($0 ~ /EXAMPLES/) }
inex && /^\.EX/ { on = 1; next }
inex && /^\.EE/ { on = 0; next }
on {
    sub(/^\\&/, "")
    out = ""
    while ((i = index($0, "\\")) > 0) {
        out = out substr($0, 1, i - 1)
        c = substr($0, i + 1, 1)
        if (c == "e") { out = out "\\"; $0 = substr($0, i + 2) }
        else if (c == "-") { out = out "-"; $0 = substr($0, i + 2) }
        else if (substr($0, i + 1, 3) == "(aq") { out = out "'"'"'"; $0 = substr($0, i + 4) }
        else { out = out "\\" c; $0 = substr($0, i + 2) }
    }
    print out $0
}' "$page" >"$tmp/from-page.c"
[ -s "$tmp/from-page.c" ] && cmp -s "$tmp/from-page.c" "$top_srcdir/tests/base/example.c"
ok $? "man/txkv.3 EXAMPLES is tests/base/example.c, unchanged"
diff "$tmp/from-page.c" "$top_srcdir/tests/base/example.c" | head -20 | sed 's/^/# /'
echo "1..$n"
