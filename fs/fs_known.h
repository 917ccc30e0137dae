/* fs_known.h - which inodes the kernel holds, counted from the replies
 * that hand it one (lookup, create, mkdir, readdirplus...) and the FORGETs
 * that give them back (fs_known.c).
 *
 * What for: a change another member made needs a kernel cache invalidation
 * only for an inode the kernel holds (its attributes and pages), or a name
 * under a directory it holds (a cached dentry). Most keys a cluster writes
 * are never looked up through a given mount; telling the kernel about each
 * cost a queued item, a wake-up and a write to /dev/fuse (docs/profile.md).
 *
 * The race: a handler reads the store, then counts the inode it hands out.
 * A change committed in between, checked while the inode was not counted
 * yet, would not be told. So every change skipped bumps a generation; a
 * handler that sees the generation move between its read and its count
 * hands the entry out with no cache time (the kernel asks again at once).
 *
 * Thread-safe (one mutex). No FUSE dependency: tests/unit/test_fs_known.c.
 */
#ifndef RAFTFS_FS_KNOWN_H
#define RAFTFS_FS_KNOWN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fs_known_slot {
    uint64_t ino; /* 0: empty */
    uint64_t count;
};

struct fs_known {
    pthread_mutex_t mu;
    struct fs_known_slot *slots;
    size_t cap, n;   /* cap is 0 or a power of two */
    uint64_t gen;    /* changes skipped so far */
    uint64_t always; /* an inode the kernel always holds (the root) */
    uint64_t told, skipped;
    bool nomem; /* a count could not be stored: every inode counts as held */
};

void fs_known_init(struct fs_known *k, uint64_t always);
void fs_known_fini(struct fs_known *k);

/* Before a handler reads the store for entries it will hand out. */
uint64_t fs_known_gen(struct fs_known *k);

/* The kernel is being handed ino (once more). Returns true if an entry read
 * at generation gen may still be cached as usual, false if a change was
 * skipped since (hand it out with no cache time). */
bool fs_known_ref(struct fs_known *k, uint64_t ino, uint64_t gen);

/* FORGET: the kernel gives back n references. */
void fs_known_forget(struct fs_known *k, uint64_t ino, uint64_t n);

/* A change to ino (or to a name in directory ino) was applied: true if the
 * kernel may cache it (tell it), false if not (and the generation moves). */
bool fs_known_changed(struct fs_known *k, uint64_t ino);

/* For the metrics: inodes held, changes told and skipped. */
void fs_known_stats(struct fs_known *k, size_t *held, uint64_t *told, uint64_t *skipped);

#endif
