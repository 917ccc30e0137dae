/* fs_xattr.c - extended attributes: the read-only revision attributes
 * user.raftfs.revision (mod_revision), user.raftfs.create_revision and
 * user.raftfs.version, and user.raftfs.lease, the lease a file is attached
 * to (16 hex digits), which setxattr attaches and removexattr detaches
 * (a SETATTR command). Other names are not stored (ENOTSUP). */
#include "fs_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

static const char xattr_list[] =
    FS_XATTR_REVISION "\0" FS_XATTR_CREATE_REVISION "\0" FS_XATTR_VERSION "\0";

static bool ours(const char *name)
{
    return !strncmp(name, "user.raftfs.", 12);
}

/* ino's attributes and lease, after the read barrier. */
static int read_attr(struct fs *fs, uint64_t ino, struct store_attr *a, uint64_t *lease)
{
    struct store_txn *t;
    int rc = fs_node_errno(node_read_barrier(fs->node));
    if (!rc && !(rc = store_txn_begin(fs->store, &t))) {
        rc = store_getattr(t, ino, a);
        if (!rc)
            rc = store_file_lease(t, ino, lease);
        store_txn_end(t);
    }
    return rc;
}

static void reply_value(fuse_req_t req, const char *buf, size_t n, size_t size)
{
    if (size == 0)
        fuse_reply_xattr(req, n);
    else if (size < n)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, buf, n);
}

void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct fs *fs = fuse_req_userdata(req);
    uint64_t v, lease = 0;
    struct store_attr a;
    bool is_lease = !strcmp(name, FS_XATTR_LEASE);
    if (strcmp(name, FS_XATTR_REVISION) && strcmp(name, FS_XATTR_CREATE_REVISION) &&
        strcmp(name, FS_XATTR_VERSION) && !is_lease) {
        fuse_reply_err(req, ENODATA);
        return;
    }
    int rc = read_attr(fs, ino, &a, &lease);
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    char buf[32];
    int n;
    if (is_lease) {
        if (!lease) {
            fuse_reply_err(req, ENODATA);
            return;
        }
        n = snprintf(buf, sizeof(buf), "%016" PRIx64, lease);
    } else {
        if (!strcmp(name, FS_XATTR_REVISION))
            v = a.mod_revision;
        else if (!strcmp(name, FS_XATTR_CREATE_REVISION))
            v = a.create_revision;
        else
            v = a.version;
        n = snprintf(buf, sizeof(buf), "%" PRIu64, v);
    }
    reply_value(req, buf, (size_t)n, size);
}

void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct fs *fs = fuse_req_userdata(req);
    struct store_attr a;
    uint64_t lease = 0;
    int rc = read_attr(fs, ino, &a, &lease);
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    char buf[sizeof(xattr_list) + sizeof(FS_XATTR_LEASE)];
    size_t n = sizeof(xattr_list) - 1;
    memcpy(buf, xattr_list, n);
    if (lease) { /* listed only where it can be read */
        memcpy(buf + n, FS_XATTR_LEASE, sizeof(FS_XATTR_LEASE));
        n += sizeof(FS_XATTR_LEASE);
    }
    reply_value(req, buf, n, size);
}

/* Attaches ino (whose mod_revision is old_rev) to lease (0: detaches). */
static int set_lease(struct fs *fs, uint64_t ino, uint64_t old_rev, uint64_t lease)
{
    struct store_cmd cmd = {.op = STORE_OP_SETATTR,
                            .time_ns = fs_now_ns(),
                            .set_mask = STORE_SET_LEASE,
                            .lease = lease};
    struct store_result res;
    int rc = fs_propose_ino(fs, ino, &cmd, &res);
    if (!rc && res.err)
        rc = res.err == STORE_ECONFLICT ? ESTALE : res.err;
    if (!rc) /* writers up to date with the value still are */
        fs_table_rebase(fs, ino, old_rev, res.attr.mod_revision);
    return rc;
}

/* A lease id as the xattr holds it: 1 to 16 hex digits, optionally 0x. */
static int parse_lease(const char *value, size_t size, uint64_t *out)
{
    char buf[24];
    while (size && (value[size - 1] == '\n' || value[size - 1] == 0))
        size--; /* echo -n is easy to forget */
    if (size >= 2 && value[0] == '0' && (value[1] == 'x' || value[1] == 'X'))
        value += 2, size -= 2;
    if (!size || size > 16)
        return EINVAL;
    memcpy(buf, value, size);
    buf[size] = 0;
    char *end;
    unsigned long long v = strtoull(buf, &end, 16);
    if (*end || !v || buf[0] == '-' || buf[0] == '+' || buf[0] == ' ')
        return EINVAL;
    *out = v;
    return 0;
}

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                    size_t size, int flags)
{
    struct fs *fs = fuse_req_userdata(req);
    if (strcmp(name, FS_XATTR_LEASE)) {
        fuse_reply_err(req, ours(name) ? EPERM : ENOTSUP);
        return;
    }
    uint64_t lease, have = 0;
    struct store_attr a;
    int rc = parse_lease(value, size, &lease);
    if (!rc && !(rc = read_attr(fs, ino, &a, &have))) {
        if ((flags & XATTR_CREATE) && have)
            rc = EEXIST;
        else if ((flags & XATTR_REPLACE) && !have)
            rc = ENODATA;
    }
    if (!rc)
        rc = set_lease(fs, ino, a.mod_revision, lease);
    fuse_reply_err(req, rc);
}

void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct fs *fs = fuse_req_userdata(req);
    if (strcmp(name, FS_XATTR_LEASE)) {
        fuse_reply_err(req, ours(name) ? EPERM : ENOTSUP);
        return;
    }
    uint64_t have = 0;
    struct store_attr a;
    int rc = read_attr(fs, ino, &a, &have);
    if (!rc && !have)
        rc = ENODATA;
    if (!rc)
        rc = set_lease(fs, ino, a.mod_revision, 0);
    fuse_reply_err(req, rc);
}
