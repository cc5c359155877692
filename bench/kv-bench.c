/*
 * kv-bench.c - runs the same workload on txkv, under every isolation level
 * and concurrency-control scheme asked for, and on its peers side by side:
 * LMDB, RocksDB's TransactionDB (rocksdb-txn) and OptimisticTransactionDB
 * (rocksdb-occ), SQLite.
 *
 * This file owns the command line and the sweep: every combination of
 * --workload x --threads x --theta, and within it every txkv
 * (index, isolation, cc), one LMDB row, and one row per isolation level of
 * each other engine, is a row (n/a where the engine cannot provide the
 * level: it is never run weaker under that name).  A row opens a fresh
 * database, loads it (untimed), starts its threads, lets them warm up,
 * measures for --duration seconds or --txns transactions, stops them, and
 * closes the database, so rows never inherit each other's data or garbage.
 * Workloads live in kvb-workload.c, engines in kvb-txkv.c, kvb-lmdb.c,
 * kvb-rocksdb.c and kvb-sqlite.c, --verify in kvb-verify.c, output in
 * kvb-output.c.  Design and anchors (db_bench, YCSB, DBx1000):
 * man/kv-bench.1; results: bench/RESULTS.md.
 *
 * Exit status: 0, 1 when a row failed, the bank's invariant broke,
 * --verify found an anomaly or an output (stdout, --csv, --json, --plot)
 * could not be written, 2 for a bad command line.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "kvb.h"

#define LMDB_MAX_KEY 511 /* mdb_env_get_maxkeysize() of a default LMDB build */
#define MAX_VALUE    ((unsigned)1 << 24)

static const char *const workload_names[W_COUNT] = {
    "ycsb-a", "ycsb-b", "ycsb-c", "ycsb-d", "ycsb-e",   "ycsb-f", "read",
    "update", "rmw",    "scan",   "bank",   "multiget", "readn"};

const char *bench_workload_name(int w)
{
    return w >= 0 && w < W_COUNT ? workload_names[w] : "?";
}

int bench_workload_scans(int w)
{
    return w == W_YCSB_E || w == W_SCAN;
}

const char *bench_iso_name(int iso)
{
    return iso == ISO_RC ? "rc" : iso == ISO_SI ? "si" : iso == ISO_SER ? "ser" : "?";
}

const char *bench_cc_name(int cc)
{
    return cc == CC_OCC      ? "occ"
           : cc == CC_2PL    ? "2pl"
           : cc == CC_LMDB   ? "lmdb"
           : cc == CC_SQLITE ? "sqlite"
                             : "?";
}

const char *bench_index_name(int idx)
{
    return idx == IDX_HASH ? "hash" : idx == IDX_BTREE ? "btree" : idx == IDX_BOTH ? "both" : "-";
}

static const char *const engine_names[ENG_COUNT] = {"txkv", "lmdb", "rocksdb-txn", "rocksdb-occ",
                                                    "sqlite"};

const char *bench_engine_id_name(int engine)
{
    return engine >= 0 && engine < ENG_COUNT ? engine_names[engine] : "?";
}

const char *bench_engine_label(const struct bench_row *r)
{
    if (r->engine != ENG_TXKV)
        return bench_engine_id_name(r->engine);
    static const char *const labels[4][3] = {
        {"txkv-hash", "txkv-btree", "txkv"},
        {"txkv-hash+commit", "txkv-btree+commit", "txkv+commit"},
        {"txkv-hash+interval", "txkv-btree+interval", "txkv+interval"},
        {"txkv-hash+none", "txkv-btree+none", "txkv+none"},
    };
    int s = r->sync >= BENCH_SYNC_MEM && r->sync <= BENCH_SYNC_NONE ? r->sync : 0;
    return labels[s][r->index == IDX_HASH ? 0 : r->index == IDX_BTREE ? 1 : 2];
}

const struct bench_engine *bench_engine_of(int id)
{
    switch (id) {
    case ENG_TXKV:
        return &bench_engine_txkv;
    case ENG_LMDB:
        return &bench_engine_lmdb;
#ifdef HAVE_ROCKSDB
    case ENG_ROCKSDB_TXN:
        return &bench_engine_rocksdb_txn;
    case ENG_ROCKSDB_OCC:
        return &bench_engine_rocksdb_occ;
#endif
#ifdef HAVE_SQLITE3
    case ENG_SQLITE:
        return &bench_engine_sqlite;
#endif
    default:
        return NULL;
    }
}

const char *bench_engine_package(int id)
{
    return id == ENG_SQLITE ? "libsqlite3-dev" : id == ENG_LMDB ? "liblmdb-dev" : "librocksdb-dev";
}

