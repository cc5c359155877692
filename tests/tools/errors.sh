#!/bin/sh
# tests/tools/errors.sh: malformed commands, failed transactions, options, exit status.
. "${top_srcdir:?run me through make check}/tests/tools/lib.sh"
plan 19

check errors 1

run_cli -c 'PUT a 1; GET a'
[ "$st" -eq 0 ] && [ "$out" = 'OK
1' ]
ok $? "-c runs commands separated by ';', exit 0"

run_cli -c 'GET a; FROB; GET b'
[ "$st" -eq 1 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 3 ]
ok $? "an error goes on and exits 1"

run_cli --bail -c 'PUT a 1' -c 'FROB; GET a' -c 'GET b'
[ "$st" -eq 1 ] && [ "$out" = "OK
(error) SYNTAX: unknown command 'FROB' (HELP lists the commands)" ]
ok $? "--bail stops at the first error"

run_cli -c 'PUT a 1' -f "$CLI_DATA/bad.kv" -c 'COUNT'
[ "$st" -eq 0 ] && [ "$(printf '%s\n' "$out" | tr '\n' ' ')" = 'OK OK OK (nil) OK 3 ' ]
ok $? "-c and -f run in order"

run_cli -f "$tmp/no-such-file"
[ "$st" -eq 1 ] && printf '%s\n' "$out" | grep -q 'cannot open .*no-such-file'
ok $? "a missing -f file fails"

for args in '--frob' '-x' '--isolation chaos' '--cc lazy' '--mem-limit lots' '--format xml' \
    '--wait 0' 'dir stray' '-c'; do
    # shellcheck disable=SC2086
    run_cli $args
    [ "$st" -eq 2 ] && printf '%s\n' "$out" | grep -q "kv-cli --help"
    ok $? "usage error exits 2: kv-cli $args"
done

run_cli --version
[ "$st" -eq 0 ] && printf '%s\n' "$out" | grep -Eq '^kv-cli \(txkv\) [0-9]'
ok $? "--version"

run_cli --help
[ "$st" -eq 0 ] && printf '%s\n' "$out" | grep -q '^Usage: kv-cli'
ok $? "--help"

# A transaction that hits the memory limit fails; only ROLLBACK or COMMIT end it.
v=$(printf '%0600d' 0)
run_cli --mem-limit 1K -c "BEGIN; PUT a $v; PUT b $v; GET a; .sessions; COMMIT; PUT c 1"
[ "$st" -eq 1 ] && [ "$out" = 'OK
OK
(error) FULL: memory limit of the database reached
(error) ABORTED: transaction has failed and must be ended
* T1       failed       must ROLLBACK
(error) ABORTED: the transaction had failed; it was rolled back
OK' ]
ok $? "FULL fails the transaction until it is ended"
