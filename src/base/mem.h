/*
 * mem.h - the memory limit: one counter of bytes in use against a limit.
 *
 * Layer: base.  The record layer says what a record or version costs
 * (record_bytes, version_bytes); this file only counts.  The counter is one
 * atomic on its own cache line, touched by writes and frees, never by reads.
 */
#ifndef TXKV_BASE_MEM_H
#define TXKV_BASE_MEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mem_limit {
    _Atomic int64_t used __attribute__((aligned(64)));
    int64_t limit; /* 0: none; else 1 .. INT64_MAX */
};

/* limit 0, or 2^63 and above (SIZE_MAX: the customary "unlimited"), means
 * none: the count is a signed 64-bit number and could never reach them. */
void mem_init(struct mem_limit *m, size_t limit);

/*
 * Adds bytes to the count, unless that passes the limit: then waits once
 * for pending RCU frees (rcu_drain) and tries again.  exempt: count even
 * past the limit (deletes, which must always be able to make room).
 * 0 or TXKV_FULL.  Outside any RCU read-side section.
 */
int mem_reserve(struct mem_limit *m, size_t bytes, bool exempt);

/* Would bytes more pass the limit?  Waits once for pending frees before it
 * says yes.  Counts nothing.  Outside any RCU read-side section. */
bool mem_over(struct mem_limit *m, size_t bytes);

/* Takes bytes off the count.  Any context, RCU callbacks included. */
void mem_release(struct mem_limit *m, size_t bytes);

/* Bytes counted now (never negative). */
uint64_t mem_used(const struct mem_limit *m);

#endif /* TXKV_BASE_MEM_H */
