/* fs_internal.h - what the FUSE handlers share: struct fs, open-file and
 * open-directory handles, the table of inodes with open files. */
#ifndef RAFTFS_FS_INTERNAL_H
#define RAFTFS_FS_INTERNAL_H

#define FUSE_USE_VERSION 312 /* 35 + fuse_loop_cfg is an ABI trap in 3.14 */

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs.h"
#include "fs_known.h"
#include "net_http.h"
#include "node.h"
#include "store.h"

#define FS_XATTR_REVISION        "user.raftfs.revision"
#define FS_XATTR_CREATE_REVISION "user.raftfs.create_revision"
#define FS_XATTR_VERSION         "user.raftfs.version"
#define FS_XATTR_LEASE           "user.raftfs.lease" /* settable: a file's lease */

struct fs_istate;
struct fs_inval_item;

/* fi->fh points at one of these; the kind tells which (setattr and
 * getattr get directory handles too). */
enum fs_handle_kind {
    FS_HANDLE_FILE = 0x46494c45,
    FS_HANDLE_DIR = 0x44495220,
    FS_HANDLE_CTL = 0x43544c20,   /* a .raftfs/ file (fs_ctl.c) */
    FS_HANDLE_EVENTS = 0x45564e54 /* .raftfs/events (fs_events.c) */
};

/* An open file. Writes collect in buf and are committed as ONE command at
 * flush/fsync:
 *   O_TRUNC or created:  buf is the whole new value; PUT with expected_ino
 *   O_APPEND:            buf holds the appended bytes; APPEND, expected_ino
 *   otherwise:           buf starts as the value at open; PUT with
 *                        expected_ino and expected revision (the value's
 *                        mod_revision at open), so a concurrent change is
 *                        reported (ESTALE) instead of overwritten. */
struct fs_handle {
    enum fs_handle_kind kind; /* FS_HANDLE_FILE */
    uint64_t ino;
    bool readable, writable, append;
    pid_t opener;                  /* thread id of the opener (FUSE reports tids) */
    pid_t opener_tgid;             /* its process; 0 until needed */
    struct fs_handle *next_writer; /* in fs_istate.writers (table lock) */
    struct fs_istate *is;
    /* Table lock: users that found it by fs_table_writer_of and have not
     * put it back yet; if RELEASE unregistered it meanwhile (is is NULL),
     * the last of them frees it (fs_handle_put). */
    unsigned borrows;
    /* Compare for commits of handles opened without O_TRUNC: set at open,
     * then after each commit; rebased by local SETATTRs (fs_table_rebase,
     * which must not take mu: a flush holds mu while the node applies, and
     * the node's observer takes the table lock). */
    bool has_expected_revision; /* fixed at open */
    _Atomic uint64_t expected_revision;

    pthread_mutex_t mu; /* guards the fields below */
    /* A flush's commit is in flight (fs_file.c, flush_async): whoever takes
     * mu to use the fields below waits on idle until it is done. */
    bool committing;
    pthread_cond_t idle;
    /* RELEASE (or a failed open) is done with it: nothing more is
     * committed. Set under mu; read without it by the table's look-ups,
     * which pass over a closed handle (its size is the store's now). */
    atomic_bool closed;
    bool dirty;
    /* O_TRUNC and nothing written yet: committed at RELEASE, not at FLUSH,
     * because shells close a dup of the descriptor before writing
     * (`echo v > k` flushes once empty) and readers must never see that. */
    bool trunc_only;
    int write_err; /* a failed write poisons the handle: never committed */
    char *buf;
    size_t len, cap;
    /* Read-only handles: buf holds the version the first read took. */
    bool snapshot;
    bool has_mtime, has_atime; /* set explicitly while dirty: re-set after commit */
    int64_t mtime_ns, atime_ns;
    _Atomic uint64_t stat_size; /* what getattr reports to the writer */
};

/* Local state of an inode that has open files (table below). */
struct fs_istate {
    uint64_t ino;
    unsigned opens;
    struct fs_handle *writers;
    /* The value as it was when the inode was deleted while open: readers
     * keep reading it, as from an unlinked file (store observer). */
    bool orphaned;
    struct store_attr orphan_attr; /* nlink 0 */
    void *orphan;
    size_t orphan_len;
    struct fs_istate *next;
};

struct fs_dirh {
    enum fs_handle_kind kind; /* FS_HANDLE_DIR */
    pthread_mutex_t mu;
    off_t next_off;  /* offset that continues after last_name */
    char *last_name; /* NULL before the first entry */
    size_t last_len;
};

