/* node_snap.c - snapshots: taking one and compacting the log, serving its
 * chunks to a lagging follower, receiving and installing one.
 *
 * Files in DIR/snapshots/:
 *   snap-INDEX-TERM      the image the log starts after (store_snapshot_*),
 *                        the one raft sends; older ones are removed
 *   incoming-INDEX-TERM  an image being received, chunk by chunk
 *   *.tmp                an image being written
 *   .backup-XXXXXX       an image for an online backup, unlinked as soon
 *                        as it is made (node_snap_backup): it lives as
 *                        long as the client connection that holds it
 * The store's log records the current one (store_log_snapshot); any other
 * file found at start is a leftover of a crash and is removed.
 *
 * Design notes
 * 1. Taking a snapshot happens on the loop thread between readies
 *    (maybe_snapshot in node_raft.c), when the applied index is
 *    snapshot_entries past the last one, or earlier when room is short
 *    (free space under 4 * max_msg_bytes, or a write refused for room:
 *    take_room sets space_refused), at most once a second then, since
 *    compacting the log is what gives its space back. A ready held at
 *    its apply stage for lack of room does not stop it: the snapshot is
 *    of what is applied. The image
 *    (one read transaction: writers are not blocked) is written and
 *    fsync'ed under a temporary name, renamed, then the log is compacted to
 *    its index in one synced transaction (which also flushes the lazily
 *    applied state). A crash in between leaves the old snapshot in force.
 * 2. The configuration recorded with a snapshot is the last one applied
 *    (trap 8), tracked as configuration entries are applied.
 * 3. A received image is checked whole (store_snapshot_install) before it
 *    replaces the state; the log is then reset to start after it.
 * 4. Taking a snapshot removes older snap-* images but never the incoming
 *    one: a follower that is catching up applies, and snapshots, while a
 *    transfer runs. Removing it there left the later chunks writing into a
 *    new file with a hole where the first chunk was, and the install then
 *    failed the member closed (found by tests/chaos, seed 1 in CI). A chunk
 *    past offset 0 therefore never creates the file: a missing beginning
 *    is an error, not zeros.
 * 5. An image for a backup (`raftfs snapshot save`) is written like one
 *    taken for compaction (one read transaction, the same format), but it
 *    is not the log's: it has no name (so note 4's clean-ups and a crash
 *    leave nothing behind), it compacts nothing, it is written on a thread
 *    of its own (node_client.c), so the loop goes on meanwhile, and its
 *    index is whatever the store had committed when its transaction
 *    began, looked up in the log for its term (ERANGE if the log was
 *    compacted past it meanwhile: rare, and a new image will do).
 * 6. At start the image the log starts after is checked whole
 *    (store_snapshot_check: a read of the file): a damaged one would be
 *    sent to every follower that needs it, refused by each, and would
 *    make a rebuild after a system crash fail.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fault.h"
#include "node_internal.h"

static void path_of(const struct node *n, char *buf, size_t len, const char *kind, uint64_t index,
                    uint64_t term)
{
    snprintf(buf, len, "%s/snapshots/%s-%llu-%llu", n->cfg.data_dir, kind,
             (unsigned long long)index, (unsigned long long)term);
}

/* Makes the names in snapshots/ durable: an image renamed into place must
 * be there after a power loss before the log entries it covers go. */
static int sync_dir(const struct node *n)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/snapshots", n->cfg.data_dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fault_fsync(FAULT_SNAP_SYNC, fd) ? errno : 0;
    close(fd);
    return rc;
}

/* Removes every file but keep (a file name, or NULL), and but the image
 * being received if keep_incoming. */
static void remove_others(const struct node *n, const char *keep, bool keep_incoming)
{
    char dir[4200], path[4500];
    snprintf(dir, sizeof(dir), "%s/snapshots", n->cfg.data_dir);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || (keep && !strcmp(e->d_name, keep)) ||
            (keep_incoming && !strncmp(e->d_name, "incoming-", 9) && !strchr(e->d_name, '.')))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* The image the log starts after is the only copy of the state up to its
 * index (the entries before are gone): what a lagging follower is sent,
 * what a tree not trusted after a system crash is rebuilt from. A start
 * on a damaged or missing one is refused (note 6), as for a damaged log. */
