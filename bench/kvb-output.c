/*
 * kvb-output.c - kv-bench's results: the table on stdout, the CSV and JSON
 * files, and the gnuplot charts.
 *
 * The table and the CSV are written row by row as rows finish, so a long
 * sweep cut short keeps what it measured; JSON and charts need every row
 * and are written at the end.  Rows that did not run (unsupported: a scheme
 * this txkv build lacks, a scan on a hash-only keyspace, an engine this
 * kv-bench was built without; n/a: a level the engine cannot provide)
 * appear in the table and the JSON with their reason, never in the CSV,
 * whose every line is a measurement.  The table's header states how each
 * engine in the run provides each level (its isolation mapping); every
 * CSV/JSON row names its engine's version.  Charts are a gnuplot script,
 * DIR/kv-bench.gp, whose paths are relative to DIR, run there with
 * posix_spawnp; a missing gnuplot is reported on stderr and is not an error
 * (the script is still written, to be run later).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvb.h"

extern char **environ;

static FILE *csv_file;
static int stdout_errno; /* the first failed write of the table */

/* Flushes the table, remembering why the first flush that failed did. */
static void flush_stdout(void)
{
    errno = 0;
    if (fflush(stdout) == EOF && !stdout_errno)
        stdout_errno = errno ? errno : EIO;
}

int bench_out_stdout_errno(void)
{
    flush_stdout();
    return stdout_errno ? stdout_errno : ferror(stdout) ? EIO : 0;
}
static int table_group = -1; /* the (workload, threads, theta) of the last table row */

static const char csv_header[] = "engine,workload,isolation,cc,threads,keys,value_size,theta,txns,"
                                 "txn_per_sec,ops_per_sec,abort_rate,p50_us,p99_us,p999_us,"
                                 "bytes_per_key,engine_version,load_bytes_per_key,"
                                 "rss_load_per_key,pass_bytes_per_key,rss_pass_per_key";

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        errno = ENOTDIR;
    }
    return -1;
}

int bench_out_open(const struct bench_config *cfg)
{
    if (cfg->csv_path) {
        if (!(csv_file = fopen(cfg->csv_path, "w"))) {
            fprintf(stderr, "kv-bench: --csv %s: %s\n", cfg->csv_path, strerror(errno));
            return -1;
        }
        fprintf(csv_file, "%s\n", csv_header);
        fflush(csv_file);
    }
    if (cfg->json_path) { /* fail now, not after an hour of measuring */
        FILE *f = fopen(cfg->json_path, "w");
        if (!f) {
            fprintf(stderr, "kv-bench: --json %s: %s\n", cfg->json_path, strerror(errno));
            return -1;
        }
        fclose(f);
    }
    if (cfg->plot_dir && make_dir(cfg->plot_dir) != 0) {
        fprintf(stderr, "kv-bench: --plot %s: %s\n", cfg->plot_dir, strerror(errno));
        return -1;
    }
    return 0;
}

void bench_out_header(const struct bench_config *cfg, unsigned nrows)
{
    printf("# kv-bench %s: %u rows; keys=%" PRIu64 " key_size=%u value_size=%u ", PACKAGE_VERSION,
           nrows, cfg->keys, cfg->key_size, cfg->value_size);
    if (cfg->txns)
        printf("txns=%" PRIu64, cfg->txns);
    else
        printf("duration=%gs", cfg->duration);
    printf(" warmup=%gs seed=%" PRIu64 " ops_per_txn=%u scan_length=%u%s\n", cfg->warmup, cfg->seed,
           cfg->ops_per_txn, cfg->scan_length, cfg->batch ? " batch" : "");
    printf("# allocator: %s\n", bench_allocator());
    /* the isolation mapping of every engine and level in the run */
    for (int e = 0; e < cfg->nengines; e++) {
        const struct bench_engine *eng = bench_engine_of(cfg->engines[e]);
        if (!eng) {
            printf("# %s: not built (install %s and re-run configure)\n",
                   bench_engine_id_name(cfg->engines[e]), bench_engine_package(cfg->engines[e]));
            continue;
        }
        printf("# %s %s:", eng->name, eng->version());
        if (cfg->engines[e] == ENG_LMDB) {
            printf(" ser = %s\n", eng->mapping(ISO_SER, CC_LMDB));
            continue;
        }
        for (int i = 0; i < cfg->nisolations; i++)
            printf("%s %s = %s", i ? ";" : "", bench_iso_name(cfg->isolations[i]),
                   eng->mapping(cfg->isolations[i], 0));
        putchar('\n');
    }
    if (cfg->verify)
        printf("# --verify: after each row, %" PRIu64 " transactions of read-modify-writes on 6 "
               "keys, their history checked at the row's level\n",
               cfg->verify_txns);
    printf("%-11s %-8s %-3s %-4s %3s %5s %12s %12s %7s %9s %9s %9s %7s  %s\n", "engine", "workload",
           "iso", "cc", "thr", "theta", "txn/s", "ops/s", "abort%", "p50us", "p99us", "p99.9us",
           "B/key", "notes");
    flush_stdout();
}

