/* store_cmd.c - commands to and from their log encoding (protobuf-c Command
 * of net/raftfs.proto). */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raftfs.pb-c.h"

static ProtobufCBinaryData bin(const void *p, size_t len)
{
    ProtobufCBinaryData b = {.len = len, .data = (uint8_t *)p};
    return b;
}

/* The submessages of one encoded op. */
struct op_msgs {
    Raftfs__Put put;
    Raftfs__Append app;
    Raftfs__Delete del;
    Raftfs__Mkdir mk;
    Raftfs__Rmdir rm;
    Raftfs__Rename rn;
    Raftfs__SetAttr sa;
    Raftfs__MemberSet ms;
    Raftfs__MemberDel md;
    Raftfs__LeaseGrant lg;
    Raftfs__LeaseRevoke lr;
    Raftfs__AuthChange au;
};

/* Sets m's op from c (not TXN), with submessages in b. */
static int encode_op(const struct store_cmd *c, Raftfs__Command *m, struct op_msgs *b)
{
    switch (c->op) {
    case STORE_OP_PUT:
        raftfs__put__init(&b->put);
        b->put.path = bin(c->path, c->path_len);
        b->put.value = bin(c->value, c->value_len);
        b->put.mode = c->mode;
        b->put.has_uid = b->put.has_gid = 1;
        b->put.uid = c->uid;
        b->put.gid = c->gid;
        b->put.has_lease = c->has_lease;
        b->put.lease = c->lease;
        m->op_case = RAFTFS__COMMAND__OP_PUT;
        m->put = &b->put;
        break;
    case STORE_OP_APPEND:
        raftfs__append__init(&b->app);
        b->app.path = bin(c->path, c->path_len);
        b->app.value = bin(c->value, c->value_len);
        m->op_case = RAFTFS__COMMAND__OP_APPEND;
        m->append = &b->app;
        break;
    case STORE_OP_DELETE:
        raftfs__delete__init(&b->del);
        b->del.path = bin(c->path, c->path_len);
        m->op_case = RAFTFS__COMMAND__OP_DELETE;
        m->delete_ = &b->del;
        break;
    case STORE_OP_MKDIR:
        raftfs__mkdir__init(&b->mk);
        b->mk.path = bin(c->path, c->path_len);
        b->mk.mode = c->mode;
        b->mk.has_uid = b->mk.has_gid = 1;
        b->mk.uid = c->uid;
        b->mk.gid = c->gid;
        m->op_case = RAFTFS__COMMAND__OP_MKDIR;
        m->mkdir = &b->mk;
        break;
    case STORE_OP_RMDIR:
        raftfs__rmdir__init(&b->rm);
        b->rm.path = bin(c->path, c->path_len);
        m->op_case = RAFTFS__COMMAND__OP_RMDIR;
        m->rmdir = &b->rm;
        break;
    case STORE_OP_RENAME:
        raftfs__rename__init(&b->rn);
        b->rn.from = bin(c->path, c->path_len);
        b->rn.to = bin(c->path2, c->path2_len);
        b->rn.has_flags = c->rename_flags != 0;
        b->rn.flags = c->rename_flags;
        m->op_case = RAFTFS__COMMAND__OP_RENAME;
        m->rename = &b->rn;
        break;
    case STORE_OP_SETATTR: {
        Raftfs__SetAttr *sa = &b->sa;
        raftfs__set_attr__init(sa);
        sa->path = bin(c->path, c->path_len);
        sa->has_mode = !!(c->set_mask & STORE_SET_MODE);
        sa->mode = c->mode;
        sa->has_uid = !!(c->set_mask & STORE_SET_UID);
        sa->uid = c->uid;
        sa->has_gid = !!(c->set_mask & STORE_SET_GID);
        sa->gid = c->gid;
        sa->has_size = !!(c->set_mask & STORE_SET_SIZE);
        sa->size = c->size;
        sa->has_atime_ns = !!(c->set_mask & STORE_SET_ATIME);
        sa->atime_ns = c->atime_ns;
        sa->has_mtime_ns = !!(c->set_mask & STORE_SET_MTIME);
        sa->mtime_ns = c->mtime_ns;
        sa->has_lease = !!(c->set_mask & STORE_SET_LEASE);
        sa->lease = c->lease;
        m->op_case = RAFTFS__COMMAND__OP_SETATTR;
        m->setattr = sa;
        break;
    }
    case STORE_OP_MEMBER_SET:
        raftfs__member_set__init(&b->ms);
        b->ms.id = c->member_id;
        b->ms.address = bin(c->path, c->path_len);
        b->ms.has_incarnation = c->incarnation != 0;
        b->ms.incarnation = c->incarnation;
        m->op_case = RAFTFS__COMMAND__OP_MEMBER_SET;
        m->member_set = &b->ms;
        break;
    case STORE_OP_MEMBER_DEL:
        raftfs__member_del__init(&b->md);
        b->md.id = c->member_id;
        m->op_case = RAFTFS__COMMAND__OP_MEMBER_DEL;
        m->member_del = &b->md;
        break;
    case STORE_OP_LEASE_GRANT:
        raftfs__lease_grant__init(&b->lg);
        b->lg.id = c->lease;
        b->lg.ttl_ms = c->ttl_ms;
        m->op_case = RAFTFS__COMMAND__OP_LEASE_GRANT;
        m->lease_grant = &b->lg;
        break;
    case STORE_OP_LEASE_REVOKE:
        raftfs__lease_revoke__init(&b->lr);
        b->lr.id = c->lease;
        b->lr.has_expired = c->lease_expired;
        b->lr.expired = c->lease_expired;
        m->op_case = RAFTFS__COMMAND__OP_LEASE_REVOKE;
        m->lease_revoke = &b->lr;
        break;
    case STORE_OP_AUTH: {
        Raftfs__AuthChange *au = &b->au;
        if ((unsigned)c->auth_op > STORE_AUTH_OP_MAX)
            return EINVAL;
        raftfs__auth_change__init(au);
        au->op = (Raftfs__AuthChange__Op)c->auth_op;
        au->has_name = c->auth_name != NULL;
        au->name = bin(c->auth_name, c->auth_name_len);
        au->has_role = c->auth_role != NULL;
        au->role = bin(c->auth_role, c->auth_role_len);
        au->has_prefix = c->auth_prefix != NULL;
        au->prefix = bin(c->auth_prefix, c->auth_prefix_len);
        au->has_perm = c->auth_perm != 0;
        au->perm = c->auth_perm;
        au->has_password_hash = c->has_auth_hash;
        au->password_hash = bin(c->auth_hash, c->auth_hash_len);
        m->op_case = RAFTFS__COMMAND__OP_AUTH;
        m->auth = au;
        break;
    }
    default:
        return EINVAL;
    }
    return 0;
}

