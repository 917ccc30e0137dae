/* fs_xattr.c - extended attributes: the read-only revision attributes
 * user.raftfs.revision (mod_revision), user.raftfs.create_revision and
 * user.raftfs.version. Other names are not stored (ENOTSUP). */
#include "fs_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char xattr_list[] =
    FS_XATTR_REVISION "\0" FS_XATTR_CREATE_REVISION "\0" FS_XATTR_VERSION "\0";

static bool ours(const char *name)
{
    return !strncmp(name, "user.raftfs.", 12);
}

void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct fs *fs = fuse_req_userdata(req);
    uint64_t v;
    struct store_attr a;
    struct store_txn *t;
    if (strcmp(name, FS_XATTR_REVISION) && strcmp(name, FS_XATTR_CREATE_REVISION) &&
        strcmp(name, FS_XATTR_VERSION)) {
        fuse_reply_err(req, ENODATA);
        return;
    }
    int rc = fs_node_errno(node_read_barrier(fs->node));
    if (!rc && !(rc = store_txn_begin(fs->store, &t))) {
        rc = store_getattr(t, ino, &a);
        store_txn_end(t);
    }
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    if (!strcmp(name, FS_XATTR_REVISION))
        v = a.mod_revision;
    else if (!strcmp(name, FS_XATTR_CREATE_REVISION))
        v = a.create_revision;
    else
        v = a.version;
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64, v);
    if (size == 0)
        fuse_reply_xattr(req, (size_t)n);
    else if (size < (size_t)n)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, buf, (size_t)n);
}

void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    (void)ino;
    if (size == 0)
        fuse_reply_xattr(req, sizeof(xattr_list) - 1);
    else if (size < sizeof(xattr_list) - 1)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, xattr_list, sizeof(xattr_list) - 1);
}

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                    size_t size, int flags)
{
    (void)ino, (void)value, (void)size, (void)flags;
    fuse_reply_err(req, ours(name) ? EPERM : ENOTSUP);
}

void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    (void)ino;
    fuse_reply_err(req, ours(name) ? EPERM : ENOTSUP);
}
