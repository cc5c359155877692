# txn-history: randomized history checking (Elle/Jepsen style): concurrent
# random transactions on a few hot keys, their dependency graph checked for
# the anomalies each isolation level forbids; and, on a database whose
# optimistic commits skip validation, proof that the checker catches them.
# Included from src/txn/Makefile.inc; longer under `make stress`.
check_PROGRAMS += tests/txn-history
tests_txn_history_LDADD = $(TEST_LIBS)
TESTS += tests/txn-history
STRESS_TESTS += tests/txn-history
