# txn-history: randomized history checking (Elle/Jepsen style): concurrent
# random transactions on a few hot keys, their dependency graph checked for
# the anomalies each isolation level forbids; and, on a database whose
# optimistic commits skip validation, proof that the checker catches them.
# The checker itself is tests/history/check.c (kv-bench --verify uses it too).
# Included from src/txn/Makefile.inc; longer under `make stress`.
check_PROGRAMS += tests/txn-history
tests_txn_history_SOURCES = tests/txn-history.c tests/history/check.c tests/history/check.h
tests_txn_history_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src -I$(top_srcdir)/tests/history
tests_txn_history_LDADD = $(TEST_LIBS)
TESTS += tests/txn-history
STRESS_TESTS += tests/txn-history