static int row_group(const struct bench_row *r)
{
    return (int)(r->workload * 1000003u + r->threads * 1009u + (unsigned)(r->theta * 1000));
}

void bench_out_row(const struct bench_config *cfg, const struct bench_row *r)
{
    if (table_group != -1 && table_group != row_group(r))
        putchar('\n');
    table_group = row_group(r);
    printf("%-11s %-8s %-3s %-4s %3u %5g ", bench_engine_label(r), bench_workload_name(r->workload),
           bench_iso_name(r->isolation), bench_cc_name(r->cc), r->threads, r->theta);
    if (r->status == ROW_OK) {
        printf("%12.0f %12.0f %7.3f %9.2f %9.2f %9.2f %7.1f  %s", r->txn_per_sec, r->ops_per_sec,
               100 * r->abort_rate, r->p50_us, r->p99_us, r->p999_us, r->bytes_per_key, r->note);
        if (r->verify_status == VERIFY_OK)
            printf("%sverified: OK", r->note[0] ? " " : "");
        else if (r->verify_status != VERIFY_NONE)
            printf("%sverified: %s %s", r->note[0] ? " " : "",
                   r->verify_status == VERIFY_ANOMALY ? "ANOMALY" : "ERROR", r->verify_msg);
        putchar('\n');
        if (r->verify_detail) /* the checker's lines: the cycle and its transactions */
            fputs(r->verify_detail, stdout);
    } else {
        printf("%12s %12s %7s %9s %9s %9s %7s  %s: %s\n", "-", "-", "-", "-", "-", "-", "-",
               r->status == ROW_UNSUPPORTED ? "unsupported"
               : r->status == ROW_NA        ? "n/a"
                                            : "FAILED",
               r->note);
    }
    flush_stdout();

    if (csv_file && r->status == ROW_OK) {
        fprintf(
            csv_file,
            "%s,%s,%s,%s,%u,%" PRIu64 ",%u,%g,%" PRIu64 ",%.1f,%.1f,%.6f,%.3f,%.3f,%.3f,%.1f,%s",
            bench_engine_label(r), bench_workload_name(r->workload), bench_iso_name(r->isolation),
            bench_cc_name(r->cc), r->threads, cfg->keys, cfg->value_size, r->theta, r->txns,
            r->txn_per_sec, r->ops_per_sec, r->abort_rate, r->p50_us, r->p99_us, r->p999_us,
            r->bytes_per_key, bench_engine_of(r->engine)->version());
        /* the memory figures, empty when not measured (kvb-mem.c) */
        const double mem[] = {r->load_bytes_per_key, r->rss_load_per_key, r->pass_bytes_per_key,
                              r->rss_pass_per_key};
        for (size_t i = 0; i < sizeof mem / sizeof mem[0]; i++) {
            if (mem[i] >= 0)
                fprintf(csv_file, ",%.1f", mem[i]);
            else
                fputc(',', csv_file);
        }
        fputc('\n', csv_file);
        fflush(csv_file);
    }
}

/* ---- JSON ------------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* A measurement at full precision: %.17g reads back as the same double. */
static void json_num(FILE *f, const char *name, double v, int ok)
{
    if (ok)
        fprintf(f, ", \"%s\": %.17g", name, v);
    else
        fprintf(f, ", \"%s\": null", name);
}

/* A count: an exact integer, never in floating point. */
static void json_count(FILE *f, const char *name, uint64_t v, int ok)
{
    if (ok)
        fprintf(f, ", \"%s\": %" PRIu64, name, v);
    else
        fprintf(f, ", \"%s\": null", name);
}

