/* fault.h - the fault-injection seam: the operating system calls whose
 * failure raftfs must survive, each behind one check (fault.c).
 *
 * Disarmed, a call site costs one relaxed atomic load and a branch. Only a
 * test program arms it (fault_arm): no option, variable or file of the
 * daemon does, so a production member cannot be made to fail by it. The
 * loops in tests/unit/test_fault.c fail the N-th call of each site, for
 * N = 1, 2, 3, ..., and check that the member either reports the error and
 * goes on, or stops (fails closed), and that after a restart it holds
 * every write it acknowledged (docs/testing.md, "Fault injection").
 */
#ifndef RAFTFS_FAULT_H
#define RAFTFS_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum fault_site {
    FAULT_NONE = 0,
    FAULT_LOG_WRITE,   /* pwrite of a log batch, or of a new segment's zeros */
    FAULT_LOG_SYNC,    /* fdatasync/fsync of a log segment or of wal/ */
    FAULT_LOG_RENAME,  /* a new log segment put in place */
    FAULT_TREE_COMMIT, /* mdb_txn_commit of a write transaction of the tree */
    FAULT_TREE_SYNC,   /* mdb_env_sync of the tree */
    FAULT_SNAP_WRITE,  /* a snapshot image written (taken here, or received) */
    FAULT_SNAP_SYNC,   /* a snapshot image fsync'ed */
    FAULT_SNAP_RENAME, /* a snapshot image put in place */
    FAULT_FILE_WRITE,  /* the small files: identity, open-boot marker (write, fsync, rename) */
    FAULT_ALLOC,       /* malloc on the write path */
    FAULT_NET_SEND,    /* write to a peer or client connection */
    FAULT_NET_RECV,    /* read from a peer or client connection */
    FAULT_SPACE,       /* the room check's fstatvfs (store_space): the disk looks full */
    FAULT_N_SITES
};

/* How an armed call fails. */
enum fault_mode {
    FAULT_ONCE,      /* the N-th call fails, the later ones work */
    FAULT_FROM_THEN, /* the N-th call and every later one fail (a dead disk, a full one) */
};

/* Arms site: its nth call from now (1 = the next) fails with err, or, with
 * short_io for a write, writes only part of its bytes. One site at a time;
 * arming resets the count. */
void fault_arm(enum fault_site site, uint64_t nth, int err, bool short_io, enum fault_mode mode);
void fault_disarm(void);
/* Calls of the armed site since fault_arm, and whether one failed. */
uint64_t fault_calls(void);
bool fault_fired(void);
const char *fault_site_name(enum fault_site site);

extern _Atomic int fault_armed_site;

/* At a call site: 0 to go on, or the errno this call fails with (-1: a
 * short write). */
int fault_check(enum fault_site site);
static inline int fault_at(enum fault_site site)
{
    if (__builtin_expect(atomic_load_explicit(&fault_armed_site, memory_order_relaxed) != (int)site,
                         1))
        return 0;
    return fault_check(site);
}

/* The calls, through the seam. Each behaves as the system call (or as
 * malloc) unless its site is armed. */
ssize_t fault_pwrite(enum fault_site site, int fd, const void *buf, size_t len, off_t off);
ssize_t fault_write(enum fault_site site, int fd, const void *buf, size_t len);
ssize_t fault_read(enum fault_site site, int fd, void *buf, size_t len);
ssize_t fault_send(enum fault_site site, int fd, const void *buf, size_t len, int flags);
int fault_fdatasync(enum fault_site site, int fd);
int fault_fsync(enum fault_site site, int fd);
int fault_rename(enum fault_site site, const char *from, const char *to);
int fault_renameat(enum fault_site site, int from_dir, const char *from, int to_dir,
                   const char *to);
void *fault_malloc(size_t size);
void *fault_calloc(size_t n, size_t size);
void *fault_realloc(void *p, size_t size);

#endif
