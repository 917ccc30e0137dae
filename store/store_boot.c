/* store_boot.c - applying without fsync, made safe: DIR/open-boot says
 * which boot of the machine has the store open, and a store left open by
 * another boot is rebuilt from its snapshot image and its Raft log.
 *
 * Design notes
 * 1. With store_config.unsynced_apply, apply commits are MDB_NOSYNC: the
 *    tree's pages reach the disk at the kernel's writeback, not at each
 *    commit. The Raft log is what is fsync'ed before a write counts, and
 *    the log keeps every entry after the last snapshot image (compaction
 *    writes and fsyncs the image first), so the tree is never the only
 *    copy of anything.
 * 2. A process crash loses nothing: the page cache holds every page LMDB
 *    wrote. A system crash (power, kernel) may leave data.mdb with some
 *    pages new and some old: LMDB documents that such a file can be
 *    damaged, so it is not trusted. The marker, written and fsync'ed at
 *    open before any unsynced commit and removed at a clean close (after
 *    an fsync of the tree), tells the two apart: present and from another
 *    boot (/proc/sys/kernel/random/boot_id) means the machine stopped with
 *    the store open.
 * 3. The rebuild moves DIR/store aside to DIR/store.untrusted (kept for
 *    inspection; an older one is replaced), makes an empty store with the
 *    limits the marker recorded, and installs the snapshot image the log
 *    starts after (DIR/snapshots/snap-INDEX-TERM); the node then applies
 *    the log's committed entries after it, as after any restart. The
 *    identity is in DIR/identity (store_identity.c); the change history is
 *    reset, as after any image install. A log that starts after a
 *    snapshot with no image (a store adopted by a node) cannot be rebuilt:
 *    the start is refused, nothing moved.
 *
 * Marker (72 bytes, little endian): "raftfs-boot\0" (12) | u32 version (1)
 * | boot id (40, NUL-padded) | u32 max_value_bytes | u32 max_name_bytes |
 * u32 max_path_bytes | u32 CRC-32C of the 68 bytes before it.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_crc.h"
#include "store_internal.h"
#include "store_le.h"
#include "store_log.h"

#define BOOT_MAGIC     "raftfs-boot"
#define BOOT_MAGIC_LEN 12
#define BOOT_VERSION   1U
#define BOOT_LEN       72

int store_boot_id(const struct store_config *cfg, char out[STORE_BOOT_ID_MAX])
{
    if (cfg && cfg->boot_id) {
        snprintf(out, STORE_BOOT_ID_MAX, "%s", cfg->boot_id);
        return 0;
    }
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (!f)
        return errno;
    char buf[64] = "";
    int rc = fgets(buf, sizeof(buf), f) ? 0 : EIO;
    fclose(f);
    buf[strcspn(buf, "\n")] = 0;
    if (!rc && (!buf[0] || strlen(buf) >= STORE_BOOT_ID_MAX))
        rc = EIO;
    if (!rc)
        snprintf(out, STORE_BOOT_ID_MAX, "%s", buf);
    return rc;
}

int store_boot_read(const char *dir, char boot[STORE_BOOT_ID_MAX], struct store_limits *lim)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, STORE_BOOT_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    unsigned char b[BOOT_LEN + 1];
    ssize_t n = read(fd, b, sizeof(b));
    int rc = n < 0 ? errno : 0;
    close(fd);
    if (rc)
        return rc;
    if (n != BOOT_LEN || memcmp(b, BOOT_MAGIC, BOOT_MAGIC_LEN) || get32(b + 12) != BOOT_VERSION ||
        get32(b + 68) != store_crc32c(0, b, 68) || b[16 + 39] != 0)
        return EIO;
    memcpy(boot, b + 16, 40);
    lim->max_value_bytes = get32(b + 56);
    lim->max_name_bytes = get32(b + 60);
    lim->max_path_bytes = get32(b + 64);
    return 0;
}

int store_boot_write(const char *dir, const char *boot, const struct store_limits *lim)
{
    unsigned char b[BOOT_LEN] = {0};
    memcpy(b, BOOT_MAGIC, BOOT_MAGIC_LEN);
    put32(b + 12, BOOT_VERSION);
    strncpy((char *)b + 16, boot, 39);
    put32(b + 56, lim->max_value_bytes);
    put32(b + 60, lim->max_name_bytes);
    put32(b + 64, lim->max_path_bytes);
    put32(b + 68, store_crc32c(0, b, 68));
    return store_file_replace(dir, STORE_BOOT_FILE, STORE_BOOT_TMP, b, sizeof(b));
}

int store_boot_clear(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, STORE_BOOT_FILE);
    if (unlink(path) && errno != ENOENT)
        return errno;
    return store_fsync_path(dir);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path) ? errno : 0;
}

int store_boot_set_aside(const char *dir, char *err, size_t err_len)
{
    char from[4200], to[4200];
    snprintf(from, sizeof(from), "%s/%s", dir, STORE_ENV_DIR);
    snprintf(to, sizeof(to), "%s/%s", dir, STORE_UNTRUSTED_DIR);
    int rc = nftw(to, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (rc && errno != ENOENT)
        return store_fail(err, err_len, errno, "cannot remove the older %s: %s", to,
                          strerror(errno));
    if (rename(from, to))
        return store_fail(err, err_len, errno, "cannot move %s aside to %s: %s", from, to,
                          strerror(errno));
    if ((rc = store_fsync_path(dir)))
        return store_fail(err, err_len, rc, "cannot sync %s: %s", dir, strerror(rc));
    return 0;
}

int store_boot_rebuild(struct store *s, char *err, size_t err_len)
{
    struct store_log_snapshot snap;
    int rc = store_log_snapshot(s, &snap);
    if (rc)
        return store_fail(err, err_len, rc, "cannot read the log's snapshot: %s", strerror(rc));
    if (!snap.index)
        return 0; /* the log holds everything from index 1 */
    char path[4200];
    snprintf(path, sizeof(path), "%s/snapshots/snap-%llu-%llu", s->dir,
             (unsigned long long)snap.index, (unsigned long long)snap.term);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return store_fail(err, err_len, EPROTO,
                          "cannot rebuild the store: the log starts after index %llu, whose "
                          "image %s cannot be opened (%s)",
                          (unsigned long long)snap.index, path, strerror(errno));
    struct store_snapshot_info info;
    char why[256] = "";
    rc = store_snapshot_install(s, fd, &info, why, sizeof(why));
    close(fd);
    if (!rc && info.applied_index != snap.index)
        rc = EPROTO,
        snprintf(why, sizeof(why), "it is of index %llu", (unsigned long long)info.applied_index);
    if (rc)
        return store_fail(err, err_len, rc, "cannot rebuild the store from %s: %s", path, why);
    return 0;
}

void store_sync_failed(struct store *s)
{
    if (!s->unsynced)
        return; /* every commit synced: the failed one failed alone */
    s->sync_failed = true;
    store_boot_write(s->dir, STORE_BOOT_SYNC_FAILED, &s->limits); /* best effort */
}
