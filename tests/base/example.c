/* Accounts in a keyspace: transfers with txkv_run, then a listing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <txkv.h>

struct transfer {
    txkv_ks *ks;
    const char *from, *to;
    long amount;
};

/* Reads key as a number; an absent key reads as 0. */
static int get_long(txkv_txn *txn, txkv_ks *ks, const char *key, long *out)
{
    const void *val;
    size_t vlen;
    char buf[32];
    int rc = txkv_get(txn, ks, key, strlen(key), &val, &vlen);
    *out = 0;
    if (rc == TXKV_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (vlen >= sizeof buf)
        return TXKV_INVALID;
    memcpy(buf, val, vlen); /* values are not NUL-terminated */
    buf[vlen] = '\0';
    *out = strtol(buf, NULL, 10);
    return 0;
}

static int put_long(txkv_txn *txn, txkv_ks *ks, const char *key, long v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld", v);
    return txkv_put(txn, ks, key, strlen(key), buf, (size_t)n);
}

/* Runs inside txkv_run (as transfer below). */
static int open_accounts(txkv_txn *txn, void *arg)
{
    txkv_ks *ks = arg;
    int rc = put_long(txn, ks, "alice", 100);
    return rc ? rc : put_long(txn, ks, "bob", 50);
}

/* Runs inside txkv_run: 0 commits; a retryable code (a conflict with a
 * concurrent transfer) makes txkv_run run it again in a new transaction;
 * any other value aborts, and txkv_run returns it. */
static int transfer(txkv_txn *txn, void *arg)
{
    struct transfer *t = arg;
    long from, to;
    int rc;
    if ((rc = get_long(txn, t->ks, t->from, &from)) != 0 ||
        (rc = get_long(txn, t->ks, t->to, &to)) != 0)
        return rc;
    if (from < t->amount)
        return 1; /* not enough money: abort */
    if ((rc = put_long(txn, t->ks, t->from, from - t->amount)) != 0)
        return rc;
    return put_long(txn, t->ks, t->to, to + t->amount);
}

/* Prints every account in key order, in a read-only transaction. */
static int list(txkv_db *db, txkv_ks *ks)
{
    txkv_txn_options o;
    txkv_txn *txn;
    txkv_cursor *c;
    txkv_txn_options_init(&o);
    o.flags = TXKV_RDONLY;
    int rc = txkv_begin(db, &o, &txn);
    if (rc)
        return rc;
    if ((rc = txkv_cursor_open(txn, ks, &c)) == 0) {
        for (rc = txkv_cursor_seek(c, NULL, 0); rc == 0; rc = txkv_cursor_next(c)) {
            const void *key, *val;
            size_t klen, vlen;
            if ((rc = txkv_cursor_get(c, &key, &klen, &val, &vlen)) != 0)
                break;
            printf("%.*s = %.*s\n", (int)klen, (const char *)key, (int)vlen, (const char *)val);
        }
        txkv_cursor_close(c);
    }
    txkv_commit(txn);                    /* ends the read-only transaction */
    return rc == TXKV_NOTFOUND ? 0 : rc; /* NOTFOUND: the cursor ran past the end */
}

static int fail(const char *what, int rc)
{
    /* txkv_strerror names the code, txkv_errmsg describes it */
    fprintf(stderr, "%s: %s (%s)\n", what, txkv_strerror(rc), txkv_errmsg(rc));
    return 1;
}

int main(void)
{
    txkv_db *db;
    txkv_ks *ks;
    int rc = txkv_open(NULL, &db);
    if (rc)
        return fail("txkv_open", rc);
    if ((rc = txkv_keyspace(db, "accounts", TXKV_CREATE, &ks)) != 0) {
        txkv_close(db);
        return fail("txkv_keyspace", rc);
    }
    struct transfer pay = {ks, "alice", "bob", 30};
    struct transfer overdraw = {ks, "bob", "alice", 500};
    /* up to 10 tries each; 0 would retry for as long as it conflicts */
    if ((rc = txkv_run(db, NULL, open_accounts, ks, 10)) != 0)
        rc = fail("open_accounts", rc);
    else if ((rc = txkv_run(db, NULL, transfer, &pay, 10)) != 0)
        rc = fail("transfer", rc);
    else if ((rc = txkv_run(db, NULL, transfer, &overdraw, 10)) != 1)
        rc = fail("an overdraft was not refused", rc);
    else if ((rc = list(db, ks)) != 0)
        rc = fail("list", rc);
    txkv_close(db);
    return rc;
}
