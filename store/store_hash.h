/* store_hash.h - SipHash-2-4 (64-bit output), streaming (pure): the hash of
 * the state digest (store_check.c). Not for secrets: the key is fixed.
 *
 * SipHash (Aumasson and Bernstein, 2012) is a 64-bit keyed hash with good
 * mixing; here it only has to make two different states print different
 * digests with overwhelming probability. */
#ifndef RAFTFS_STORE_HASH_H
#define RAFTFS_STORE_HASH_H

#include <stddef.h>
#include <stdint.h>

struct store_hash {
    uint64_t v0, v1, v2, v3;
    unsigned char buf[8]; /* bytes not yet compressed */
    size_t buf_len;
    uint64_t total; /* bytes hashed so far */
};

/* Starts a hash with a 16-byte key. */
void store_hash_init(struct store_hash *h, const unsigned char key[16]);

/* Adds len bytes of p (any split of the input gives the same result). */
void store_hash_update(struct store_hash *h, const void *p, size_t len);

/* The hash of everything added; h must not be updated afterwards. */
uint64_t store_hash_final(struct store_hash *h);

#endif