struct fs {
    struct node *node;
    struct store *store;
    struct store_limits limits;
    struct fuse_session *se;
    double entry_timeout, attr_timeout;

    pthread_mutex_t mu; /* the inode table */
    struct fs_istate **buckets;
    size_t nbuckets, count;

    /* fs_file.c: flushes whose commit is in flight (flush_async), and
     * those that committed on their request thread because FS_FLUSHES_MAX
     * were (for .raftfs/metrics) */
    _Atomic unsigned flushes;
    _Atomic uint64_t flushes_capped;
    /* fs_inval.c: changes made elsewhere, to tell the kernel about */
    pthread_t inval_thread;
    bool inval_running, inval_stop;
    pthread_mutex_t inval_mu;
    pthread_cond_t inval_cv;
    struct fs_inval_item *inval_head, *inval_tail;
    size_t inval_count;
    uint64_t inval_dropped, inval_dropped_total;
    struct fs_known known; /* the inodes the kernel holds (fs_known.h) */

    /* fs_later.c: requests that finish after a read barrier */
    bool serializable; /* barriers return at once: nothing to hand over */
    pthread_t later_thread;
    bool later_running, later_stop, later_sleeping;
    pthread_mutex_t later_mu;
    pthread_cond_t later_cv;
    struct fs_later *later_head, *later_tail;

    /* fs_events.c: open .raftfs/events streams, woken at every change */
    pthread_mutex_t events_mu;
    pthread_cond_t events_cv;
    struct fs_events *events_list;
    _Atomic int events_open;
    _Atomic uint64_t events_gen; /* +1 at every wake */
};

/* The file handle behind fi, or NULL (no fi, or a directory's). */
static inline struct fs_handle *fs_file_handle(const struct fuse_file_info *fi)
{
    struct fs_handle *h = fi ? (struct fs_handle *)(uintptr_t)fi->fh : NULL;
    return h && h->kind == FS_HANDLE_FILE ? h : NULL;
}

/* ---- fs_table.c ---- */
int fs_table_init(struct fs *fs);
void fs_table_fini(struct fs *fs);
/* Registers h as open on h->ino (and as a writer if writable). */
int fs_table_open(struct fs *fs, struct fs_handle *h);
/* Unregisters h; true if the caller frees it now, false if a borrower
 * (fs_table_writer_of) still holds it and will (fs_handle_put). */
bool fs_table_release(struct fs *fs, struct fs_handle *h);
/* The size an open writer reports to getattr from `tid` (through handle
 * fh if not 0): true if such a writer exists. */
bool fs_table_writer_size(struct fs *fs, uint64_t ino, uint64_t fh, pid_t tid, uint64_t *size);
/* The writer handle of `tid`'s process on ino, or NULL; borrowed: RELEASE
 * may run meanwhile but does not free it before fs_handle_put. */
struct fs_handle *fs_table_writer_of(struct fs *fs, uint64_t ino, pid_t tid);
/* Gives back what fs_table_writer_of lent; true if h was released meanwhile
 * and this was its last borrower: the caller frees it. */
bool fs_table_writer_unborrow(struct fs *fs, struct fs_handle *h);
/* A local SETATTR moved ino from revision old_rev to new_rev without
 * changing its value: writers that were up to date stay up to date. */
void fs_table_rebase(struct fs *fs, uint64_t ino, uint64_t old_rev, uint64_t new_rev);
/* Copies [off, off+size) of an orphaned inode's value; ENOENT if none. */
int fs_table_orphan_read(struct fs *fs, uint64_t ino, off_t off, size_t size, char **out,
                         size_t *len);
/* Store observer: keeps the value of a deleted inode that is open. */
void fs_table_dropping(void *ctx, const struct store_attr *attr, const void *data, size_t len);
/* The attributes of an orphaned inode (nlink 0); ENOENT if none. */
int fs_table_orphan_attr(struct fs *fs, uint64_t ino, struct store_attr *out);

/* ---- fs_guard.c ---- */
struct fs_guard_cfg {
    const char *mountpoint;
    const char *log_path; /* append here; NULL: log_fd */
    int log_fd;           /* with no log_path (foreground): usually stderr */
    unsigned conn;        /* the FUSE connection (fusectl's name for it) */
};
/* The connection number of the FUSE mount at mountpoint (from mountinfo). */
int fs_guard_connection(const char *mountpoint, unsigned *conn);
/* Forks the guard (while the process has one thread). *keep_fd is the
 * pipe end to keep open for as long as the server runs. */
