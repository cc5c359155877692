/*
 * txkv.h - the public interface of txkv, an embeddable in-memory
 * transactional key-value store.
 *
 * Every function that can fail returns 0 (TXKV_OK) or a negative TXKV_*
 * code; txkv_strerror() names it.  See txkv(3) for the whole contract.
 */
#ifndef TXKV_H
#define TXKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The error table: X(NAME, value, retryable, message).  It is the one
 * definition of the codes; the enum, txkv_strerror(), txkv_is_retryable()
 * and the ERRORS section of txkv(3) are all generated from it.
 */
#define TXKV_ERROR_TABLE(X)                                                                 \
    X(OK, 0, 0, "success")                                                                  \
    X(NOTFOUND, -1, 0, "key not found, or cursor moved past the end")                       \
    X(CONFLICT, -2, 1, "transaction conflicts with a concurrent commit; retry it")          \
    X(DEADLOCK, -3, 1, "transaction chosen as a deadlock victim; retry it")                 \
    X(LOCK_TIMEOUT, -4, 1, "lock wait exceeded the lock timeout; retry it")                 \
    X(FULL, -5, 0, "memory limit of the database reached")                                  \
    X(NOMEM, -6, 0, "out of memory")                                                        \
    X(INVALID, -7, 0, "invalid argument")                                                   \
    X(READONLY, -8, 0, "write in a read-only transaction")                                  \
    X(ABORTED, -9, 0, "transaction has failed and must be ended")                           \
    X(NOTSUP, -10, 0, "operation not supported by this keyspace or build")                  \
    X(EXISTS, -11, 0, "already exists")                                                     \
    X(IO, -12, 0, "input/output error")

#define TXKV_ENUM_ENTRY_(name, value, retry, msg) TXKV_##name = (value),
enum { TXKV_ERROR_TABLE(TXKV_ENUM_ENTRY_) };
#undef TXKV_ENUM_ENTRY_

enum txkv_isolation { TXKV_READ_COMMITTED = 1, TXKV_SNAPSHOT = 2, TXKV_SERIALIZABLE = 3 };
enum txkv_cc { TXKV_OPTIMISTIC = 1, TXKV_PESSIMISTIC = 2 };
enum { TXKV_RDONLY = 1 };                                  /* transaction flag */
enum { TXKV_CREATE = 1, TXKV_HASH = 2, TXKV_ORDERED = 4 }; /* keyspace flags */

/* Largest key and value a transaction accepts; anything else is TXKV_INVALID. */
#define TXKV_MAX_KEY 65535u
#define TXKV_MAX_VALUE ((size_t)1 << 31)

typedef struct txkv_options {
    size_t mem_limit;         /* bytes of keys+values+versions+indexes; 0 = none */
    int isolation;            /* default for transactions; TXKV_SNAPSHOT */
    int cc;                   /* default scheme; TXKV_OPTIMISTIC */
    uint64_t lock_timeout_us; /* pessimistic waits; 0 = wait, deadlocks still detected */
} txkv_options;

typedef struct txkv_txn_options {
    int isolation;            /* 0 = the database default */
    int cc;                   /* 0 = the database default */
    unsigned flags;           /* TXKV_RDONLY */
    uint64_t lock_timeout_us; /* 0 = the database default */
} txkv_txn_options;

/* The name of a code ("CONFLICT"), or "UNKNOWN" for a value not in the table. */
const char *txkv_strerror(int rc);
/* A one-line description of a code, for messages. */
const char *txkv_errmsg(int rc);
/* 1 for TXKV_CONFLICT, TXKV_DEADLOCK and TXKV_LOCK_TIMEOUT, else 0. */
int txkv_is_retryable(int rc);

/* Fills *o with the defaults: no memory limit, SNAPSHOT, OPTIMISTIC, no lock timeout. */
void txkv_options_init(txkv_options *o);
/* Fills *o so that every field means "the database default" (0). */
void txkv_txn_options_init(txkv_txn_options *o);

#ifdef __cplusplus
}
#endif
#endif /* TXKV_H */
