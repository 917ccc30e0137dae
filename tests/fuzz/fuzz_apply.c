/* fuzz_apply.c - store_apply_batch (store/store_apply.c) on sequences of
 * commands, each checked against a reference model of the tree kept here.
 *
 * The input is read as a program: each step builds one command (PUT,
 * APPEND, DELETE, MKDIR, RMDIR, RENAME, SETATTR, TXN, LEASE_GRANT,
 * LEASE_REVOKE, MEMBER_SET, MEMBER_DEL) from a few bytes, with paths made
 * of a small alphabet of names so that they collide, or takes raw bytes as
 * a command; a no-op entry, a re-applied (skipped) index or the end of a
 * batch are steps too. Every command is encoded, decoded again, and the
 * decoded command is what the model runs: so raw bytes that happen to
 * decode are modelled as well, and bytes that do not must fail with the
 * decoder's errno and change nothing.
 *
 * For every command the store's result must match the model's: errno
 * (the store.h table, in the order store_apply.c checks it), the
 * revision after it, a duplicate (client_id, seq), a txn's branch and
 * failing position, and the returned attributes. After the last batch the
 * whole tree is walked (store_list, store_getattr, store_read,
 * store_file_lease) and compared with the model, with the leases
 * (store_leases), the member directory (store_members) and the stats.
 *
 * Modelled: the tree (types, values, inode numbers, nlink, mode, uid,
 * gid, the three times, version, create and mod revisions), the global
 * revision (one per command that changed the tree), compares
 * (expected_revision, expected_ino, txn compares), leases and the files
 * they hold (revoke deletes them), exactly-once sessions, the member
 * directory, lazy apply with deferred batches (store_apply_batch_decided).
 * Left out: the change history (store_events: covered by
 * test_store_history and test_store_txn), the observer callbacks, session
 * eviction at STORE_MAX_SESSIONS (needs 65536 clients), and running out
 * of map space (the map is far larger than an input can fill).
 *
 * The store is opened once per input in a directory on tmpfs made once
 * per process (a fresh store_open costs about a millisecond there), with
 * small limits so that EFBIG and ENAMETOOLONG are reachable.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_input.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_VALUE   32U
#define MAX_NAME    8U
#define MAX_PATH    24U
#define MAX_STEPS   64
#define MAX_SUB     4 /* commands per txn branch, compares per txn */
#define MAX_NODES   (MAX_STEPS * MAX_SUB + 2)
#define MAX_LEASES  4 /* ids 0..3 (0 is refused) */
#define MAX_MEMBERS 4 /* ids 0..3 (0 is refused) */
#define MAX_CLIENTS 3
/* Renames nest subtrees: paths outgrow MAX_PATH, up to a name per
 * directory the input can make. */
#define PATH_CAP (MAX_NODES * (MAX_NAME + 1) + 1)

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_apply: " __VA_ARGS__);                                               \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* ---- the reference model ---- */

struct mnode {
    char path[PATH_CAP];
    size_t plen;
    bool dir;
    uint8_t val[MAX_VALUE];
    size_t vlen;
    uint64_t ino, version, crev, mrev, lease;
    uint32_t mode, uid, gid;
    int64_t atime, mtime, ctime;
};

struct mlease {
    uint64_t id, ttl;
};

struct mmember {
    uint64_t id, incarnation;
    char addr[STORE_MAX_ADDR_BYTES];
    size_t len;
};

struct msession {
    uint64_t client, seq;
    struct store_result res;
};

struct model {
    struct mnode nodes[MAX_NODES]; /* nodes[0] is the root */
    size_t n;
    struct mlease leases[MAX_LEASES];
    size_t n_leases;
    struct mmember members[MAX_MEMBERS];
    size_t n_members;
    struct msession sessions[MAX_CLIENTS];
    size_t n_sessions;
    uint64_t rev, next_ino;
};

static const struct store_limits limits = {MAX_VALUE, MAX_NAME, MAX_PATH};

static struct mnode *m_find(struct model *m, const char *p, size_t len)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->nodes[i].plen == len && !memcmp(m->nodes[i].path, p, len))
            return &m->nodes[i];
    return NULL;
}

/* Is p (len) below the node path anc, or anc itself? */
static bool m_within(const char *p, size_t len, const char *anc, size_t alen)
{
    if (alen == 1)
        return true; /* the root */
    return len >= alen && !memcmp(p, anc, alen) && (len == alen || p[alen] == '/');
}

static size_t m_parent_len(const char *p, size_t len)
{
    size_t i = len;
    while (i > 0 && p[i - 1] != '/')
        i--;
    return i == 1 ? 1 : i - 1;
}

static struct mnode *m_parent(struct model *m, const struct mnode *nd)
{
    return m_find(m, nd->path, m_parent_len(nd->path, nd->plen));
}

static uint32_t m_nlink(struct model *m, const struct mnode *nd)
{
    if (!nd->dir)
        return 1;
    uint32_t n = 2;
    for (size_t i = 1; i < m->n; i++) {
        const struct mnode *c = &m->nodes[i];
        if (c->dir && c != nd && m_parent_len(c->path, c->plen) == nd->plen &&
            !memcmp(c->path, nd->path, nd->plen))
            n++;
    }
    return n;
}

static bool m_dir_empty(struct model *m, const struct mnode *d)
{
    for (size_t i = 1; i < m->n; i++)
        if (&m->nodes[i] != d && m_within(m->nodes[i].path, m->nodes[i].plen, d->path, d->plen))
            return false;
    return true;
}

static void m_remove(struct model *m, struct mnode *nd)
{
    *nd = m->nodes[--m->n];
}

/* What store_apply.c calls a place: the parent of a (checked, non-root)
 * path, and the entry if there is one. */
struct mplace {
    struct mnode *parent, *node;
    const char *name;
    size_t name_len;
};

/* Walks to the parent of path: ENOENT for a missing component, ENOTDIR
 * for one that is a file (the parent itself included). */