static int write_json(const struct bench_config *cfg, const struct bench_row *rows, unsigned n)
{
    FILE *f = fopen(cfg->json_path, "w");
    if (!f) {
        fprintf(stderr, "kv-bench: --json %s: %s\n", cfg->json_path, strerror(errno));
        return -1;
    }
    fprintf(f, "{\n  \"program\": \"kv-bench\", \"version\": \"%s\", \"lmdb_version\": ",
            PACKAGE_VERSION);
    json_str(f, mdb_version(NULL, NULL, NULL));
    fprintf(f, ", \"allocator\": ");
    json_str(f, bench_allocator());
    fprintf(f,
            ",\n  \"config\": {\"keys\": %" PRIu64 ", \"key_size\": %u, \"value_size\": %u, "
            "\"duration\": %g, \"txns\": %" PRIu64 ", \"warmup\": %g, \"seed\": %" PRIu64
            ", \"ops_per_txn\": %u, \"scan_length\": %u, \"batch\": %s, \"zipfian\": \"Gray et al. "
            "1994 "
            "(YCSB), ranks unscrambled, items spread over the key order by a 64-bit bijection\"},\n"
            "  \"rows\": [",
            cfg->keys, cfg->key_size, cfg->value_size, cfg->txns ? 0 : cfg->duration, cfg->txns,
            cfg->warmup, cfg->seed, cfg->ops_per_txn, cfg->scan_length,
            cfg->batch ? "true" : "false");
    for (unsigned i = 0; i < n; i++) {
        const struct bench_row *r = &rows[i];
        int ok = r->status == ROW_OK;
        fprintf(f, "%s\n    {\"engine\": ", i ? "," : "");
        json_str(f, bench_engine_label(r));
        fprintf(f,
                ", \"index\": \"%s\", \"workload\": \"%s\", \"isolation\": \"%s\", "
                "\"cc\": \"%s\", \"threads\": %u, \"keys\": %" PRIu64 ", \"value_size\": %u, "
                "\"theta\": %g, \"status\": \"%s\"",
                bench_index_name(r->index), bench_workload_name(r->workload),
                bench_iso_name(r->isolation), bench_cc_name(r->cc), r->threads, cfg->keys,
                cfg->value_size, r->theta,
                ok                             ? "ok"
                : r->status == ROW_UNSUPPORTED ? "unsupported"
                : r->status == ROW_NA          ? "n/a"
                                               : "failed");
        const struct bench_engine *eng = bench_engine_of(r->engine);
        fprintf(f, ", \"engine_version\": ");
        if (eng)
            json_str(f, eng->version());
        else
            fputs("null", f);
        fprintf(f, ", \"isolation_mapping\": ");
        if (eng)
            json_str(f, eng->mapping(r->isolation, r->cc));
        else
            fputs("null", f);
        json_count(f, "txns", r->txns, ok);
        json_count(f, "aborts", r->aborts, ok);
        json_count(f, "ops", r->ops, ok);
        json_num(f, "seconds", r->seconds, ok);
        json_num(f, "txn_per_sec", r->txn_per_sec, ok);
        json_num(f, "ops_per_sec", r->ops_per_sec, ok);
        json_num(f, "abort_rate", r->abort_rate, ok);
        json_num(f, "p50_us", r->p50_us, ok);
        json_num(f, "p99_us", r->p99_us, ok);
        json_num(f, "p999_us", r->p999_us, ok);
        json_num(f, "bytes_per_key", r->bytes_per_key, ok);
        json_num(f, "load_bytes_per_key", r->load_bytes_per_key, ok && r->load_bytes_per_key >= 0);
        json_num(f, "rss_load_per_key", r->rss_load_per_key, ok && r->rss_load_per_key >= 0);
        json_num(f, "pass_bytes_per_key", r->pass_bytes_per_key, ok && r->pass_bytes_per_key >= 0);
        json_num(f, "rss_pass_per_key", r->rss_pass_per_key, ok && r->rss_pass_per_key >= 0);
        json_count(f, "notfound", r->notfound, ok);
        json_count(f, "audits", r->audits, ok && r->workload == W_BANK);
        json_count(f, "audit_skews", r->audit_skews, ok && r->workload == W_BANK);
        json_num(f, "load_seconds", r->load_seconds, r->load_seconds > 0);
        fprintf(f, ", \"checksum\": \"%016" PRIx64 "\", \"note\": ", r->checksum);
        json_str(f, r->note);
        fprintf(f, ", \"verified\": ");
        if (r->verify_status == VERIFY_NONE) {
            fputs("null", f);
        } else {
            json_str(f, r->verify_status == VERIFY_OK        ? "OK"
                        : r->verify_status == VERIFY_ANOMALY ? "anomaly"
                                                             : "error");
            fprintf(f,
                    ", \"verify_threads\": %u, \"verify_commits\": %" PRIu64
                    ", \"verify_aborts\": %" PRIu64 ", \"verify_message\": ",
                    r->verify_threads, r->verify_commits, r->verify_aborts);
            json_str(f, r->verify_msg);
        }
        fputc('}', f);
    }
    fprintf(f, "\n  ]\n}\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "kv-bench: --json %s: %s\n", cfg->json_path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- charts -------------------------------------------------------------------------- */

/* The program to run: $KV_BENCH_GNUPLOT, else gnuplot; NULL when it is not there. */
static const char *find_gnuplot(char *buf, size_t len)
{
    const char *prog = getenv("KV_BENCH_GNUPLOT"), *path = getenv("PATH");
    if (!prog || !*prog)
        prog = "gnuplot";
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0 ? prog : NULL;
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t dl = colon ? (size_t)(colon - path) : strlen(path);
        if (dl && snprintf(buf, len, "%.*s/%s", (int)dl, path, prog) < (int)len &&
            access(buf, X_OK) == 0)
            return buf;
        path = colon ? colon + 1 : NULL;
    }
    return NULL;
}

/* A gnuplot single-quoted string ('' stands for one quote). */
static void gp_str(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        if (*s != '\n')
            fputc(*s, f);
    }
    fputc('\'', f);
}

