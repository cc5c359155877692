/*
 * kvb-mem.c - kv-bench's memory figures beside the engines' own
 * accounting: the process's resident set, the allocator that serves
 * malloc, and --update-pass (every loaded key rewritten once after the
 * row, then the footprint read again once it has settled).
 *
 * The engines' footprint (txkv_stats().bytes, LMDB's pages) is what each
 * engine counts; the resident set is what the process pays for it, malloc's
 * headers, free lists and fragmentation included, which is where one
 * allocator differs from another (bench/alloc.sh).  RSS is read from
 * /proc/self/statm: resident pages, file-backed and shared ones included
 * (LMDB's map on /dev/shm counts once touched).  A later row of the same
 * process may reuse memory an earlier row freed, so compare RSS figures of
 * the first row of a run (bench/alloc.sh runs one row per process).
 */
#include "config.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvb.h"

#define PASS_BATCH     10000 /* keys per update-pass transaction, as the loader's */
#define SETTLE_POLL_MS 20    /* footprint polls while the engine collects garbage */
#define SETTLE_STABLE                                                                              \
    50 /* unchanged polls (1 s) that end the wait: a GC sweep of                                   \
          1M keys frees nothing until it is done */
#define SETTLE_MAX_MS 15000

const char *bench_allocator(void)
{
    static char buf[160];
    void *(*volatile m)(size_t) = malloc; /* the malloc this process's calls reach */
    Dl_info info;
    const char *lib = "unknown", *slash;

    if (dladdr((void *)m, &info) && info.dli_fname) {
        slash = strrchr(info.dli_fname, '/');
        lib = slash ? slash + 1 : info.dli_fname;
    }
    snprintf(buf, sizeof buf, "%s (configure --with-allocator=%s; malloc from %s)",
             strncmp(lib, "libjemalloc", 11) == 0   ? "jemalloc"
             : strncmp(lib, "libmimalloc", 11) == 0 ? "mimalloc"
             : strncmp(lib, "libc.", 5) == 0        ? "glibc"
                                             : "other", /* e.g. a sanitizer's, in the program */
             TXKV_ALLOCATOR, lib);
    return buf;
}

int bench_update_pass(struct bench_shared *sh, void *t)
{
    const struct bench_engine *e = sh->eng;
    const struct bench_config *cfg = sh->cfg;
    uint8_t *key = malloc(cfg->key_size), *val = malloc(cfg->value_size);
    int rc = BENCH_OK;

    if (!key || !val) {
        bench_fail(sh, 0, "update pass: out of memory");
        rc = BENCH_FAIL;
        goto out;
    }
    bench_key_init(key, cfg->key_size);
    memset(val, 'u', cfg->value_size);
    for (uint64_t i = 0; i < sh->items;) {
        uint64_t end = sh->items - i < PASS_BATCH ? sh->items : i + PASS_BATCH;
        if ((rc = e->begin(t, 0)) != BENCH_OK)
            goto failed;
        for (uint64_t j = i; j < end; j++) {
            bench_key(key, j);
            bench_store64(val, ~j);
            if ((rc = e->put(t, key, cfg->key_size, val, cfg->value_size)) != BENCH_OK) {
                e->abort(t);
                goto failed;
            }
        }
        if ((rc = e->commit(t)) == BENCH_RETRY)
            continue; /* nothing else runs: should not happen */
        if (rc != BENCH_OK)
            goto failed;
        i = end;
    }
    goto out;
failed:
    bench_fail(sh, rc == BENCH_NOTSUP, "update pass: %s", e->error(t));
out:
    free(key);
    free(val);
    return rc;
}

int bench_settled_footprint(const struct bench_engine *e, void *db, uint64_t *bytes, uint64_t *keys,
                            char *err, size_t errlen)
{
    struct timespec poll = {0, SETTLE_POLL_MS * 1000000L};
    uint64_t last = UINT64_MAX;
    int stable = 0, rc;

    for (int waited = 0; waited <= SETTLE_MAX_MS; waited += SETTLE_POLL_MS) {
        if ((rc = e->footprint(db, bytes, keys, err, errlen)) != BENCH_OK)
            return rc;
        stable = *bytes == last ? stable + 1 : 0;
        if (stable >= SETTLE_STABLE)
            break;
        last = *bytes;
        nanosleep(&poll, NULL);
    }
    return BENCH_OK;
}