static int m_place(struct model *m, const char *p, size_t len, struct mplace *pl)
{
    size_t plen = m_parent_len(p, len);
    struct mnode *cur = &m->nodes[0];
    size_t i = 1;
    while (i < plen) {
        if (!cur->dir)
            return ENOTDIR;
        const char *end = memchr(p + i, '/', plen - i);
        size_t n = end ? (size_t)(end - p) : plen;
        cur = m_find(m, p, n);
        if (!cur)
            return ENOENT;
        i = n + 1;
    }
    if (!cur->dir)
        return ENOTDIR;
    pl->parent = cur;
    pl->name = p + (plen == 1 ? 1 : plen + 1);
    pl->name_len = len - (size_t)(pl->name - p);
    pl->node = m_find(m, p, len);
    return 0;
}

static bool m_reserved(const struct mplace *pl)
{
    return pl->parent->plen == 1 && pl->name_len == sizeof(STORE_RESERVED_NAME) - 1 &&
           !memcmp(pl->name, STORE_RESERVED_NAME, pl->name_len);
}

static bool m_is_root(const char *p, size_t len)
{
    return len == 1 && p[0] == '/';
}

static int m_compare(const struct store_cmd *c, const struct mnode *nd)
{
    if (c->has_expected_revision) {
        if (c->expected_revision == 0) {
            if (nd)
                return STORE_ECONFLICT;
        } else if (!nd || nd->mrev != c->expected_revision) {
            return STORE_ECONFLICT;
        }
    }
    if (c->has_expected_ino && (!nd || nd->ino != c->expected_ino))
        return STORE_ECONFLICT;
    return 0;
}

static void m_touch(const struct store_cmd *c, uint64_t rev, struct mnode *nd, bool content)
{
    nd->ctime = c->time_ns;
    if (content)
        nd->mtime = c->time_ns;
    nd->mrev = rev;
    nd->version++;
}

static bool m_lease_exists(struct model *m, uint64_t id)
{
    for (size_t i = 0; i < m->n_leases; i++)
        if (m->leases[i].id == id)
            return true;
    return false;
}

/* Pointers into m->nodes move when a node is removed: callers re-find. */
static struct mnode *m_new(struct model *m, const struct store_cmd *c, uint64_t rev,
                           const struct mplace *pl, bool dir)
{
    if (m->n == MAX_NODES)
        FAIL("model full");
    struct mnode *nd = &m->nodes[m->n++];
    memset(nd, 0, sizeof(*nd));
    const struct mnode *parent = pl->parent;
    memcpy(nd->path, parent->path, parent->plen);
    nd->plen = parent->plen;
    if (parent->plen > 1)
        nd->path[nd->plen++] = '/';
    memcpy(nd->path + nd->plen, pl->name, pl->name_len);
    nd->plen += pl->name_len;
    nd->dir = dir;
    nd->ino = m->next_ino++;
    nd->mode = (c->mode & 07777) | (dir ? S_IFDIR : S_IFREG);
    nd->uid = c->uid;
    nd->gid = c->gid;
    nd->atime = nd->mtime = nd->ctime = c->time_ns;
    nd->crev = nd->mrev = rev;
    nd->version = 1;
    return nd;
}

/* Common start of PUT, APPEND, DELETE, RMDIR, MKDIR. */
static int m_target(struct model *m, const struct store_cmd *c, int root_err, struct mplace *pl)
{
    int err = store_path_check(c->path, c->path_len, &limits);
    if (err)
        return err;
    if (m_is_root(c->path, c->path_len))
        return root_err;
    if ((err = m_place(m, c->path, c->path_len, pl)))
        return err;
    return m_compare(c, pl->node);
}

/* Applies tree, lease or member command c at revision rev; *changed when
 * it changed the tree. */
static int m_op(struct model *m, const struct store_cmd *c, uint64_t rev, bool *changed);

static int m_put(struct model *m, const struct store_cmd *c, uint64_t rev, bool append)
{
    struct mplace pl;
    int err = m_target(m, c, EISDIR, &pl);
    if (err)
        return err;
    if (append) {
        if (!pl.node)
            return ENOENT;
        if (pl.node->dir)
            return EISDIR;
        if (c->value_len > MAX_VALUE || pl.node->vlen + c->value_len > MAX_VALUE)
            return EFBIG;
        memcpy(pl.node->val + pl.node->vlen, c->value, c->value_len);
        pl.node->vlen += c->value_len;
        m_touch(c, rev, pl.node, true);
        return 0;
    }
    if (c->value_len > MAX_VALUE)
        return EFBIG;
    if (pl.node && pl.node->dir)
        return EISDIR;
    if (!pl.node && m_reserved(&pl))
        return EPERM;
    if (c->has_lease && c->lease && !m_lease_exists(m, c->lease))
        return ENOKEY;
    struct mnode *nd = pl.node;
    if (nd) {
        m_touch(c, rev, nd, true);
    } else {
        m_touch(c, rev, pl.parent, true);
        nd = m_new(m, c, rev, &pl, false);
    }
    memcpy(nd->val, c->value, c->value_len);
    nd->vlen = c->value_len;
    if (c->has_lease)
        nd->lease = c->lease;
    return 0;
}

static int m_delete(struct model *m, const struct store_cmd *c, uint64_t rev, bool dir)
{
    struct mplace pl;
    int err = m_target(m, c, dir ? EBUSY : EISDIR, &pl);
    if (err)
        return err;
    if (!pl.node)
        return ENOENT;
    if (dir && !pl.node->dir)
        return ENOTDIR;
    if (!dir && pl.node->dir)
        return EISDIR;
    if (dir && !m_dir_empty(m, pl.node))
        return ENOTEMPTY;
    m_touch(c, rev, pl.parent, true);
    m_remove(m, pl.node);
    return 0;
}

static int m_mkdir(struct model *m, const struct store_cmd *c, uint64_t rev)
{
    struct mplace pl;
    int err = m_target(m, c, EEXIST, &pl);
    if (err)
        return err;
    if (pl.node)
        return EEXIST;
    if (m_reserved(&pl))
        return EPERM;
    m_touch(c, rev, pl.parent, true);
    m_new(m, c, rev, &pl, true);
    return 0;
}

