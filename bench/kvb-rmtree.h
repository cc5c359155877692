/* kvb-rmtree.h - removing a benchmark's scratch directory (bench/kvb-rmtree.c). */
#ifndef KVB_RMTREE_H
#define KVB_RMTREE_H

/*
 * Removes dir: its files, its subdirectories' files and those
 * subdirectories (two levels, what the benchmarks make), then dir.
 * Async-signal-safe (open, getdents64, unlinkat, rmdir, close), so a
 * signal handler may call it.
 */
void bench_rmtree(const char *dir);

#endif
