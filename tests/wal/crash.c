/*
 * crash.c - kill -9 at random moments, torn logs and flipped bytes: the
 * recovered database is always a prefix of the commit order.
 *
 * A child process (this program re-executed with --child, so that it
 * starts clean rather than from a fork of a threaded parent) opens the
 * directory with TXKV_SYNC_COMMIT and runs NTHREADS threads of
 * transactions; each moves an amount between two of NACC accounts (the
 * sum stays NACC * 1000) and sets its own counter key c<i> and its twin
 * n<i> to one more than before, in one transaction.  After each commit
 * that returned 0 it writes (thread, counter) to a pipe.  Thread 0 also
 * calls txkv_checkpoint now and then.  The parent reads acknowledgements
 * for a random while, SIGKILLs the child, reads what is left in the pipe
 * and opens the directory.  It checks:
 *  - every acknowledged commit is there: c<i> >= the last acked value;
 *  - every transaction is whole: c<i> == n<i>, and the accounts sum to
 *    NACC * 1000 (a half-applied transfer would break it);
 * which, with the counters never going backwards from one open to the
 * next, says the state is a prefix of the commit order.
 * Damage rounds then cut the newest log segment at a random byte, or flip
 * a random byte in it (in what was written, not the zeros of its last
 * window), before opening: acknowledged commits after the damage may be
 * lost, nothing else may be wrong (sum, twins).  The child maps the log
 * CHILD_WINDOW bytes at a time, so kills also land while the window moves.
 * Rounds: ROUNDS x TXKV_STRESS (make stress).  Nothing waits by sleeping
 * for synchronisation: the parent waits for acknowledgements to arrive.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>

#include "../tap.h"
#include "wal/wal-test.h"
#include "wal-util.h"

#define NTHREADS     4
#define NACC         16
#define ROUNDS       6
#define CHILD_WINDOW (16u << 10)

struct ack {
    uint32_t thread;
    uint32_t pad;
    uint64_t counter;
};

static txkv_db *cdb;
static int ack_fd;

static uint64_t get_u64(txkv_txn *t, const char *k, int *rc)
{
    const void *v;
    size_t vl;
    uint64_t x = 0;
    *rc = txkv_get(t, NULL, k, strlen(k), &v, &vl);
    if (*rc == TXKV_NOTFOUND) {
        *rc = 0;
        return 0;
    }
    if (*rc == 0 && vl == 8)
        memcpy(&x, v, 8);
    return x;
}

static int put_u64(txkv_txn *t, const char *k, uint64_t x)
{
    return txkv_put(t, NULL, k, strlen(k), &x, 8);
}

static void *child_thread(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    uint64_t st = (uint64_t)getpid() * 7919 + id;
    char ck[16], nk[16], a[16], b[16];
    snprintf(ck, sizeof ck, "c%u", id);
    snprintf(nk, sizeof nk, "n%u", id);
    for (uint64_t i = 0;; i++) {
        txkv_txn *t;
        int rc;
        if (txkv_begin(cdb, NULL, &t))
            continue;
        unsigned x = (unsigned)(tap_rand(&st) % NACC), y = (unsigned)(tap_rand(&st) % NACC);
        snprintf(a, sizeof a, "acct%u", x);
        snprintf(b, sizeof b, "acct%u", y);
        uint64_t c = get_u64(t, ck, &rc);
        uint64_t va = rc ? 0 : get_u64(t, a, &rc);
        uint64_t amount = tap_rand(&st) % 50;
        if (!rc && x != y && va >= amount) {
            uint64_t vb = get_u64(t, b, &rc);
            if (!rc)
                rc = put_u64(t, a, va - amount);
            if (!rc)
                rc = put_u64(t, b, vb + amount);
        }
        if (!rc)
            rc = put_u64(t, ck, c + 1);
        if (!rc)
            rc = put_u64(t, nk, c + 1);
        if (rc) {
            txkv_abort(t);
            continue;
        }
        if (txkv_commit(t) == 0) {
            struct ack ak = {id, 0, c + 1};
            if (write(ack_fd, &ak, sizeof ak) != sizeof ak)
                _exit(3);
        }
        if (id == 0 && i % 31 == 30)
            txkv_checkpoint(cdb);
    }
    return NULL;
}

static int child_main(const char *dir, int fd)
{
    ack_fd = fd;
    wal_window_bytes = CHILD_WINDOW;
    if (wt_open(dir, TXKV_SYNC_COMMIT, &cdb))
        return 2;
    /* First run: the accounts. */
    txkv_txn *t;
    int rc;
    txkv_begin(cdb, NULL, &t);
    get_u64(t, "acct0", &rc);
    const void *v;
    size_t vl;
    if (txkv_get(t, NULL, "acct0", 5, &v, &vl) == TXKV_NOTFOUND) {
        char k[16];
        for (int i = 0; i < NACC; i++) {
            snprintf(k, sizeof k, "acct%d", i);
            put_u64(t, k, 1000);
        }
        if (txkv_commit(t))
            return 2;
    } else {
        txkv_abort(t);
    }
    struct ack ready = {UINT32_MAX, 0, 0};
    if (write(ack_fd, &ready, sizeof ready) != sizeof ready)
        return 3;
    pthread_t th[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, child_thread, (void *)i);
    pthread_join(th[0], NULL); /* never returns: killed */
    return 0;
}

static uint64_t acked[NTHREADS], seen[NTHREADS];