/* Re-roots every path in the subtree at (from, flen) to (to, tlen); with
 * swap, the subtree at (to, tlen) goes to (from, flen) at the same time. */
static void m_move(struct model *m, const char *from, size_t flen, const char *to, size_t tlen,
                   bool swap)
{
    char f[PATH_CAP], t[PATH_CAP];
    memcpy(f, from, flen);
    memcpy(t, to, tlen);
    for (size_t i = 1; i < m->n; i++) {
        struct mnode *nd = &m->nodes[i];
        const char *np;
        size_t nlen, olen;
        if (m_within(nd->path, nd->plen, f, flen)) {
            np = t, nlen = tlen, olen = flen;
        } else if (swap && m_within(nd->path, nd->plen, t, tlen)) {
            np = f, nlen = flen, olen = tlen;
        } else {
            continue;
        }
        size_t rest = nd->plen - olen;
        if (nlen + rest > PATH_CAP)
            FAIL("model path too long");
        memmove(nd->path + nlen, nd->path + olen, rest);
        memcpy(nd->path, np, nlen);
        nd->plen = nlen + rest;
    }
}

static int m_rename(struct model *m, const struct store_cmd *c, uint64_t rev, bool *changed)
{
    uint32_t fl = c->rename_flags;
    if (fl & ~(STORE_RENAME_NOREPLACE | STORE_RENAME_EXCHANGE) ||
        fl == (STORE_RENAME_NOREPLACE | STORE_RENAME_EXCHANGE))
        return EINVAL;
    int err;
    if ((err = store_path_check(c->path, c->path_len, &limits)) ||
        (err = store_path_check(c->path2, c->path2_len, &limits)))
        return err;
    if (m_is_root(c->path, c->path_len) || m_is_root(c->path2, c->path2_len))
        return EBUSY;
    struct mplace from, to;
    if ((err = m_place(m, c->path, c->path_len, &from)))
        return err;
    if ((err = m_compare(c, from.node)))
        return err;
    if (!from.node)
        return ENOENT;
    if ((err = m_place(m, c->path2, c->path2_len, &to)))
        return err;
    bool exchange = fl & STORE_RENAME_EXCHANGE;
    if (to.node == from.node)
        return fl & STORE_RENAME_NOREPLACE ? EEXIST : 0;
    if (to.node && (fl & STORE_RENAME_NOREPLACE))
        return EEXIST;
    if (exchange && !to.node)
        return ENOENT;
    if (!to.node && m_reserved(&to))
        return EPERM;
    if (from.node->dir &&
        m_within(to.parent->path, to.parent->plen, from.node->path, from.node->plen))
        return EINVAL;
    if (exchange && to.node->dir &&
        m_within(from.parent->path, from.parent->plen, to.node->path, to.node->plen))
        return EINVAL;
    if (to.node && !exchange) {
        if (from.node->dir && !to.node->dir)
            return ENOTDIR;
        if (!from.node->dir && to.node->dir)
            return EISDIR;
        if (to.node->dir && !m_dir_empty(m, to.node))
            return ENOTEMPTY;
    }
    *changed = true;
    m_touch(c, rev, from.parent, true);
    if (to.parent != from.parent)
        m_touch(c, rev, to.parent, true);
    m_touch(c, rev, from.node, false);
    if (exchange)
        m_touch(c, rev, to.node, false);
    char fp[PATH_CAP];
    size_t flen = from.node->plen;
    memcpy(fp, from.node->path, flen);
    if (to.node && !exchange)
        m_remove(m, to.node); /* may move from.node: use the copy of its path */
    m_move(m, fp, flen, c->path2, c->path2_len, exchange);
    return 0;
}

static int m_setattr(struct model *m, const struct store_cmd *c, uint64_t rev)
{
    int err = store_path_check(c->path, c->path_len, &limits);
    if (err)
        return err;
    if (c->set_mask & ~(STORE_SET_MODE | STORE_SET_UID | STORE_SET_GID | STORE_SET_SIZE |
                        STORE_SET_ATIME | STORE_SET_MTIME | STORE_SET_LEASE))
        return EINVAL;
    struct mnode *nd;
    if (m_is_root(c->path, c->path_len)) {
        nd = &m->nodes[0];
    } else {
        struct mplace pl;
        if ((err = m_place(m, c->path, c->path_len, &pl)))
            return err;
        nd = pl.node;
    }
    if ((err = m_compare(c, nd)))
        return err;
    if (!nd)
        return ENOENT;
    bool sized = c->set_mask & STORE_SET_SIZE, leased = c->set_mask & STORE_SET_LEASE;
    if (sized && nd->dir)
        return EISDIR;
    if (sized && c->size > MAX_VALUE)
        return EFBIG;
    if (leased && nd->dir)
        return EISDIR;
    if (leased && c->lease && !m_lease_exists(m, c->lease))
        return ENOKEY;
    if (sized) {
        if (c->size > nd->vlen)
            memset(nd->val + nd->vlen, 0, (size_t)c->size - nd->vlen);
        nd->vlen = (size_t)c->size;
    }
    m_touch(c, rev, nd, sized);
    if (c->set_mask & STORE_SET_MODE)
        nd->mode = (nd->mode & S_IFMT) | (c->mode & 07777);
    if (c->set_mask & STORE_SET_UID)
        nd->uid = c->uid;
    if (c->set_mask & STORE_SET_GID)
        nd->gid = c->gid;
    if (c->set_mask & STORE_SET_ATIME)
        nd->atime = c->atime_ns;
    if (c->set_mask & STORE_SET_MTIME)
        nd->mtime = c->mtime_ns;
    if (leased)
        nd->lease = c->lease;
    return 0;
}

