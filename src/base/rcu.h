/*
 * rcu.h - the one place txkv touches liburcu's read side and call_rcu.
 *
 * Flavour: urcu-memb (membarrier).  Readers pay a thread-local counter
 * update per section and no fences; grace periods use sys_membarrier.
 *
 * Registration is hidden from callers: rcu_read_enter() registers the
 * calling thread on its first use, and a pthread key destructor
 * unregisters it when the thread exits.  A thread that is inside a
 * read-side section when it exits is a bug and is not supported.
 *
 * ThreadSanitizer: Debian's liburcu is not instrumented, so TSan cannot see
 * the happens-before edges RCU gives us.  We state them here, in TSan
 * builds only (docs/testing.md, "ThreadSanitizer and liburcu"):
 *   1. publication: rcu_publish_hb(p) after a node is initialised and before
 *      it is linked; rcu_observe_hb(p) where a reader first touches a node
 *      it found;
 *   2. grace periods: every rcu_read_leave() releases the one RCU domain,
 *      every reclamation callback (RCU_CALLBACK_ENTER) and every
 *      rcu_synchronize() acquires it.  That is RCU's guarantee exactly: a
 *      read-side section happens before every reclamation that follows its
 *      grace period.
 */
#ifndef TXKV_BASE_RCU_H
#define TXKV_BASE_RCU_H

#include <assert.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TXKV_TSAN 1
#endif
#endif
#if !defined(TXKV_TSAN) && defined(__SANITIZE_THREAD__)
#define TXKV_TSAN 1
#endif

/* Inline read-side fast paths, except under TSan: inlined, liburcu's own
 * uninstrumented synchronisation would be reported as races in our code;
 * called, it stays inside the library that tests/tsan.supp covers. */
#if !defined(_LGPL_SOURCE) && !defined(TXKV_TSAN)
#define _LGPL_SOURCE
#endif
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#ifdef TXKV_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define HB_RELEASE(p) __tsan_release((void *)(p))
#define HB_ACQUIRE(p) __tsan_acquire((void *)(p))
#else
#define HB_RELEASE(p) ((void)0)
#define HB_ACQUIRE(p) ((void)0)
#endif

/* The TSan stand-in for "all read-side sections": one object per process. */
extern char txkv_rcu_domain;

/* Registers the calling thread with RCU; idempotent, cheap after the first call. */
void rcu_thread_register_slow(void);
extern __thread int txkv_rcu_registered;

static inline void rcu_thread_ensure(void)
{
    if (__builtin_expect(!txkv_rcu_registered, 0))
        rcu_thread_register_slow();
}

/* Debug builds count each thread's read-side nesting, so that "RCU read
 * side" and "outside any read-side section" can be asserted. */
#ifndef NDEBUG
extern __thread int txkv_rcu_depth;
#define rcu_reading()    (txkv_rcu_depth > 0)
#define RCU_DEPTH_ADD(d) (txkv_rcu_depth += (d))
#else
#define RCU_DEPTH_ADD(d) ((void)0)
#endif
/* The contracts "RCU read side" and "outside any read-side section". */
#define assert_in_rcu_section()      assert(rcu_reading())
#define assert_outside_rcu_section() assert(!rcu_reading())

/* Enter a read-side section.  Sections nest.  No blocking inside. */
static inline void rcu_read_enter(void)
{
    rcu_thread_ensure();
    urcu_memb_read_lock();
    RCU_DEPTH_ADD(1);
}

/* Leave a read-side section; pairs with RCU_CALLBACK_ENTER / rcu_synchronize. */
static inline void rcu_read_leave(void)
{
    assert(rcu_reading());
    RCU_DEPTH_ADD(-1);
    HB_RELEASE(&txkv_rcu_domain);
    urcu_memb_read_unlock();
}

/* Publication edge, see the file comment. */
#define rcu_publish_hb(p) HB_RELEASE(p)
#define rcu_observe_hb(p) HB_ACQUIRE(p)

/* First statement of every call_rcu callback. */
#define RCU_CALLBACK_ENTER() HB_ACQUIRE(&txkv_rcu_domain)
/* Last statement of a callback whose effects rcu_drain()'s caller relies on
 * (it frees memory the database accounts for, say). */
#define RCU_CALLBACK_EXIT() HB_RELEASE(&txkv_rcu_domain)

/*
 * Queue fn(head) to run after a grace period.  May be called inside or
 * outside a read-side section, from any thread.
 */
static inline void rcu_defer(struct rcu_head *head, void (*fn)(struct rcu_head *))
{
    rcu_thread_ensure();
    /* What the caller did to the object happens before the callback. */
    HB_RELEASE(&txkv_rcu_domain);
    urcu_memb_call_rcu(head, fn);
}

/* Wait for a grace period.  Must not be called inside a read-side section. */
void rcu_synchronize(void);

/* Wait until every callback queued so far has run (used by close). */
void rcu_drain(void);

/* The flavour to pass to cds_lfht_new_flavor(). */
#define TXKV_RCU_FLAVOR (&urcu_memb_flavor)

#endif /* TXKV_BASE_RCU_H */