/* ---- the command line ------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "usage: kv-bench [options]\n"
               "Runs a workload on txkv under each isolation level and concurrency-control\n"
               "scheme, and on LMDB, RocksDB and SQLite, side by side.  Every list option is\n"
               "a comma list; the sweep is their product.  See kv-bench(1).\n"
               "\n"
               "  -w, --workload LIST   ycsb-a..ycsb-f, read, update, rmw, scan, bank,\n"
               "                        multiget, readn, all [ycsb-a]\n"
               "  -e, --engine LIST     txkv, lmdb, rocksdb-txn, rocksdb-occ, sqlite, all\n"
               "                        [txkv,lmdb]\n"
               "  -i, --isolation LIST  rc, si, ser (n/a where an engine lacks one) [rc,si,ser]\n"
               "  -c, --cc LIST         occ, 2pl (txkv) [occ,2pl]\n"
               "  -t, --threads LIST    worker threads [1]\n"
               "  -z, --theta LIST      zipfian skew, 0 (uniform) <= theta < 1 [0]\n"
               "      --index LIST      txkv keyspace indexes: hash, btree, both [both]\n"
               "  -k, --keys N          items loaded before timing (k/m/g suffixes) [1m]\n"
               "      --key-size N      bytes per key, >= 8 [16]\n"
               "      --value-size N    bytes per value, >= 8 [100]\n"
               "  -d, --duration SECS   timed seconds per row [3]\n"
               "  -n, --txns N          instead: this many transactions per row\n"
               "      --warmup SECS     untimed seconds before each row [1]\n"
               "  -s, --seed N          random seed [1]\n"
               "      --ops-per-txn N   keys per rmw, multiget and readn transaction [10]\n"
               "      --batch           rmw reads its keys with one multiget\n"
               "      --lock-timeout MS pessimistic lock waits (txkv 2pl, rocksdb-txn);\n"
               "                        0 waits, deadlocks are detected [0]\n"
               "      --dir DIR         txkv keeps a database (a fresh one per row) in DIR\n"
               "      --sync LIST       txkv rows: mem,commit,interval,none [commit with\n"
               "                        --dir, else mem]; mem rows stay in memory\n"
               "      --verify          check each row's level on a recorded history\n"
               "      --verify-txns N   transactions per verification [2000]\n"
               "      --scan-length N   records per scan (ycsb-e: uniform 1..N) [100]\n"
               "      --update-pass     after each row, rewrite every key once and measure\n"
               "                        the footprint again (CSV pass_bytes_per_key)\n"
               "      --csv FILE        write the rows as CSV\n"
               "      --json FILE       write the rows and the configuration as JSON\n"
               "      --plot DIR        write PNG charts with gnuplot\n"
               "  -h, --help            show this help\n"
               "  -V, --version         show the version\n"
               "\n"
               "The default run is 7 rows (ycsb-a on txkv at 3 levels x 2 schemes, and LMDB),\n"
               "each loading 1m keys and running 1 + 3 s: about a minute, and up to about\n"
               "700 MB of memory (one row's database at a time).  For a quick look try\n"
               "  kv-bench -k 100k -d 1 --warmup 0.2\n");
}

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bad(const char *fmt, ...)
{
    va_list ap;
    fputs("kv-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'kv-bench --help'.\n", stderr);
    exit(2);
}

struct name_value {
    const char *name;
    int value;
};

/*
 * The next item of a comma list at *p into buf: 1, or 0 at the end.  An
 * empty item ("1,,2", a leading or trailing comma) is a usage error, not
 * something to skip.
 */
static int list_next(const char *opt, const char *arg, const char **p, char *buf, size_t len)
{
    if (!*p)
        return 0;
    const char *comma = strchr(*p, ',');
    size_t n = comma ? (size_t)(comma - *p) : strlen(*p);
    if (n == 0)
        bad("%s: empty item in '%s'", opt, arg);
    if (n >= len)
        bad("%s: '%.*s' is too long", opt, (int)n, *p);
    memcpy(buf, *p, n);
    buf[n] = '\0';
    *p = comma ? comma + 1 : NULL;
    return 1;
}

/* Adds value to out[0..*n); a value given twice is an error unless "all" brought it. */
static void names_add(const char *opt, const char *tok, int value, int from_all, int *out, int *n)
{
    for (int i = 0; i < *n; i++) {
        if (out[i] != value)
            continue;
        if (from_all)
            return;
        bad("%s: '%s' given twice", opt, tok);
    }
    if (*n == BENCH_MAX_LIST)
        bad("%s: more than %d values", opt, BENCH_MAX_LIST);
    out[(*n)++] = value;
}

/* Splits a comma list into values from table; "all" adds every distinct value. */
static int parse_names(const char *opt, const char *arg, const struct name_value *table, int *out)
{
    const char *p = *arg ? arg : NULL;
    char tok[64];
    int n = 0;
    while (list_next(opt, arg, &p, tok, sizeof tok)) {
        int all = strcmp(tok, "all") == 0, found = all;
        for (const struct name_value *e = table; e->name && !(found && !all); e++) {
            if (all || strcmp(tok, e->name) == 0) {
                names_add(opt, tok, e->value, all, out, &n);
                found = 1;
            }
        }
        if (!found) {
            char names[256] = "";
            for (const struct name_value *e = table; e->name; e++)
                snprintf(names + strlen(names), sizeof names - strlen(names), " %s", e->name);
            bad("%s: unknown value '%s' (one of:%s, all)", opt, tok, names);
        }
    }
    if (!n)
        bad("%s: empty list", opt);
    return n;
}