static int m_member(struct model *m, const struct store_cmd *c, bool set)
{
    if (!c->member_id)
        return EINVAL;
    struct mmember *mb = NULL;
    for (size_t i = 0; i < m->n_members; i++)
        if (m->members[i].id == c->member_id)
            mb = &m->members[i];
    if (!set) {
        if (!mb)
            return ENOENT;
        *mb = m->members[--m->n_members];
        return 0;
    }
    if (c->path_len == 0 || c->path_len > STORE_MAX_ADDR_BYTES || memchr(c->path, 0, c->path_len))
        return EINVAL;
    if (c->incarnation && mb && mb->incarnation && mb->incarnation != c->incarnation)
        return EEXIST;
    if (!mb)
        mb = &m->members[m->n_members++];
    mb->id = c->member_id;
    mb->incarnation = c->incarnation;
    memcpy(mb->addr, c->path, c->path_len);
    mb->len = c->path_len;
    return 0;
}

static bool m_cmp_result(enum store_cmp_result want, int order)
{
    switch (want) {
    case STORE_CMP_EQUAL:
        return order == 0;
    case STORE_CMP_NOT_EQUAL:
        return order != 0;
    case STORE_CMP_GREATER:
        return order > 0;
    case STORE_CMP_LESS:
        return order < 0;
    }
    return false;
}

static int m_holds(struct model *m, const struct store_compare *k, bool *holds)
{
    *holds = false;
    int err = store_path_check(k->path, k->path_len, &limits);
    if (err)
        return err;
    struct mnode *nd = NULL;
    if (m_is_root(k->path, k->path_len)) {
        nd = &m->nodes[0];
    } else {
        struct mplace pl;
        if (!m_place(m, k->path, k->path_len, &pl))
            nd = pl.node;
    }
    if (k->target == STORE_CMP_VALUE) {
        if (!nd || nd->dir)
            return 0;
        size_t n = nd->vlen < k->value_len ? nd->vlen : k->value_len;
        int order = n ? memcmp(nd->val, k->value, n) : 0;
        if (!order)
            order = nd->vlen < k->value_len ? -1 : nd->vlen > k->value_len;
        *holds = m_cmp_result(k->result, order);
        return 0;
    }
    uint64_t have = !nd                                      ? 0
                    : k->target == STORE_CMP_VERSION         ? nd->version
                    : k->target == STORE_CMP_CREATE_REVISION ? nd->crev
                                                             : nd->mrev;
    *holds = m_cmp_result(k->result, have < k->number ? -1 : have > k->number);
    return 0;
}

/* A txn's branch (or a revoke's deletes): all or nothing. */
static int m_ops(struct model *m, const struct store_cmd *ops, size_t n, uint64_t rev,
                 bool *changed, uint32_t *failed)
{
    struct model *save = malloc(sizeof(*save));
    if (!save)
        abort();
    memcpy(save, m, sizeof(*m));
    int err = 0;
    for (size_t i = 0; i < n && !err; i++) {
        if ((err = m_op(m, &ops[i], rev, changed)))
            *failed = (uint32_t)i + 1;
    }
    if (err) {
        memcpy(m, save, sizeof(*m));
        *changed = false;
    }
    free(save);
    return err;
}

static int m_revoke(struct model *m, const struct store_cmd *c, uint64_t rev, bool *changed)
{
    size_t li;
    for (li = 0; li < m->n_leases && m->leases[li].id != c->lease; li++)
        ;
    if (li == m->n_leases)
        return ENOKEY;
    for (size_t i = 1; i < m->n;) {
        struct mnode *nd = &m->nodes[i];
        if (nd->dir || nd->lease != c->lease) {
            i++;
            continue;
        }
        m_touch(c, rev, m_parent(m, nd), true);
        m_remove(m, nd);
        *changed = true;
    }
    m->leases[li] = m->leases[--m->n_leases];
    return 0;
}

static int m_op(struct model *m, const struct store_cmd *c, uint64_t rev, bool *changed)
{
    int err;
    switch (c->op) {
    case STORE_OP_PUT:
    case STORE_OP_APPEND:
        err = m_put(m, c, rev, c->op == STORE_OP_APPEND);
        break;
    case STORE_OP_DELETE:
    case STORE_OP_RMDIR:
        err = m_delete(m, c, rev, c->op == STORE_OP_RMDIR);
        break;
    case STORE_OP_MKDIR:
        err = m_mkdir(m, c, rev);
        break;
    case STORE_OP_RENAME:
        return m_rename(m, c, rev, changed);
    case STORE_OP_SETATTR:
        err = m_setattr(m, c, rev);
        break;
    case STORE_OP_MEMBER_SET:
    case STORE_OP_MEMBER_DEL:
        return m_member(m, c, c->op == STORE_OP_MEMBER_SET);
    case STORE_OP_LEASE_GRANT:
        if (!c->lease || !c->ttl_ms || c->ttl_ms > STORE_LEASE_TTL_MAX_MS)
            return EINVAL;
        if (m_lease_exists(m, c->lease))
            return EEXIST;
        m->leases[m->n_leases++] = (struct mlease){c->lease, c->ttl_ms};
        return 0;
    case STORE_OP_LEASE_REVOKE:
        return m_revoke(m, c, rev, changed);
    default:
        return EINVAL;
    }
    if (!err)
        *changed = true;
    return err;
}

/* The attributes the store should report for nd. */
static void m_attr(struct model *m, const struct mnode *nd, struct store_attr *a)
{
    const struct mnode *parent = nd == &m->nodes[0] ? nd : m_parent(m, nd);
    memset(a, 0, sizeof(*a));
    a->ino = nd->ino;
    a->type = nd->dir ? STORE_TYPE_DIR : STORE_TYPE_FILE;
    a->mode = nd->mode;
    a->uid = nd->uid;
    a->gid = nd->gid;
    a->nlink = m_nlink(m, nd);
    a->size = nd->dir ? 0 : nd->vlen;
    a->atime_ns = nd->atime;
    a->mtime_ns = nd->mtime;
    a->ctime_ns = nd->ctime;
    a->create_revision = nd->crev;
    a->mod_revision = nd->mrev;
    a->version = nd->version;
    a->parent = parent ? parent->ino : 0;
}

