/*
 * kvb-sys.c - what kv-bench and wal-bench share of the system.
 * bench_rmtree: a scratch directory and what is in it, with
 * async-signal-safe calls only, for their signal handlers (an interrupted
 * run leaves nothing behind).  bench_rss_bytes: the resident set.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvb-sys.h"

/* Removes what is in the directory open as fd; depth 1 also descends into
 * subdirectories (unlinkat of a non-empty one fails, so it is emptied
 * first). */
static void rm_in(int fd, int depth)
{
    char buf[4096];
    long n;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            struct {
                unsigned long long ino;
                long long off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (void *)(buf + off);
            off += d->reclen;
            if (!strcmp(d->name, ".") || !strcmp(d->name, ".."))
                continue;
            if (unlinkat(fd, d->name, 0) == 0 || depth == 0)
                continue;
            int sub = openat(fd, d->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub >= 0) {
                rm_in(sub, depth - 1);
                close(sub);
                unlinkat(fd, d->name, AT_REMOVEDIR);
            }
        }
    }
}

void bench_rmtree(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    rm_in(fd, 1);
    close(fd);
    rmdir(dir);
}

uint64_t bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size, resident;
    int n;

    if (!f)
        return 0;
    n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    return n == 2 ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}