/* A count with an optional k/m/g (x1000) suffix. */
static uint64_t parse_count(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        bad("%s: '%s' is not a count", opt, s);
    uint64_t v = strtoull(s, &end, 10), mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1000, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1000000, end++;
    else if (*end == 'g' || *end == 'G')
        mul = 1000000000, end++;
    if (errno || end == s || *end || (v && UINT64_MAX / v < mul))
        bad("%s: '%s' is not a count", opt, s);
    v *= mul;
    if (v < min || v > max)
        bad("%s: %" PRIu64 " is out of range [%" PRIu64 ", %" PRIu64 "]", opt, v, min, max);
    return v;
}

static double parse_real(const char *opt, const char *s, double min, double max, int max_open)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        bad("%s: '%s' is not a number", opt, s);
    if (v < min || v > max || (max_open && v == max))
        bad("%s: %g is out of range [%g, %g%s", opt, v, min, max, max_open ? ")" : "]");
    return v;
}

static void parse_list(const char *opt, const char *arg, int is_real, double min, double max,
                       int max_open, double *reals, unsigned *counts, int *n)
{
    const char *p = *arg ? arg : NULL;
    char tok[64];
    *n = 0;
    while (list_next(opt, arg, &p, tok, sizeof tok)) {
        if (*n == BENCH_MAX_LIST)
            bad("%s: more than %d values", opt, BENCH_MAX_LIST);
        double v = is_real ? parse_real(opt, tok, min, max, max_open)
                           : (double)parse_count(opt, tok, (uint64_t)min, (uint64_t)max);
        for (int i = 0; i < *n; i++)
            if (is_real ? reals[i] == v : counts[i] == (unsigned)v)
                bad("%s: %g given twice", opt, v);
        if (is_real)
            reals[(*n)++] = v;
        else
            counts[(*n)++] = (unsigned)v;
    }
    if (!*n)
        bad("%s: empty list", opt);
}