static bool attr_eq(const struct store_attr *a, const struct store_attr *b)
{
    return a->ino == b->ino && a->type == b->type && a->mode == b->mode && a->uid == b->uid &&
           a->gid == b->gid && a->nlink == b->nlink && a->size == b->size &&
           a->atime_ns == b->atime_ns && a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns &&
           a->create_revision == b->create_revision && a->mod_revision == b->mod_revision &&
           a->version == b->version && a->parent == b->parent;
}

static void attr_print(const char *who, const struct store_attr *a)
{
    fprintf(stderr,
            "  %s: ino %llu type %d mode %o uid %u gid %u nlink %u size %llu a/m/ctime %lld %lld "
            "%lld crev %llu mrev %llu version %llu parent %llu\n",
            who, (unsigned long long)a->ino, a->type, a->mode, a->uid, a->gid, a->nlink,
            (unsigned long long)a->size, (long long)a->atime_ns, (long long)a->mtime_ns,
            (long long)a->ctime_ns, (unsigned long long)a->create_revision,
            (unsigned long long)a->mod_revision, (unsigned long long)a->version,
            (unsigned long long)a->parent);
}

/* One decoded command, as store_apply.c's apply_one: the expected result. */
static void m_apply(struct model *m, const struct store_cmd *c, struct store_result *res)
{
    memset(res, 0, sizeof(*res));
    res->op = c->op;
    res->client_id = c->client_id;
    res->seq = c->seq;
    struct msession *sess = NULL;
    if (c->client_id) {
        for (size_t i = 0; i < m->n_sessions; i++)
            if (m->sessions[i].client == c->client_id)
                sess = &m->sessions[i];
        if (sess && c->seq <= sess->seq) {
            if (c->seq == sess->seq) {
                res->err = sess->res.err;
                res->txn_succeeded = sess->res.txn_succeeded;
                res->txn_failed_op = sess->res.txn_failed_op;
                res->has_attr = sess->res.has_attr;
                res->attr = sess->res.attr;
                /* The session record keeps no inode number
                 * (docs/store-format.md, "Session record"). */
                res->attr.ino = 0;
            } else
                res->err = EALREADY;
            res->duplicate = true;
            res->revision = m->rev;
            return;
        }
    }
    uint64_t rev = m->rev + 1;
    bool changed = false;
    if (c->op == STORE_OP_TXN) {
        bool ok = true;
        for (size_t i = 0; i < c->n_compares && !res->err; i++) {
            bool holds;
            res->err = m_holds(m, &c->compares[i], &holds);
            ok = ok && holds;
        }
        if (!res->err) {
            res->txn_succeeded = ok;
            const struct store_cmd *ops = ok ? c->then_ops : c->else_ops;
            size_t n = ok ? c->n_then : c->n_else;
            res->err = m_ops(m, ops, n, rev, &changed, &res->txn_failed_op);
        }
    } else {
        res->err = m_op(m, c, rev, &changed);
        /* What the store reports of the target after the change. */
        const struct mnode *nd = NULL;
        if (!res->err && (c->op == STORE_OP_PUT || c->op == STORE_OP_APPEND ||
                          c->op == STORE_OP_MKDIR || c->op == STORE_OP_SETATTR))
            nd = m_find(m, c->path, c->path_len);
        if (!res->err && c->op == STORE_OP_RENAME && changed)
            nd = m_find(m, c->path2, c->path2_len);
        if (nd) {
            res->has_attr = true;
            m_attr(m, nd, &res->attr);
        }
    }
    if (!res->err && changed)
        m->rev = rev;
    res->revision = m->rev;
    if (c->client_id) {
        if (!sess) {
            if (m->n_sessions == MAX_CLIENTS)
                FAIL("model: too many clients");
            sess = &m->sessions[m->n_sessions++];
        }
        sess->client = c->client_id;
        sess->seq = c->seq;
        sess->res = *res;
    }
}

/* ---- comparing the store with the model ---- */

static void attr_same(struct model *m, const struct mnode *nd, const struct store_attr *a)
{
    struct store_attr want;
    m_attr(m, nd, &want);
    if (!attr_eq(a, &want)) {
        attr_print("store", a);
        attr_print("model", &want);
        FAIL("attributes of %.*s differ", (int)nd->plen, nd->path);
    }
}

struct walk {
    struct model *m;
    struct store_txn *t;
    char path[PATH_CAP];
    size_t plen;
    size_t seen;
};

static void walk_node(struct walk *w, uint64_t ino);

static int walk_entry(void *ctx, const struct store_dirent *e)
{
    struct walk *w = ctx;
    size_t keep = w->plen;
    if (w->plen > 1)
        w->path[w->plen++] = '/';
    if (w->plen + e->name_len > PATH_CAP)
        FAIL("store path too long");
    memcpy(w->path + w->plen, e->name, e->name_len);
    w->plen += e->name_len;
    walk_node(w, e->ino);
    w->plen = keep;
    return 0;
}

static void walk_node(struct walk *w, uint64_t ino)
{
    struct mnode *nd = m_find(w->m, w->path, w->plen);
    if (!nd)
        FAIL("the store has %.*s, the model does not", (int)w->plen, w->path);
    struct store_attr a;
    if (store_getattr(w->t, ino, &a))
        FAIL("getattr %.*s", (int)w->plen, w->path);
    attr_same(w->m, nd, &a);
    w->seen++;
    if (nd->dir) {
        if (store_list(w->t, ino, NULL, 0, walk_entry, w))
            FAIL("list %.*s", (int)w->plen, w->path);
        return;
    }
    const void *d;
    size_t len;
    uint64_t lease;
    if (store_read(w->t, ino, &d, &len) || len != nd->vlen || (len && memcmp(d, nd->val, len)))
        FAIL("value of %.*s differs", (int)w->plen, w->path);
    if (store_file_lease(w->t, ino, &lease) || lease != nd->lease)
        FAIL("lease of %.*s: store %llu model %llu", (int)w->plen, w->path,
             (unsigned long long)lease, (unsigned long long)nd->lease);
}

