# Fills a man page template: @ERRORS@ from TXKV_ERROR_TABLE in txkv.h,
# @VERSION@, and @EXAMPLE@ with the C file `example` (tests/base/example.c,
# which make check compiles and runs), escaped for roff: a backslash is \e,
# a hyphen \-, a quote \(aq, a line starting with . or ' gets \&.
# tests/base/example.sh turns the page back into the file and compares.
# Usage: awk -v version=V -v example=FILE -f gen-errors.awk txkv.h page.in
FNR == NR {
    if ($0 ~ /^ *X\([A-Z_]+, *-?[0-9]+, *[01], *"/) {
        line = $0
        sub(/^ *X\(/, "", line)
        name = line; sub(/,.*/, "", name)
        code = line; sub(/^[A-Z_]+, */, "", code); sub(/,.*/, "", code)
        retry = line; sub(/^[A-Z_]+, *-?[0-9]+, */, "", retry); sub(/,.*/, "", retry)
        msg = line; sub(/^[^"]*"/, "", msg); sub(/".*/, "", msg)
        errs = errs ".TP\n.BR TXKV_" name " \" (" code ")\"\n" msg (retry == "1" ? " (retryable)" : "") ".\n"
    }
    next
}
/@ERRORS@/ { printf "%s", errs; next }
/@EXAMPLE@/ {
    if (example == "" || (getline line < example) <= 0) {
        print "gen-errors.awk: no example file" > "/dev/stderr"
        exit 1
    }
    do {
        gsub(/\\/, "\\\\e", line)
        gsub(/-/, "\\\\-", line)
        gsub(/'/, "\\\\(aq", line)
        if (line ~ /^[.]/)
            line = "\\&" line
        print line
    } while ((getline line < example) > 0)
    close(example)
    next
}
{ gsub(/@VERSION@/, version); print }
