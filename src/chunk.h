/* Reading a Roaring bitmap chunk by chunk (65,536 values each) for the loops
 * that work on its containers directly: ANDing a bitset container's words
 * with plain bitsets, or ranking values without decoding them all.  CRoaring
 * 0.2 has its container types in its headers. */
#ifndef SY_CHUNK_H
#define SY_CHUNK_H

#include <roaring/containers/containers.h>
#include <roaring/roaring.h>

#define SY_CHUNK_WORDS 1024 /* 65,536 bits */

/* Before a function that counts bits in its loops: on x86-64, a second
 * copy of it built for CPUs with the popcnt instruction, chosen when the
 * program loads (the baseline's __builtin_popcountll is a library call).
 * Not under ThreadSanitizer: the clones' resolver runs before its runtime
 * starts and crashes the program. */
#if defined(__SANITIZE_THREAD__)
#define SY_NO_POPCNT_CLONES 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SY_NO_POPCNT_CLONES 1
#endif
#endif
#if defined(__x86_64__) && defined(__ELF__) && !defined(SY_NO_POPCNT_CLONES)
#define SY_POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define SY_POPCNT_CLONES
#endif

/* The container at position i of b's chunks and its type, a shared
 * (copy-on-write) container unwrapped. */
static inline const void *sy_chunk_at(const roaring_bitmap_t *b, int32_t i, uint8_t *type)
{
    const roaring_array_t *ra = &b->high_low_container;
    const void *c = ra->containers[i];
    uint8_t t = ra->typecodes[i];
    if (t == SHARED_CONTAINER_TYPE_CODE) {
        const shared_container_t *sc = c;
        t = sc->typecode;
        c = sc->container;
    }
    *type = t;
    return c;
}

#endif