struct lease_walk {
    struct model *m;
    size_t seen;
};

static int lease_one(void *ctx, const struct store_lease *l)
{
    struct lease_walk *lw = ctx;
    struct model *m = lw->m;
    size_t i;
    for (i = 0; i < m->n_leases && m->leases[i].id != l->id; i++)
        ;
    if (i == m->n_leases || m->leases[i].ttl != l->ttl_ms)
        FAIL("lease %llu differs", (unsigned long long)l->id);
    uint64_t keys = 0;
    for (size_t j = 1; j < m->n; j++)
        keys += !m->nodes[j].dir && m->nodes[j].lease == l->id;
    if (keys != l->keys)
        FAIL("lease %llu holds %llu keys, model %llu", (unsigned long long)l->id,
             (unsigned long long)l->keys, (unsigned long long)keys);
    lw->seen++;
    return 0;
}

static int member_one(void *ctx, const struct store_member *mb)
{
    struct lease_walk *lw = ctx; /* the same counter */
    struct model *m = lw->m;
    size_t i;
    for (i = 0; i < m->n_members && m->members[i].id != mb->id; i++)
        ;
    if (i == m->n_members || m->members[i].incarnation != mb->incarnation ||
        m->members[i].len != mb->addr_len || memcmp(m->members[i].addr, mb->addr, mb->addr_len))
        FAIL("member %llu differs", (unsigned long long)mb->id);
    lw->seen++;
    return 0;
}

static void compare_all(struct store *s, struct model *m)
{
    struct store_txn *t;
    if (store_txn_begin(s, &t))
        FAIL("txn_begin");
    struct walk w = {.m = m, .t = t, .path = "/", .plen = 1};
    walk_node(&w, STORE_ROOT_INO);
    if (w.seen != m->n)
        FAIL("the store has %zu entries, the model %zu", w.seen, m->n);
    if (store_txn_revision(t) != m->rev)
        FAIL("revision: store %llu model %llu", (unsigned long long)store_txn_revision(t),
             (unsigned long long)m->rev);
    struct lease_walk lw = {.m = m};
    if (store_leases(t, lease_one, &lw) || lw.seen != m->n_leases)
        FAIL("leases differ");
    store_txn_end(t);
    lw.seen = 0;
    if (store_members(s, member_one, &lw) || lw.seen != m->n_members)
        FAIL("members differ");
    struct store_stats st;
    if (store_get_stats(s, &st) || st.inodes != m->n || st.revision != m->rev)
        FAIL("stats differ");
}

/* ---- the input as a program ---- */

static uint64_t in_small(struct input *in, uint64_t n)
{
    return in_byte(in) % n;
}

/* Names collide on purpose; a few are refused (too long, ".", empty) or
 * reserved at the root. */
static const char *const names[] = {
    "a", "b", "c", "a", "b", "c", "abcdefgh", STORE_RESERVED_NAME, "abcdefghi", ".", "", ".."};

/* A path of 0 to 3 names into buf (size >= 64). */
static size_t in_path(struct input *in, char *buf)
{
    uint8_t b = in_byte(in);
    size_t depth = b & 3, len = 0;
    if (depth == 0 && (b & 4))
        depth = 1;
    if (depth == 0) {
        buf[0] = '/';
        return 1;
    }
    for (size_t i = 0; i < depth; i++) {
        uint8_t k = in_byte(in);
        size_t which = k & 0x80 ? in_small(in, sizeof(names) / sizeof(names[0])) : k % 3;
        const char *nm = names[which];
        buf[len++] = '/';
        memcpy(buf + len, nm, strlen(nm));
        len += strlen(nm);
    }
    if (b & 0x40 && b & 0x80)
        buf[len++] = '/'; /* a trailing slash: EINVAL */
    return len;
}

/* The memory one command's fields point to: a path and a value per
 * command (a txn's compares and branch commands included), a second path
 * for renames. */
#define SUBS (1 + MAX_SUB + 2)
struct scratch {
    char paths[2 * SUBS + MAX_SUB][64];
    uint8_t values[SUBS][MAX_VALUE + 2];
    struct store_cmd then[MAX_SUB], els[2];
    struct store_compare cmps[MAX_SUB];
};

static void in_value(struct input *in, uint8_t *buf, size_t *len)
{
    size_t n = in_small(in, 20);
    if (n == 19)
        n = MAX_VALUE + in_small(in, 2); /* at the bound, or over it */
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)('a' + i % 26);
    if (n && in_byte(in) & 1)
        buf[0] = in_byte(in);
    *len = n;
}

/* A tree op (the commands a txn may hold). */
static void in_tree_op(struct input *in, struct model *m, struct store_cmd *c, char *p1, char *p2,
                       uint8_t *val)
{
    static const enum store_op ops[] = {STORE_OP_PUT,    STORE_OP_PUT,    STORE_OP_APPEND,
                                        STORE_OP_DELETE, STORE_OP_MKDIR,  STORE_OP_MKDIR,
                                        STORE_OP_RMDIR,  STORE_OP_RENAME, STORE_OP_SETATTR};
    memset(c, 0, sizeof(*c));
    c->op = ops[in_small(in, sizeof(ops) / sizeof(ops[0]))];
    c->path = p1;
    c->path_len = in_path(in, p1);
    c->value = val;
    uint8_t b = in_byte(in);
    /* File type bits in the mode must be dropped. */
    c->mode = (b & 1 ? 0644U : 0755U) | ((uint32_t)(b & 0xf0) << 8);
    c->uid = b >> 4;
    c->gid = b >> 5;
    switch (c->op) {
    case STORE_OP_PUT:
    case STORE_OP_APPEND:
        in_value(in, val, &c->value_len);
        if (c->op == STORE_OP_PUT && (b & 6) == 6) {
            c->has_lease = true;
            c->lease = in_small(in, 4); /* 0 detaches */
        }
        break;
    case STORE_OP_RENAME: {
        c->path2 = p2;
        c->path2_len = in_path(in, p2);
        uint8_t f = in_byte(in);
        c->rename_flags = f < 160   ? 0
                          : f < 200 ? STORE_RENAME_NOREPLACE
                          : f < 250 ? STORE_RENAME_EXCHANGE
                                    : f & 7;
        break;
    }
    case STORE_OP_SETATTR: {
        uint8_t mask = in_byte(in);
        c->set_mask = mask & 0x7f;
        if (mask == 0xff)
            c->set_mask = 0x80; /* an unknown bit: EINVAL */
        c->size = in_small(in, MAX_VALUE + 2);
        c->atime_ns = 11 + in_byte(in);
        c->mtime_ns = 12 + in_byte(in);
        c->lease = in_small(in, 4);
        break;
    }
    default:
        break;
    }
    (void)m;
}