static void series_label(const struct bench_row *r, char *buf, size_t len)
{
    if (r->engine == ENG_LMDB || r->engine == ENG_SQLITE)
        snprintf(buf, len, "%s", bench_engine_label(r));
    else
        snprintf(buf, len, "%s %s/%s", bench_engine_label(r), bench_iso_name(r->isolation),
                 bench_cc_name(r->cc));
}

static int same_series(const struct bench_row *a, const struct bench_row *b)
{
    return a->engine == b->engine && a->index == b->index && a->isolation == b->isolation &&
           a->cc == b->cc && a->sync == b->sync;
}

/*
 * One chart: rows of `workload` that match `fixed` (threads for the abort
 * chart, theta for the throughput chart), one line per engine/level/scheme,
 * x = threads or theta.  Written only when x takes two values or more.
 */
static int chart(FILE *f, const struct bench_config *cfg, const struct bench_row *rows, unsigned n,
                 int workload, int by_threads, double fixed, int *chartno)
{
    char name[600], label[96];
    double xs[2] = {0, 0};
    int nx = 0, nseries = 0;
    unsigned i, j;

#define IN_CHART(r)                                                                                \
    ((r)->status == ROW_OK && (r)->workload == workload &&                                         \
     (by_threads ? (r)->theta == fixed : (double)(r)->threads == fixed))
#define X_OF(r) (by_threads ? (double)(r)->threads : (r)->theta)

    for (i = 0; i < n && nx < 2; i++)
        if (IN_CHART(&rows[i]) && (nx == 0 || X_OF(&rows[i]) != xs[0]))
            xs[nx++] = X_OF(&rows[i]);
    if (nx < 2)
        return 0;
    ++*chartno;
    /* relative to the script's folder, where gnuplot runs, so the folder can move */
    if (by_threads)
        snprintf(name, sizeof name, "throughput-%s-theta%g.png", bench_workload_name(workload),
                 fixed);
    else
        snprintf(name, sizeof name, "aborts-%s-t%g.png", bench_workload_name(workload), fixed);
    fprintf(f, "\nset output ");
    gp_str(f, name);
    if (by_threads) {
        fprintf(f,
                "\nset title '%s: committed transactions/s vs threads (theta=%g)'\n"
                "set xlabel 'threads'\nset ylabel 'transactions/s'\nset xtics (",
                bench_workload_name(workload), fixed);
        for (i = 0; i < (unsigned)cfg->nthreads; i++)
            fprintf(f, "%s%u", i ? ", " : "", cfg->threads[i]);
        fprintf(f, ")\n");
    } else
        fprintf(f,
                "\nset title '%s: abort rate vs zipfian theta (%g thread%s)'\n"
                "set xlabel 'theta'\nset ylabel 'aborts / (commits + aborts), %%'\n"
                "set xtics autofreq\n",
                bench_workload_name(workload), fixed, fixed == 1 ? "" : "s");
    /* one datablock per series, in the order series first appear */
    for (i = 0; i < n; i++) {
        if (!IN_CHART(&rows[i]))
            continue;
        for (j = 0; j < i && !(IN_CHART(&rows[j]) && same_series(&rows[j], &rows[i])); j++)
            ;
        if (j < i)
            continue;
        fprintf(f, "$c%ds%d << EOD\n", *chartno, nseries++);
        for (j = i; j < n; j++)
            if (IN_CHART(&rows[j]) && same_series(&rows[j], &rows[i]))
                fprintf(f, "%g %.6g\n", X_OF(&rows[j]),
                        by_threads ? rows[j].txn_per_sec : 100 * rows[j].abort_rate);
        fprintf(f, "EOD\n");
    }
    /* all zero (no aborts at all): give the y axis a height of its own */
    for (i = 0, j = 0; i < n; i++)
        j |= IN_CHART(&rows[i]) && (by_threads ? rows[i].txn_per_sec : rows[i].abort_rate) > 0;
    fprintf(f, "set yrange [0:%s]\nplot ", j ? "*" : "1");
    nseries = 0;
    for (i = 0; i < n; i++) {
        if (!IN_CHART(&rows[i]))
            continue;
        for (j = 0; j < i && !(IN_CHART(&rows[j]) && same_series(&rows[j], &rows[i])); j++)
            ;
        if (j < i)
            continue;
        series_label(&rows[i], label, sizeof label);
        fprintf(f, "%s$c%ds%d using 1:2 with linespoints title ", nseries ? ", " : "", *chartno,
                nseries);
        gp_str(f, label);
        nseries++;
    }
    fprintf(f, "\n");
#undef IN_CHART
#undef X_OF
    return 1;
}

