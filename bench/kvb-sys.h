/* kvb-sys.h - what kv-bench and wal-bench share of the system: removing a
 * scratch directory, the process's resident set (bench/kvb-sys.c). */
#ifndef KVB_SYS_H
#define KVB_SYS_H

#include <stdint.h>

/*
 * Removes dir: its files, its subdirectories' files and those
 * subdirectories (two levels, what the benchmarks make), then dir.
 * Async-signal-safe (open, getdents64, unlinkat, rmdir, close), so a
 * signal handler may call it.
 */
void bench_rmtree(const char *dir);

/* The process's resident set in bytes (/proc/self/statm; 0 if unknown). */
uint64_t bench_rss_bytes(void);

#endif