int fs_guard_start(const struct fs_guard_cfg *g, int *keep_fd);

/* ---- fs_later.c ---- */
/* A request that continues after a read barrier: run(l, rc) answers it
 * and frees l; rc is 0 or the barrier's errno (fs_node_errno). */
struct fs_later {
    struct fs_later *next;
    struct fs *fs;
    int rc;
    void (*run)(struct fs_later *l, int rc);
};
/* Locks h->mu once no flush's commit is in flight (fs_file.c). */
void fs_handle_lock(struct fs_handle *h);
/* Puts back a handle from fs_table_writer_of, freeing it if RELEASE came
 * meanwhile. */
void fs_handle_put(struct fs *fs, struct fs_handle *h);
/* Unregisters h, marks it closed and frees it (or leaves that to its last
 * borrower). */
void fs_handle_drop(struct fs *fs, struct fs_handle *h);
int fs_later_start(struct fs *fs);
/* Queues l (l->fs set) to run on the later thread with rc: for a node
 * request's completion (the node's loop thread calls it). */
void fs_later_queue(struct fs_later *l, int rc);
/* After node_stop: answers what is queued, then stops the thread. */
void fs_later_stop(struct fs *fs);
/* Takes a read barrier for l, then runs l->run on the later thread; here
 * at once on a serializable mount (the barrier does not wait) or with the
 * error if the barrier cannot be submitted. */
void fs_later_after_barrier(struct fs *fs, struct fs_later *l);

/* ---- fs_inval.c ---- */
/* Store observer: queues a change made elsewhere for the notifier. */
void fs_inval_changed(void *ctx, const struct store_change *c);
/* Appends the kernel cache counters to .raftfs/metrics (Prometheus text):
 * the bytes it needs, as snprintf. */
size_t fs_inval_metrics(struct fs *fs, char *buf, size_t cap);
int fs_inval_start(struct fs *fs);
/* Invalidates ino's pages and attributes in the kernel (if inval), then
 * replies rc to req, on the notifier thread: for a flush finished on the
 * later thread, which must not wait for the kernel (fs_file.c). it comes
 * from fs_inval_reply_new, made when the flush began (NULL if no memory),
 * so that the end needs no allocation; it is taken over. */
struct fs_inval_item *fs_inval_reply_new(void);
void fs_inval_then_reply(struct fs *fs, struct fs_inval_item *it, uint64_t ino, bool inval,
                         fuse_req_t req, int rc);
/* An asynchronous flush was answered (fs->flushes). */
void fs_flush_ended(struct fs *fs);
/* Appends the flush gauges and counters to .raftfs/metrics (Prometheus
 * text): the bytes it needs, as snprintf. */
size_t fs_flush_metrics(struct fs *fs, char *buf, size_t cap);
/* Waits until no asynchronous flush is in flight: at the stop, after the
 * FUSE loop and before the node stops, so that each ends in its real
 * outcome. */
void fs_flushes_wait(struct fs *fs);
void fs_inval_stop(struct fs *fs);

/* ---- fs_http.c ---- */
/* The --metrics-addr handler (net_http_fn; ctx is the struct fs):
 * GET /metrics and GET /health, 404 for any other path. */
void fs_http_handle(void *ctx, const char *path, struct net_http_reply *out);

/* ---- fs_file.c ---- */
/* Grows *buf (of *cap bytes) to hold need bytes, doubling from first. */
int fs_buf_reserve(char **buf, size_t *cap, size_t need, size_t first);

/* ---- fs_entry.c ---- */
void fs_attr_to_stat(const struct store_attr *a, struct stat *st);
/* Fills e for attr with the configured timeouts. */
void fs_entry_fill(struct fs *fs, const struct store_attr *a, struct fuse_entry_param *e);
/* fs_entry_fill for an entry the reply hands to the kernel (it takes a
 * reference until FORGET): counts it (fs_known.h), and gives it no cache
 * time if a change was skipped since gen (fs_known_gen, taken before the
 * store was read). */
void fs_entry_hand(struct fs *fs, const struct store_attr *a, uint64_t gen,
                   struct fuse_entry_param *e);
/* Path of ino, or of parent/name, into a malloc'd string. */
int fs_path_of(struct fs *fs, uint64_t ino, char **out, size_t *len);
int fs_path_child(struct fs *fs, uint64_t parent, const char *name, char **out, size_t *len);
/* Node errors become POSIX errnos a file system may return. */
int fs_node_errno(int rc);
/* Proposes cmd on the entry that is inode ino now, following renames that
 * race with it (cmd->path is filled in; expected_ino is set). */