/* Writes DIR/kv-bench.gp; the number of charts in it, or -1 (message printed). */
static int write_script(const struct bench_config *cfg, const struct bench_row *rows, unsigned n,
                        const char *script)
{
    int charts = 0;
    FILE *f = fopen(script, "w");
    if (!f) {
        fprintf(stderr, "kv-bench: --plot %s: %s\n", script, strerror(errno));
        return -1;
    }
    fprintf(f, "# kv-bench charts; run in this folder: gnuplot kv-bench.gp\n"
               "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
               "    set terminal pngcairo size 1000,600 noenhanced\n"
               "} else {\n    set terminal png size 1000,600 noenhanced\n}\n"
               "set key outside right\nset grid\n");
    for (int k = 0; k < cfg->nworkloads; k++) {
        for (int t = 0; t < cfg->nthetas; t++)
            chart(f, cfg, rows, n, cfg->workloads[k], 1, cfg->thetas[t], &charts);
        for (int t = 0; t < cfg->nthreads; t++)
            chart(f, cfg, rows, n, cfg->workloads[k], 0, cfg->threads[t], &charts);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "kv-bench: --plot %s: %s\n", script, strerror(errno));
        return -1;
    }
    return charts;
}

/* Runs gnuplot on kv-bench.gp inside dir (its paths are relative); 0 or -1. */
static int run_gnuplot(const char *gp, const char *dir)
{
    posix_spawn_file_actions_t fa;
    char *argv[] = {(char *)gp, "kv-bench.gp", NULL};
    pid_t pid;
    int status = 0;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    errno = posix_spawnp(&pid, gp, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (errno != 0) {
        fprintf(stderr, "kv-bench: --plot: cannot run %s: %s\n", gp, strerror(errno));
        return -1;
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "kv-bench: --plot: %s kv-bench.gp failed in %s (%s %d)\n", gp, dir,
                WIFEXITED(status) ? "exit status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return -1;
    }
    return 0;
}

static int write_plots(const struct bench_config *cfg, const struct bench_row *rows, unsigned n)
{
    char gpbuf[4096], script[600];
    const char *gp = find_gnuplot(gpbuf, sizeof gpbuf);
    snprintf(script, sizeof script, "%s/kv-bench.gp", cfg->plot_dir);
    int charts = write_script(cfg, rows, n, script);
    if (charts < 0)
        return -1;
    if (!gp) {
        fprintf(stderr,
                "kv-bench: --plot: gnuplot is not on PATH (or $KV_BENCH_GNUPLOT), so no chart "
                "was drawn; the script is %s: install gnuplot, then run it there: "
                "cd %s && gnuplot kv-bench.gp\n",
                script, cfg->plot_dir);
        return 0;
    }
    if (!charts) {
        fprintf(stderr, "kv-bench: --plot: nothing to chart (each chart needs two or more "
                        "--threads or --theta values)\n");
        return 0;
    }
    if (run_gnuplot(gp, cfg->plot_dir) != 0)
        return -1;
    fprintf(stderr, "kv-bench: wrote %d chart%s to %s\n", charts, charts == 1 ? "" : "s",
            cfg->plot_dir);
    return 0;
}

int bench_out_finish(const struct bench_config *cfg, const struct bench_row *rows, unsigned n)
{
    int rc = 0;
    if (csv_file && fclose(csv_file) != 0) {
        fprintf(stderr, "kv-bench: --csv %s: %s\n", cfg->csv_path, strerror(errno));
        rc = -1;
    }
    csv_file = NULL;
    if (cfg->json_path && write_json(cfg, rows, n) != 0)
        rc = -1;
    if (cfg->plot_dir && write_plots(cfg, rows, n) != 0)
        rc = -1;
    return rc;
}
