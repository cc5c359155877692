/* errors.c - the error table, txkv_strerror/txkv_is_retryable and option defaults. */
#include "config.h"

#include "../tap.h"
#include "txkv.h"

int main(void)
{
    struct {
        int code;
        const char *name;
        int retry;
    } want[] = {
        {TXKV_OK, "OK", 0},
        {TXKV_NOTFOUND, "NOTFOUND", 0},
        {TXKV_CONFLICT, "CONFLICT", 1},
        {TXKV_DEADLOCK, "DEADLOCK", 1},
        {TXKV_LOCK_TIMEOUT, "LOCK_TIMEOUT", 1},
        {TXKV_FULL, "FULL", 0},
        {TXKV_NOMEM, "NOMEM", 0},
        {TXKV_INVALID, "INVALID", 0},
        {TXKV_READONLY, "READONLY", 0},
        {TXKV_ABORTED, "ABORTED", 0},
        {TXKV_NOTSUP, "NOTSUP", 0},
        {TXKV_EXISTS, "EXISTS", 0},
        {TXKV_IO, "IO", 0},
        {TXKV_BUSY, "BUSY", 0},
    };
    int n = (int)(sizeof want / sizeof want[0]);

    tap_seed();
    /* The values are part of the ABI: DESIGN.md fixes them. */
    is(TXKV_OK, 0, "TXKV_OK is 0");
    is(TXKV_NOTFOUND, -1, "TXKV_NOTFOUND is -1");
    is(TXKV_CONFLICT, -2, "TXKV_CONFLICT is -2");
    is(TXKV_IO, -12, "TXKV_IO is -12");
    for (int i = 0; i < n; i++) {
        is_str(txkv_strerror(want[i].code), want[i].name, "strerror(%d) names it", want[i].code);
        is(txkv_is_retryable(want[i].code), want[i].retry, "is_retryable(%s)", want[i].name);
        ok(txkv_errmsg(want[i].code) && *txkv_errmsg(want[i].code), "errmsg(%s) is not empty",
           want[i].name);
        for (int j = 0; j < i; j++)
            if (want[j].code == want[i].code)
                ok(0, "codes %s and %s are distinct", want[i].name, want[j].name);
    }
    is_str(txkv_strerror(1), "UNKNOWN", "a positive code is unknown");
    is(TXKV_BUSY, -13, "TXKV_BUSY is -13");
    is_str(txkv_strerror(-14), "UNKNOWN", "a code past the table is unknown");
    is(txkv_is_retryable(-13), 0, "an unknown code is not retryable");
    is(txkv_is_retryable(12345), 0, "a positive code is not retryable");

    txkv_options o;
    memset(&o, 0xa5, sizeof o);
    txkv_options_init(&o);
    is(o.mem_limit, 0, "default: no memory limit");
    is(o.isolation, TXKV_SNAPSHOT, "default isolation is SNAPSHOT");
    is(o.cc, TXKV_OPTIMISTIC, "default cc is OPTIMISTIC");
    is(o.lock_timeout_us, 0, "default: no lock timeout");

    txkv_txn_options t;
    memset(&t, 0xa5, sizeof t);
    txkv_txn_options_init(&t);
    ok(t.isolation == 0 && t.cc == 0 && t.flags == 0 && t.lock_timeout_us == 0,
       "txn options default to the database's settings");
    txkv_options_init(NULL);
    txkv_txn_options_init(NULL);
    ok(1, "init functions accept NULL");
    return done_testing();
}
