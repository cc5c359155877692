/*
 * replay.c - runs a fuzz target without libFuzzer, as a TAP test.
 *
 * Linked with one target (tests/fuzz/fuzz-*.c) into tests/fuzz/NAME-replay,
 * which every build's `make check` runs, gcc included:
 *   1. every file of the target's corpus (tests/fuzz/corpus/NAME under
 *      $top_srcdir, or the files and directories given as arguments)
 *      through LLVMFuzzerTestOneInput, one TAP line per directory or file;
 *   2. FUZZ_REPLAY_RUNS (default below, times TXKV_STRESS) inputs from the
 *      target's generator, seeded by tap_seed(), so a plain `make check`
 *      fuzzes a little even without clang; TXKV_SEED replays them;
 *   3. the target's self-test, if it has one (the checks must have teeth).
 * A violated property is a `not ok` naming the file, or for a generated
 * input the seed and a copy of the input (NAME-failure.bin in the current
 * directory), which libFuzzer or this program replays:
 *   ./tests/fuzz/api-replay fuzz-api-failure.bin
 * Crashes and sanitizer reports end the process (the TAP driver reports
 * an error); the last `# input ...` line of the log names the input.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../tap.h"
#include "fuzz.h"

#define REPLAY_MAX_INPUT (1 << 20) /* corpus files are cut here, as -max_len would */
#define GEN_CAP          1024

/* Sanitizer builds run several times slower: fewer generated inputs. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define REPLAY_SLOW 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define REPLAY_SLOW 1
#endif
#endif
#ifdef REPLAY_SLOW
#define DEFAULT_RUNS 2000
#elif defined(TXKV_DEBUG)
#define DEFAULT_RUNS 5000
#else
#define DEFAULT_RUNS 10000
#endif

static char last_msg[1024];
static int nreports;

static void on_report(const char *msg)
{
    if (!nreports++)
        snprintf(last_msg, sizeof last_msg, "%s", msg);
}

/* Runs one input; 1 if no property failed. */
static int run_one(const uint8_t *p, size_t n)
{
    nreports = 0;
    /* a copy of exactly n bytes, so ASan sees any read past the end */
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy)
        bail_out("out of memory");
    memcpy(copy, p, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return nreports == 0;
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = malloc(REPLAY_MAX_INPUT);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    *n = fread(buf, 1, REPLAY_MAX_INPUT, f);
    fclose(f);
    return buf;
}

/* 1 if the file replayed cleanly; else diag and 0. */
static int replay_file(const char *path)
{
    size_t n;
    uint8_t *buf = read_file(path, &n);
    if (!buf) {
        diag("cannot read %s: %s", path, strerror(errno));
        return 0;
    }
    /* stderr is not buffered: if the input crashes, the log ends with its name */
    fprintf(stderr, "# input %s\n", path);
    int good = run_one(buf, n);
    free(buf);
    if (!good)
        diag("%s: %s", path, last_msg);
    return good;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* show: how to name dir in the TAP line (NULL: dir itself) */
static void replay_dir(const char *dir, const char *show)
{
    DIR *d = opendir(dir);
    if (!d) {
        ok(0, "%s: cannot open corpus directory %s: %s", fuzz_target.name, dir, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (nn == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, cap * sizeof *names);
            if (!names)
                bail_out("out of memory");
        }
        names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    if (nn)
        qsort(names, nn, sizeof *names, name_cmp);
    size_t bad = 0, files = 0;
    for (size_t i = 0; i < nn; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            files++;
            bad += !replay_file(path);
        }
        free(names[i]);
    }
    free(names);
    ok(bad == 0 && files > 0, "%s: %zu corpus files in %s%s", fuzz_target.name, files,
       show ? show : dir, files ? "" : " (none: is the corpus missing?)");
    if (bad)
        diag("%zu of them failed", bad);
}

static void replay_generated(uint64_t seed)
{
    const char *env = getenv("FUZZ_REPLAY_RUNS");
    long runs = env && *env ? strtol(env, NULL, 10) : (long)(DEFAULT_RUNS * tap_scale());
    uint64_t rng = seed;
    static uint8_t buf[GEN_CAP];
    long i, bad = -1;
    for (i = 0; i < runs; i++) {
        size_t n = fuzz_target.generate(&rng, buf, sizeof buf);
        if (!run_one(buf, n)) {
            bad = i;
            char path[256];
            snprintf(path, sizeof path, "%s-failure.bin", fuzz_target.name);
            FILE *f = fopen(path, "wb");
            if (f) {
                fwrite(buf, 1, n, f);
                fclose(f);
            }
            diag("generated input %ld (%zu bytes): %s", i, n, last_msg);
            diag("the input is in %s%s; replay it with: ./tests/%s-replay %s", path,
                 f ? "" : " (could not write it)", fuzz_target.name, path);
            break;
        }
    }
    ok(bad < 0, "%s: %ld generated inputs", fuzz_target.name, bad < 0 ? runs : bad + 1);
}

int main(int argc, char **argv)
{
    uint64_t seed = tap_seed();
    fuzz_target.report = on_report;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            struct stat st;
            if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
                replay_dir(argv[i], NULL);
            else
                ok(replay_file(argv[i]), "%s: %s", fuzz_target.name, argv[i]);
        }
    } else {
        /* the corpus in the source tree: fuzz-api -> tests/fuzz/corpus/api */
        const char *top = getenv("top_srcdir");
        const char *base = strchr(fuzz_target.name, '-');
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", top && *top ? top : ".",
                 base ? base + 1 : fuzz_target.name);
        replay_dir(dir, strstr(dir, "tests/fuzz/corpus/"));
    }
    replay_generated(seed);
    if (fuzz_target.self_test) {
        char msg[512] = "";
        int good = fuzz_target.self_test(seed, msg, sizeof msg);
        ok(good, "%s: self-test", fuzz_target.name);
        diag("%s", msg);
    }
    return done_testing();
}
