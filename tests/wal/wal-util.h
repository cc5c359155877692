/*
 * wal-util.h - what the durability tests share: a fresh directory per
 * test (mkdtemp, removed at the end), opening with a directory, and small
 * put/get helpers.
 */
#ifndef TXKV_TESTS_WAL_UTIL_H
#define TXKV_TESTS_WAL_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "txkv.h"

/* A fresh empty directory under TMPDIR (or /tmp); returns a malloc'd path. */
static inline char *wt_mkdtemp(void)
{
    const char *t = getenv("TMPDIR");
    char buf[512];
    snprintf(buf, sizeof buf, "%s/txkv-wal-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(buf))
        return NULL;
    return strdup(buf);
}

/* Removes dir and the files in it (no subdirectories are made). */
static inline void wt_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    if (d) {
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

static inline int wt_open(const char *dir, int sync, txkv_db **db)
{
    txkv_options o;
    txkv_options_init(&o);
    o.dir = dir;
    o.sync = sync;
    return txkv_open(&o, db);
}

static inline int wt_put(txkv_db *db, txkv_ks *ks, const char *k, const char *v)
{
    txkv_txn *t;
    int rc = txkv_begin(db, NULL, &t);
    if (rc)
        return rc;
    rc = v ? txkv_put(t, ks, k, strlen(k), v, strlen(v)) : txkv_del(t, ks, k, strlen(k));
    if (rc) {
        txkv_abort(t);
        return rc;
    }
    return txkv_commit(t);
}

/* Reads k into buf (NUL-terminated); 0 or TXKV_NOTFOUND. */
static inline int wt_get(txkv_db *db, txkv_ks *ks, const char *k, char *buf, size_t cap)
{
    txkv_txn *t;
    const void *v;
    size_t vl;
    int rc = txkv_begin(db, NULL, &t);
    if (rc)
        return rc;
    rc = txkv_get(t, ks, k, strlen(k), &v, &vl);
    if (rc == 0) {
        if (vl >= cap)
            vl = cap - 1;
        memcpy(buf, v, vl);
        buf[vl] = 0;
    }
    txkv_abort(t);
    return rc;
}

/* Size of the one file whose name starts with prefix (largest if several), or -1. */
static inline long wt_file(const char *dir, const char *prefix, char *path, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    long best = -1;
    char p[1024];
    struct stat st;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (!stat(p, &st) && (st.st_size > best || best < 0)) {
                best = (long)st.st_size;
                if (path)
                    snprintf(path, cap, "%s", p);
            }
        }
    closedir(d);
    return best;
}

/*
 * The newest log segment (the greatest wal-*.log name: the number is
 * fixed-width hex) into path; returns where its written bytes end: the
 * log maps a segment a window at a time and allocates each window whole,
 * so after a kill -9 the file ends with zeros nothing was written to.
 * -1 if there is none.
 */
static inline long wt_newest_segment(const char *dir, char *path, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char best[256] = "";
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "wal-", 4) && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    if (!*best)
        return -1;
    snprintf(path, cap, "%s/%s", dir, best);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    long end = 0, at = 0;
    int c;
    while ((c = getc(f)) != EOF) {
        at++;
        if (c)
            end = at;
    }
    fclose(f);
    return end;
}

/* Number of directory entries (besides . and ..). */
static inline int wt_count(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

#endif /* TXKV_TESTS_WAL_UTIL_H */
