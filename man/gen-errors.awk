# Fills @ERRORS@ in a man page from TXKV_ERROR_TABLE in txkv.h, and
# @VERSION@.  Usage: awk -v version=V -f gen-errors.awk txkv.h page.in
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
{ gsub(/@VERSION@/, version); print }
