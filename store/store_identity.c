/* store_identity.c - which cluster and member a data directory belongs
 * to, and its incarnation: a file of its own, DIR/identity, beside the
 * record in LMDB's meta table.
 *
 * Design notes
 * 1. Why a file: the identity is the one part of a member's state that
 *    exists nowhere else (not in the Raft log, not in a snapshot image).
 *    A store that must be rebuilt from its snapshot image and log (the
 *    plan of docs/profile.md for applying without fsync) would otherwise
 *    lose it. So it lives outside LMDB, written once, fsync'ed.
 * 2. Both, for now: store_identity_set writes the LMDB record (as builds
 *    before this one read it) and then the file. store_identity_get reads
 *    the file, or the record when there is no file (a store from before,
 *    or a crash between the two writes); store_open writes a missing file
 *    from the record, and refuses a directory whose two disagree.
 * 3. Written as identity.tmp, fsync'ed, renamed, directory fsync'ed: a
 *    crash leaves the old file or the new one, and a leftover .tmp, which
 *    store_open removes.
 *
 * File (44 bytes, little endian): "raftfs-id\0\0\0" (12) | u32 version (1)
 * | u64 cluster id | u64 member id | u64 incarnation | u32 CRC-32C of the
 * 40 bytes before it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "store_crc.h"
#include "store_internal.h"
#include "store_le.h"

#define ID_MAGIC     "raftfs-id\0\0\0"
#define ID_MAGIC_LEN 12
#define ID_VERSION   1U
#define ID_FILE_LEN  44

static int path_of(const char *dir, const char *name, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? ENAMETOOLONG : 0;
}

int store_identity_file_read(const char *dir, struct store_identity *id)
{
    char path[4200];
    int rc = path_of(dir, STORE_IDENTITY_FILE, path, sizeof(path));
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    unsigned char b[ID_FILE_LEN + 1];
    ssize_t n = read(fd, b, sizeof(b));
    rc = n < 0 ? errno : 0;
    close(fd);
    if (rc)
        return rc;
    if (n != ID_FILE_LEN || memcmp(b, ID_MAGIC, ID_MAGIC_LEN) || get32(b + 12) != ID_VERSION ||
        get32(b + 40) != store_crc32c(0, b, 40))
        return EIO;
    id->cluster_id = get64(b + 16);
    id->member_id = get64(b + 24);
    id->incarnation = get64(b + 32);
    return id->incarnation ? 0 : EIO;
}

int store_file_replace(const char *dir, const char *name, const char *tmpname, const void *buf,
                       size_t len)
{
    char path[4200], tmp[4200];
    int rc;
    if ((rc = path_of(dir, name, path, sizeof(path))) ||
        (rc = path_of(dir, tmpname, tmp, sizeof(tmp))))
        return rc;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    ssize_t w = fault_write(FAULT_FILE_WRITE, fd, buf, len);
    rc = w < 0 ? errno : w != (ssize_t)len ? EIO : 0;
    if (!rc && fault_fsync(FAULT_FILE_WRITE, fd))
        rc = errno;
    if (close(fd) && !rc)
        rc = errno;
    if (!rc && fault_rename(FAULT_FILE_WRITE, tmp, path))
        rc = errno;
    if (rc) {
        unlink(tmp);
        return rc;
    }
    return store_fsync_path(dir);
}

int store_identity_file_write(const char *dir, const struct store_identity *id)
{
    unsigned char b[ID_FILE_LEN];
    memcpy(b, ID_MAGIC, ID_MAGIC_LEN);
    put32(b + 12, ID_VERSION);
    put64(b + 16, id->cluster_id);
    put64(b + 24, id->member_id);
    put64(b + 32, id->incarnation);
    put32(b + 40, store_crc32c(0, b, 40));
    return store_file_replace(dir, STORE_IDENTITY_FILE, STORE_IDENTITY_TMP, b, sizeof(b));
}