static int image_verify(struct node *n, const struct store_log_snapshot *snap, char *err,
                        size_t err_len)
{
    char path[4500], why[256] = "";
    path_of(n, path, sizeof(path), "snap", snap->index, snap->term);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, err_len,
                 "the snapshot image the log starts after (%s) cannot be opened: "
                 "%s: refusing to start",
                 path, strerror(e));
        return e == ENOENT ? EPROTO : e;
    }
    struct store_snapshot_info info;
    int rc = store_snapshot_check(fd, &info, why, sizeof(why));
    close(fd);
    if (!rc && (info.applied_index != snap->index || info.bytes != snap->size)) {
        snprintf(why, sizeof(why), "it is at index %llu, %llu bytes; the log says %llu, %llu",
                 (unsigned long long)info.applied_index, (unsigned long long)info.bytes,
                 (unsigned long long)snap->index, (unsigned long long)snap->size);
        rc = EPROTO;
    }
    if (rc)
        snprintf(err, err_len, "the snapshot image %s is damaged (%s): refusing to start", path,
                 why);
    return rc;
}

int node_snap_init(struct node *n, char *err, size_t err_len)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/snapshots", n->cfg.data_dir);
    if (mkdir(dir, 0700) && errno != EEXIST) {
        snprintf(err, err_len, "cannot create %s: %s", dir, strerror(errno));
        return errno;
    }
    struct store_log_snapshot snap;
    int rc = store_log_snapshot(n->store, &snap);
    if (rc) {
        snprintf(err, err_len, "cannot read the log's snapshot: %s", strerror(rc));
        return rc;
    }
    n->snap_index = snap.index;
    if (snap.index && snap.size && (rc = image_verify(n, &snap, err, err_len)))
        return rc;
    char keep[128];
    snprintf(keep, sizeof(keep), "snap-%llu-%llu", (unsigned long long)snap.index,
             (unsigned long long)snap.term);
    remove_others(n, snap.index ? keep : NULL, false);
    /* The configuration in force at the applied index: the snapshot's,
     * then every configuration entry applied after it. */
    memset(&n->applied_conf, 0, sizeof(n->applied_conf));
    if (snap.index && raft_conf_decode(snap.conf, snap.conf_len, &n->applied_conf)) {
        snprintf(err, err_len, "the log's snapshot has a damaged configuration");
        return EIO;
    }
    for (uint64_t i = snap.index + 1; i <= n->applied;) {
        struct store_log_entry *e;
        size_t k;
        if ((rc = store_log_entries(n->store, i, n->applied + 1, 4U << 20, &e, &k))) {
            snprintf(err, err_len, "cannot read the log: %s", strerror(rc));
            return rc;
        }
        for (size_t j = 0; j < k; j++)
            if (e[j].type == RAFT_ENTRY_CONF &&
                raft_conf_decode(e[j].data, e[j].len, &n->applied_conf)) {
                snprintf(err, err_len, "a damaged configuration entry at %llu",
                         (unsigned long long)e[j].index);
                free(e);
                return EIO;
            }
        i += k;
        free(e);
    }
    return 0;
}

