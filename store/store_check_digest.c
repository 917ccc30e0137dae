/* store_check_digest.c - the digest of a store's replicated state: a
 * SipHash-2-4 (store_hash.c, fixed key 00..0f) of the fields listed in
 * docs/store-format.md ("Check and digest"), fed by the check in the
 * state's own order. Encoding: a tag byte before each record, integers
 * little endian at fixed width, byte strings with a u64 length first, so
 * that no two states feed the same bytes.
 *
 * What is left out, and why: the applied index (no-op and configuration
 * entries move it without changing the state: members that hold the same
 * state at different indexes must agree), and everything member-local:
 * the identity, the Raft log and hard state, snapshot files, LMDB's
 * layout, and the root's times, uid and gid (below). */
#include "store_check_internal.h"

#define DIGEST_VERSION 3U /* 2: a session's txn outcome, leases; 3: access control */

/* The key: fixed, so that every member hashes alike. */
static const unsigned char digest_key[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static void d_bytes(struct store_checker *c, const void *p, size_t len)
{
    store_hash_update(&c->digest, p, len);
}

static void d_u8(struct store_checker *c, uint8_t v)
{
    d_bytes(c, &v, 1);
}

static void d_u32(struct store_checker *c, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    d_bytes(c, b, 4);
}

static void d_u64(struct store_checker *c, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    d_bytes(c, b, 8);
}

static void d_str(struct store_checker *c, const void *p, size_t len)
{
    d_u64(c, len);
    d_bytes(c, p, len);
}

/* An entry's attributes. The root is made by each member on its own
 * (store_env.c), with its clock's time and its process's uid and gid,
 * which commands change only in part (a new entry sets mtime and ctime,
 * SETATTR what it names): those five fields of the root are member-local
 * and hashed as 0. */
static void d_attr(struct store_checker *c, const struct store_attr *a, bool local)
{
    d_u8(c, (uint8_t)a->type);
    d_u32(c, a->mode);
    d_u32(c, local ? 0 : a->uid);
    d_u32(c, local ? 0 : a->gid);
    d_u64(c, a->size);
    d_u32(c, a->nlink);
    d_u64(c, local ? 0 : (uint64_t)a->atime_ns);
    d_u64(c, local ? 0 : (uint64_t)a->mtime_ns);
    d_u64(c, local ? 0 : (uint64_t)a->ctime_ns);
    d_u64(c, a->create_revision);
    d_u64(c, a->mod_revision);
    d_u64(c, a->version);
    d_u64(c, a->ino);
}

void store_digest_entry(struct store_checker *c, const char *path, size_t path_len,
                        const struct store_attr *a, const void *value, size_t value_len)
{
    d_u8(c, 'E');
    d_str(c, path, path_len);
    d_attr(c, a, a->ino == STORE_ROOT_INO);
    if (a->type == STORE_TYPE_FILE)
        d_str(c, value, value_len);
}

void store_digest_session(struct store_checker *c, uint64_t client_id,
                          const struct store_session *sess)
{
    d_u8(c, 'S');
    d_u64(c, client_id);
    d_u64(c, sess->seq);
    d_u64(c, sess->index);
    d_u32(c, (uint32_t)sess->result.err);
    d_u64(c, sess->result.revision);
    d_u8(c, sess->result.txn_succeeded);
    d_u32(c, sess->result.txn_failed_op);
    d_u8(c, sess->result.has_attr);
    /* A session's attributes carry no inode number (the record has none):
     * the root's are those created at revision 0, as no command creates
     * at revision 0. */
    if (sess->result.has_attr)
        d_attr(c, &sess->result.attr, sess->result.attr.create_revision == 0);
}

void store_digest_init(struct store_checker *c)
{
    store_hash_init(&c->digest, digest_key);
    d_bytes(c, "raftfs-digest", 13);
    d_u32(c, DIGEST_VERSION);
}

/* The limits (every member must judge commands alike) and the counters of
 * the state record but the applied index. */
void store_digest_state(struct store_checker *c)
{
    d_u8(c, 'L');
    d_u32(c, c->lim.max_value_bytes);
    d_u32(c, c->lim.max_name_bytes);
    d_u32(c, c->lim.max_path_bytes);
    d_u8(c, 'R');
    d_u64(c, c->st.revision);
    d_u64(c, c->st.next_ino);
    d_u64(c, c->st.inodes);
}

void store_digest_member(struct store_checker *c, uint64_t id, const char *addr, size_t addr_len,
                         uint64_t incarnation)
{
    d_u8(c, 'M');
    d_u64(c, id);
    d_str(c, addr, addr_len);
    d_u64(c, incarnation);
}

void store_digest_lease(struct store_checker *c, uint64_t id, uint64_t ttl_ms)
{
    d_u8(c, 'K');
    d_u64(c, id);
    d_u64(c, ttl_ms);
}

void store_digest_lease_file(struct store_checker *c, uint64_t ino, uint64_t id)
{
    d_u8(c, 'F');
    d_u64(c, ino);
    d_u64(c, id);
}

/* An access-control record as stored: apply writes it deterministically. */
void store_digest_auth(struct store_checker *c, const void *key, size_t klen, const void *val,
                       size_t vlen)
{
    d_u8(c, 'A');
    d_str(c, key, klen);
    d_str(c, val, vlen);
}

uint64_t store_digest_final(struct store_checker *c)
{
    return store_hash_final(&c->digest);
}
