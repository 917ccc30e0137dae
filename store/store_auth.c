/* store_auth.c - access control on the client protocol: users, roles, and
 * whether a client's command may be applied.
 *
 * Table "auth" (replicated state: in snapshot images and the digest):
 *   "c"          -> u8 version (1) | u8 enabled (0 or 1)
 *   "u" ++ name  -> AuthUserRecord (net/raftfs.proto): password hash, roles
 *   "r" ++ name  -> AuthRoleRecord: permissions, one per prefix
 * Names are 1..STORE_AUTH_NAME_MAX bytes of printable ASCII without space,
 * ':' or '/'. A prefix is an absolute path; it covers itself and every
 * path below it ("/app" covers "/app" and "/app/x", not "/apple"; "/"
 * covers all). The role "root" may do everything.
 *
 * Where it is checked: a client's command carries the user its connection
 * authenticated as (store_cmd.has_user); apply checks it against this
 * table as it stands at that point of the log (store_auth_command), so a
 * permission revoked at index i holds for every command after i on every
 * member alike. Reads are checked by the member that serves them, after
 * their read barrier (store_auth_allowed). Without has_user (a mount's own
 * commands, the leader's lease expiry) nothing is checked.
 *
 * Passwords: only crypt(3) strings made by the member that took the
 * request are stored (node/); a password itself never reaches the log.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raftfs.pb-c.h"
#include "store_internal.h"

#define AUTH_CONF_KEY "c"
#define AUTH_USER     'u'
#define AUTH_ROLE     'r'

static bool bytes_eq(const void *a, size_t alen, const char *b)
{
    return alen == strlen(b) && !memcmp(a, b, alen);
}

int store_auth_name_check(const char *name, size_t len)
{
    if (!len || len > STORE_AUTH_NAME_MAX)
        return EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= ' ' || ch >= 0x7f || ch == ':' || ch == '/')
            return EINVAL;
    }
    return 0;
}

/* An absolute path without empty, "." or ".." components and without a
 * trailing slash ("/" itself aside). */
static int prefix_check(const char *p, size_t len)
{
    if (!len || p[0] != '/' || len > STORE_MAX_PATH_BYTES_BOUND)
        return EINVAL;
    if (len == 1)
        return 0;
    size_t i = 1;
    while (i <= len) {
        size_t j = i;
        while (j < len && p[j] != '/')
            j++;
        size_t n = j - i;
        if (!n || (n == 1 && p[i] == '.') || (n == 2 && p[i] == '.' && p[i + 1] == '.'))
            return EINVAL;
        for (size_t k = i; k < j; k++)
            if (!p[k])
                return EINVAL;
        i = j + 1;
    }
    return 0;
}

bool store_auth_covers(const char *prefix, size_t plen, const char *path, size_t len)
{
    if (plen == 1 && prefix[0] == '/')
        return true;
    if (len < plen || memcmp(prefix, path, plen))
        return false;
    return len == plen || path[plen] == '/';
}

static MDB_val auth_key(unsigned char *kb, char kind, const char *name, size_t len)
{
    kb[0] = (unsigned char)kind;
    memcpy(kb + 1, name, len);
    MDB_val k = {.mv_size = len + 1, .mv_data = kb};
    return k;
}

int store_auth_conf_decode(const void *v, size_t len, bool *enabled)
{
    const unsigned char *p = v;
    if (len != 2 || p[0] != 1 || p[1] > 1)
        return EIO;
    *enabled = p[1];
    return 0;
}

