/*
 * kvb-scratch.c - scratch directories for the engines that keep files
 * (RocksDB's SST files and logs, SQLite's database, WAL and shared-memory
 * index): one per open database, under /dev/shm so that every engine runs
 * from memory, falling back to /tmp.
 *
 * A row removes its directory when it ends.  kv-bench's signal handler
 * removes those still open through bench_scratch_emergency_cleanup, which
 * uses only async-signal-safe calls (bench_rmtree, bench/kvb-sys.c), so an
 * interrupted run leaves nothing in /dev/shm.  The table of open
 * directories is written by the main thread only (rows open and close their
 * databases there); a slot's path is complete before it is marked used.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvb.h"
#include "kvb-sys.h"

#define SCRATCH_SLOTS 8

static char scratch_dirs[SCRATCH_SLOTS][96];
static volatile sig_atomic_t scratch_used[SCRATCH_SLOTS];

int bench_scratch_dir(char *dir, size_t len, const char *tag, char *err, size_t errlen)
{
    int slot;
    for (slot = 0; slot < SCRATCH_SLOTS && scratch_used[slot]; slot++)
        ;
    if (slot == SCRATCH_SLOTS) {
        snprintf(err, errlen, "more than %d scratch directories open", SCRATCH_SLOTS);
        return BENCH_FAIL;
    }
    snprintf(dir, len, "/dev/shm/kv-bench-%s-XXXXXX", tag);
    if (!mkdtemp(dir)) {
        snprintf(dir, len, "/tmp/kv-bench-%s-XXXXXX", tag);
        if (!mkdtemp(dir)) {
            snprintf(err, errlen, "mkdtemp %s: %s", dir, strerror(errno));
            return BENCH_FAIL;
        }
    }
    snprintf(scratch_dirs[slot], sizeof scratch_dirs[slot], "%s", dir);
    scratch_used[slot] = 1;
    return BENCH_OK;
}

void bench_scratch_remove(const char *dir)
{
    for (int i = 0; i < SCRATCH_SLOTS; i++)
        if (scratch_used[i] && strcmp(scratch_dirs[i], dir) == 0)
            scratch_used[i] = 0;
    bench_rmtree(dir);
}

void bench_scratch_emergency_cleanup(void)
{
    for (int i = 0; i < SCRATCH_SLOTS; i++)
        if (scratch_used[i])
            bench_rmtree(scratch_dirs[i]);
}
