# spec.awk - turns an isolation spec into a kv-cli script and the transcript
# kv-cli must print for it, for one configuration.
#
#   awk -v cfg=LEVEL/SCHEME -v script=FILE -v expect=FILE -f spec.awk SPEC
#
# LEVEL is rc, si or ser; SCHEME is occ or 2pl.  tests/isolation/README
# describes the spec format; in short, each line is a kv-cli command,
# optionally followed by " => " and what it prints:
#
#   @T2 PUT x 2        => 2pl: blocked | OK
#
# Alternatives are separated by " | "; "SEL: OUTCOME" applies to the
# configurations SEL names (a comma-separated list of rc, si, ser, occ, 2pl,
# or LEVEL/SCHEME), a bare OUTCOME to all the others.  The most specific
# selector that names the configuration wins (LEVEL/SCHEME over LEVEL over
# SCHEME over none); two at the same rank are an error in the spec.  A line
# that starts with blanks and "|" continues the alternatives of the line
# above.  An OUTCOME is one or more output lines separated by "; ": an
# UPPER_CASE word other than OK stands for "(error) WORD: ...", and a line
# that starts with "[NAME] " is printed by another session (a command that
# was blocked and finishes now).  A command with no " => " must print OK.
#
# The transcript is what kv-cli -e prints (each command echoed, then its
# output), with error messages cut after the error's name; the runner cuts
# the real output the same way before comparing.
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
function die(msg) {
    printf "%s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"
    failed = 1
    exit 2
}
# rank of selector list sel for this configuration: 0 no match, 1 scheme,
# 2 level, 3 level/scheme
function rank(sel,    n, i, a, best, r, s) {
    n = split(sel, a, ",")
    best = 0
    for (i = 1; i <= n; i++) {
        s = trim(a[i])
        if (s == lvl "/" sch) r = 3
        else if (s == lvl) r = 2
        else if (s == sch) r = 1
        else if (s ~ /^(rc|si|ser)\/(occ|2pl)$/ || s ~ /^(rc|si|ser|occ|2pl)$/) r = 0
        else die("unknown selector '" s "'")
        if (r > best) best = r
    }
    return best
}
function outline(line, tag) {
    line = trim(line)
    if (match(line, /^\[[A-Za-z0-9_]+\] /)) {
        tag = substr(line, 1, RLENGTH)
        line = substr(line, RLENGTH + 1)
    }
    if (line ~ /^[A-Z][A-Z_]*[A-Z]$/ && line != "OK")
        line = "(error) " line
    print tag line > expect
}
# emits the pending command and its expected output
function flush(    n, i, a, alt, sel, out, r, best, bestn, pick, parts, tag) {
    if (cmd == "")
        return
    print cmd > script
    print cmd > expect
    best = -1
    bestn = 0
    n = split(want, a, / \| /)
    for (i = 1; i <= n; i++) {
        alt = trim(a[i])
        if (match(alt, /^[a-z0-9\/, ]+: /)) {
            sel = substr(alt, 1, RLENGTH - 2)
            out = substr(alt, RLENGTH + 1)
            r = rank(sel)
            if (r == 0)
                continue
        } else {
            out = alt
            r = 0
        }
        if (r > best) { best = r; bestn = 1; pick = out }
        else if (r == best) bestn++
    }
    if (best < 0)
        die("no outcome for " lvl "/" sch ": " cmd)
    if (bestn > 1)
        die("two outcomes for " lvl "/" sch ": " cmd)
    tag = ""
    if (match(cmd, /^@[A-Za-z0-9_]+ /))
        tag = "[" substr(cmd, 2, RLENGTH - 2) "] "
    n = split(pick, parts, /; /)
    for (i = 1; i <= n; i++)
        outline(parts[i], tag)
    cmd = ""
}
BEGIN {
    if (split(cfg, c, "/") != 2) { print "spec.awk: bad cfg" > "/dev/stderr"; exit 2 }
    lvl = c[1]; sch = c[2]
    cmd = ""
}
/^[ \t]*(#|--|$)/ { next }
/^[ \t]+\|/ {
    if (cmd == "") die("a continuation line with no command above it")
    want = want " " trim($0)
    next
}
{
    flush()
    line = $0
    i = index(line, " => ")
    if (i) {
        cmd = trim(substr(line, 1, i - 1))
        want = trim(substr(line, i + 4))
    } else {
        cmd = trim(line)
        want = "OK"
    }
}
END {
    if (failed)
        exit 2
    flush()
}
