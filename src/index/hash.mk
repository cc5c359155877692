# hash index: sources, tests
libtxkv_core_la_SOURCES += src/index/hash.c src/index/hash.h

# hash-model: one thread against a reference model (make check).
# hash-concurrent: 6 threads with per-thread key ranges; short by default,
# longer under `make stress` (TXKV_STRESS scales its operation count).
check_PROGRAMS += tests/hash-model tests/hash-concurrent
tests_hash_model_LDADD = $(TEST_LIBS)
tests_hash_concurrent_LDADD = $(TEST_LIBS)
TESTS += tests/hash-model tests/hash-concurrent
STRESS_TESTS += tests/hash-concurrent
