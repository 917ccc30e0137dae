/* raft/conf.c: pure helpers on struct raft_conf: membership tests, validation, wire encoding. */
#include "conf.h"

#include <stdio.h>
#include <string.h>

#define CONF_ENCODING_VERSION 1

bool raft_conf_set_has(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

bool raft_conf_is_voter(const struct raft_conf *c, uint64_t id)
{
    return raft_conf_set_has(c->voters, c->n_voters, id) ||
           raft_conf_set_has(c->voters_old, c->n_voters_old, id);
}

bool raft_conf_is_learner(const struct raft_conf *c, uint64_t id)
{
    return !raft_conf_is_voter(c, id) && raft_conf_set_has(c->learners, c->n_learners, id);
}

bool raft_conf_is_joint(const struct raft_conf *c)
{
    return c->n_voters_old > 0;
}

bool raft_conf_is_member(const struct raft_conf *c, uint64_t id)
{
    return raft_conf_is_voter(c, id) || raft_conf_set_has(c->learners, c->n_learners, id);
}

static bool set_valid(const uint64_t *ids, uint32_t n)
{
    if (n > RAFT_CONF_MAX) {
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == 0 || raft_conf_set_has(ids, i, ids[i])) {
            return false;
        }
    }
    return true;
}

bool raft_conf_valid(const struct raft_conf *c, bool allow_empty)
{
    if (!set_valid(c->voters, c->n_voters) || !set_valid(c->voters_old, c->n_voters_old) ||
        !set_valid(c->learners, c->n_learners)) {
        return false;
    }
    if (c->n_voters == 0 && (!allow_empty || c->n_voters_old > 0 || c->n_learners > 0)) {
        return false;
    }
    for (uint32_t i = 0; i < c->n_learners; i++) {
        if (raft_conf_set_has(c->voters, c->n_voters, c->learners[i])) {
            return false;
        }
    }
    return true;
}

bool raft_conf_set_equal(const uint64_t *a, uint32_t na, const uint64_t *b, uint32_t nb)
{
    if (na != nb) {
        return false;
    }
    for (uint32_t i = 0; i < na; i++) {
        if (!raft_conf_set_has(b, nb, a[i])) {
            return false;
        }
    }
    return true;
}

bool raft_conf_equal(const struct raft_conf *a, const struct raft_conf *b)
{
    return raft_conf_set_equal(a->voters, a->n_voters, b->voters, b->n_voters) &&
           raft_conf_set_equal(a->voters_old, a->n_voters_old, b->voters_old, b->n_voters_old) &&
           raft_conf_set_equal(a->learners, a->n_learners, b->learners, b->n_learners);
}

uint32_t raft_conf_all_ids(const struct raft_conf *c, uint64_t *ids)
{
    uint32_t n = 0;
    const uint64_t *sets[3] = {c->voters, c->voters_old, c->learners};
    uint32_t lens[3] = {c->n_voters, c->n_voters_old, c->n_learners};
    for (int s = 0; s < 3; s++) {
        for (uint32_t i = 0; i < lens[s]; i++) {
            if (!raft_conf_set_has(ids, n, sets[s][i])) {
                ids[n++] = sets[s][i];
            }
        }
    }
    return n;
}

static size_t format_set(char *buf, size_t len, const char *name, const uint64_t *ids, uint32_t n)
{
    size_t used = 0;
    int w = snprintf(buf, len, "%s=[", name);
    used += w > 0 ? (size_t)w : 0;
    for (uint32_t i = 0; i < n && used < len; i++) {
        w = snprintf(buf + used, len - used, "%s%llu", i ? "," : "", (unsigned long long)ids[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    if (used < len) {
        w = snprintf(buf + used, len - used, "]");
        used += w > 0 ? (size_t)w : 0;
    }
    return used;
}

void raft_conf_format(const struct raft_conf *c, char *buf, size_t len)
{
    size_t used = format_set(buf, len, "v", c->voters, c->n_voters);
    if (c->n_voters_old > 0 && used + 1 < len) {
        buf[used++] = ' ';
        used += format_set(buf + used, len - used, "old", c->voters_old, c->n_voters_old);
    }
    if (c->n_learners > 0 && used + 1 < len) {
        buf[used++] = ' ';
        format_set(buf + used, len - used, "l", c->learners, c->n_learners);
    }
}

/* Encoding: u8 version, u8 n_voters, u8 n_voters_old, u8 n_learners, then every id as a
 * little-endian u64 in that order. */
size_t raft_conf_encoded_size(const struct raft_conf *c)
{
    return 4 + 8 * ((size_t)c->n_voters + c->n_voters_old + c->n_learners);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

void raft_conf_encode(const struct raft_conf *c, uint8_t *buf)
{
    buf[0] = CONF_ENCODING_VERSION;
    buf[1] = (uint8_t)c->n_voters;
    buf[2] = (uint8_t)c->n_voters_old;
    buf[3] = (uint8_t)c->n_learners;
    uint8_t *p = buf + 4;
    for (uint32_t i = 0; i < c->n_voters; i++, p += 8) {
        put_u64(p, c->voters[i]);
    }
    for (uint32_t i = 0; i < c->n_voters_old; i++, p += 8) {
        put_u64(p, c->voters_old[i]);
    }
    for (uint32_t i = 0; i < c->n_learners; i++, p += 8) {
        put_u64(p, c->learners[i]);
    }
}

int raft_conf_decode(const uint8_t *buf, size_t len, struct raft_conf *out)
{
    memset(out, 0, sizeof(*out));
    if (buf == NULL || len < 4 || buf[0] != CONF_ENCODING_VERSION || buf[1] > RAFT_CONF_MAX ||
        buf[2] > RAFT_CONF_MAX || buf[3] > RAFT_CONF_MAX) {
        return RAFT_ECORRUPT;
    }
    out->n_voters = buf[1];
    out->n_voters_old = buf[2];
    out->n_learners = buf[3];
    if (len != raft_conf_encoded_size(out)) {
        memset(out, 0, sizeof(*out));
        return RAFT_ECORRUPT;
    }
    const uint8_t *p = buf + 4;
    for (uint32_t i = 0; i < out->n_voters; i++, p += 8) {
        out->voters[i] = get_u64(p);
    }
    for (uint32_t i = 0; i < out->n_voters_old; i++, p += 8) {
        out->voters_old[i] = get_u64(p);
    }
    for (uint32_t i = 0; i < out->n_learners; i++, p += 8) {
        out->learners[i] = get_u64(p);
    }
    if (!raft_conf_valid(out, false)) {
        memset(out, 0, sizeof(*out));
        return RAFT_ECORRUPT;
    }
    return 0;
}