int fs_propose_ino(struct fs *fs, uint64_t ino, struct store_cmd *cmd, struct store_result *res);
/* After a conflict of a command at path: has ino another path now (0 and
 * *moved), or is it gone (ENOENT)? */
int fs_ino_moved(struct fs *fs, uint64_t ino, const char *path, size_t len, bool *moved);
int64_t fs_now_ns(void);
/* Owner of a new entry under parent: the caller, or the group of a setgid
 * parent (a new directory inherits the setgid bit in *mode). ENOTDIR. */
int fs_new_owner(struct fs *fs, fuse_req_t req, uint64_t parent, bool dir, uint32_t *mode,
                 uint32_t *uid, uint32_t *gid);
/* Thread group of a thread id (0 if unknown). */
pid_t fs_tgid_of(pid_t tid);

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                   struct fuse_file_info *fi);
void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                  const char *newname, unsigned int flags);
void fs_op_statfs(fuse_req_t req, fuse_ino_t ino);
void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);

/* ---- fs_file.c ---- */
void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                  struct fuse_file_info *fi);
void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                 struct fuse_file_info *fi);
void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* ftruncate through a handle, or truncate(2) by its writer: applied to its
 * buffer. EBADF: h is closed (a borrowed handle whose RELEASE came first),
 * its value committed; h's write error (EFBIG...): a failed write poisoned
 * it, it commits nothing. A truncate(2) by path then sets the size by a
 * proposal instead; an ftruncate(2) of that descriptor fails so. */
int fs_handle_truncate(struct fs *fs, struct fs_handle *h, uint64_t size);
/* truncate(2) by path into h, the writer handle of the calling process
 * (fs_table_writer_of). With uncommitted data in h (or a truncation an
 * O_TRUNC open left to commit), as fs_handle_truncate: the size joins that
 * value, committed with it by the close that reports it. With nothing
 * uncommitted (a flush committed it all, and a dup of the descriptor is
 * open or the release is still to come), the size is committed now, before
 * truncate(2) returns (the attributes then in *out), and h's value follows
 * it: applied only to h, it would reach the others at h's next commit, over
 * whatever they wrote meanwhile. *by_path: h is closed (its RELEASE came
 * first), poisoned by a failed write, or has no room for the size, and the
 * caller proposes the size by path. Errors: EFBIG, the proposal's. */
int fs_handle_truncate_path(struct fs *fs, struct fs_handle *h, uint64_t size, int64_t now,
                            struct store_attr *out, bool *by_path);

/* ---- fs_dir.c ---- */
void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi);
void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi);
void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* ---- fs_xattr.c ---- */
void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                    size_t size, int flags);
void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* ---- fs_ctl.c: .raftfs/, in front of the handlers above ---- */
/* ---- fs_events.c: .raftfs/events ---- */
struct fs_events;
struct fs_events *fs_events_handle(const struct fuse_file_info *fi);
/* Opens a stream from the current revision into fi. EMFILE (too many
 * open on this mount), ENOMEM, store errors. */
int fs_events_open(struct fs *fs, struct fuse_file_info *fi);
void fs_events_read(fuse_req_t req, struct fs_events *h, size_t size);
void fs_events_poll(fuse_req_t req, struct fs_events *h, struct fuse_pollhandle *ph);
void fs_events_release(struct fs_events *h);
/* A change committed: wakes blocked readers and pollers (store observer). */
void fs_events_wake(struct fs *fs);

void fs_ctl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
/* The text of .raftfs/metrics, rendered now, into a malloc'd *out (the
 * caller frees it). ENOMEM. Any thread. */
int fs_ctl_metrics(struct fs *fs, char **out, size_t *len);
void fs_ctl_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                 struct fuse_pollhandle *ph);
void fs_ctl_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ctl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                    struct fuse_file_info *fi);
void fs_ctl_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fs_ctl_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_ctl_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fs_ctl_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void fs_ctl_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_ctl_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_ctl_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                   const char *newname, unsigned int flags);
void fs_ctl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ctl_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                   struct fuse_file_info *fi);
void fs_ctl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fs_ctl_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                  struct fuse_file_info *fi);
void fs_ctl_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ctl_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fs_ctl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ctl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ctl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi);
void fs_ctl_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi);
void fs_ctl_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ctl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_ctl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_ctl_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                     size_t size, int flags);
void fs_ctl_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
