# index-bench: throughput and memory of the hash index, the B+tree and a
# mutex-protected baseline (see the comment at the top of index-bench.c).
# Built by `make`, never installed.
noinst_PROGRAMS += bench/index-bench
bench_index_bench_SOURCES = bench/index-bench.c
bench_index_bench_LDADD = libtxkv-core.la $(TXKV_DEPLIBS)