static int load_enabled(struct store *s, MDB_txn *txn, bool *on)
{
    MDB_val k = {.mv_size = 1, .mv_data = AUTH_CONF_KEY}, v;
    *on = false;
    int rc = mdb_get(txn, s->auth, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return store_mdb_errno(rc);
    return store_auth_conf_decode(v.mv_data, v.mv_size, on);
}

static int save_enabled(struct store *s, MDB_txn *txn, bool on)
{
    unsigned char rec[2] = {1, on};
    MDB_val k = {.mv_size = 1, .mv_data = AUTH_CONF_KEY}, v = {.mv_size = 2, .mv_data = rec};
    return store_mdb_errno(mdb_put(txn, s->auth, &k, &v, 0));
}

/* Sorted, unique, valid names / prefixes: what apply writes, so what a
 * check (or an image) must find. */
int store_auth_user_decode(const void *v, size_t len, Raftfs__AuthUserRecord **out)
{
    Raftfs__AuthUserRecord *u = raftfs__auth_user_record__unpack(NULL, len, v);
    if (!u)
        return EIO;
    bool ok = u->n_roles <= STORE_AUTH_MAX_ROLES &&
              (!u->has_password_hash || u->password_hash.len <= STORE_AUTH_HASH_MAX);
    for (size_t i = 0; ok && i < u->n_roles; i++) {
        const ProtobufCBinaryData *r = &u->roles[i];
        ok = !store_auth_name_check((const char *)r->data, r->len);
        if (ok && i) {
            const ProtobufCBinaryData *q = &u->roles[i - 1];
            size_t m = q->len < r->len ? q->len : r->len;
            int o = memcmp(q->data, r->data, m);
            ok = o < 0 || (!o && q->len < r->len);
        }
    }
    if (!ok) {
        raftfs__auth_user_record__free_unpacked(u, NULL);
        return EIO;
    }
    *out = u;
    return 0;
}

static int bin_cmp(const ProtobufCBinaryData *a, const char *b, size_t blen)
{
    size_t m = a->len < blen ? a->len : blen;
    int o = m ? memcmp(a->data, b, m) : 0;
    return o ? o : (a->len > blen) - (a->len < blen);
}

int store_auth_role_decode(const void *v, size_t len, Raftfs__AuthRoleRecord **out)
{
    Raftfs__AuthRoleRecord *r = raftfs__auth_role_record__unpack(NULL, len, v);
    if (!r)
        return EIO;
    bool ok = r->n_perms <= STORE_AUTH_MAX_PERMS;
    for (size_t i = 0; ok && i < r->n_perms; i++) {
        const Raftfs__AuthPermission *p = r->perms[i];
        ok = !prefix_check((const char *)p->prefix.data, p->prefix.len) && p->perm >= 1 &&
             p->perm <= 3 &&
             (!i ||
              bin_cmp(&r->perms[i - 1]->prefix, (const char *)p->prefix.data, p->prefix.len) < 0);
    }
    if (!ok) {
        raftfs__auth_role_record__free_unpacked(r, NULL);
        return EIO;
    }
    *out = r;
    return 0;
}

/* The record of user or role (kind) name: ENOENT if there is none. */
static int record_get(struct store *s, MDB_txn *txn, char kind, const char *name, size_t len,
                      MDB_val *v)
{
    unsigned char kb[1 + STORE_AUTH_NAME_MAX];
    if (store_auth_name_check(name, len))
        return ENOENT;
    MDB_val k = auth_key(kb, kind, name, len);
    int rc = mdb_get(txn, s->auth, &k, v);
    return rc == MDB_NOTFOUND ? ENOENT : store_mdb_errno(rc);
}

/* Packs msg under the key of user or role (kind) name. */
static int record_put(struct store *s, MDB_txn *txn, char kind, const char *name, size_t len,
                      const ProtobufCMessage *msg)
{
    unsigned char kb[1 + STORE_AUTH_NAME_MAX];
    MDB_val k = auth_key(kb, kind, name, len);
    MDB_val v = {.mv_size = protobuf_c_message_get_packed_size(msg)};
    int rc = mdb_put(txn, s->auth, &k, &v, MDB_RESERVE);
    if (rc)
        return store_mdb_errno(rc);
    protobuf_c_message_pack(msg, v.mv_data);
    return 0;
}

static int user_load(struct store *s, MDB_txn *txn, const char *name, size_t len,
                     Raftfs__AuthUserRecord **out)
{
    MDB_val v;
    int rc = record_get(s, txn, AUTH_USER, name, len, &v);
    return rc ? rc : store_auth_user_decode(v.mv_data, v.mv_size, out);
}

static int role_load(struct store *s, MDB_txn *txn, const char *name, size_t len,
                     Raftfs__AuthRoleRecord **out)
{
    MDB_val v;
    int rc = record_get(s, txn, AUTH_ROLE, name, len, &v);
    return rc ? rc : store_auth_role_decode(v.mv_data, v.mv_size, out);
}

static int user_save(struct store *s, MDB_txn *txn, const char *name, size_t len,
                     const Raftfs__AuthUserRecord *u)
{
    return record_put(s, txn, AUTH_USER, name, len, &u->base);
}

static int role_save(struct store *s, MDB_txn *txn, const char *name, size_t len,
                     const Raftfs__AuthRoleRecord *r)
{
    return record_put(s, txn, AUTH_ROLE, name, len, &r->base);
}

static int del_key(struct store *s, MDB_txn *txn, char kind, const char *name, size_t len)
{
    unsigned char kb[1 + STORE_AUTH_NAME_MAX];
    MDB_val k = auth_key(kb, kind, name, len);
    return store_mdb_errno(mdb_del(txn, s->auth, &k, NULL));
}

static bool has_root_role(const Raftfs__AuthUserRecord *u)
{
    for (size_t i = 0; i < u->n_roles; i++)
        if (bytes_eq(u->roles[i].data, u->roles[i].len, STORE_AUTH_ROOT))
            return true;
    return false;
}

/* Whether user may do want (STORE_PERM_*; 0: only be a user) on path
 * (NULL: only root may): *err 0, EPERM (no such user) or EACCES. */
static int may(struct store *s, MDB_txn *txn, const char *user, size_t ulen, const char *path,
               size_t plen, unsigned want, int *err)
{
    Raftfs__AuthUserRecord *u;
    int rc = user_load(s, txn, user, ulen, &u);
    *err = 0;
    if (rc == ENOENT) {
        *err = EPERM;
        return 0;
    }
    if (rc)
        return rc;
    bool ok = has_root_role(u) || (path && !want);
    for (size_t i = 0; !ok && path && i < u->n_roles; i++) {
        Raftfs__AuthRoleRecord *r;
        rc = role_load(s, txn, (const char *)u->roles[i].data, u->roles[i].len, &r);
        if (rc == ENOENT)
            continue;
        if (rc)
            break;
        for (size_t j = 0; !ok && j < r->n_perms; j++)
            ok = (r->perms[j]->perm & want) == want &&
                 store_auth_covers((const char *)r->perms[j]->prefix.data, r->perms[j]->prefix.len,
                                   path, plen);
        raftfs__auth_role_record__free_unpacked(r, NULL);
    }
    raftfs__auth_user_record__free_unpacked(u, NULL);
    if (rc && rc != ENOENT)
        return rc;
    if (!ok)
        *err = EACCES;
    return 0;
}

/* A lease revoke by a client: write on every file the lease holds. */
static int may_revoke(struct store *s, MDB_txn *txn, const struct store_cmd *c, int *err)
{
    uint64_t *inos = NULL, ttl;
    size_t n = 0;
    int rc = store_lease_load(s, txn, c->lease, &ttl);
    if (rc == ENOKEY)
        return may(s, txn, c->user, c->user_len, "/", 1, 0, err); /* apply says ENOENT */
    if (rc || (rc = store_lease_files(s, txn, c->lease, &inos, &n)))
        return rc;
    struct store_txn t = {.s = s, .txn = txn};
    char *buf = malloc(STORE_MAX_PATH_BYTES_BOUND + 1);
    rc = buf ? 0 : ENOMEM;
    *err = 0;
    for (size_t i = 0; !rc && !*err && i < n; i++) {
        size_t len;
        if (!(rc = store_path(&t, inos[i], buf, STORE_MAX_PATH_BYTES_BOUND + 1, &len)))
            rc = may(s, txn, c->user, c->user_len, buf, len, STORE_PERM_WRITE, err);
    }
    if (!rc && !n)
        rc = may(s, txn, c->user, c->user_len, "/", 1, 0, err);
    free(buf);
    free(inos);
    return rc;
}

static int may_op(struct store *s, MDB_txn *txn, const struct store_cmd *u,
                  const struct store_cmd *c, int *err)
{
    int rc;
    switch (c->op) {
    case STORE_OP_PUT:
    case STORE_OP_APPEND:
    case STORE_OP_DELETE:
    case STORE_OP_MKDIR:
    case STORE_OP_RMDIR:
    case STORE_OP_SETATTR:
        return may(s, txn, u->user, u->user_len, c->path, c->path_len, STORE_PERM_WRITE, err);
    case STORE_OP_RENAME:
        rc = may(s, txn, u->user, u->user_len, c->path, c->path_len, STORE_PERM_WRITE, err);
        if (rc || *err)
            return rc;
        return may(s, txn, u->user, u->user_len, c->path2, c->path2_len, STORE_PERM_WRITE, err);
    case STORE_OP_LEASE_GRANT:
        return may(s, txn, u->user, u->user_len, "/", 1, 0, err);
    case STORE_OP_LEASE_REVOKE:
        return may_revoke(s, txn, c, err);
    case STORE_OP_TXN:
        for (size_t i = 0; i < c->n_compares; i++) {
            const struct store_compare *k = &c->compares[i];
            if ((rc = may(s, txn, u->user, u->user_len, k->path, k->path_len, STORE_PERM_READ,
                          err)) ||
                *err)
                return rc;
        }
        for (size_t i = 0; i < c->n_then + c->n_else; i++) {
            const struct store_cmd *op =
                i < c->n_then ? &c->then_ops[i] : &c->else_ops[i - c->n_then];
            if ((rc = may_op(s, txn, u, op, err)) || *err)
                return rc;
        }
        return may(s, txn, u->user, u->user_len, "/", 1, 0, err); /* an empty txn */
    case STORE_OP_MEMBER_SET:
    case STORE_OP_MEMBER_DEL:
    case STORE_OP_AUTH:
        break;
    }
    return may(s, txn, u->user, u->user_len, NULL, 0, 0, err);
}

int store_auth_command(struct store *s, MDB_txn *txn, const struct store_cmd *c, int *err)
{
    bool on;
    *err = 0;
    int rc = load_enabled(s, txn, &on);
    if (rc || !on || !c->has_user)
        return rc;
    return may_op(s, txn, c, c, err);
}

/* ---- changes ---------------------------------------------------------- */

/* Inserts (or, with remove, takes out) name in u's sorted roles: *err
 * EEXIST / ENOENT when it is / is not there. The array is u's own. */
static int roles_edit(Raftfs__AuthUserRecord *u, const char *name, size_t len, bool remove,
                      int *err)
{
    size_t i = 0;
    while (i < u->n_roles && bin_cmp(&u->roles[i], name, len) < 0)
        i++;
    bool there = i < u->n_roles && !bin_cmp(&u->roles[i], name, len);
    *err = 0;
    if (remove) {
        if (!there)
            return *err = ENOENT, 0;
        free(u->roles[i].data);
        memmove(&u->roles[i], &u->roles[i + 1], (u->n_roles - i - 1) * sizeof(*u->roles));
        u->n_roles--;
        return 0;
    }
    if (there)
        return *err = EEXIST, 0;
    if (u->n_roles >= STORE_AUTH_MAX_ROLES)
        return *err = E2BIG, 0;
    ProtobufCBinaryData *r = realloc(u->roles, (u->n_roles + 1) * sizeof(*r));
    if (!r)
        return ENOMEM;
    u->roles = r;
    uint8_t *d = malloc(len);
    if (!d)
        return ENOMEM;
    memcpy(d, name, len);
    memmove(&r[i + 1], &r[i], (u->n_roles - i) * sizeof(*r));
    r[i].data = d;
    r[i].len = len;
    u->n_roles++;
    return 0;
}

/* Replaces (or with remove takes out) prefix's permission in r. */
static int perms_edit(Raftfs__AuthRoleRecord *r, const char *prefix, size_t len, uint32_t perm,
                      bool remove, int *err)
{
    size_t i = 0;
    while (i < r->n_perms && bin_cmp(&r->perms[i]->prefix, prefix, len) < 0)
        i++;
    bool there = i < r->n_perms && !bin_cmp(&r->perms[i]->prefix, prefix, len);
    *err = 0;
    if (remove) {
        if (!there)
            return *err = ENOENT, 0;
        raftfs__auth_permission__free_unpacked(r->perms[i], NULL);
        memmove(&r->perms[i], &r->perms[i + 1], (r->n_perms - i - 1) * sizeof(*r->perms));
        r->n_perms--;
        return 0;
    }
    if (there) {
        r->perms[i]->perm = perm;
        return 0;
    }
    if (r->n_perms >= STORE_AUTH_MAX_PERMS)
        return *err = E2BIG, 0;
    Raftfs__AuthPermission **a = realloc(r->perms, (r->n_perms + 1) * sizeof(*a));
    if (!a)
        return ENOMEM;
    r->perms = a;
    /* Allocated as unpack would, so that free_unpacked frees it. */
    Raftfs__AuthPermission *p = malloc(sizeof(*p));
    uint8_t *d = malloc(len);
    if (!p || !d) {
        free(p);
        free(d);
        return ENOMEM;
    }
    raftfs__auth_permission__init(p);
    memcpy(d, prefix, len);
    p->prefix.data = d;
    p->prefix.len = len;
    p->perm = perm;
    memmove(&a[i + 1], &a[i], (r->n_perms - i) * sizeof(*a));
    a[i] = p;
    r->n_perms++;
    return 0;
}

/* ROLE_DELETE: the role goes from every user who holds it. The holders
 * are found first and changed after the scan. */
static int role_strip(struct store *s, MDB_txn *txn, const char *name, size_t len)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->auth, &cur);
    if (rc)
        return store_mdb_errno(rc);
    char(*holders)[STORE_AUTH_NAME_MAX] = NULL;
    size_t *hlen = NULL, n = 0, cap = 0;
    unsigned char kb[1] = {AUTH_USER};
    MDB_val k = {.mv_size = 1, .mv_data = kb}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (!rc && k.mv_size > 1 && k.mv_size <= 1 + STORE_AUTH_NAME_MAX &&
           ((unsigned char *)k.mv_data)[0] == AUTH_USER) {
        Raftfs__AuthUserRecord *u;
        if ((rc = store_auth_user_decode(v.mv_data, v.mv_size, &u)))
            break;
        bool holds = false;
        for (size_t i = 0; i < u->n_roles && !holds; i++)
            holds = !bin_cmp(&u->roles[i], name, len);
        raftfs__auth_user_record__free_unpacked(u, NULL);
        if (holds && n == cap) {
            cap = cap ? 2 * cap : 8;
            void *h = realloc(holders, cap * sizeof(*holders)),
                 *l = realloc(hlen, cap * sizeof(*hlen));
            if (h)
                holders = h;
            if (l)
                hlen = l;
            if (!h || !l) {
                rc = ENOMEM;
                break;
            }
        }
        if (holds) {
            memcpy(holders[n], (char *)k.mv_data + 1, k.mv_size - 1);
            hlen[n++] = k.mv_size - 1;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    else if (rc < 0)
        rc = store_mdb_errno(rc);
    for (size_t i = 0; !rc && i < n; i++) {
        Raftfs__AuthUserRecord *u;
        int err;
        if ((rc = user_load(s, txn, holders[i], hlen[i], &u)))
            break;
        if (!(rc = roles_edit(u, name, len, true, &err)) && !err)
            rc = user_save(s, txn, holders[i], hlen[i], u);
        raftfs__auth_user_record__free_unpacked(u, NULL);
    }
    free(holders);
    free(hlen);
    return rc;
}

static int enable(struct store *s, MDB_txn *txn, int *err)
{
    Raftfs__AuthUserRecord *u;
    int rc = user_load(s, txn, STORE_AUTH_ROOT, strlen(STORE_AUTH_ROOT), &u);
    if (rc == ENOENT)
        return *err = ENOENT, 0; /* no user root: nobody could change it afterwards */
    if (rc)
        return rc;
    Raftfs__AuthRoleRecord *r, empty = RAFTFS__AUTH_ROLE_RECORD__INIT;
    rc = role_load(s, txn, STORE_AUTH_ROOT, strlen(STORE_AUTH_ROOT), &r);
    if (rc == ENOENT)
        rc = role_save(s, txn, STORE_AUTH_ROOT, strlen(STORE_AUTH_ROOT), &empty);
    else if (!rc)
        raftfs__auth_role_record__free_unpacked(r, NULL);
    int e;
    if (!rc && !(rc = roles_edit(u, STORE_AUTH_ROOT, strlen(STORE_AUTH_ROOT), false, &e)) && !e)
        rc = user_save(s, txn, STORE_AUTH_ROOT, strlen(STORE_AUTH_ROOT), u);
    raftfs__auth_user_record__free_unpacked(u, NULL);
    return rc ? rc : save_enabled(s, txn, true);
}

int store_auth_apply(struct store *s, MDB_txn *txn, const struct store_cmd *c, int *err)
{
    bool on;
    int rc = load_enabled(s, txn, &on);
    *err = 0;
    if (rc)
        return rc;
    const char *name = c->auth_name;
    size_t nlen = name ? c->auth_name_len : 0;
    bool is_root = name && bytes_eq(name, nlen, STORE_AUTH_ROOT);
    switch (c->auth_op) {
    case STORE_AUTH_ENABLE:
        return on ? 0 : enable(s, txn, err);
    case STORE_AUTH_DISABLE:
        return on ? save_enabled(s, txn, false) : 0;
    default:
        break;
    }
    if (!name || store_auth_name_check(name, nlen))
        return *err = EINVAL, 0;
    bool user_op = c->auth_op <= STORE_AUTH_USER_REVOKE_ROLE;
    if (c->auth_op == STORE_AUTH_USER_ADD || c->auth_op == STORE_AUTH_ROLE_ADD) {
        MDB_val v;
        rc = record_get(s, txn, user_op ? AUTH_USER : AUTH_ROLE, name, nlen, &v);
        if (rc != ENOENT)
            return rc ? rc : (*err = EEXIST, 0);
        if (!user_op) {
            Raftfs__AuthRoleRecord r = RAFTFS__AUTH_ROLE_RECORD__INIT;
            return role_save(s, txn, name, nlen, &r);
        }
        Raftfs__AuthUserRecord u = RAFTFS__AUTH_USER_RECORD__INIT;
        if (c->has_auth_hash && (!c->auth_hash_len || c->auth_hash_len > STORE_AUTH_HASH_MAX))
            return *err = EINVAL, 0;
        u.has_password_hash = c->has_auth_hash;
        u.password_hash.data = (uint8_t *)c->auth_hash;
        u.password_hash.len = c->auth_hash_len;
        return user_save(s, txn, name, nlen, &u);
    }
    if (user_op) {
        Raftfs__AuthUserRecord *u;
        if ((rc = user_load(s, txn, name, nlen, &u)))
            return rc == ENOENT ? (*err = ENOENT, 0) : rc;
        const char *role = c->auth_role;
        size_t rlen = role ? c->auth_role_len : 0;
        switch (c->auth_op) {
        case STORE_AUTH_USER_DELETE:
            if (is_root && on)
                *err = EBUSY; /* access control needs its root */
            else
                rc = del_key(s, txn, AUTH_USER, name, nlen);
            break;
        case STORE_AUTH_USER_PASSWORD:
            if (c->has_auth_hash && (!c->auth_hash_len || c->auth_hash_len > STORE_AUTH_HASH_MAX)) {
                *err = EINVAL;
                break;
            }
            if (u->has_password_hash)
                free(u->password_hash.data);
            u->has_password_hash = c->has_auth_hash;
            u->password_hash.data = NULL;
            u->password_hash.len = 0;
            if (c->has_auth_hash && !(u->password_hash.data = malloc(c->auth_hash_len))) {
                rc = ENOMEM;
                break;
            }
            if (c->has_auth_hash) {
                memcpy(u->password_hash.data, c->auth_hash, c->auth_hash_len);
                u->password_hash.len = c->auth_hash_len;
            }
            rc = user_save(s, txn, name, nlen, u);
            break;
        case STORE_AUTH_USER_GRANT_ROLE:
        case STORE_AUTH_USER_REVOKE_ROLE: {
            bool grant = c->auth_op == STORE_AUTH_USER_GRANT_ROLE;
            Raftfs__AuthRoleRecord *r;
            if (!role || store_auth_name_check(role, rlen)) {
                *err = EINVAL;
                break;
            }
            if (grant && (rc = role_load(s, txn, role, rlen, &r))) {
                if (rc == ENOENT)
                    rc = 0, *err = ENOENT;
                break;
            }
            if (grant)
                raftfs__auth_role_record__free_unpacked(r, NULL);
            if (!grant && is_root && on && bytes_eq(role, rlen, STORE_AUTH_ROOT)) {
                *err = EBUSY;
                break;
            }
            rc = roles_edit(u, role, rlen, !grant, err);
            if (grant && *err == EEXIST)
                *err = 0; /* held already: nothing to do */
            else if (!rc && !*err)
                rc = user_save(s, txn, name, nlen, u);
            break;
        }
        default:
            *err = EINVAL;
            break;
        }
        raftfs__auth_user_record__free_unpacked(u, NULL);
        return rc;
    }
    Raftfs__AuthRoleRecord *r;
    if ((rc = role_load(s, txn, name, nlen, &r)))
        return rc == ENOENT ? (*err = ENOENT, 0) : rc;
    switch (c->auth_op) {
    case STORE_AUTH_ROLE_DELETE:
        if (is_root && on)
            *err = EBUSY;
        else if (!(rc = del_key(s, txn, AUTH_ROLE, name, nlen)))
            rc = role_strip(s, txn, name, nlen);
        break;
    case STORE_AUTH_ROLE_GRANT:
    case STORE_AUTH_ROLE_REVOKE: {
        bool grant = c->auth_op == STORE_AUTH_ROLE_GRANT;
        if (!c->auth_prefix || prefix_check(c->auth_prefix, c->auth_prefix_len) ||
            (grant && (c->auth_perm < 1 || c->auth_perm > 3))) {
            *err = EINVAL;
            break;
        }
        rc = perms_edit(r, c->auth_prefix, c->auth_prefix_len, c->auth_perm, !grant, err);
        if (!rc && !*err)
            rc = role_save(s, txn, name, nlen, r);
        break;
    }
    default:
        *err = EINVAL;
        break;
    }
    raftfs__auth_role_record__free_unpacked(r, NULL);
    return rc;
}

/* ---- reading (members serving clients) -------------------------------- */

int store_auth_enabled(struct store_txn *t, bool *on)
{
    return load_enabled(t->s, t->txn, on);
}

int store_auth_allowed(struct store_txn *t, const char *user, size_t ulen, const char *path,
                       size_t plen, unsigned want)
{
    bool on;
    int err, rc = load_enabled(t->s, t->txn, &on);
    if (rc || !on)
        return rc;
    rc = may(t->s, t->txn, user, ulen, path, plen, want, &err);
    return rc ? rc : err;
}

int store_auth_root(struct store_txn *t, const char *user, size_t ulen)
{
    return store_auth_allowed(t, user, ulen, NULL, 0, 0);
}

int store_auth_login(struct store_txn *t, const char *user, size_t ulen, char *hash, size_t cap)
{
    Raftfs__AuthUserRecord *u;
    int rc = user_load(t->s, t->txn, user, ulen, &u);
    if (rc)
        return rc;
    if (!u->has_password_hash)
        rc = ENOKEY;
    else if (u->password_hash.len + 1 > cap ||
             memchr(u->password_hash.data, 0, u->password_hash.len))
        rc = EIO;
    else {
        memcpy(hash, u->password_hash.data, u->password_hash.len);
        hash[u->password_hash.len] = 0;
    }
    raftfs__auth_user_record__free_unpacked(u, NULL);
    return rc;
}

int store_auth_list(struct store_txn *t, bool roles, const char *only, size_t only_len,
                    int (*cb)(void *ctx, const struct store_auth_item *it), void *ctx)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(t->txn, t->s->auth, &cur);
    if (rc)
        return store_mdb_errno(rc);
    char kind = roles ? AUTH_ROLE : AUTH_USER;
    unsigned char kb[1 + STORE_AUTH_NAME_MAX];
    if (only && store_auth_name_check(only, only_len)) {
        mdb_cursor_close(cur);
        return ENOENT;
    }
    MDB_val k = auth_key(kb, kind, only ? only : "", only ? only_len : 0), v;
    rc = mdb_cursor_get(cur, &k, &v, only ? MDB_SET_KEY : MDB_SET_RANGE);
    if (only && rc == MDB_NOTFOUND) {
        mdb_cursor_close(cur);
        return ENOENT;
    }
    while (!rc && k.mv_size > 1 && ((unsigned char *)k.mv_data)[0] == (unsigned char)kind) {
        struct store_auth_item it = {.name = (const char *)k.mv_data + 1,
                                     .name_len = k.mv_size - 1};
        const char *items[STORE_AUTH_MAX_PERMS];
        size_t lens[STORE_AUTH_MAX_PERMS];
        uint32_t perms[STORE_AUTH_MAX_PERMS];
        it.items = items;
        it.item_lens = lens;
        it.perms = perms;
        if (roles) {
            Raftfs__AuthRoleRecord *r;
            if ((rc = store_auth_role_decode(v.mv_data, v.mv_size, &r)))
                break;
            it.n_items = r->n_perms;
            for (size_t i = 0; i < r->n_perms; i++) {
                items[i] = (const char *)r->perms[i]->prefix.data;
                lens[i] = r->perms[i]->prefix.len;
                perms[i] = r->perms[i]->perm;
            }
            rc = cb(ctx, &it);
            raftfs__auth_role_record__free_unpacked(r, NULL);
        } else {
            Raftfs__AuthUserRecord *u;
            if ((rc = store_auth_user_decode(v.mv_data, v.mv_size, &u)))
                break;
            it.has_password = u->has_password_hash;
            it.n_items = u->n_roles;
            for (size_t i = 0; i < u->n_roles; i++) {
                items[i] = (const char *)u->roles[i].data;
                lens[i] = u->roles[i].len;
                perms[i] = 0;
            }
            rc = cb(ctx, &it);
            raftfs__auth_user_record__free_unpacked(u, NULL);
        }
        if (rc || only)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc < 0 ? store_mdb_errno(rc) : rc;
}

int store_auth_record_check(const void *key, size_t klen, const void *v, size_t vlen)
{
    const char *k = key;
    if (klen == 1 && k[0] == AUTH_CONF_KEY[0]) {
        bool on;
        return store_auth_conf_decode(v, vlen, &on);
    }
    if (klen < 2 || store_auth_name_check(k + 1, klen - 1))
        return EIO;
    if (k[0] == AUTH_USER) {
        Raftfs__AuthUserRecord *u;
        int rc = store_auth_user_decode(v, vlen, &u);
        if (!rc)
            raftfs__auth_user_record__free_unpacked(u, NULL);
        return rc;
    }
    if (k[0] == AUTH_ROLE) {
        Raftfs__AuthRoleRecord *r;
        int rc = store_auth_role_decode(v, vlen, &r);
        if (!rc)
            raftfs__auth_role_record__free_unpacked(r, NULL);
        return rc;
    }
    return EIO;
}
