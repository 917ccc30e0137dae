/* fs_walk.h - the names each calling thread's path walk went through,
 * kept until the request that ends the walk checks them (fs_walk.c).
 *
 * What for: on a linearizable mount a name must lead where it leads now.
 * A member behind the leader that answers a LOOKUP from its own state can
 * hand out the inode a name had before (renamed away, deleted and made
 * again elsewhere), and the open of that inode then reads another key's
 * value. A read barrier in every LOOKUP prevents it, at one ReadIndex
 * round per path component. Instead, LOOKUPs answer from the member's
 * state and record each step (parent, name, inode) under the caller's
 * thread id; the request that ends the walk (open, opendir, the revision
 * getxattr) takes its read barrier as before and then checks that every
 * step still holds. If one does not, it answers ESTALE and the kernel
 * walks the path again (LOOKUP_REVAL), now on a state at least as new as
 * that barrier. Every name is so checked on a state no older than the
 * start of the call: one round per call, not per component.
 *
 * Why per thread: the kernel sends a walk's LOOKUPs and the request that
 * ends it from the caller's task, one after the other, and with an entry
 * timeout of 0 it looks up every component on every walk. A walk goes on
 * from its last step, or from an earlier one (".."); a LOOKUP under any
 * other parent starts a new walk and drops the steps before.
 *
 * What is never lost: a step that cannot be recorded (no thread id, the
 * table or the walk is full) is the caller's to read at a barrier itself
 * (fs_walk_add's ENOSPC/EINVAL). A thread's steps leave the table only
 * when checked, or when the thread is gone (table full).
 *
 * Thread-safe (one mutex). No FUSE or store dependency:
 * tests/unit/test_fs_walk.c. */
#ifndef RAFTFS_FS_WALK_H
#define RAFTFS_FS_WALK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FS_WALK_NAME_MAX 255 /* NAME_MAX: the kernel sends no longer name */
#define FS_WALK_STEPS    16  /* a deeper walk is checked at a barrier in its lookup */

struct fs_walk_step {
    uint64_t parent, ino;
    uint8_t len;
    char name[FS_WALK_NAME_MAX];
};

struct fs_walk_slot {
    uint32_t n;
    struct fs_walk_step steps[FS_WALK_STEPS];
};

struct fs_walks {
    pthread_mutex_t mu;
    uint32_t *tids; /* slot i's thread; 0: free. Apart, so a search reads 1 KiB */
    struct fs_walk_slot *slots;
    size_t cap;
    /* Is thread tid still there? (table full: the slots of threads that
     * are gone are taken back). NULL: never. Tests replace it. */
    bool (*alive)(uint32_t tid);
    /* Such a search at most once per scan_gap_ns (1 s; tests: 0), so a
     * table full of live threads costs a lookup no system calls. */
    uint64_t scan_gap_ns, last_scan_ns;
};

/* cap slots (threads with a walk under way at once). 0 or ENOMEM. */
int fs_walks_init(struct fs_walks *w, size_t cap);
void fs_walks_free(struct fs_walks *w);

/* Records that thread tid's LOOKUP of name under parent answered ino.
 * 0: recorded. ENOSPC: the table or this walk is full; EINVAL: tid 0 or a
 * name longer than FS_WALK_NAME_MAX. On either, nothing was recorded and
 * the caller reads this name at a barrier; on a full walk it first checks
 * the steps so far (fs_walk_check with ino 0), which frees the room. */
int fs_walk_add(struct fs_walks *w, uint32_t tid, uint64_t parent, const char *name, size_t len,
                uint64_t ino);

/* Whether thread tid has unchecked steps that led to ino. */
bool fs_walk_pending(struct fs_walks *w, uint32_t tid, uint64_t ino);

/* Does step s hold now (the name under s->parent leads to s->ino)? */
typedef bool (*fs_walk_holds)(void *ctx, const struct fs_walk_step *s);

/* The end of thread tid's walk, after the caller's read barrier: if its
 * steps led to ino (or ino is 0: whatever they led to), checks each with
 * holds and returns ESTALE if one no longer holds, else 0. The thread's
 * steps are dropped in every case (also when they led elsewhere: that walk
 * is over). holds is called without the lock held. */
int fs_walk_check(struct fs_walks *w, uint32_t tid, uint64_t ino, fs_walk_holds holds, void *ctx);

#endif