/* What a TXN's encoding allocates. */
struct txn_msgs {
    Raftfs__Txn txn;
    Raftfs__Compare *cmp;
    Raftfs__Compare **cmp_ptrs;
    Raftfs__Command *ops;
    Raftfs__Command **op_ptrs;
    struct op_msgs *op_bufs;
};

static void txn_msgs_free(struct txn_msgs *t)
{
    free(t->cmp);
    free(t->cmp_ptrs);
    free(t->ops);
    free(t->op_ptrs);
    free(t->op_bufs);
}

static int encode_txn(const struct store_cmd *c, Raftfs__Command *m, struct txn_msgs *t)
{
    size_t nops = c->n_then + c->n_else;
    if (c->n_compares + nops > STORE_MAX_TXN_OPS)
        return E2BIG;
    raftfs__txn__init(&t->txn);
    t->cmp = calloc(c->n_compares + 1, sizeof(*t->cmp));
    t->cmp_ptrs = calloc(c->n_compares + 1, sizeof(*t->cmp_ptrs));
    t->ops = calloc(nops + 1, sizeof(*t->ops));
    t->op_ptrs = calloc(nops + 1, sizeof(*t->op_ptrs));
    t->op_bufs = calloc(nops + 1, sizeof(*t->op_bufs));
    if (!t->cmp || !t->cmp_ptrs || !t->ops || !t->op_ptrs || !t->op_bufs)
        return ENOMEM;
    for (size_t i = 0; i < c->n_compares; i++) {
        const struct store_compare *sc = &c->compares[i];
        Raftfs__Compare *w = &t->cmp[i];
        raftfs__compare__init(w);
        w->path = bin(sc->path, sc->path_len);
        w->target = (Raftfs__Compare__Target)sc->target;
        w->result = (Raftfs__Compare__Result)sc->result;
        if (sc->target == STORE_CMP_VALUE) {
            w->has_value = 1;
            w->value = bin(sc->value, sc->value_len);
        } else {
            w->has_number = 1;
            w->number = sc->number;
        }
        t->cmp_ptrs[i] = w;
    }
    for (size_t i = 0; i < nops; i++) {
        const struct store_cmd *op = i < c->n_then ? &c->then_ops[i] : &c->else_ops[i - c->n_then];
        if (op->op == STORE_OP_TXN || op->op == STORE_OP_MEMBER_SET ||
            op->op == STORE_OP_MEMBER_DEL || op->op == STORE_OP_LEASE_GRANT ||
            op->op == STORE_OP_LEASE_REVOKE || op->op == STORE_OP_AUTH)
            return EINVAL;
        raftfs__command__init(&t->ops[i]);
        t->ops[i].version = STORE_CMD_VERSION_PLAIN;
        int rc = encode_op(op, &t->ops[i], &t->op_bufs[i]);
        if (rc)
            return rc;
        t->op_ptrs[i] = &t->ops[i];
    }
    t->txn.n_compare = c->n_compares;
    t->txn.compare = t->cmp_ptrs;
    t->txn.n_then = c->n_then;
    t->txn.then = t->op_ptrs;
    t->txn.n_else_ = c->n_else;
    t->txn.else_ = t->op_ptrs + c->n_then;
    m->version = STORE_CMD_VERSION_TXN;
    m->op_case = RAFTFS__COMMAND__OP_TXN;
    m->txn = &t->txn;
    return 0;
}

