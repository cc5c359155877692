/*
 * error.c - error codes, option defaults and the library's version.
 *
 * Owns nothing mutable.  Every string here comes from TXKV_ERROR_TABLE in
 * txkv.h, so a code cannot exist without a name, a message and a
 * retryability bit.  txkv_version() is the header's TXKV_VERSION_STRING as
 * compiled into the library, so a program can tell the header it was
 * built with from the library it runs with (tests/base/version checks the
 * macros, this string and configure's version agree).
 */
#include "config.h"

#include "txkv.h"

const char *txkv_version(void)
{
    return TXKV_VERSION_STRING;
}

struct err_entry {
    int code;
    int retryable;
    const char *name;
    const char *msg;
};

#define ERR_ENTRY_(name, value, retry, msg) {(value), (retry), #name, (msg)},
static const struct err_entry err_table[] = {TXKV_ERROR_TABLE(ERR_ENTRY_)};
#undef ERR_ENTRY_

static const struct err_entry *err_find(int rc)
{
    for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++)
        if (err_table[i].code == rc)
            return &err_table[i];
    return NULL;
}

const char *txkv_strerror(int rc)
{
    const struct err_entry *e = err_find(rc);
    return e ? e->name : "UNKNOWN";
}

const char *txkv_errmsg(int rc)
{
    const struct err_entry *e = err_find(rc);
    return e ? e->msg : "unknown error code";
}

int txkv_is_retryable(int rc)
{
    const struct err_entry *e = err_find(rc);
    return e ? e->retryable : 0;
}

void txkv_options_init(txkv_options *o)
{
    if (!o)
        return;
    o->mem_limit = 0;
    o->isolation = TXKV_SNAPSHOT;
    o->cc = TXKV_OPTIMISTIC;
    o->lock_timeout_us = 0;
    o->dir = NULL;
    o->sync = TXKV_SYNC_COMMIT;
    o->sync_interval_ms = 0;
    o->checkpoint_log_bytes = 0;
}

void txkv_txn_options_init(txkv_txn_options *o)
{
    if (!o)
        return;
    o->isolation = 0;
    o->cc = 0;
    o->flags = 0;
    o->lock_timeout_us = 0;
}