/* Fills c with the next command from the input; false for a step that
 * is not a command (*kind says which). */
enum step { STEP_CMD, STEP_RAW, STEP_NOOP, STEP_SKIP, STEP_FLUSH };

static enum step in_step(struct input *in, struct model *m, struct store_cmd *c, struct scratch *sc)
{
    uint8_t k = in_byte(in);
    if (k >= 250)
        return k == 250 ? STEP_RAW : k == 251 ? STEP_NOOP : k == 252 ? STEP_SKIP : STEP_FLUSH;
    if (k < 150) {
        in_tree_op(in, m, c, sc->paths[0], sc->paths[1], sc->values[0]);
    } else if (k < 190) {
        memset(c, 0, sizeof(*c));
        c->op = STORE_OP_TXN;
        c->n_compares = in_small(in, MAX_SUB + 1);
        c->n_then = in_small(in, MAX_SUB + 1);
        c->n_else = in_small(in, 3);
        c->compares = sc->cmps;
        c->then_ops = sc->then;
        c->else_ops = sc->els;
        size_t pi = 2;
        for (size_t i = 0; i < c->n_compares; i++) {
            struct store_compare *q = &sc->cmps[i];
            memset(q, 0, sizeof(*q));
            q->path = sc->paths[pi];
            q->path_len = in_path(in, sc->paths[pi++]);
            q->target = in_small(in, 4);
            q->result = in_small(in, 4);
            q->number = in_small(in, 6);
            if (q->target == STORE_CMP_VALUE) {
                q->value = "abc";
                q->value_len = in_small(in, 4);
            }
        }
        for (size_t i = 0; i < c->n_then + c->n_else; i++) {
            struct store_cmd *sub = i < c->n_then ? &sc->then[i] : &sc->els[i - c->n_then];
            char *p1 = sc->paths[pi++], *p2 = sc->paths[pi++];
            in_tree_op(in, m, sub, p1, p2, sc->values[1 + i]);
        }
    } else if (k < 215) {
        memset(c, 0, sizeof(*c));
        c->op = STORE_OP_LEASE_GRANT;
        c->lease = in_small(in, 4);
        uint8_t t = in_byte(in);
        c->ttl_ms = t == 255 ? STORE_LEASE_TTL_MAX_MS + 1 : t;
    } else if (k < 230) {
        memset(c, 0, sizeof(*c));
        c->op = STORE_OP_LEASE_REVOKE;
        c->lease = in_small(in, 4);
        c->lease_expired = k & 1;
    } else {
        static const char *const addrs[] = {"127.0.0.1:1", "h:2", "", "a\0b"};
        memset(c, 0, sizeof(*c));
        c->op = k < 240 ? STORE_OP_MEMBER_SET : STORE_OP_MEMBER_DEL;
        c->member_id = in_small(in, MAX_MEMBERS);
        size_t ai = in_small(in, 4);
        c->path = addrs[ai];
        c->path_len = ai == 3 ? 3 : strlen(addrs[ai]);
        c->incarnation = in_small(in, 3);
    }
    if (c->op != STORE_OP_TXN) {
        /* Compares of a plain command: against what the model has, so
         * that both outcomes are common. */
        uint8_t e = in_byte(in);
        struct mplace pl;
        const struct mnode *nd = NULL;
        if (c->path && !store_path_check(c->path, c->path_len, &limits)) {
            if (m_is_root(c->path, c->path_len))
                nd = &m->nodes[0];
            else if (!m_place(m, c->path, c->path_len, &pl))
                nd = pl.node;
        }
        if ((e & 3) == 1) {
            c->has_expected_revision = true;
            c->expected_revision = e & 4 ? 0 : nd && !(e & 8) ? nd->mrev : e >> 4;
        } else if ((e & 3) == 2) {
            c->has_expected_ino = true;
            c->expected_ino = nd && !(e & 8) ? nd->ino : e >> 4;
        }
    }
    uint8_t cl = in_byte(in);
    if (cl >= 200) {
        c->client_id = 1 + cl % MAX_CLIENTS;
        c->seq = in_small(in, 8);
    }
    return STEP_CMD;
}

/* ---- the harness ---- */

