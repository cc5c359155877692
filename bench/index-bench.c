/*
 * index-bench.c - throughput and memory of txkv's two indexes, against a
 * mutex-protected baseline.
 *
 * Structures: "hash" (src/index/hash.c: cds_lfht + XXH3), "btree"
 * (src/index/btree.c), and "mutex-baseline": a skip list behind a single
 * pthread mutex, written here, the simple thing the concurrent structures
 * have to beat.  Ops: lookup (uniform random keys that are present), insert
 * (fresh keys into the prefilled structure), scan100 (seek a random key and
 * read 100 entries; ordered structures only).
 *
 * Keys are 16 bytes: a bijective mix of the key number (8 bytes, big
 * endian), then the number itself, so every key is distinct and key order
 * is unrelated to insertion order.  A record holds the key bytes and, for
 * the hash index, the struct hash_entry it embeds (as txkv's records do);
 * the ordered structures map the key to the record's address.
 *
 * For each structure and thread count the structure is built afresh with
 * --keys keys by one thread (the hash index gets a hash_maintain() every
 * 1024 inserts and at the end, and every 10 ms while threads insert, as
 * txkv's GC thread calls it), the read-only ops run, then insert (which
 * grows it).  The hash index's shape (buckets, load, entries a lookup hit
 * visits) is printed after the build and after the reads.  Threads start
 * on a barrier, run until the main thread raises a stop flag after
 * --duration seconds, and each times itself with CLOCK_MONOTONIC;
 * ops_per_sec is the sum of the threads' rates.  Every result feeds a
 * per-thread checksum that ends in a volatile sink, and a lookup that misses
 * or an insert that fails is an error (exit status 1), so no work can be
 * optimised away or silently fail.
 *
 * Memory per key: malloc's in-use bytes (mallinfo2: all arenas plus
 * mmapped chunks) after the build minus before it, over the key count, plus
 * sizeof(struct hash_entry) for the hash index, which exists in a record
 * only for the index.  Key bytes and records are allocated before the
 * first reading and never counted.  It is read after the read-only ops,
 * which leaves time for the hash table's lazy resize to finish.
 *
 * --calibrate[=MIB] measures the machine instead: the cost of a dependent
 * and of an overlapped cache miss (bench/calibrate.c).
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calibrate.h"
#include "index/btree.h"
#include "index/hash.h"
#include "txkv.h"

#define KEY_LEN      16
#define SCAN_LEN     100
#define CHUNK        65536 /* records an inserting thread allocates at a time */
#define STOP_CHECK   32    /* ops between two looks at the stop flag */
#define SL_MAX_LEVEL 24    /* enough for 4^24 keys at p = 1/4 */
#define HASH_INITIAL 1024  /* the hash index's initial size unless --hash-presize */

enum structure { S_HASH, S_BTREE, S_MUTEX, NSTRUCT };
static const char *const struct_names[NSTRUCT] = {"hash", "btree", "mutex-baseline"};

enum op { OP_LOOKUP, OP_SCAN100, OP_INSERT, NOPKINDS };
static const char *const op_names[NOPKINDS] = {"lookup", "scan100", "insert"};

struct rec {
    struct hash_entry he; /* the hash index's link; unused by the others */
    uint8_t key[KEY_LEN];
};

/* ---- mutex baseline: a skip list (Pugh, p = 1/4) behind one mutex ---- */

struct sl_node {
    const uint8_t *key;
    void *val;
    struct sl_node *next[]; /* as many as the node's level */
};

struct skiplist {
    pthread_mutex_t mu; /* guards everything below, readers included */
    int level;          /* levels in use, 1..SL_MAX_LEVEL */
    uint64_t rng;
    size_t bytes; /* node bytes, for the self-reported memory */
    struct sl_node *head;
};

