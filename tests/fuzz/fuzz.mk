# tests/fuzz: libFuzzer targets (included from Makefile.am).
#   fuzz-cli  kv-cli's tokenizer, parser, printers, and commands run through
#             cli_exec on an in-memory database
#   fuzz-api  the public API against a serial model of the isolation levels
# Each target is one file defining LLVMFuzzerTestOneInput; its seed corpus
# is tests/fuzz/corpus/NAME.
#
# Every build but a fuzzing one: tests/fuzz-NAME-replay (tests/fuzz/replay.c)
# runs the corpus and thousands of seeded generated inputs in `make check`
# (TXKV_STRESS times as many under `make stress`).
#
# ./configure --enable-fuzzing (CC=clang): tests/fuzz/fuzz-NAME are libFuzzer
# binaries, and
#   make fuzz         each target for FUZZ_TIME s, seeded by the repository's
#                     corpus; new inputs go to fuzz-corpus/NAME, crashes to
#                     fuzz-artifacts/ (both in the build directory)
#   make fuzz-merge   minimizes the repository corpus plus fuzz-corpus/NAME
#                     into tests/fuzz/corpus/NAME (libFuzzer -merge=1)
#   make check        runs tests/fuzz-short.sh only: each target for
#                     FUZZ_SHORT_TIME s, failing on any crash (CI's fuzz step);
#                     the other tests run in the other builds
FUZZ_TIME = 300
FUZZ_SHORT_TIME = 20
FUZZ_FLAGS = -max_len=1024 -len_control=0 -timeout=10 -detect_leaks=0
FUZZ_MERGE_FLAGS = -use_counters=0 -use_cmp=0
FUZZ_TARGETS = cli api

FUZZ_CLI_SOURCES = tests/fuzz/fuzz-cli.c tests/fuzz/fuzz.h tools/cli.h tools/cli-parse.c \
	tools/cli-output.c tools/cli-exec.c tools/cli-session.c
FUZZ_API_SOURCES = tests/fuzz/fuzz-api.c tests/fuzz/fuzz.h

EXTRA_DIST += tests/fuzz/corpus tests/fuzz-short.sh

if TXKV_FUZZING
check_PROGRAMS += tests/fuzz/fuzz-cli tests/fuzz/fuzz-api
tests_fuzz_fuzz_cli_SOURCES = $(FUZZ_CLI_SOURCES)
tests_fuzz_fuzz_cli_LDADD = $(TEST_LIBS)
tests_fuzz_fuzz_cli_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_api_SOURCES = $(FUZZ_API_SOURCES)
tests_fuzz_fuzz_api_LDADD = $(TEST_LIBS)
tests_fuzz_fuzz_api_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)

# A fuzzing build is an ASan+UBSan build with coverage instrumentation; the
# release, ASan and TSan builds run the unit tests, so here `make check`
# builds and runs the fuzzers only.  GNU make: override beats the += of the
# other fragments, and the sub-makes of check get check_PROGRAMS on their
# command line too (AM_MAKEFLAGS), because check-TESTS names it as its
# prerequisites, which make expands before it reads the override.
FUZZ_BINARIES = tests/fuzz/fuzz-cli tests/fuzz/fuzz-api
override TESTS = tests/fuzz-short.sh
override check_PROGRAMS = $(FUZZ_BINARIES)
AM_MAKEFLAGS = check_PROGRAMS='$(FUZZ_BINARIES)'
export FUZZ_SHORT_TIME FUZZ_FLAGS

fuzz: $(FUZZ_BINARIES)
	@$(AM_TESTS_ENVIRONMENT) fail=0; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz-corpus/$$t fuzz-artifacts || exit 1; \
	  echo "== fuzz-$$t for $(FUZZ_TIME) s: new inputs in fuzz-corpus/$$t, crashes in fuzz-artifacts/"; \
	  ./tests/fuzz/fuzz-$$t $(FUZZ_FLAGS) -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	    -artifact_prefix=fuzz-artifacts/fuzz-$$t- fuzz-corpus/$$t $(srcdir)/tests/fuzz/corpus/$$t \
	    || { echo "== fuzz-$$t FAILED: see fuzz-artifacts/"; fail=1; }; \
	done; test $$fail = 0

# The hand-written seeds (seed-*) stay; every other file of the repository
# corpus is replaced by the smallest set of inputs, from it and from
# fuzz-corpus/NAME, that covers the same edges (FUZZ_MERGE_FLAGS: edges
# only, not hit counts or comparisons, which keeps the corpus small).
fuzz-merge: $(FUZZ_BINARIES)
	@$(AM_TESTS_ENVIRONMENT) \
	for t in $(FUZZ_TARGETS); do \
	  dir=$(srcdir)/tests/fuzz/corpus/$$t; \
	  rm -rf fuzz-merged/$$t && mkdir -p fuzz-merged/$$t fuzz-corpus/$$t || exit 1; \
	  ./tests/fuzz/fuzz-$$t $(FUZZ_FLAGS) $(FUZZ_MERGE_FLAGS) -merge=1 fuzz-merged/$$t \
	    $$dir fuzz-corpus/$$t || exit 1; \
	  for s in $$dir/seed-*; do \
	    test -f "$$s" && rm -f fuzz-merged/$$t/`sha1sum <"$$s" | cut -c1-40`; \
	  done; \
	  find $$dir -type f ! -name 'seed-*' -exec rm -f {} + && \
	    cp fuzz-merged/$$t/* $$dir/ || exit 1; \
	  echo "== tests/fuzz/corpus/$$t: `ls $$dir | wc -l` files, `cat $$dir/* | wc -c` bytes"; \
	done
else
check_PROGRAMS += tests/fuzz-cli-replay tests/fuzz-api-replay
tests_fuzz_cli_replay_SOURCES = tests/fuzz/replay.c $(FUZZ_CLI_SOURCES)
tests_fuzz_cli_replay_LDADD = $(TEST_LIBS)
tests_fuzz_api_replay_SOURCES = tests/fuzz/replay.c $(FUZZ_API_SOURCES)
tests_fuzz_api_replay_LDADD = $(TEST_LIBS)
TESTS += tests/fuzz-cli-replay tests/fuzz-api-replay
STRESS_TESTS += tests/fuzz-cli-replay tests/fuzz-api-replay

fuzz fuzz-merge:
	@echo "make $@ needs a fuzzing build: mkdir build-fuzz && cd build-fuzz &&" \
	  "CC=clang ../configure --enable-fuzzing"; exit 1
endif
.PHONY: fuzz fuzz-merge
