# B+tree: sources, tests
libtxkv_core_la_SOURCES += src/index/btree.c src/index/btree.h

# Model check: random operations against a sorted array (make check).
check_PROGRAMS += tests/btree-model
tests_btree_model_LDADD = $(TEST_LIBS)
TESTS += tests/btree-model

# Concurrent readers and writers (make check; longer under make stress).
check_PROGRAMS += tests/btree-concurrent
tests_btree_concurrent_LDADD = $(TEST_LIBS)
TESTS += tests/btree-concurrent
STRESS_TESTS += tests/btree-concurrent

# The design notes for both indexes (src/index/README) ship in the tarball.
EXTRA_DIST += src/index/README
