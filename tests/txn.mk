# Transaction-manager tests under load and misuse (included from src/txn/Makefile.inc).
# txn-bank: sums and write skew under 6-8 threads at SNAPSHOT and SERIALIZABLE;
#   longer under `make stress` (TXKV_STRESS scales its operation counts).
# txn-gc: version GC keeps memory bounded and never frees what a snapshot reads.
# txn-memlimit: TXKV_FULL fails only its transaction; deleting makes room again.
# txn-misuse: bad arguments, failed and read-only transactions, keyspace errors.
# txn-orphan: a thread that exits with a transaction open leaves it open; it
#   pins versions until ended (from any thread) or txkv_close, and does not
#   wedge the GC or RCU; short-lived threads leave no RCU registration behind.
check_PROGRAMS += tests/txn-bank tests/txn-gc tests/txn-memlimit tests/txn-misuse \
	tests/txn-orphan
tests_txn_bank_LDADD = $(TEST_LIBS)
tests_txn_gc_LDADD = $(TEST_LIBS)
tests_txn_memlimit_LDADD = $(TEST_LIBS)
tests_txn_misuse_LDADD = $(TEST_LIBS)
tests_txn_orphan_LDADD = $(TEST_LIBS)
TESTS += tests/txn-bank tests/txn-gc tests/txn-memlimit tests/txn-misuse tests/txn-orphan
STRESS_TESTS += tests/txn-bank
