/*
 * kvb-rmtree.c - bench_rmtree: a scratch directory and what is in it, with
 * async-signal-safe calls only, for kv-bench's and wal-bench's signal
 * handlers (an interrupted run leaves nothing behind).
 */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvb-rmtree.h"

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