int node_snap_take(struct node *n)
{
    uint64_t index = n->applied, term;
    int rc = store_log_term(n->store, index, &term);
    if (rc)
        return rc;
    char tmp[4600], final[4500];
    path_of(n, final, sizeof(final), "snap", index, term);
    snprintf(tmp, sizeof(tmp), "%s.tmp", final);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    struct store_snapshot_info info;
    rc = store_snapshot_write(n->store, fd, &info);
    close(fd);
    /* The image is of the state the loop applied: nobody else applies. */
    if (!rc && info.applied_index != index)
        rc = EIO;
    if (!rc && fault_rename(FAULT_SNAP_RENAME, tmp, final))
        rc = errno;
    if (rc) {
        unlink(tmp);
        return rc;
    }
    if ((rc = sync_dir(n)))
        return rc; /* the log keeps its entries: the image may not survive a crash */
    struct store_log_snapshot snap = {.index = index, .term = term, .size = info.bytes};
    snap.conf_len = raft_conf_encoded_size(&n->applied_conf);
    raft_conf_encode(&n->applied_conf, snap.conf);
    if ((rc = store_log_compact(n->store, &snap, false))) {
        /* EIO: the log may hold the record of this snapshot (written, its
         * sync failed), which needs the image to be there at the next
         * start. Anything else wrote nothing. */
        if (rc != EIO)
            unlink(final);
        return rc;
    }
    n->snap_index = index;
    node_metric_add(n, &n->metrics.snapshots_taken, 1);
    char keep[128];
    snprintf(keep, sizeof(keep), "snap-%llu-%llu", (unsigned long long)index,
             (unsigned long long)term);
    remove_others(n, keep, true);
    node_log(NODE_LOG_INFO, "snapshot at index %llu (%llu records, %llu bytes); log compacted",
             (unsigned long long)index, (unsigned long long)info.records,
             (unsigned long long)info.bytes);
    return 0;
}

int node_snap_read(struct node *n, uint64_t index, uint64_t term, uint64_t offset, size_t max,
                   uint8_t **data, size_t *len)
{
    struct store_log_snapshot snap;
    int rc = store_log_snapshot(n->store, &snap);
    if (rc)
        return RAFT_ESTORAGE;
    if (snap.index != index || snap.term != term)
        return RAFT_ESNAPGONE;
    char path[4500];
    path_of(n, path, sizeof(path), "snap", index, term);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RAFT_ECORRUPT : RAFT_ESTORAGE;
    uint8_t *buf = malloc(max ? max : 1);
    ssize_t got = buf ? pread(fd, buf, max, (off_t)offset) : -1;
    close(fd);
    if (got <= 0) {
        free(buf);
        return buf ? RAFT_ECORRUPT : RAFT_ENOMEM;
    }
    *data = buf;
    *len = (size_t)got;
    node_metric_add(n, &n->metrics.snapshot_chunks_sent, 1);
    if (offset == 0)
        node_metric_add(n, &n->metrics.snapshots_sent, 1);
    return 0;
}

int node_snap_chunk(struct node *n, const struct raft_snapshot_chunk *c)
{
    char path[4500];
    path_of(n, path, sizeof(path), "incoming", c->snap.index, c->snap.term);
    if (c->offset == 0) {
        /* A new image: any other one being received is abandoned. */
        char keep[128];
        struct store_log_snapshot cur;
        if (!store_log_snapshot(n->store, &cur) && cur.index) {
            snprintf(keep, sizeof(keep), "snap-%llu-%llu", (unsigned long long)cur.index,
                     (unsigned long long)cur.term);
            remove_others(n, keep, false);
        } else {
            remove_others(n, NULL, false);
        }
    }
    int fd = open(path, O_WRONLY | O_CLOEXEC | (c->offset == 0 ? O_CREAT | O_TRUNC : 0), 0600);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            node_log(NODE_LOG_ERROR, "the snapshot image being received at %llu is gone",
                     (unsigned long long)c->snap.index);
        return e == ENOENT ? EIO : e;
    }
    int rc = 0;
    size_t done = 0;
    while (!rc && done < c->len) {
        ssize_t k = fault_pwrite(FAULT_SNAP_WRITE, fd, c->data + done, c->len - done,
                                 (off_t)(c->offset + done));
        if (k < 0 && errno != EINTR)
            rc = errno;
        else if (k > 0)
            done += (size_t)k;
    }
    /* Durable before the acknowledgement leaves (the ready contract). */
    if (!rc && fault_fsync(FAULT_SNAP_SYNC, fd))
        rc = errno;
    close(fd);
    if (!rc && c->offset == 0)
        rc = sync_dir(n);
    if (!rc)
        node_metric_add(n, &n->metrics.snapshot_chunks_received, 1);
    return rc;
}

