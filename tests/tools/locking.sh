#!/bin/sh
# tests/tools/locking.sh: how kv-cli shows pessimistic locking (docs/testing.md).
# The isolation anomalies themselves are the specs of tests/isolation.
. "${top_srcdir:?run me through make check}/tests/tools/lib.sh"
plan 7

# Pessimistic locking: a lock wait is reported blocked and finishes when the
# holder ends; a deadlock fails its youngest transaction.
check blocking 1 --wait 1000
check deadlock 1 --wait 1000
# LOCKS shows the holder and the waiter of a key, S, X and RANGE locks.
check locks 0 --wait 1000

# --lock-timeout: a wait that lasts too long fails its transaction.
run_cli --wait 3000 --cc pessimistic --lock-timeout 100 \
    -c '@T1 BEGIN; PUT k 1; @T2 BEGIN; @T2 PUT k 2; @T2 ROLLBACK; COMMIT; GET k'
[ "$st" -eq 1 ] && [ "$out" = '[T1] OK
OK
[T2] OK
[T2] (error) LOCK_TIMEOUT: lock wait exceeded the lock timeout; retry it
[T2] OK
OK
1' ]
ok $? "--lock-timeout fails a long lock wait"