int store_cmd_encode(const struct store_cmd *c, void **out, size_t *out_len)
{
    Raftfs__Command m = RAFTFS__COMMAND__INIT;
    struct op_msgs b;
    struct txn_msgs t = {0};

    m.version = STORE_CMD_VERSION_PLAIN;
    m.time_ns = c->time_ns;
    m.has_expected_revision = c->has_expected_revision;
    m.expected_revision = c->expected_revision;
    m.has_expected_ino = c->has_expected_ino;
    m.expected_ino = c->expected_ino;
    m.has_client_id = m.has_seq = c->client_id != 0;
    m.client_id = c->client_id;
    m.seq = c->seq;
    m.has_user = c->has_user;
    m.user = bin(c->user, c->user_len);

    int rc = c->op == STORE_OP_TXN ? encode_txn(c, &m, &t) : encode_op(c, &m, &b);
    /* What builds from before TXN and leases would not understand. */
    if (c->op == STORE_OP_LEASE_GRANT || c->op == STORE_OP_LEASE_REVOKE ||
        (c->op == STORE_OP_PUT && c->has_lease) ||
        (c->op == STORE_OP_SETATTR && (c->set_mask & STORE_SET_LEASE)))
        m.version = STORE_CMD_VERSION_TXN;
    if (c->op == STORE_OP_AUTH)
        m.version = STORE_CMD_VERSION;
    if (rc) {
        txn_msgs_free(&t);
        return rc;
    }
    size_t len = raftfs__command__get_packed_size(&m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        txn_msgs_free(&t);
        return ENOMEM;
    }
    size_t packed = raftfs__command__pack(&m, buf);
    txn_msgs_free(&t);
    if (packed != len) {
        free(buf);
        return EINVAL;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

static void set_path(const ProtobufCBinaryData *b, const char **p, size_t *len)
{
    *p = b->len ? (const char *)b->data : "";
    *len = b->len;
}

/* Fills c's op from m (not TXN): EINVAL if it has none. */
static int decode_op(const Raftfs__Command *m, struct store_cmd *c)
{
    c->value = "";
    switch (m->op_case) {
    case RAFTFS__COMMAND__OP_PUT:
        c->op = STORE_OP_PUT;
        set_path(&m->put->path, &c->path, &c->path_len);
        if (m->put->value.len)
            c->value = m->put->value.data;
        c->value_len = m->put->value.len;
        c->mode = m->put->mode;
        c->uid = m->put->uid;
        c->gid = m->put->gid;
        c->has_lease = m->put->has_lease;
        c->lease = m->put->lease;
        break;
    case RAFTFS__COMMAND__OP_APPEND:
        c->op = STORE_OP_APPEND;
        set_path(&m->append->path, &c->path, &c->path_len);
        if (m->append->value.len)
            c->value = m->append->value.data;
        c->value_len = m->append->value.len;
        break;
    case RAFTFS__COMMAND__OP_DELETE:
        c->op = STORE_OP_DELETE;
        set_path(&m->delete_->path, &c->path, &c->path_len);
        break;
    case RAFTFS__COMMAND__OP_MKDIR:
        c->op = STORE_OP_MKDIR;
        set_path(&m->mkdir->path, &c->path, &c->path_len);
        c->mode = m->mkdir->mode;
        c->uid = m->mkdir->uid;
        c->gid = m->mkdir->gid;
        break;
    case RAFTFS__COMMAND__OP_RMDIR:
        c->op = STORE_OP_RMDIR;
        set_path(&m->rmdir->path, &c->path, &c->path_len);
        break;
    case RAFTFS__COMMAND__OP_RENAME:
        c->op = STORE_OP_RENAME;
        set_path(&m->rename->from, &c->path, &c->path_len);
        set_path(&m->rename->to, &c->path2, &c->path2_len);
        c->rename_flags = m->rename->flags;
        break;
    case RAFTFS__COMMAND__OP_SETATTR: {
        Raftfs__SetAttr *sa = m->setattr;
        c->op = STORE_OP_SETATTR;
        set_path(&sa->path, &c->path, &c->path_len);
        c->set_mask = (sa->has_mode ? STORE_SET_MODE : 0) | (sa->has_uid ? STORE_SET_UID : 0) |
                      (sa->has_gid ? STORE_SET_GID : 0) | (sa->has_size ? STORE_SET_SIZE : 0) |
                      (sa->has_atime_ns ? STORE_SET_ATIME : 0) |
                      (sa->has_mtime_ns ? STORE_SET_MTIME : 0);
        c->mode = sa->mode;
        c->uid = sa->uid;
        c->gid = sa->gid;
        c->size = sa->size;
        c->atime_ns = sa->atime_ns;
        c->mtime_ns = sa->mtime_ns;
        if (sa->has_lease) {
            c->set_mask |= STORE_SET_LEASE;
            c->lease = sa->lease;
        }
        break;
    }
    case RAFTFS__COMMAND__OP_MEMBER_SET:
        c->op = STORE_OP_MEMBER_SET;
        c->member_id = m->member_set->id;
        set_path(&m->member_set->address, &c->path, &c->path_len);
        c->incarnation = m->member_set->has_incarnation ? m->member_set->incarnation : 0;
        break;
    case RAFTFS__COMMAND__OP_MEMBER_DEL:
        c->op = STORE_OP_MEMBER_DEL;
        c->member_id = m->member_del->id;
        c->path = "";
        break;
    case RAFTFS__COMMAND__OP_LEASE_GRANT:
        c->op = STORE_OP_LEASE_GRANT;
        c->lease = m->lease_grant->id;
        c->ttl_ms = m->lease_grant->ttl_ms;
        c->path = "";
        break;
    case RAFTFS__COMMAND__OP_LEASE_REVOKE:
        c->op = STORE_OP_LEASE_REVOKE;
        c->lease = m->lease_revoke->id;
        c->lease_expired = m->lease_revoke->has_expired && m->lease_revoke->expired;
        c->path = "";
        break;
    case RAFTFS__COMMAND__OP_AUTH: {
        const Raftfs__AuthChange *au = m->auth;
        /* A password never reaches the log: the member hashes it. */
        if (m->version < STORE_CMD_VERSION || (unsigned)au->op > STORE_AUTH_OP_MAX ||
            au->has_password)
            return EINVAL;
        c->op = STORE_OP_AUTH;
        c->path = "";
        c->auth_op = (enum store_auth_op)au->op;
        if (au->has_name)
            set_path(&au->name, &c->auth_name, &c->auth_name_len);
        if (au->has_role)
            set_path(&au->role, &c->auth_role, &c->auth_role_len);
        if (au->has_prefix)
            set_path(&au->prefix, &c->auth_prefix, &c->auth_prefix_len);
        if (au->has_password_hash)
            set_path(&au->password_hash, &c->auth_hash, &c->auth_hash_len);
        c->has_auth_hash = au->has_password_hash;
        c->auth_perm = au->has_perm ? au->perm : 0;
        break;
    }
    default:
        return EINVAL; /* no op, or one from a newer build that kept version 1 */
    }
    return 0;
}

static int decode_txn(const Raftfs__Txn *t, struct store_cmd *c, void **priv)
{
    size_t nops = t->n_then + t->n_else_;
    if (t->n_compare + nops > STORE_MAX_TXN_OPS)
        return E2BIG;
    /* One block: the commands, then the compares. */
    struct store_cmd *ops =
        calloc(1, (nops + 1) * sizeof(*ops) + (t->n_compare + 1) * sizeof(struct store_compare));
    if (!ops)
        return ENOMEM;
    struct store_compare *cmp = (struct store_compare *)(ops + nops + 1);
    for (size_t i = 0; i < t->n_compare; i++) {
        const Raftfs__Compare *w = t->compare[i];
        set_path(&w->path, &cmp[i].path, &cmp[i].path_len);
        cmp[i].target = (enum store_cmp_target)w->target;
        cmp[i].result = (enum store_cmp_result)w->result;
        cmp[i].number = w->number;
        cmp[i].value = w->value.len ? (const void *)w->value.data : "";
        cmp[i].value_len = w->value.len;
        bool value = w->target == RAFTFS__COMPARE__TARGET__VALUE;
        if ((unsigned)w->target > STORE_CMP_VALUE || (unsigned)w->result > STORE_CMP_LESS ||
            (value ? !w->has_value || w->has_number : !w->has_number || w->has_value))
            goto invalid;
    }
    for (size_t i = 0; i < nops; i++) {
        const Raftfs__Command *w = i < t->n_then ? t->then[i] : t->else_[i - t->n_then];
        /* Only an op: the txn's own fields say the rest. */
        if (w->version != STORE_CMD_VERSION_PLAIN || w->time_ns || w->has_expected_revision ||
            w->has_expected_ino || w->has_client_id || w->has_seq ||
            w->op_case == RAFTFS__COMMAND__OP_TXN || w->op_case == RAFTFS__COMMAND__OP_MEMBER_SET ||
            w->op_case == RAFTFS__COMMAND__OP_MEMBER_DEL ||
            w->op_case == RAFTFS__COMMAND__OP_LEASE_GRANT ||
            w->op_case == RAFTFS__COMMAND__OP_LEASE_REVOKE ||
            w->op_case == RAFTFS__COMMAND__OP_AUTH || w->has_user || decode_op(w, &ops[i]))
            goto invalid;
        ops[i].time_ns = c->time_ns;
    }
    c->op = STORE_OP_TXN;
    c->compares = cmp;
    c->n_compares = t->n_compare;
    c->then_ops = ops;
    c->n_then = t->n_then;
    c->else_ops = ops + t->n_then;
    c->n_else = t->n_else_;
    *priv = ops;
    return 0;
invalid:
    free(ops);
    return EINVAL;
}

int store_cmd_decode(const void *buf, size_t len, struct store_cmd_decoded *out)
{
    memset(out, 0, sizeof(*out));
    Raftfs__Command *m = raftfs__command__unpack(NULL, len, buf);
    if (!m)
        return EINVAL; /* malformed, or missing required fields; ENOMEM looks the same */
    int rc = 0;
    struct store_cmd *c = &out->cmd;
    if (m->version == 0) {
        rc = EINVAL;
        goto fail_free;
    }
    if (m->version > STORE_CMD_VERSION) {
        rc = EPROTONOSUPPORT;
        goto fail_free;
    }
    c->time_ns = m->time_ns;
    c->has_expected_revision = m->has_expected_revision;
    c->expected_revision = m->expected_revision;
    c->has_expected_ino = m->has_expected_ino;
    c->expected_ino = m->expected_ino;
    c->client_id = m->has_client_id ? m->client_id : 0;
    c->seq = m->has_seq ? m->seq : 0;
    c->has_user = m->has_user;
    if (m->has_user)
        set_path(&m->user, &c->user, &c->user_len);
    c->value = "";

    if (m->op_case == RAFTFS__COMMAND__OP_TXN) {
        if (m->version < 2 || m->has_expected_revision || m->has_expected_ino) {
            rc = EINVAL; /* its compares say it all */
            goto fail_free;
        }
        rc = decode_txn(m->txn, c, &out->priv_txn);
    } else {
        rc = decode_op(m, c);
    }
    if (rc)
        goto fail_free;
    out->priv = m;
    return 0;

fail_free:
    raftfs__command__free_unpacked(m, NULL);
    memset(out, 0, sizeof(*out));
    return rc;
}

void store_cmd_decoded_free(struct store_cmd_decoded *d)
{
    if (d && d->priv) {
        raftfs__command__free_unpacked(d->priv, NULL);
        d->priv = NULL;
    }
    if (d) {
        free(d->priv_txn);
        d->priv_txn = NULL;
    }
}
