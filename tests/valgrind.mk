# `make check-valgrind`: the C test programs under Valgrind's memcheck.
# Kept out of `make check`: memcheck runs every thread of a program on one
# core at 20-50x the cost, so the whole set takes minutes, not seconds.
#
# Each program runs through `libtool --mode=execute` (so a libtool wrapper
# script, if a test ever gets one, runs the real binary under Valgrind) with
# TXKV_STRESS left at its default.  A program fails when Valgrind reports an
# error (an invalid access, a use of uninitialised memory, or a definite or
# indirect leak: --errors-for-leak-kinds) or when its TAP tests fail.  Its
# TAP output and Valgrind's report go to tests/NAME.vg.log, which ends with
# a "# check-valgrind:" line giving the verdict, the exit status, Valgrind's
# error count and the seconds it took.
#
# Valgrind runs a program's threads one at a time, so two programs at once
# use both cores:  make -j2 check-valgrind
# A subset:        make check-valgrind VALGRIND_TESTS='tests/txn-misuse tests/txn-orphan'
# Extra options:   make check-valgrind VALGRIND_EXTRA='--num-callers=40'
# tests/valgrind.supp hides liburcu internals only; each entry says why.
VALGRIND = valgrind
VALGRIND_FLAGS = --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--error-exitcode=1 --suppressions=$(abs_top_srcdir)/tests/valgrind.supp \
	--num-callers=30 $(VALGRIND_EXTRA)
VALGRIND_TESTS = $(check_PROGRAMS)
VALGRIND_LOGS = $(VALGRIND_TESTS:$(EXEEXT)=.vg.log)
EXTRA_DIST += tests/valgrind.supp tests/valgrind.mk
CLEANFILES += $(VALGRIND_LOGS)

check-valgrind: $(VALGRIND_TESTS)
	@command -v $(VALGRIND) >/dev/null 2>&1 || { \
	  echo "check-valgrind: $(VALGRIND) not found (apt-get install valgrind)"; exit 1; }
	@rm -f $(VALGRIND_LOGS)
	@$(MAKE) $(AM_MAKEFLAGS) $(VALGRIND_LOGS)
	@fail=0; for log in $(VALGRIND_LOGS); do \
	  line=`grep '^# check-valgrind:' $$log | tail -n 1`; \
	  echo "$${line#\# check-valgrind: }"; \
	  case $$line in *' PASS '*) ;; *) fail=1 ;; esac; \
	done; \
	if test $$fail = 0; then echo "check-valgrind: all clean"; \
	else echo "check-valgrind: failures above; see tests/*.vg.log"; exit 1; fi

# One log per program.  The recipe itself always succeeds, so that with -j
# (or without -k) every program still runs; check-valgrind reads the verdicts.
%.vg.log: %$(EXEEXT)
	@start=`date +%s`; \
	$(LIBTOOL) --mode=execute $(VALGRIND) $(VALGRIND_FLAGS) ./$< >$@.tmp 2>&1; rc=$$?; \
	secs=$$((`date +%s` - start)); \
	errs=`sed -n 's/.*ERROR SUMMARY: \([0-9]*\) error.*/\1/p' $@.tmp | tail -n 1`; \
	if test -z "$$errs"; then verdict="FAIL $* (no Valgrind summary: crashed?)"; \
	elif test "$$errs" != 0; then verdict="FAIL $* ($$errs Valgrind errors)"; \
	elif test $$rc != 0; then verdict="FAIL $* (test failures, exit $$rc)"; \
	else verdict="PASS $*"; fi; \
	echo "# check-valgrind: $$verdict, exit $$rc, $${errs:-?} errors, $$secs s" >>$@.tmp; \
	mv $@.tmp $@; \
	echo "$$verdict ($$secs s)"

.PHONY: check-valgrind