int node_snap_install(struct node *n, const struct raft_snapshot_meta *meta)
{
    char path[4500], final[4500], err[256];
    path_of(n, path, sizeof(path), "incoming", meta->index, meta->term);
    path_of(n, final, sizeof(final), "snap", meta->index, meta->term);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct store_snapshot_info info;
    struct stat st;
    off_t image_bytes = fstat(fd, &st) == 0 ? st.st_size : 0;
    int rc = store_snapshot_install(n->store, fd, &info, err, sizeof(err));
    close(fd);
    if (rc == EIO) {
        /* LMDB reports a short write as EIO, and a disk filling up during
         * the install's commit gives one (found by tests/chaos: diskfull
         * during an install). With less room than the image, it is a lack
         * of room: the ready waits for space, as for ENOSPC, instead of
         * failing closed. */
        struct statvfs vfs;
        if (statvfs(n->cfg.data_dir, &vfs) == 0 &&
            (uint64_t)vfs.f_bavail * vfs.f_frsize < (uint64_t)image_bytes + (1U << 20))
            rc = ENOSPC;
    }
    if (rc) {
        node_log(NODE_LOG_ERROR, "installing the snapshot at %llu: %s%s",
                 (unsigned long long)meta->index, err,
                 rc == ENOSPC ? " (no room: tried again once there is)" : "");
        return rc == EPROTO ? EIO : rc;
    }
    if (info.applied_index != meta->index) {
        node_log(NODE_LOG_ERROR, "the snapshot image is at %llu, not %llu",
                 (unsigned long long)info.applied_index, (unsigned long long)meta->index);
        return EIO;
    }
    if (fault_rename(FAULT_SNAP_RENAME, path, final))
        return errno;
    if ((rc = sync_dir(n)))
        return rc;
    struct store_log_snapshot snap = {.index = meta->index, .term = meta->term, .size = info.bytes};
    snap.conf_len = raft_conf_encoded_size(&meta->conf);
    raft_conf_encode(&meta->conf, snap.conf);
    /* raft decided the whole log goes (trap 7). */
    if ((rc = store_log_compact(n->store, &snap, true)))
        return rc;
    char keep[128];
    snprintf(keep, sizeof(keep), "snap-%llu-%llu", (unsigned long long)meta->index,
             (unsigned long long)meta->term);
    remove_others(n, keep, false);
    n->applied = meta->index;
    node_raft_visible_moved(n);
    n->snap_index = meta->index;
    node_metric_add(n, &n->metrics.snapshots_installed, 1);
    n->applied_conf = meta->conf;
    /* The member directory came with the image: dial whom it names (at
     * the next tick: this ready's messages are still to be sent). */
    n->peers_resync = true;
    node_log(NODE_LOG_INFO, "installed a snapshot at index %llu (%llu records)",
             (unsigned long long)meta->index, (unsigned long long)info.records);
    return 0;
}

int node_snap_backup(struct node *n, int *fd, struct store_snapshot_info *info, uint64_t *term)
{
    char path[4500];
    snprintf(path, sizeof(path), "%s/snapshots/.backup-XXXXXX", n->cfg.data_dir);
    int f = mkostemp(path, O_CLOEXEC);
    if (f < 0)
        return errno;
    unlink(path);
    /* Off the loop thread, store_begin commits nothing: the image is of
     * the committed state, whose index is in the log unless a compaction
     * passed it meanwhile (ERANGE). */
    int rc = store_snapshot_write(n->store, f, info);
    if (!rc)
        rc = store_log_term(n->store, info->applied_index, term);
    if (rc) {
        close(f);
        return rc;
    }
    *fd = f;
    return 0;
}