static char *dir;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void dir_remove(void)
{
    if (dir)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void dir_make(void)
{
    static char tmpl[] = "/dev/shm/raftfs-fuzz-apply.XXXXXX";
    if (!mkdtemp(tmpl)) {
        static char tmpl2[] = "/tmp/raftfs-fuzz-apply.XXXXXX";
        if (!mkdtemp(tmpl2))
            abort();
        dir = tmpl2;
    } else {
        dir = tmpl;
    }
    atexit(dir_remove);
}

struct batch {
    struct store_entry entries[MAX_STEPS];
    struct store_result want[MAX_STEPS];
    void *bufs[MAX_STEPS];
    size_t n;
};

static bool decided_answer;
static bool trace; /* FUZZ_APPLY_TRACE set: each result to stderr */

static bool decided(void *ctx)
{
    (void)ctx;
    return decided_answer;
}

static void result_same(const struct store_result *got, const struct store_result *want,
                        const struct store_entry *e)
{
    if (got->err != want->err || got->revision != want->revision || got->skipped ||
        got->duplicate != want->duplicate || got->txn_succeeded != want->txn_succeeded ||
        got->txn_failed_op != want->txn_failed_op || got->op != want->op ||
        got->client_id != want->client_id || got->seq != want->seq ||
        got->has_attr != want->has_attr)
        FAIL("index %llu (%s): store err %d rev %llu dup %d txn %d/%u attr %d; model err %d rev "
             "%llu dup %d txn %d/%u attr %d",
             (unsigned long long)e->index, store_op_name(want->op), got->err,
             (unsigned long long)got->revision, got->duplicate, got->txn_succeeded,
             got->txn_failed_op, got->has_attr, want->err, (unsigned long long)want->revision,
             want->duplicate, want->txn_succeeded, want->txn_failed_op, want->has_attr);
    if (got->has_attr && !attr_eq(&got->attr, &want->attr)) {
        attr_print("store", &got->attr);
        attr_print("model", &want->attr);
        FAIL("index %llu (%s): the attributes it reports differ", (unsigned long long)e->index,
             store_op_name(want->op));
    }
}

static void batch_run(struct store *s, struct model *m, struct batch *b, uint64_t *index, bool lazy,
                      struct input *in)
{
    if (!b->n)
        return;
    struct store_result got[MAX_STEPS];
    decided_answer = in_byte(in) & 1;
    int rc = lazy ? store_apply_batch_decided(s, b->entries, b->n, got, decided, NULL)
                  : store_apply_batch(s, b->entries, b->n, got);
    if (rc)
        FAIL("store_apply_batch: %s", strerror(rc));
    for (size_t i = 0; i < b->n; i++)
        free(b->bufs[i]);
    for (size_t i = 0; i < b->n; i++) {
        if (b->entries[i].noop) {
            if (got[i].err || got[i].revision != b->want[i].revision)
                FAIL("noop entry");
            continue;
        }
        if (trace)
            fprintf(stderr, "fuzz_apply: %llu %s err %d rev %llu\n",
                    (unsigned long long)b->entries[i].index, store_op_name(got[i].op), got[i].err,
                    (unsigned long long)got[i].revision);
        result_same(&got[i], &b->want[i], &b->entries[i]);
    }
    *index = b->entries[b->n - 1].index;
    b->n = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir) {
        dir_make();
        trace = getenv("FUZZ_APPLY_TRACE") != NULL;
    }
    dir_remove();
    struct input in = {data, size};
    bool lazy = in_byte(&in) & 1;
    struct store_config cfg = {
        .limits = limits, .map_bytes = 64ULL << 20, .log_segment_bytes = 1 << 20};
    struct store *s;
    char err[256];
    if (store_open(&s, dir, &cfg, err, sizeof(err)))
        FAIL("store_open: %s", err);
    store_set_lazy_apply(s, lazy);

    struct model *m = calloc(1, sizeof(*m));
    struct batch *b = calloc(1, sizeof(*b));
    struct scratch *sc = calloc(1, sizeof(*sc));
    if (!m || !b || !sc)
        abort();
    struct store_txn *t;
    struct store_attr root;
    if (store_txn_begin(s, &t) || store_getattr(t, STORE_ROOT_INO, &root))
        FAIL("root");
    m->rev = store_txn_revision(t);
    store_txn_end(t);
    m->n = 1;
    struct mnode *r = &m->nodes[0];
    r->path[0] = '/';
    r->plen = 1;
    r->dir = true;
    r->ino = root.ino;
    r->version = root.version;
    r->crev = root.create_revision;
    r->mrev = root.mod_revision;
    r->mode = root.mode;
    r->uid = root.uid;
    r->gid = root.gid;
    r->atime = root.atime_ns;
    r->mtime = root.mtime_ns;
    r->ctime = root.ctime_ns;
    m->next_ino = STORE_ROOT_INO + 1;

    uint64_t index = 0; /* last index handed to the store */
    for (int step = 0; step < MAX_STEPS && in.left; step++) {
        struct store_cmd c;
        enum step k = in_step(&in, m, &c, sc);
        if (k == STEP_FLUSH) {
            batch_run(s, m, b, &index, lazy, &in);
            continue;
        }
        if (k == STEP_SKIP) {
            batch_run(s, m, b, &index, lazy, &in);
            if (!index)
                continue;
            struct store_result res;
            if (store_apply(s, index, "x", 1, &res) || !res.skipped || res.revision != m->rev)
                FAIL("a re-applied index was not skipped");
            continue;
        }
        struct store_entry *e = &b->entries[b->n];
        memset(e, 0, sizeof(*e));
        /* Indexes increase, with gaps at times (a Raft no-op or
         * configuration entry the node does not pass). */
        e->index = (b->n ? b->entries[b->n - 1].index : index) + 1 + (in_byte(&in) >= 240);
        b->bufs[b->n] = NULL;
        if (k == STEP_NOOP) {
            e->noop = true;
            b->want[b->n].revision = m->rev;
            b->n++;
            continue;
        }
        void *buf;
        size_t len;
        if (k == STEP_RAW) {
            len = in_small(&in, 48);
            if (len > in.left)
                len = in.left;
            buf = malloc(len ? len : 1);
            memcpy(buf, in.p, len);
            in.p += len;
            in.left -= len;
        } else if (store_cmd_encode(&c, &buf, &len)) {
            FAIL("encode");
        }
        /* The model runs what the store will decode. */
        struct store_cmd_decoded d;
        int drc = store_cmd_decode(buf, len, &d);
        if (drc) {
            if (k != STEP_RAW)
                FAIL("what store_cmd_encode made does not decode: %d", drc);
            memset(&b->want[b->n], 0, sizeof(b->want[0]));
            b->want[b->n].err = drc;
            b->want[b->n].revision = m->rev;
        } else {
            m_apply(m, &d.cmd, &b->want[b->n]);
            store_cmd_decoded_free(&d);
        }
        e->data = buf;
        e->len = len;
        b->bufs[b->n] = buf;
        b->n++;
    }
    batch_run(s, m, b, &index, lazy, &in);
    compare_all(s, m);
    store_close(s);
    free(sc);
    free(b);
    free(m);
    return 0;
}
