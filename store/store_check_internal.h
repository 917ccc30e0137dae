/* store_check_internal.h - what the files of the offline check share
 * (store_check.c: opening, meta, sessions, members; store_check_tree.c;
 * store_check_log.c; store_check_digest.c). Not for use outside store/. */
#ifndef RAFTFS_STORE_CHECK_INTERNAL_H
#define RAFTFS_STORE_CHECK_INTERNAL_H

#include "store_hash.h"
#include "store_internal.h"

/* Inodes met, by number (store_check_tree.c). */
struct ino_slot {
    uint64_t ino; /* 0: free */
    unsigned flags;
};

struct ino_set {
    struct ino_slot *slots;
    size_t cap, n; /* cap: a power of two */
};

/* One check of one data directory. */
struct store_checker {
    const char *dir;
    struct store *s; /* opened read only: env, tables and limits only */
    MDB_txn *txn;    /* the one read transaction everything is read in */
    bool have_log, have_raft, have_sessions, have_lru, have_members, have_history; /* tables */
    bool have_leases, have_lease_keys, have_ino_lease, have_auth;
    bool have_state;                                                 /* the state record decoded */
    bool values_apart; /* store format 1: values in "data", not the inodes table */
    struct store_state st;
    struct store_limits lim;
    struct ino_set inos;
    uint64_t n_sessions;
    struct store_hash digest;
    struct store_check_report *rep;
    void (*problem)(void *ctx, const char *msg);
    void *ctx;
};

/* Reports one problem, "PROBLEM (where)" (counted; passed on while under
 * STORE_CHECK_MAX_REPORTED). */
void store_check_problem(struct store_checker *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A name or path for a message: printable ASCII as is, other bytes (and
 * '\\', '\'') as \xHH, at most STORE_CHECK_SHOW_MAX bytes of it; returns buf. */
#define STORE_CHECK_SHOW_MAX 512
#define STORE_CHECK_SHOW_BUF (STORE_CHECK_SHOW_MAX * 4 + 4)
const char *store_check_show(const void *p, size_t len, char buf[STORE_CHECK_SHOW_BUF]);

/* An LMDB failure while reading a table: reported (the scan stops). */
void store_check_unreadable(struct store_checker *c, const char *table, int mrc);

/* The tree: every inode record, the walk from the root, what it did not
 * reach (store_check_tree.c). 0, or ENOMEM / EIO when it cannot go on. */
int store_check_tree(struct store_checker *c);

/* The Raft log, the hard state, the snapshot record and image
 * (store_check_log.c). Fills rep's log fields. */
void store_check_log(struct store_checker *c);

/* The digest (store_check_digest.c), fed in the order of
 * docs/store-format.md: init, state, the tree's entries, sessions,
 * members, final. */
void store_digest_init(struct store_checker *c);
void store_digest_state(struct store_checker *c);
/* value: the file's bytes (ignored for a directory). */
void store_digest_entry(struct store_checker *c, const char *path, size_t path_len,
                        const struct store_attr *a, const void *value, size_t value_len);
void store_digest_session(struct store_checker *c, uint64_t client_id,
                          const struct store_session *sess);
/* A lease, and a file attached to one. */
void store_digest_lease(struct store_checker *c, uint64_t id, uint64_t ttl_ms);
void store_digest_lease_file(struct store_checker *c, uint64_t ino, uint64_t id);
void store_digest_auth(struct store_checker *c, const void *key, size_t klen, const void *val,
                       size_t vlen);
void store_digest_member(struct store_checker *c, uint64_t id, const char *addr, size_t addr_len,
                         uint64_t incarnation);
uint64_t store_digest_final(struct store_checker *c);

#endif
