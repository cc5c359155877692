/*
 * rcu.c - hidden RCU thread registration.
 *
 * A thread is registered on its first read-side section (or call_rcu) and
 * unregistered by a pthread key destructor when it exits.  The key is
 * created once per process: RCU registration is process-wide by nature,
 * this is the library's only global state and it holds no data.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/rcu.h"

char txkv_rcu_domain;
__thread int txkv_rcu_registered;
#ifndef NDEBUG
__thread int txkv_rcu_depth;
#endif

static pthread_key_t rcu_key;
static pthread_once_t rcu_key_once = PTHREAD_ONCE_INIT;

static void rcu_thread_exit(void *arg)
{
    (void)arg;
    if (txkv_rcu_registered) {
        txkv_rcu_registered = 0;
        urcu_memb_unregister_thread();
    }
}

static void rcu_key_create(void)
{
    if (pthread_key_create(&rcu_key, rcu_thread_exit) != 0) {
        fputs("txkv: pthread_key_create failed\n", stderr);
        abort();
    }
}

void rcu_thread_register_slow(void)
{
    pthread_once(&rcu_key_once, rcu_key_create);
    urcu_memb_register_thread();
    txkv_rcu_registered = 1;
    /* Any non-NULL value makes the destructor run at thread exit. */
    pthread_setspecific(rcu_key, &txkv_rcu_registered);
}

void rcu_synchronize(void)
{
    assert(!rcu_reading()); /* a grace period inside a section never ends */
    rcu_thread_ensure();
    urcu_memb_synchronize_rcu();
    HB_ACQUIRE(&txkv_rcu_domain);
}

void rcu_drain(void)
{
    assert(!rcu_reading());
    rcu_thread_ensure();
    urcu_memb_barrier();
    HB_ACQUIRE(&txkv_rcu_domain);
}