static int sl_create(struct skiplist **sp)
{
    struct skiplist *s = calloc(1, sizeof *s);

    if (!s)
        return TXKV_NOMEM;
    s->head = calloc(1, sizeof *s->head + SL_MAX_LEVEL * sizeof s->head->next[0]);
    if (!s->head) {
        free(s);
        return TXKV_NOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->level = 1;
    s->rng = 0x9e3779b97f4a7c15ull;
    s->bytes = sizeof *s->head + SL_MAX_LEVEL * sizeof s->head->next[0];
    *sp = s;
    return 0;
}

static void sl_destroy(struct skiplist *s)
{
    struct sl_node *x = s->head, *next;

    for (; x; x = next) {
        next = x->next[0];
        free(x);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* The first node >= key; update[l] gets the last node < key on level l.  Mutex held. */
static struct sl_node *sl_find(struct skiplist *s, const uint8_t *key, struct sl_node **update)
{
    struct sl_node *x = s->head;

    for (int l = s->level - 1; l >= 0; l--) {
        while (x->next[l] && memcmp(x->next[l]->key, key, KEY_LEN) < 0)
            x = x->next[l];
        if (update)
            update[l] = x;
    }
    return x->next[0];
}

static int sl_insert(struct skiplist *s, const uint8_t *key, void *val)
{
    struct sl_node *update[SL_MAX_LEVEL], *x;
    int level = 1, rc = 0;

    pthread_mutex_lock(&s->mu);
    x = sl_find(s, key, update);
    if (x && memcmp(x->key, key, KEY_LEN) == 0) {
        rc = TXKV_EXISTS;
        goto out;
    }
    s->rng ^= s->rng << 13, s->rng ^= s->rng >> 7, s->rng ^= s->rng << 17;
    for (uint64_t r = s->rng; level < SL_MAX_LEVEL && (r & 3) == 0; r >>= 2)
        level++;
    x = malloc(sizeof *x + (size_t)level * sizeof x->next[0]);
    if (!x) {
        rc = TXKV_NOMEM;
        goto out;
    }
    for (int l = s->level; l < level; l++)
        update[l] = s->head;
    if (level > s->level)
        s->level = level;
    x->key = key;
    x->val = val;
    for (int l = 0; l < level; l++) {
        x->next[l] = update[l]->next[l];
        update[l]->next[l] = x;
    }
    s->bytes += sizeof *x + (size_t)level * sizeof x->next[0];
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void *sl_lookup(struct skiplist *s, const uint8_t *key)
{
    struct sl_node *x;
    void *val = NULL;

    pthread_mutex_lock(&s->mu);
    x = sl_find(s, key, NULL);
    if (x && memcmp(x->key, key, KEY_LEN) == 0)
        val = x->val;
    pthread_mutex_unlock(&s->mu);
    return val;
}

/* Reads up to n entries from the first key >= key; returns a checksum of their values. */
static uint64_t sl_scan(struct skiplist *s, const uint8_t *key, int n)
{
    uint64_t sum = 0;

    pthread_mutex_lock(&s->mu);
    for (struct sl_node *x = sl_find(s, key, NULL); x && n > 0; x = x->next[0], n--)
        sum += (uintptr_t)x->val;
    pthread_mutex_unlock(&s->mu);
    return sum;
}

/* ---- the structures behind one interface ---- */

/* The hash index's way from an entry to its key (hash_create's key_of). */
static const uint8_t *rec_key_of(const struct hash_entry *e, size_t *klen)
{
    *klen = KEY_LEN;
    return caa_container_of(e, struct rec, he)->key;
}

struct index {
    enum structure kind;
    struct hash_index *hash;
    struct btree *bt;
    struct skiplist *sl;
};

static int index_create(struct index *x, enum structure kind, size_t hash_initial)
{
    memset(x, 0, sizeof *x);
    x->kind = kind;
    switch (kind) {
    case S_HASH:
        return hash_create(0x74786b76ull, hash_initial, rec_key_of, &x->hash);
    case S_BTREE:
        return btree_create(&x->bt);
    case S_MUTEX:
        return sl_create(&x->sl);
    default:
        return TXKV_INVALID;
    }
}

static void index_destroy(struct index *x)
{
    switch (x->kind) {
    case S_HASH:
        hash_destroy(x->hash);
        break;
    case S_BTREE:
        btree_destroy(x->bt);
        break;
    default:
        sl_destroy(x->sl);
        break;
    }
}

/* What the structure says it uses, for comparison with what malloc saw. */
static size_t index_self_mem(struct index *x)
{
    switch (x->kind) {
    case S_HASH:
        return hash_mem(x->hash);
    case S_BTREE:
        return btree_mem(x->bt);
    default:
        return x->sl->bytes;
    }
}

static int index_insert(struct index *x, struct rec *r)
{
    int rc;

    switch (x->kind) {
    case S_HASH:
        rcu_read_enter();
        rc = hash_insert(x->hash, &r->he, hash_key(x->hash, r->key, KEY_LEN)) == &r->he
                 ? 0
                 : TXKV_EXISTS;
        rcu_read_leave();
        return rc;
    case S_BTREE:
        rcu_read_enter();
        rc = btree_insert(x->bt, r->key, KEY_LEN, r, NULL);
        rcu_read_leave();
        return rc;
    default:
        return sl_insert(x->sl, r->key, r);
    }
}

/*
 * A point read: find the record and read a byte of it, as a get would, so
 * every structure pays for reaching the record.  Returns that byte + 1, or
 * 0 when the key is missing.
 */
static unsigned index_lookup(struct index *x, const uint8_t *key)
{
    const struct rec *r;
    struct hash_entry *he;
    unsigned v;

    switch (x->kind) {
    case S_HASH:
        rcu_read_enter();
        he = hash_lookup(x->hash, key, KEY_LEN, hash_key(x->hash, key, KEY_LEN));
        v = he ? caa_container_of(he, struct rec, he)->key[KEY_LEN - 1] + 1u : 0;
        rcu_read_leave();
        return v;
    case S_BTREE:
        rcu_read_enter();
        r = btree_lookup(x->bt, key, KEY_LEN);
        v = r ? r->key[KEY_LEN - 1] + 1u : 0;
        rcu_read_leave();
        return v;
    default:
        /* The records outlive the structure here, so reading after the unlock is safe. */
        r = sl_lookup(x->sl, key);
        return r ? r->key[KEY_LEN - 1] + 1u : 0;
    }
}

/* Seek key, read SCAN_LEN entries; a checksum of the values read. */
static uint64_t index_scan(struct index *x, struct btree_iter *it, const uint8_t *key)
{
    uint64_t sum = 0;
    int rc;

    if (x->kind == S_MUTEX)
        return sl_scan(x->sl, key, SCAN_LEN);
    rcu_read_enter();
    rc = btree_seek(it, key, KEY_LEN);
    for (int n = 0; rc == 0 && n < SCAN_LEN; n++) {
        sum += (uintptr_t)it->val;
        if (n + 1 < SCAN_LEN)
            rc = btree_next(it);
    }
    /* The leaf hint is only good inside the section that set it. */
    btree_iter_unpin(it);
    rcu_read_leave();
    return sum;
}

/*
 * The hash table's shape: bucket count, load, and how many entries a lookup
 * hit visits on average (each one a dependent cache miss once the table is
 * larger than the cache; 1 is the floor).  To stderr, with when saying at
 * which point of the run.
 */
static void report_hash_shape(struct index *x, const char *when)
{
    struct hash_stats st;

    hash_stats(x->hash, &st);
    fprintf(stderr,
            "# hash shape %s: %zu buckets, %zu entries, load %.2f, %.3f entries visited per hit, "
            "longest chain %zu, %.1f bucket bytes per key\n",
            when, st.buckets, st.entries, st.buckets ? (double)st.entries / (double)st.buckets : 0,
            st.nodes_per_hit, st.max_chain,
            st.entries ? (double)hash_mem(x->hash) / (double)st.entries : 0);
}

/* ---- keys and records ---- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void make_key(uint64_t i, uint8_t *k)
{
    uint64_t m = mix64(i);

    for (int b = 0; b < 8; b++) {
        k[b] = (uint8_t)(m >> (56 - 8 * b));
        k[8 + b] = (uint8_t)(i >> (56 - 8 * b));
    }
}

static void make_rec(struct rec *r, uint64_t i)
{
    make_key(i, r->key);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * The calling thread's CPU time.  On a machine with more runnable threads
 * than cores, ops per CPU-second is what a thread does while it runs, and
 * does not drop when it waits for a core, as ops per wall-clock second does.
 */
static double thread_cpu(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* malloc's bytes in use, all arenas and mmapped chunks. */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
}

/* ---- measurement ---- */

struct run {
    struct index *x;
    enum op op;
    int nthreads;
    uint64_t nkeys;
    pthread_barrier_t start;
    int stop;          /* set by the main thread when the duration is over */
    uint64_t inserted; /* records the inserting threads took, by chunks (atomic) */
};

struct worker {
    pthread_t th;
    struct run *run;
    int id;
    uint64_t ops, sum, errors;
    double secs, cpu_secs; /* wall-clock and this thread's CPU time */
    struct rec **chunks;   /* inserted records: they must outlive the structure */
    size_t nchunks;
};

static volatile uint64_t sink;

static int keep_chunk(struct worker *w, struct rec *chunk)
{
    struct rec **c = realloc(w->chunks, (w->nchunks + 1) * sizeof *c);

    if (!c)
        return TXKV_NOMEM;
    w->chunks = c;
    w->chunks[w->nchunks++] = chunk;
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *run = w->run;
    uint64_t rng = mix64((uint64_t)w->id + 1), ops = 0, sum = 0, errors = 0;
    /* Fresh keys: thread id, id + T, id + 2T, ... after the prefilled ones. */
    uint64_t next = run->nkeys + (uint64_t)w->id;
    uint64_t limit = run->nkeys * (1 + (uint64_t)run->nthreads); /* nkeys each, at most */
    struct rec *chunk = NULL;
    size_t used = CHUNK;
    struct btree_iter it;
    uint8_t key[KEY_LEN];
    double t0;

    if (run->op == OP_SCAN100 && run->x->kind == S_BTREE)
        btree_iter_init(run->x->bt, &it);
    pthread_barrier_wait(&run->start);
    t0 = now();
    double c0 = thread_cpu();
    for (;;) {
        if (ops % STOP_CHECK == 0 && __atomic_load_n(&run->stop, __ATOMIC_RELAXED))
            break;
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        if (run->op == OP_LOOKUP) {
            make_key(rng % run->nkeys, key);
            unsigned v = index_lookup(run->x, key);
            errors += v == 0;
            sum += v;
        } else if (run->op == OP_SCAN100) {
            make_key(rng % run->nkeys, key);
            sum += index_scan(run->x, &it, key);
        } else {
            if (next >= limit)
                break; /* this thread has inserted its share: stop the clock here */
            if (used == CHUNK) {
                chunk = malloc(CHUNK * sizeof *chunk);
                if (!chunk || keep_chunk(w, chunk) != 0) {
                    free(chunk);
                    errors++;
                    break;
                }
                used = 0;
                __atomic_fetch_add(&run->inserted, CHUNK, __ATOMIC_RELAXED);
            }
            struct rec *r = &chunk[used++];
            make_rec(r, next);
            next += (uint64_t)run->nthreads;
            errors += index_insert(run->x, r) != 0;
            sum += r->key[0];
        }
        ops++;
    }
    w->secs = now() - t0;
    w->cpu_secs = thread_cpu() - c0;
    if (run->op == OP_SCAN100 && run->x->kind == S_BTREE)
        btree_iter_fini(&it);
    w->ops = ops;
    w->sum = sum;
    w->errors = errors;
    return NULL;
}

struct options {
    uint64_t keys;
    int threads[64];
    int nthreads;
    int structs[NSTRUCT];
    int nstructs;
    int ops[NOPKINDS];
    double duration;
    const char *csv;
    int presize;
    unsigned calibrate_mib; /* --calibrate[=MIB]: calibrate.c instead of the indexes */
};

struct result {
    enum structure s;
    enum op op;
    int threads;
    double ops_per_sec;
};

static int failed;

/*
 * Sleeps for secs while threads insert into the hash index, calling
 * hash_maintain every 10 ms with the count, as txkv's GC thread does.
 */
static void wait_maintaining(struct run *run, double secs)
{
    struct timespec d = {0, 10 * 1000 * 1000};
    double end = now() + secs;

    while (now() < end) {
        nanosleep(&d, NULL);
        hash_maintain(run->x->hash, run->nkeys + __atomic_load_n(&run->inserted, __ATOMIC_RELAXED));
    }
}

/* Runs op on x with t threads; the inserting threads' records are kept in *keep. */
static double measure(struct index *x, enum op op, int t, const struct options *o,
                      struct worker **keep, int *nkeep)
{
    struct run run = {.x = x, .op = op, .nthreads = t, .nkeys = o->keys};
    struct worker *w = calloc((size_t)t, sizeof *w);
    struct timespec d;
    double rate = 0, cpu_rate = 0;
    uint64_t sum = 0, errors = 0;

    if (!w) {
        fprintf(stderr, "index-bench: out of memory\n");
        exit(2);
    }
    pthread_barrier_init(&run.start, NULL, (unsigned)t + 1);
    for (int i = 0; i < t; i++) {
        w[i].run = &run;
        w[i].id = i;
        if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "index-bench: cannot start a thread\n");
            exit(2);
        }
    }
    pthread_barrier_wait(&run.start);
    if (x->kind == S_HASH && op == OP_INSERT) {
        wait_maintaining(&run, o->duration);
    } else {
        d.tv_sec = (time_t)o->duration;
        d.tv_nsec = (long)((o->duration - (double)d.tv_sec) * 1e9);
        while (nanosleep(&d, &d) != 0)
            ;
    }
    __atomic_store_n(&run.stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < t; i++) {
        pthread_join(w[i].th, NULL);
        rate += w[i].secs > 0 ? (double)w[i].ops / w[i].secs : 0;
        cpu_rate += w[i].cpu_secs > 0 ? (double)w[i].ops / w[i].cpu_secs / t : 0;
        sum += w[i].sum;
        errors += w[i].errors;
    }
    pthread_barrier_destroy(&run.start);
    fprintf(stderr, "# %s %s %d threads: %.0f ops per CPU-second per thread\n",
            struct_names[x->kind], op_names[op], t, cpu_rate);
    sink += sum;
    if (errors) {
        fprintf(stderr, "index-bench: %s %s with %d threads: %" PRIu64 " failed operations\n",
                struct_names[x->kind], op_names[op], t, errors);
        failed = 1;
    }
    *keep = w;
    *nkeep = t;
    return rate;
}

static void free_workers(struct worker *w, int n)
{
    for (int i = 0; i < n; i++) {
        for (size_t c = 0; c < w[i].nchunks; c++)
            free(w[i].chunks[c]);
        free(w[i].chunks);
    }
    free(w);
}

static int parse_list(const char *arg, const char *const *names, int n, int *out)
{
    char *copy = strdup(arg), *save = NULL;
    int count = 0;

    if (!copy)
        return -1;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int i;
        for (i = 0; i < n && strcmp(tok, names[i]) != 0; i++)
            ;
        if (i == n) {
            fprintf(stderr, "index-bench: unknown name '%s'\n", tok);
            free(copy);
            return -1;
        }
        out[count++] = i;
        if (count == n)
            break;
    }
    free(copy);
    return count;
}

static int parse_threads(const char *arg, struct options *o)
{
    const char *p = arg;
    char *end;

    o->nthreads = 0;
    while (*p) {
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 1024 || (*end && *end != ',') ||
            o->nthreads == (int)(sizeof o->threads / sizeof o->threads[0]))
            return -1;
        o->threads[o->nthreads++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return o->nthreads ? 0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: index-bench [--keys N] [--threads T[,T...]] [--csv FILE]\n"
            "                   [--structure hash,btree,mutex-baseline]\n"
            "                   [--ops lookup,insert,scan100] [--duration SEC]\n"
            "                   [--hash-presize]\n"
            "       index-bench --calibrate[=MIB] [--csv FILE]\n"
            "defaults: --keys 1000000 --threads 1,2 --duration 2, every structure and op.\n"
            "--hash-presize creates the hash index with --keys buckets instead of %d.\n"
            "--calibrate prints the ns of a dependent and of an overlapped (8 chains)\n"
            "cache miss: a pointer chase over MIB MiB [512], one slot per 64-byte line\n"
            "in one random cycle, and over 256 KiB for contrast (bench/calibrate.c).\n",
            HASH_INITIAL);
}

static void parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"keys", required_argument, NULL, 'k'},
        {"threads", required_argument, NULL, 't'},
        {"csv", required_argument, NULL, 'c'},
        {"structure", required_argument, NULL, 's'},
        {"ops", required_argument, NULL, 'o'},
        {"duration", required_argument, NULL, 'd'},
        {"hash-presize", no_argument, NULL, 'p'},
        {"calibrate", optional_argument, NULL, 'C'}, /* bench/calibrate.c */
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, nops;
    int ops[NOPKINDS];
    char *end;

    memset(o, 0, sizeof *o);
    o->keys = 1000000;
    o->threads[0] = 1, o->threads[1] = 2, o->nthreads = 2;
    for (int i = 0; i < NSTRUCT; i++)
        o->structs[i] = i;
    o->nstructs = NSTRUCT;
    for (int i = 0; i < NOPKINDS; i++)
        o->ops[i] = 1;
    o->duration = 2;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            o->keys = strtoull(optarg, &end, 10);
            if (*end || o->keys < 1 || o->keys > (1ull << 40))
                goto bad;
            break;
        case 't':
            if (parse_threads(optarg, o) != 0)
                goto bad;
            break;
        case 'c':
            o->csv = optarg;
            break;
        case 's':
            o->nstructs = parse_list(optarg, struct_names, NSTRUCT, o->structs);
            if (o->nstructs <= 0)
                goto bad;
            break;
        case 'o':
            nops = parse_list(optarg, op_names, NOPKINDS, ops);
            if (nops <= 0)
                goto bad;
            memset(o->ops, 0, sizeof o->ops);
            for (int i = 0; i < nops; i++)
                o->ops[ops[i]] = 1;
            break;
        case 'd':
            o->duration = strtod(optarg, &end);
            if (*end || !(o->duration > 0 && o->duration < 1e6))
                goto bad;
            break;
        case 'p':
            o->presize = 1;
            break;
        case 'C':
            o->calibrate_mib = 512;
            if (optarg) {
                unsigned long long v = strtoull(optarg, &end, 10);
                if (*end || v < 1 || v > (1u << 20))
                    goto bad;
                o->calibrate_mib = (unsigned)v;
            }
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            goto bad;
        }
    }
    if (optind == argc)
        return;
