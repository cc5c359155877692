/*
 * handle.h - checkable handles to reused objects: a pointer tagged with the
 * object's generation.
 *
 * Layer: base.  Transactions and cursors are objects the library reuses (a
 * transaction object serves one transaction after another, src/txn/txn.c),
 * so a bare pointer kept after the transaction ended would name whatever
 * transaction uses the object next.  The handle the caller gets is instead
 * the object's address with the object's generation folded into bits the
 * address does not use: the low HANDLE_LOW_BITS (objects are HANDLE_ALIGN
 * aligned) and, on 64-bit targets, the top 16 (user-space addresses fit in
 * 48 bits on x86-64 and arm64 Linux; objects that do not are refused, see
 * handle_addr_ok).  An object bumps its generation when what the handle
 * named ends, so every handle issued before is stale: a call compares the
 * handle's generation with the object's and answers TXKV_INVALID.
 *
 * The aliasing window: generations wrap after 2^HANDLE_GEN_BITS (2^22 on
 * 64-bit, 64 on 32-bit) ends of one object, so a stale handle is mistaken
 * for a live one only if it is used after exactly a multiple of 2^22 later
 * transactions ran on that very object.  The check costs a mask and one
 * compare against a word on a cache line the call touches anyway; nothing
 * is written to memory other threads read.
 *
 * Objects behind handles are never freed while the database is open, so a
 * stale handle always points at memory the library owns.
 */
#ifndef TXKV_BASE_HANDLE_H
#define TXKV_BASE_HANDLE_H

#include <stdbool.h>
#include <stdint.h>

#define HANDLE_ALIGN    64
#define HANDLE_LOW_BITS 6
#if UINTPTR_MAX > 0xffffffffu
#define HANDLE_ADDR_BITS 48
#define HANDLE_HIGH_BITS 16
#else
#define HANDLE_ADDR_BITS 32
#define HANDLE_HIGH_BITS 0
#endif
#define HANDLE_GEN_BITS (HANDLE_LOW_BITS + HANDLE_HIGH_BITS)
#define HANDLE_GEN_MASK ((UINT32_C(1) << HANDLE_GEN_BITS) - 1)

/* Can p carry a tag?  HANDLE_ALIGN-aligned, within HANDLE_ADDR_BITS. */
static inline bool handle_addr_ok(const void *p)
{
    uintptr_t a = (uintptr_t)p;
#if HANDLE_HIGH_BITS
    if (a >> HANDLE_ADDR_BITS)
        return false;
#endif
    return (a & (HANDLE_ALIGN - 1)) == 0;
}

/* The next generation after gen (wraps within HANDLE_GEN_MASK). */
static inline uint32_t handle_gen_next(uint32_t gen)
{
    return (gen + 1) & HANDLE_GEN_MASK;
}

/* The handle of object p at generation gen.  p: handle_addr_ok. */
static inline uintptr_t handle_make(const void *p, uint32_t gen)
{
    uintptr_t h = (uintptr_t)p | (gen & (HANDLE_ALIGN - 1));
#if HANDLE_HIGH_BITS
    h |= (uintptr_t)(gen >> HANDLE_LOW_BITS) << HANDLE_ADDR_BITS;
#endif
    return h;
}

/* The object a handle names (NULL for a NULL handle). */
static inline void *handle_ptr(uintptr_t h)
{
    uintptr_t a = h & ~(uintptr_t)(HANDLE_ALIGN - 1);
#if HANDLE_HIGH_BITS
    a &= ((uintptr_t)1 << HANDLE_ADDR_BITS) - 1;
#endif
    return (void *)a;
}

/* The generation a handle carries. */
static inline uint32_t handle_gen(uintptr_t h)
{
    uint32_t g = (uint32_t)(h & (HANDLE_ALIGN - 1));
#if HANDLE_HIGH_BITS
    g |= (uint32_t)(h >> HANDLE_ADDR_BITS) << HANDLE_LOW_BITS;
#endif
    return g;
}

#endif /* TXKV_BASE_HANDLE_H */