static void read_acks(int fd, size_t *n)
{
    struct ack ak;
    while (read(fd, &ak, sizeof ak) == sizeof ak) {
        if (ak.thread < NTHREADS && ak.counter > acked[ak.thread])
            acked[ak.thread] = ak.counter;
        ++*n;
    }
}

/* Runs the child until it acknowledged `want` commits (or a bound), then kills it. */
static bool run_child(const char *self, const char *dir, size_t want)
{
    int p[2];
    if (pipe(p))
        return false;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        char fdb[16];
        snprintf(fdb, sizeof fdb, "%d", p[1]);
        execl(self, self, "--child", dir, fdb, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t n = 0;
    struct ack ak;
    bool started = false;
    /* Wait for the child's ready mark, then for `want` acknowledgements. */
    while (n < want) {
        ssize_t r = read(p[0], &ak, sizeof ak);
        if (r != sizeof ak)
            break; /* the child died */
        if (ak.thread == UINT32_MAX) {
            started = true;
            continue;
        }
        if (ak.thread < NTHREADS && ak.counter > acked[ak.thread])
            acked[ak.thread] = ak.counter;
        n++;
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    read_acks(p[0], &n); /* whatever it wrote before it died */
    close(p[0]);
    if (!started || !WIFSIGNALED(status))
        diag("child: started %d, status %d", started, status);
    return started && WIFSIGNALED(status);
}

/* Opens dir and checks the invariants; strict: every ack present. */
static bool check(const char *dir, bool strict, const char *what)
{
    txkv_db *db;
    int rc = wt_open(dir, TXKV_SYNC_COMMIT, &db);
    if (rc) {
        diag("%s: open: %s", what, txkv_strerror(rc));
        return false;
    }
    txkv_txn *t;
    txkv_begin(db, NULL, &t);
    uint64_t sum = 0;
    char k[16];
    bool good = true;
    for (int i = 0; i < NACC; i++) {
        snprintf(k, sizeof k, "acct%d", i);
        sum += get_u64(t, k, &rc);
    }
    if (sum != NACC * 1000) {
        diag("%s: sum %" PRIu64, what, sum);
        good = false;
    }
    for (int i = 0; i < NTHREADS; i++) {
        snprintf(k, sizeof k, "c%d", i);
        uint64_t c = get_u64(t, k, &rc);
        snprintf(k, sizeof k, "n%d", i);
        uint64_t n = get_u64(t, k, &rc);
        if (c != n) {
            diag("%s: thread %d: c %" PRIu64 " n %" PRIu64 " (half a transaction)", what, i, c, n);
            good = false;
        }
        if (strict && c < acked[i]) {
            diag("%s: thread %d: c %" PRIu64 " < acknowledged %" PRIu64, what, i, c, acked[i]);
            good = false;
        }
        if (strict && c < seen[i]) {
            diag("%s: thread %d went backwards", what, i);
            good = false;
        }
        seen[i] = c;
        acked[i] = c; /* after damage: what is there now is the base */
    }
    txkv_abort(t);
    struct txkv_stats st;
    txkv_stats(db, &st);
    if (st.recovered_bytes_dropped)
        diag("%s: %" PRIu64 " bytes dropped", what, st.recovered_bytes_dropped);
    txkv_close(db);
    return good;
}

static void damage(const char *dir, uint64_t *rs, bool flip)
{
    char path[1024];
    long size = wt_newest_segment(dir, path, sizeof path); /* damage what was written */
    if (size <= 0)
        return;
    long at = (long)(tap_rand(rs) % (uint64_t)size);
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return;
    if (flip) {
        unsigned char c;
        if (pread(fd, &c, 1, at) == 1) {
            c ^= (unsigned char)(1u << (tap_rand(rs) % 8));
            if (pwrite(fd, &c, 1, at) != 1)
                diag("flip failed");
        }
    } else if (ftruncate(fd, at)) {
        diag("truncate failed");
    }
    close(fd);
}

/* Rounds of kill -9 then damage to the newest segment; returns the bad ones. */
static int damaged_rounds(const char *dir, int rounds, uint64_t *rs, bool flip)
{
    int bad = 0;
    for (int r = 0; r < rounds; r++) {
        run_child("/proc/self/exe", dir, 1 + tap_rand(rs) % 400);
        damage(dir, rs, flip);
        bad += !check(dir, false, flip ? "byte flipped" : "log cut");
    }
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--child"))
        return child_main(argv[2], atoi(argv[3]));
    signal(SIGPIPE, SIG_IGN);
    uint64_t rs = tap_seed();
    int rounds = (int)(ROUNDS * tap_scale());
    char *dir = wt_mkdtemp();
    ok(dir != NULL, "a fresh directory");
    int bad = 0, crashed = 0;
    for (int r = 0; r < rounds; r++) {
        size_t want = 1 + tap_rand(&rs) % 400;
        crashed += run_child("/proc/self/exe", dir, want);
        bad += !check(dir, true, "after kill -9");
    }
    ok(crashed == rounds, "%d rounds killed with SIGKILL", crashed);
    is(bad, 0, "every acknowledged commit recovered, every transaction whole");
    is(damaged_rounds(dir, rounds, &rs, false), 0, "log cut at random bytes: a consistent prefix");
    is(damaged_rounds(dir, rounds, &rs, true), 0, "a flipped byte: a consistent prefix");
    wt_rmdir(dir);
    free(dir);
    return done_testing();
}
