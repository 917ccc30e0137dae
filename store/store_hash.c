/* store_hash.c - SipHash-2-4 with 64-bit output, fed in pieces (pure).
 * Follows the reference implementation: 8-byte little-endian words, two
 * compression rounds per word, four finalisation rounds, the length's
 * low byte in the last word. */
#include "store_hash.h"

#include <string.h>

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t get_u64le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void sip_round(struct store_hash *h)
{
    h->v0 += h->v1;
    h->v1 = ROTL(h->v1, 13);
    h->v1 ^= h->v0;
    h->v0 = ROTL(h->v0, 32);
    h->v2 += h->v3;
    h->v3 = ROTL(h->v3, 16);
    h->v3 ^= h->v2;
    h->v0 += h->v3;
    h->v3 = ROTL(h->v3, 21);
    h->v3 ^= h->v0;
    h->v2 += h->v1;
    h->v1 = ROTL(h->v1, 17);
    h->v1 ^= h->v2;
    h->v2 = ROTL(h->v2, 32);
}

static void compress(struct store_hash *h, uint64_t m)
{
    h->v3 ^= m;
    sip_round(h);
    sip_round(h);
    h->v0 ^= m;
}

void store_hash_init(struct store_hash *h, const unsigned char key[16])
{
    uint64_t k0 = get_u64le(key), k1 = get_u64le(key + 8);
    h->v0 = k0 ^ 0x736f6d6570736575ULL;
    h->v1 = k1 ^ 0x646f72616e646f6dULL;
    h->v2 = k0 ^ 0x6c7967656e657261ULL;
    h->v3 = k1 ^ 0x7465646279746573ULL;
    h->buf_len = 0;
    h->total = 0;
}

void store_hash_update(struct store_hash *h, const void *p, size_t len)
{
    const unsigned char *in = p;
    if (!len)
        return; /* p may be NULL then */
    h->total += len;
    if (h->buf_len) {
        size_t take = 8 - h->buf_len < len ? 8 - h->buf_len : len;
        memcpy(h->buf + h->buf_len, in, take);
        h->buf_len += take;
        in += take;
        len -= take;
        if (h->buf_len < 8)
            return;
        compress(h, get_u64le(h->buf));
        h->buf_len = 0;
    }
    for (; len >= 8; in += 8, len -= 8)
        compress(h, get_u64le(in));
    memcpy(h->buf, in, len);
    h->buf_len = len;
}

uint64_t store_hash_final(struct store_hash *h)
{
    unsigned char last[8] = {0};
    memcpy(last, h->buf, h->buf_len);
    last[7] = (unsigned char)h->total;
    compress(h, get_u64le(last));
    h->v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(h);
    return h->v0 ^ h->v1 ^ h->v2 ^ h->v3;
}