static void parse_args(int argc, char **argv, struct bench_config *cfg)
{
    static const struct name_value workloads[] = {{"ycsb-a", W_YCSB_A}, {"ycsb-b", W_YCSB_B},
                                                  {"ycsb-c", W_YCSB_C}, {"ycsb-d", W_YCSB_D},
                                                  {"ycsb-e", W_YCSB_E}, {"ycsb-f", W_YCSB_F},
                                                  {"read", W_READ},     {"update", W_UPDATE},
                                                  {"rmw", W_RMW},       {"scan", W_SCAN},
                                                  {"bank", W_BANK},     {"multiget", W_MULTIGET},
                                                  {"readn", W_READN},   {NULL, 0}};
    static const struct name_value engines[] = {{"txkv", ENG_TXKV},
                                                {"lmdb", ENG_LMDB},
                                                {"rocksdb-txn", ENG_ROCKSDB_TXN},
                                                {"rocksdb-occ", ENG_ROCKSDB_OCC},
                                                {"sqlite", ENG_SQLITE},
                                                {NULL, 0}};
    static const struct name_value isolations[] = {{"rc", ISO_RC},
                                                   {"si", ISO_SI},
                                                   {"ser", ISO_SER},
                                                   {"read-committed", ISO_RC},
                                                   {"snapshot", ISO_SI},
                                                   {"serializable", ISO_SER},
                                                   {NULL, 0}};
    static const struct name_value ccs[] = {{"occ", CC_OCC},
                                            {"2pl", CC_2PL},
                                            {"optimistic", CC_OCC},
                                            {"pessimistic", CC_2PL},
                                            {NULL, 0}};
    static const struct name_value indexes[] = {
        {"hash", IDX_HASH}, {"btree", IDX_BTREE}, {"both", IDX_BOTH}, {NULL, 0}};
    enum {
        O_INDEX = 256,
        O_KEY_SIZE,
        O_VALUE_SIZE,
        O_WARMUP,
        O_OPS,
        O_SCAN,
        O_CSV,
        O_JSON,
        O_PLOT,
        O_LOCK_TIMEOUT,
        O_VERIFY,
        O_VERIFY_TXNS,
        O_BREAK_VALIDATION,
        O_UPDATE_PASS,
        O_BATCH,
        O_DIR,
        O_SYNC
    };
    static const struct option opts[] = {
        {"workload", required_argument, NULL, 'w'},
        {"engine", required_argument, NULL, 'e'},
        {"isolation", required_argument, NULL, 'i'},
        {"cc", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"theta", required_argument, NULL, 'z'},
        {"index", required_argument, NULL, O_INDEX},
        {"keys", required_argument, NULL, 'k'},
        {"key-size", required_argument, NULL, O_KEY_SIZE},
        {"value-size", required_argument, NULL, O_VALUE_SIZE},
        {"duration", required_argument, NULL, 'd'},
        {"txns", required_argument, NULL, 'n'},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"seed", required_argument, NULL, 's'},
        {"ops-per-txn", required_argument, NULL, O_OPS},
        {"scan-length", required_argument, NULL, O_SCAN},
        {"csv", required_argument, NULL, O_CSV},
        {"json", required_argument, NULL, O_JSON},
        {"plot", required_argument, NULL, O_PLOT},
        {"lock-timeout", required_argument, NULL, O_LOCK_TIMEOUT},
        {"verify", no_argument, NULL, O_VERIFY},
        {"verify-txns", required_argument, NULL, O_VERIFY_TXNS},
        {"update-pass", no_argument, NULL, O_UPDATE_PASS},
        {"batch", no_argument, NULL, O_BATCH},
        {"dir", required_argument, NULL, O_DIR},
        {"sync", required_argument, NULL, O_SYNC},
#ifdef KVB_TEST_HOOKS
        {"break-validation", no_argument, NULL, O_BREAK_VALIDATION},
#endif
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    static const struct name_value syncs[] = {{"mem", BENCH_SYNC_MEM},
                                              {"commit", BENCH_SYNC_COMMIT},
                                              {"interval", BENCH_SYNC_INTERVAL},
                                              {"none", BENCH_SYNC_NONE},
                                              {NULL, 0}};
    int c, have_duration = 0, uses_lmdb = 0, have_sync = 0;

    memset(cfg, 0, sizeof *cfg);
    cfg->workloads[cfg->nworkloads++] = W_YCSB_A;
    cfg->engines[cfg->nengines++] = ENG_TXKV;
    cfg->engines[cfg->nengines++] = ENG_LMDB;
    for (int i = ISO_RC; i <= ISO_SER; i++)
        cfg->isolations[cfg->nisolations++] = i;
    cfg->ccs[cfg->nccs++] = CC_OCC;
    cfg->ccs[cfg->nccs++] = CC_2PL;
    cfg->indexes[cfg->nindexes++] = IDX_BOTH;
    cfg->threads[cfg->nthreads++] = 1;
    cfg->thetas[cfg->nthetas++] = 0;
    cfg->keys = 1000000;
    cfg->key_size = 16;
    cfg->value_size = 100;
    cfg->duration = 3;
    cfg->warmup = 1;
    cfg->seed = 1;
    cfg->ops_per_txn = 10;
    cfg->scan_length = 100;
    cfg->verify_txns = 2000;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":w:e:i:c:t:z:k:d:n:s:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'w':
            cfg->nworkloads = parse_names("--workload", optarg, workloads, cfg->workloads);
            break;
        case 'e':
            cfg->nengines = parse_names("--engine", optarg, engines, cfg->engines);
            break;
        case 'i':
            cfg->nisolations = parse_names("--isolation", optarg, isolations, cfg->isolations);
            break;
        case 'c':
            cfg->nccs = parse_names("--cc", optarg, ccs, cfg->ccs);
            break;
        case O_INDEX:
            cfg->nindexes = parse_names("--index", optarg, indexes, cfg->indexes);
            break;
        case 't':
            parse_list("--threads", optarg, 0, 1, BENCH_MAX_THREADS, 0, NULL, cfg->threads,
                       &cfg->nthreads);
            break;
        case 'z':
            parse_list("--theta", optarg, 1, 0, 1, 1, cfg->thetas, NULL, &cfg->nthetas);
            break;
        case 'k':
            cfg->keys = parse_count("--keys", optarg, 1, (uint64_t)1 << 40);
            break;
        case O_KEY_SIZE:
            cfg->key_size = (unsigned)parse_count("--key-size", optarg, 8, 65535);
            break;
        case O_VALUE_SIZE:
            cfg->value_size = (unsigned)parse_count("--value-size", optarg, 8, MAX_VALUE);
            break;
        case 'd':
            cfg->duration = parse_real("--duration", optarg, 0.001, 1e6, 0);
            have_duration = 1;
            break;
        case 'n':
            cfg->txns = parse_count("--txns", optarg, 1, UINT64_MAX);
            break;
        case O_WARMUP:
            cfg->warmup = parse_real("--warmup", optarg, 0, 1e6, 0);
            break;
        case 's':
            cfg->seed = parse_count("--seed", optarg, 0, UINT64_MAX);
            break;
        case O_OPS:
            cfg->ops_per_txn = (unsigned)parse_count("--ops-per-txn", optarg, 1, BENCH_MAX_OPS);
            break;
        case O_SCAN:
            cfg->scan_length = (unsigned)parse_count("--scan-length", optarg, 1, BENCH_MAX_OPS);
            break;
        case O_CSV:
            cfg->csv_path = optarg;
            break;
        case O_JSON:
            cfg->json_path = optarg;
            break;
        case O_PLOT:
            cfg->plot_dir = optarg;
            break;
        case O_LOCK_TIMEOUT:
            cfg->lock_timeout_us = 1000 * parse_count("--lock-timeout", optarg, 0, 86400000);
            break;
        case O_VERIFY:
            cfg->verify = 1;
            break;
        case O_DIR:
            cfg->dir = optarg;
            break;
        case O_SYNC:
            cfg->nsyncs = parse_names("--sync", optarg, syncs, cfg->syncs);
            have_sync = 1;
            break;
        case O_VERIFY_TXNS:
            cfg->verify_txns = parse_count("--verify-txns", optarg, 10, 10000000);
            break;
        case O_BATCH:
            cfg->batch = 1;
            break;
        case O_BREAK_VALIDATION:
            cfg->break_validation = 1;
            break;
        case O_UPDATE_PASS:
            cfg->update_pass = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("kv-bench (txkv) %s\n", PACKAGE_VERSION);
            for (int e = 0; e < ENG_COUNT; e++) {
                const struct bench_engine *eng = bench_engine_of(e);
                if (eng)
                    printf("engine %s: %s\n", engine_names[e], eng->version());
                else
                    printf("engine %s: not built (install %s and re-run configure)\n",
                           engine_names[e], bench_engine_package(e));
            }
            printf("allocator: %s\n", bench_allocator());
            printf("%s\n", mdb_version(NULL, NULL, NULL));
            exit(0);
        case ':':
            bad("option '%s' needs a value", argv[optind - 1]);
        default:
            bad("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        bad("unexpected argument '%s'", argv[optind]);
    if (have_duration && cfg->txns)
        bad("--duration and --txns exclude each other");
    if (!have_sync) /* --dir alone: durable rows with the default policy */
        cfg->syncs[cfg->nsyncs++] = cfg->dir ? BENCH_SYNC_COMMIT : BENCH_SYNC_MEM;
    for (int i = 0; i < cfg->nsyncs; i++)
        if (cfg->syncs[i] != BENCH_SYNC_MEM && !cfg->dir)
            bad("--sync: commit, interval and none need --dir");
    for (int i = 0; i < cfg->nengines; i++)
        uses_lmdb |= cfg->engines[i] == ENG_LMDB;
    if (uses_lmdb && cfg->key_size > LMDB_MAX_KEY)
        bad("--key-size: LMDB takes keys of at most %d bytes", LMDB_MAX_KEY);
    for (int i = 0; i < cfg->nworkloads; i++) {
        if (cfg->workloads[i] == W_BANK && cfg->keys < 2)
            bad("--keys: bank needs two accounts or more");
        if ((cfg->workloads[i] == W_RMW || cfg->workloads[i] == W_MULTIGET ||
             cfg->workloads[i] == W_READN) &&
            cfg->keys < cfg->ops_per_txn)
            bad("--keys: %s needs at least --ops-per-txn (%u) keys",
                bench_workload_name(cfg->workloads[i]), cfg->ops_per_txn);
    }
    cfg->progress = isatty(STDERR_FILENO);
}

/* ---- one row ------------------------------------------------------------------------- */

static void progress(const struct bench_config *cfg, unsigned no, unsigned n,
                     const struct bench_row *r, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void progress(const struct bench_config *cfg, unsigned no, unsigned n,
                     const struct bench_row *r, const char *fmt, ...)
{
    va_list ap;
    if (!cfg->progress)
        return;
    fprintf(stderr, "\r\033[K[%u/%u] %s %s %s/%s threads=%u theta=%g: ", no, n,
            bench_engine_label(r), bench_workload_name(r->workload), bench_iso_name(r->isolation),
            bench_cc_name(r->cc), r->threads, r->theta);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

static void progress_clear(const struct bench_config *cfg)
{
    if (cfg->progress) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}

/* Sleeps `secs`, or less if a thread stops the row; shows the time gone by. */
static void wait_phase(struct bench_shared *sh, double secs, const char *what, unsigned no,
                       unsigned n, const struct bench_row *r)
{
    uint64_t start = bench_now_ns(), end = start + (uint64_t)(secs * 1e9), now;
    uint64_t shown = 0;
    while ((now = bench_now_ns()) < end && atomic_load(&sh->phase) != PHASE_STOP) {
        uint64_t left = end - now, step = left < 100000000 ? left : 100000000;
        struct timespec ts = {0, (long)step};
        if (now - shown >= 500000000) {
            progress(sh->cfg, no, n, r, "%s %.1f/%gs", what, (double)(now - start) / 1e9, secs);
            shown = now;
        }
        nanosleep(&ts, NULL);
    }
}

static void *worker_main(void *arg)
{
    struct bench_worker *w = arg;
    struct bench_shared *sh = w->sh;
    char err[200];
    int ok = sh->eng->thread_open(sh->db, &w->et, err, sizeof err) == BENCH_OK;
    if (!ok)
        bench_fail(sh, 0, "%s", err);
    atomic_fetch_add(&sh->ready, 1);
    while (!atomic_load(&sh->go)) {
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    if (ok) {
        bench_worker_run(w);
        sh->eng->thread_close(w->et);
    }
    return NULL;
}

static void row_note(struct bench_row *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void row_note(struct bench_row *r, const char *fmt, ...)
{
    size_t len = strlen(r->note);
    va_list ap;
    if (len && len + 1 < sizeof r->note)
        r->note[len++] = ' ';
    va_start(ap, fmt);
    vsnprintf(r->note + len, sizeof r->note - len, fmt, ap);
    va_end(ap);
}

/* Moves CAS-style from one phase to the next, unless a failure already stopped the row. */
static void set_phase(struct bench_shared *sh, int from, int to)
{
    int expect = from;
    atomic_compare_exchange_strong(&sh->phase, &expect, to);
}

static void run_row(const struct bench_config *cfg, struct bench_row *row, unsigned no,
                    unsigned nrows)
{
    const struct bench_engine *eng = bench_engine_of(row->engine);
    struct bench_shared *sh = calloc(1, sizeof *sh);
    unsigned nw = row->threads + (row->workload == W_BANK), started = 0;
    struct bench_worker *ws = NULL;
    pthread_t *tids = NULL;
    void *db = NULL, *mt = NULL;
    struct bench_hist *hist = NULL;
    char err[320];
    uint64_t t0, t1, bytes = 0, nkeys = 0, rss0 = bench_rss_bytes();
    int rc;

    row->status = ROW_FAILED;
    row->load_bytes_per_key = row->rss_load_per_key = -1;
    row->pass_bytes_per_key = row->rss_pass_per_key = -1;
    if (!eng) {
        row->status = ROW_UNSUPPORTED;
        snprintf(row->note, sizeof row->note,
                 "kv-bench was built without %s (install %s and re-run configure)",
                 bench_engine_id_name(row->engine), bench_engine_package(row->engine));
        goto out;
    }
    if (!sh || !(ws = calloc(nw, sizeof *ws)) || !(tids = calloc(nw, sizeof *tids)) ||
        !(hist = calloc(1, sizeof *hist))) {
        snprintf(row->note, sizeof row->note, "out of memory");
        goto out;
    }
    sh->cfg = cfg;
    sh->eng = eng;
    sh->workload = row->workload;
    sh->isolation = row->isolation;
    sh->threads = row->threads;
    sh->theta = row->theta;
    sh->items = cfg->keys;
    atomic_init(&sh->phase, PHASE_WARMUP);

    progress(cfg, no, nrows, row, "opening");
    if ((rc = eng->open(cfg, row, &db, err, sizeof err)) != BENCH_OK) {
        row->status = rc == BENCH_NA ? ROW_NA : rc == BENCH_NOTSUP ? ROW_UNSUPPORTED : ROW_FAILED;
        snprintf(row->note, sizeof row->note, "%s", err);
        goto out;
    }
    sh->db = db;
    if (eng->thread_open(db, &mt, err, sizeof err) != BENCH_OK) {
        snprintf(row->note, sizeof row->note, "%s", err);
        goto out;
    }
    if ((rc = bench_probe(sh, mt)) != BENCH_OK) {
        row->status = rc == BENCH_NOTSUP ? ROW_UNSUPPORTED : ROW_FAILED;
        snprintf(row->note, sizeof row->note, "%s", sh->failmsg);
        goto out;
    }
    if (row->theta > 0)
        bench_zipf_init(&sh->zipf, sh->items, row->theta);
    progress(cfg, no, nrows, row, "loading %" PRIu64 " keys", sh->items);
    t0 = bench_now_ns();
    if (bench_load(sh, mt) != BENCH_OK) {
        row->status = atomic_load(&sh->unsupported) ? ROW_UNSUPPORTED : ROW_FAILED;
        snprintf(row->note, sizeof row->note, "%s", sh->failmsg);
        goto out;
    }
    if (eng->loaded && eng->loaded(db, err, sizeof err) != BENCH_OK) {
        snprintf(row->note, sizeof row->note, "%s", err);
        goto out;
    }
    row->load_seconds = (double)(bench_now_ns() - t0) / 1e9;
    if (eng->footprint(db, &bytes, &nkeys, err, sizeof err) != BENCH_OK) {
        snprintf(row->note, sizeof row->note, "%s", err);
        goto out;
    }
    row->load_bytes_per_key = (double)bytes / (double)(nkeys ? nkeys : sh->items);
    if (rss0)
        row->rss_load_per_key = ((double)bench_rss_bytes() - (double)rss0) / (double)sh->items;

    for (unsigned i = 0; i < nw; i++) {
        if (bench_worker_init(&ws[i], sh, i, i == row->threads) != BENCH_OK) {
            snprintf(row->note, sizeof row->note, "out of memory");
            nw = i;
            goto out;
        }
    }
    for (; started < nw; started++) {
        if ((errno = pthread_create(&tids[started], NULL, worker_main, &ws[started])) != 0) {
            bench_fail(sh, 0, "pthread_create: %s", strerror(errno));
            break;
        }
    }
    while (atomic_load(&sh->ready) < started) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    if (cfg->warmup > 0) {
        atomic_store(&sh->go, 1);
        wait_phase(sh, cfg->warmup, "warming up", no, nrows, row);
        t0 = bench_now_ns();
        set_phase(sh, PHASE_WARMUP, PHASE_RUN);
    } else { /* no transaction may start in a warm-up: --txns runs are then deterministic */
        set_phase(sh, PHASE_WARMUP, PHASE_RUN);
        t0 = bench_now_ns();
        atomic_store(&sh->go, 1);
    }
    progress(cfg, no, nrows, row, "running");
    if (cfg->txns) {
        for (unsigned i = 0; i < started && i < row->threads; i++)
            pthread_join(tids[i], NULL);
        t1 = bench_now_ns();
        set_phase(sh, PHASE_RUN, PHASE_STOP);
        for (unsigned i = row->threads; i < started; i++)
            pthread_join(tids[i], NULL);
    } else {
        wait_phase(sh, cfg->duration, "running", no, nrows, row);
        t1 = bench_now_ns();
        set_phase(sh, PHASE_RUN, PHASE_STOP);
        for (unsigned i = 0; i < started; i++)
            pthread_join(tids[i], NULL);
    }
    started = 0;

    row->seconds = (double)(t1 - t0) / 1e9;
    for (unsigned i = 0; i < nw; i++) {
        struct bench_worker *w = &ws[i];
        row->checksum += w->fold;
        if (w->auditor) {
            row->audits += w->audits;
            row->audit_skews += w->audit_skews;
            continue;
        }
        row->txns += w->commits;
        row->aborts += w->aborts;
        row->ops += w->ops;
        row->notfound += w->notfound;
        bench_hist_merge(hist, &w->hist);
    }
    if (atomic_load(&sh->failed)) {
        row->status = atomic_load(&sh->unsupported) ? ROW_UNSUPPORTED : ROW_FAILED;
        snprintf(row->note, sizeof row->note, "%s", sh->failmsg);
        goto out;
    }
    if (row->workload == W_BANK && bench_final_audit(sh, mt) != BENCH_OK) {
        snprintf(row->note, sizeof row->note, "%s", sh->failmsg);
        goto out;
    }
    if (atomic_load(&sh->violations)) {
        snprintf(row->note, sizeof row->note, "BANK INVARIANT VIOLATED (%" PRIu64 "x): %s",
                 (uint64_t)atomic_load(&sh->violations), sh->violation);
        goto out;
    }
    if (eng->footprint(db, &bytes, &nkeys, err, sizeof err) != BENCH_OK) {
        snprintf(row->note, sizeof row->note, "%s", err);
        goto out;
    }
    row->status = ROW_OK;
    row->txn_per_sec = row->seconds > 0 ? (double)row->txns / row->seconds : 0;
    row->ops_per_sec = row->seconds > 0 ? (double)row->ops / row->seconds : 0;
    row->abort_rate =
        row->txns + row->aborts ? (double)row->aborts / (double)(row->txns + row->aborts) : 0;
    row->p50_us = bench_hist_quantile(hist, 0.5) / 1000;
    row->p99_us = bench_hist_quantile(hist, 0.99) / 1000;
    row->p999_us = bench_hist_quantile(hist, 0.999) / 1000;
    row->bytes_per_key = (double)bytes / (double)(nkeys ? nkeys : sh->items);
    if (cfg->update_pass) {
        progress(cfg, no, nrows, row, "update pass over %" PRIu64 " keys", sh->items);
        if (bench_update_pass(sh, mt) != BENCH_OK ||
            bench_settled_footprint(eng, db, &bytes, &nkeys, err, sizeof err) != BENCH_OK) {
            row->status = ROW_FAILED;
            snprintf(row->note, sizeof row->note, "%s",
                     atomic_load(&sh->failed) ? sh->failmsg : err);
            goto out;
        }
        row->pass_bytes_per_key = (double)bytes / (double)(nkeys ? nkeys : sh->items);
        if (rss0)
            row->rss_pass_per_key = ((double)bench_rss_bytes() - (double)rss0) / (double)sh->items;
    }
    if (row->notfound)
        row_note(row, "notfound=%" PRIu64, row->notfound);
    if (row->workload == W_BANK) {
        row_note(row, "audits=%" PRIu64, row->audits);
        if (row->audit_skews)
            row_note(row, "rc-read-skew=%" PRIu64 "(allowed)", row->audit_skews);
    }
    if (row->workload == W_MULTIGET && !eng->multiget)
        row_note(row, "multiget=repeated-get");
    if (row->workload == W_RMW && cfg->batch)
        row_note(row, "batch=%s", eng->multiget ? "multiget" : "repeated-get");
    if (eng->note) {
        char buf[120];
        eng->note(db, buf, sizeof buf);
        row_note(row, "%s", buf);
    }
out:
    if (started) { /* a thread failed to start: the others see PHASE_STOP */
        atomic_store(&sh->go, 1);
        for (unsigned i = 0; i < started; i++)
            pthread_join(tids[i], NULL);
    }
    for (unsigned i = 0; ws && i < nw; i++)
        bench_worker_free(&ws[i]);
    if (mt)
        eng->thread_close(mt);
    if (db)
        eng->close(db);
    free(hist);
    free(tids);
    free(ws);
    free(sh);
    if (cfg->verify && row->status == ROW_OK) {
        progress(cfg, no, nrows, row, "verifying");
        bench_verify(cfg, eng, row);
    }
    progress_clear(cfg);
}

/* ---- the sweep ------------------------------------------------------------------------- */

static unsigned build_rows(const struct bench_config *cfg, struct bench_row *rows)
{
    unsigned n = 0;
    for (int w = 0; w < cfg->nworkloads; w++)
        for (int t = 0; t < cfg->nthreads; t++)
            for (int z = 0; z < cfg->nthetas; z++)
                for (int e = 0; e < cfg->nengines; e++) {
                    struct bench_row base = {.engine = cfg->engines[e],
                                             .workload = cfg->workloads[w],
                                             .threads = cfg->threads[t],
                                             .theta = cfg->thetas[z]};
                    if (base.engine == ENG_LMDB) {
                        base.isolation = ISO_SER;
                        base.cc = CC_LMDB;
                        base.index = IDX_NONE;
                        if (rows)
                            rows[n] = base;
                        n++;
                        continue;
                    }
                    if (base.engine != ENG_TXKV) { /* one scheme: a row per level */
                        base.index = IDX_NONE;
                        base.cc = base.engine == ENG_ROCKSDB_TXN   ? CC_2PL
                                  : base.engine == ENG_ROCKSDB_OCC ? CC_OCC
                                                                   : CC_SQLITE;
                        for (int i = 0; i < cfg->nisolations; i++) {
                            base.isolation = cfg->isolations[i];
                            if (rows)
                                rows[n] = base;
                            n++;
                        }
                        continue;
                    }
                    for (int x = 0; x < cfg->nindexes; x++)
                        for (int i = 0; i < cfg->nisolations; i++)
                            for (int c = 0; c < cfg->nccs; c++)
                                for (int y = 0; y < cfg->nsyncs; y++) {
                                    base.index = cfg->indexes[x];
                                    base.isolation = cfg->isolations[i];
                                    base.cc = cfg->ccs[c];
                                    base.sync = cfg->syncs[y];
                                    if (rows)
                                        rows[n] = base;
                                    n++;
                                }
                }
    return n;
}

static void on_signal(int sig)
{
    bench_lmdb_emergency_cleanup();
    bench_scratch_emergency_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* 1 (and a message) if the table could not be written to stdout: a full disk, a closed pipe. */
static int stdout_failed(void)
{
    int e = bench_out_stdout_errno();
    if (e)
        fprintf(stderr, "kv-bench: cannot write to standard output: %s\n", strerror(e));
    return e != 0;
}

int main(int argc, char **argv)
{
    struct bench_config cfg;
    struct bench_row *rows;
    unsigned nrows, failed = 0, unsupported = 0, na = 0, unverified = 0;

    parse_args(argc, argv, &cfg);
    nrows = build_rows(&cfg, NULL);
    if (!(rows = calloc(nrows, sizeof *rows))) {
        fprintf(stderr, "kv-bench: out of memory\n");
        return 1;
    }
    build_rows(&cfg, rows);
    if (bench_out_open(&cfg) != 0)
        return 2;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGPIPE, on_signal); /* `kv-bench | head` must not leave an LMDB directory behind */

    bench_out_header(&cfg, nrows);
    for (unsigned i = 0; i < nrows; i++) {
        run_row(&cfg, &rows[i], i + 1, nrows);
        bench_out_row(&cfg, &rows[i]);
        failed += rows[i].status == ROW_FAILED;
        unsupported += rows[i].status == ROW_UNSUPPORTED;
        na += rows[i].status == ROW_NA;
        unverified +=
            rows[i].verify_status == VERIFY_ANOMALY || rows[i].verify_status == VERIFY_ERROR;
    }
    int out_failed = bench_out_finish(&cfg, rows, nrows) != 0;
    if (unsupported)
        fprintf(stderr, "kv-bench: %u row%s unsupported (skipped; the notes say why)\n",
                unsupported, unsupported == 1 ? "" : "s");
    if (na)
        fprintf(stderr, "kv-bench: %u row%s n/a (the engine lacks the isolation level)\n", na,
                na == 1 ? "" : "s");
    if (failed)
        fprintf(stderr, "kv-bench: %u row%s FAILED\n", failed, failed == 1 ? "" : "s");
    if (unverified)
        fprintf(stderr, "kv-bench: --verify: %u row%s NOT VERIFIED\n", unverified,
                unverified == 1 ? "" : "s");
    if (out_failed)
        fprintf(stderr, "kv-bench: an output (--csv, --json or --plot) was not written; "
                        "the message above says why\n");
    if (stdout_failed())
        out_failed = 1;
    for (unsigned i = 0; i < nrows; i++)
        free(rows[i].verify_detail);
    free(rows);
    return failed || unverified || out_failed ? 1 : 0;
}
