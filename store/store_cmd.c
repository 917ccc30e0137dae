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

int store_cmd_encode(const struct store_cmd *c, void **out, size_t *out_len)
{
    Raftfs__Command m = RAFTFS__COMMAND__INIT;
    Raftfs__Put put = RAFTFS__PUT__INIT;
    Raftfs__Append app = RAFTFS__APPEND__INIT;
    Raftfs__Delete del = RAFTFS__DELETE__INIT;
    Raftfs__Mkdir mk = RAFTFS__MKDIR__INIT;
    Raftfs__Rmdir rm = RAFTFS__RMDIR__INIT;
    Raftfs__Rename rn = RAFTFS__RENAME__INIT;
    Raftfs__SetAttr sa = RAFTFS__SET_ATTR__INIT;
    Raftfs__MemberSet ms = RAFTFS__MEMBER_SET__INIT;
    Raftfs__MemberDel md = RAFTFS__MEMBER_DEL__INIT;

    m.version = STORE_CMD_VERSION;
    m.time_ns = c->time_ns;
    m.has_expected_revision = c->has_expected_revision;
    m.expected_revision = c->expected_revision;
    m.has_expected_ino = c->has_expected_ino;
    m.expected_ino = c->expected_ino;
    m.has_client_id = m.has_seq = c->client_id != 0;
    m.client_id = c->client_id;
    m.seq = c->seq;

    switch (c->op) {
    case STORE_OP_PUT:
        put.path = bin(c->path, c->path_len);
        put.value = bin(c->value, c->value_len);
        put.mode = c->mode;
        put.has_uid = put.has_gid = 1;
        put.uid = c->uid;
        put.gid = c->gid;
        m.op_case = RAFTFS__COMMAND__OP_PUT;
        m.put = &put;
        break;
    case STORE_OP_APPEND:
        app.path = bin(c->path, c->path_len);
        app.value = bin(c->value, c->value_len);
        m.op_case = RAFTFS__COMMAND__OP_APPEND;
        m.append = &app;
        break;
    case STORE_OP_DELETE:
        del.path = bin(c->path, c->path_len);
        m.op_case = RAFTFS__COMMAND__OP_DELETE;
        m.delete_ = &del;
        break;
    case STORE_OP_MKDIR:
        mk.path = bin(c->path, c->path_len);
        mk.mode = c->mode;
        mk.has_uid = mk.has_gid = 1;
        mk.uid = c->uid;
        mk.gid = c->gid;
        m.op_case = RAFTFS__COMMAND__OP_MKDIR;
        m.mkdir = &mk;
        break;
    case STORE_OP_RMDIR:
        rm.path = bin(c->path, c->path_len);
        m.op_case = RAFTFS__COMMAND__OP_RMDIR;
        m.rmdir = &rm;
        break;
    case STORE_OP_RENAME:
        rn.from = bin(c->path, c->path_len);
        rn.to = bin(c->path2, c->path2_len);
        rn.has_flags = c->rename_flags != 0;
        rn.flags = c->rename_flags;
        m.op_case = RAFTFS__COMMAND__OP_RENAME;
        m.rename = &rn;
        break;
    case STORE_OP_SETATTR:
        sa.path = bin(c->path, c->path_len);
        sa.has_mode = !!(c->set_mask & STORE_SET_MODE);
        sa.mode = c->mode;
        sa.has_uid = !!(c->set_mask & STORE_SET_UID);
        sa.uid = c->uid;
        sa.has_gid = !!(c->set_mask & STORE_SET_GID);
        sa.gid = c->gid;
        sa.has_size = !!(c->set_mask & STORE_SET_SIZE);
        sa.size = c->size;
        sa.has_atime_ns = !!(c->set_mask & STORE_SET_ATIME);
        sa.atime_ns = c->atime_ns;
        sa.has_mtime_ns = !!(c->set_mask & STORE_SET_MTIME);
        sa.mtime_ns = c->mtime_ns;
        m.op_case = RAFTFS__COMMAND__OP_SETATTR;
        m.setattr = &sa;
        break;
    case STORE_OP_MEMBER_SET:
        ms.id = c->member_id;
        ms.address = bin(c->path, c->path_len);
        ms.has_incarnation = c->incarnation != 0;
        ms.incarnation = c->incarnation;
        m.op_case = RAFTFS__COMMAND__OP_MEMBER_SET;
        m.member_set = &ms;
        break;
    case STORE_OP_MEMBER_DEL:
        md.id = c->member_id;
        m.op_case = RAFTFS__COMMAND__OP_MEMBER_DEL;
        m.member_del = &md;
        break;
    default:
        return EINVAL;
    }

    size_t len = raftfs__command__get_packed_size(&m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return ENOMEM;
    size_t packed = raftfs__command__pack(&m, buf);
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
    default:
        rc = EINVAL; /* no op, or one from a newer build that kept version 1 */
        goto fail_free;
    }
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
}