bad:
    usage(stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    struct options o;
    struct result *res;
    size_t nres = 0;
    double mem[NSTRUCT], self_mem[NSTRUCT];
    int heap_seen[NSTRUCT] = {0}; /* sanitizer allocators do not report to mallinfo2 */
    int have_mem[NSTRUCT] = {0};
    FILE *csv = NULL;

    parse_options(argc, argv, &o);
    if (o.calibrate_mib)
        return calibrate_run(o.calibrate_mib, o.csv);
    res = calloc((size_t)(o.nstructs * o.nthreads * NOPKINDS), sizeof *res);
    if (!res)
        return 2;
    if (o.csv) {
        csv = fopen(o.csv, "w");
        if (!csv) {
            perror(o.csv);
            return 2;
        }
        fprintf(csv, "structure,op,threads,keys,ops_per_sec\n");
    }

    for (int si = 0; si < o.nstructs; si++) {
        enum structure s = (enum structure)o.structs[si];
        for (int ti = 0; ti < o.nthreads; ti++) {
            int t = o.threads[ti];
            struct index x;
            struct rec *recs = malloc(o.keys * sizeof *recs);
            size_t before;
            int alive = 1;
            double t0;

            if (!recs) {
                fprintf(stderr, "index-bench: out of memory\n");
                return 2;
            }
            for (uint64_t i = 0; i < o.keys; i++)
                make_rec(&recs[i], i);
            before = heap_in_use();
            if (index_create(&x, s, o.presize ? o.keys : HASH_INITIAL) != 0) {
                fprintf(stderr, "index-bench: cannot create %s\n", struct_names[s]);
                return 2;
            }
            t0 = now();
            for (uint64_t i = 0; i < o.keys; i++) {
                if (index_insert(&x, &recs[i]) != 0) {
                    fprintf(stderr, "index-bench: %s: prefill failed\n", struct_names[s]);
                    return 1;
                }
                /* As txkv's GC thread does, now and then (each round): the table
                 * never resizes by itself. */
                if (s == S_HASH && (i + 1) % 1024 == 0)
                    hash_maintain(x.hash, i + 1);
            }
            if (s == S_HASH)
                hash_maintain(x.hash, o.keys);
            fprintf(stderr, "# %s: built with %" PRIu64 " keys in %.2f s\n", struct_names[s],
                    o.keys, now() - t0);
            if (s == S_HASH)
                report_hash_shape(&x, "after the build");

            for (int op = 0; op < NOPKINDS; op++) {
                struct worker *w;
                int nw;

                if (op == OP_INSERT && !have_mem[s]) {
                    /* Before inserts grow it, and after the reads gave resizes time to end. */
                    size_t after = heap_in_use();
                    if (s == S_HASH)
                        report_hash_shape(&x, "after the reads");
                    heap_seen[s] = after != before;
                    mem[s] = (double)(after - before) / (double)o.keys;
                    self_mem[s] = (double)index_self_mem(&x) / (double)o.keys;
                    if (s == S_HASH) {
                        mem[s] += sizeof(struct hash_entry);
                        self_mem[s] += sizeof(struct hash_entry);
                    }
                    have_mem[s] = 1;
                }
                if (!o.ops[op])
                    continue;
                if (op == OP_SCAN100 && s == S_HASH) {
                    if (ti == 0)
                        fprintf(stderr, "# hash: scan100 skipped (unordered)\n");
                    continue;
                }
                res[nres] = (struct result){s, (enum op)op, t, measure(&x, op, t, &o, &w, &nw)};
                if (csv)
                    fprintf(csv, "%s,%s,%d,%" PRIu64 ",%.0f\n", struct_names[s], op_names[op], t,
                            o.keys, res[nres].ops_per_sec);
                fprintf(stderr, "# %s %s %d threads: %.0f ops/s\n", struct_names[s], op_names[op],
                        t, res[nres].ops_per_sec);
                nres++;
                if (op != OP_INSERT) {
                    free_workers(w, nw);
                } else {
                    /* The structure points into the inserted records until it is gone. */
                    index_destroy(&x);
                    free_workers(w, nw);
                    alive = 0;
                }
            }
            if (alive)
                index_destroy(&x);
            free(recs);
        }
    }

    printf("%-16s %-8s %7s %10s %14s\n", "structure", "op", "threads", "keys", "ops/s");
    for (size_t i = 0; i < nres; i++)
        printf("%-16s %-8s %7d %10" PRIu64 " %14.0f\n", struct_names[res[i].s], op_names[res[i].op],
               res[i].threads, o.keys, res[i].ops_per_sec);
    printf("\nindex memory per key, bytes beyond the %d key bytes (%" PRIu64 " keys):\n", KEY_LEN,
           o.keys);
    for (int si = 0; si < o.nstructs; si++) {
        enum structure s = (enum structure)o.structs[si];
        if (have_mem[s]) {
            if (heap_seen[s])
                printf("  %-16s %7.1f measured (malloc)", struct_names[s], mem[s]);
            else
                printf("  %-16s     n/a measured (malloc)", struct_names[s]);
            printf("  %7.1f self-reported", self_mem[s]);
            if (s == S_HASH)
                printf("  (both include the %zu-byte hash_entry in each record)",
                       sizeof(struct hash_entry));
            printf("\n");
        }
    }
    if (csv && fclose(csv) != 0) {
        perror(o.csv);
        return 2;
    }
    free(res);
    return failed;
}
