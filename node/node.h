/* node.h - the replica: the one place where raft/, store/ and net/ meet.
 *
 * fs/ (and the client protocol) talk to it through this narrow interface:
 * propose a command and wait for its result, ask for a read barrier, read
 * the store directly. A proposal is acknowledged once it is committed by a
 * majority (fsync'ed on each) and applied here; a barrier returns once
 * everything committed before it is applied here (ReadIndex), so a read
 * that follows is linearizable.
 *
 * A node runs Raft with the members given at start (--peers): alone it is
 * a one-member cluster. Proposals on a follower are forwarded to the
 * leader and retried (exactly once, by client id and sequence number)
 * across leader changes until they apply or time out.
 *
 * Threads: node_propose, node_read_barrier and node_submit may be called
 * from any number of threads; one loop thread owned by the node runs
 * Raft, the network and the store's writes.
 */
#ifndef RAFTFS_NODE_H
#define RAFTFS_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

struct node;
struct net_loop;

#define NODE_MAX_MEMBERS 16

struct node_member {
    uint64_t id;          /* non-zero */
    char addr[128];       /* HOST:PORT of its port (peers and clients) */
    uint64_t incarnation; /* directory entries: of its data directory (0: not known) */
};

struct node_config {
    const char *data_dir;
    struct store_config store;
    uint64_t id;           /* this member (default 1) */
    uint64_t cluster_id;   /* recorded by a new data directory; must match an old one's */
    bool cluster_id_loose; /* an old data directory's own cluster id wins */
    bool joining;          /* a new member joining a running cluster: no bootstrap */
    /* The founding members, this one included; empty: this member alone. */
    struct node_member members[NODE_MAX_MEMBERS];
    size_t n_members;
    const char *listen;      /* serve peers and clients here (default: own address) */
    uint32_t tick_ms;        /* Raft tick (default 50) */
    uint32_t election_ticks; /* election timeout in ticks (default 10) */
    uint32_t timeout_ms;     /* a proposal or barrier fails after this (default 5000) */
    bool serializable;       /* barriers return at once: local, maybe stale reads */
    size_t max_batch;        /* commands per apply transaction (default 1024) */
    /* Snapshot and compact the log this many entries past the last snapshot
     * (default 10000). */
    uint64_t snapshot_entries;
    /* fsync the tree at every apply commit. By default it is not (the Raft
     * log is, and a store another boot left open is rebuilt from the
     * snapshot image and the log: store_config.unsynced_apply). */
    bool sync_tree;
    /* TLS on the port and on the connections to peers: this member's
     * certificate (served, and shown when dialing a peer), its key, and
     * the CA that signs every member's and client's certificate. All
     * three, or none (plaintext). Peers must show a certificate of the CA
     * (mutual TLS); clients too with tls_client_cert_auth. */
    const char *tls_cert_file, *tls_key_file, *tls_ca_file;
    bool tls_client_cert_auth;
    /* Plaintext on an address that is not loopback (the port, or a peer's)
     * is refused at open unless this is set. */
    bool allow_plaintext;
};

#define NODE_DEFAULT_TICK_MS        50
#define NODE_DEFAULT_ELECTION_TICKS 10
#define NODE_DEFAULT_TIMEOUT_MS     5000
#define NODE_DEFAULT_MAX_BATCH      1024
#define NODE_DEFAULT_SNAP_ENTRIES   100000

/* Opens the data directory (refusing foreign, damaged or busy ones, and
 * one recorded for another cluster or member id), reads the TLS files
 * (refusing a key others may read, and plaintext off loopback unless
 * allowed) and binds the listen port, so that start-up errors come out
 * here, with a reason in err.
 * Starts nothing: node_start runs the loop in the process that serves. */
int node_open(struct node **out, const struct node_config *cfg, char *err, size_t err_len);

/* Starts the loop thread. */
int node_start(struct node *n);

/* Stops the loop: pending and later requests fail with ESHUTDOWN.
 * Idempotent. */
void node_stop(struct node *n);

/* Stops (if needed) and closes everything. NULL is accepted. */
void node_close(struct node *n);

/* The store, for direct reads (store_txn_begin ...). */
struct store *node_store(struct node *n);

/* The incarnation of the data directory: a random number drawn when it was
 * created (store identity), sent in this member's Hellos, so that the
 * cluster tells a new data directory given this member id from this one. */
uint64_t node_incarnation(const struct node *n);

/* Is client_id one of this member's own (node_propose's)? The store
 * observer reports the client id of every change. */
bool node_is_own_client(const struct node *n, uint64_t client_id);

/* Registers the store observer (see store.h); call before node_start. */
void node_set_observer(struct node *n, const struct store_observer *obs);

/* Called on the node's loop thread when a submitted request is done: rc 0
 * and res (valid during the call) when it was applied, else the node error
 * (as for node_propose) and res NULL. */
typedef void (*node_done_fn)(void *ctx, int rc, const struct store_result *res);

/* Submits an encoded command (data is malloc'd; the node takes it over,
 * also on error) that carries (client_id, seq) (both non-zero), without
 * waiting: done runs later on the loop thread, never inside this call.
 * With early, done may run once the command's result is decided but before
 * the store's transaction holding it commits: a read from another thread
 * may not see it yet, one made on the loop thread afterwards does.
 * Errors: ESHUTDOWN, ENOMEM, EINVAL (no client id). */
int node_submit(struct node *n, void *data, size_t len, uint64_t client_id, uint64_t seq,
                bool early, node_done_fn done, void *ctx);

/* Submits a read barrier: done(ctx, 0, NULL) once a read from the store
 * sees everything committed before this call. */
int node_submit_barrier(struct node *n, node_done_fn done, void *ctx);

/* Proposes cmd as this member's own and waits until it is applied. Each
 * concurrent caller gets a lane of its own (a client id whose requests go
 * one at a time, in order), so that exactly-once application never mixes
 * up two callers; cmd's client_id and seq are filled in. Returns 0 when it
 * was applied: res holds the command's own result (res->err 0 or its
 * errno, see store.h). Otherwise: ETIMEDOUT (no quorum or no leader within
 * timeout_ms: the command may still be applied later), ESHUTDOWN
 * (stopping), EIO (a disk error: the member has failed closed), ENOSPC,
 * ENOMEM, EINVAL (cannot be encoded). */
int node_propose(struct node *n, struct store_cmd *cmd, struct store_result *res);

/* As node_propose, without waiting: done runs later (never inside this
 * call) on the loop thread, or on node_stop's at a stop, with the outcome
 * node_propose would return and the command's result. cmd is encoded
 * before the call returns: its pointers need not outlive it. A non-zero
 * return (ENOMEM, EINVAL, ESHUTDOWN, or the errno the node failed closed
 * with) means done will not come. */
int node_propose_async(struct node *n, struct store_cmd *cmd, node_done_fn done, void *ctx);

/* Waits until everything committed before the call is applied here
 * (ReadIndex through the leader), so that a read that follows is
 * linearizable; returns at once in serializable mode. ETIMEDOUT,
 * ESHUTDOWN, EIO. */
int node_read_barrier(struct node *n);

/* As node_read_barrier, for a caller whose read only checks what its own
 * next write checks again when that write applies (a write-only O_TRUNC
 * open: the inode must exist; the commit's expected inode checks it
 * again). On the leader, once it has committed an entry of its term, the
 * read point is its commit index, without a heartbeat round: the leader
 * has every write acknowledged so far. A leader deposed without knowing it
 * yet may read behind; the caller's write then applies on the real state
 * (or is refused), never on what it read. Elsewhere, and in serializable
 * mode, exactly node_read_barrier. */
int node_read_barrier_for_write(struct node *n);

/* Membership changes, asked of the leader (loop thread only: the client
 * server calls them). done(ctx, rc, NULL) comes once the configuration
 * entry is committed, or with an error: EAGAIN (not the leader, or a
 * learner not caught up: retry), EBUSY (another change in progress),
 * EEXIST, ENOENT, EINVAL. A non-zero return means done will not come. */
enum node_member_op {
    NODE_MEMBER_ADD,         /* a voter at addr */
    NODE_MEMBER_ADD_LEARNER, /* a learner at addr */
    NODE_MEMBER_PROMOTE,
    NODE_MEMBER_REMOVE,
    NODE_MEMBER_TRANSFER, /* leadership; done is not called */
};
int node_member_change(struct node *n, enum node_member_op op, uint64_t id, const char *addr,
                       node_done_fn done, void *ctx);

/* The member directory: ids and addresses (the founders until the
 * replicated directory has entries). Loop thread or before start. */
int node_members_list(struct node *n, struct node_member *out, size_t *count);
/* Member id's address into buf, or NULL if unknown. */
const char *node_member_addr(struct node *n, uint64_t id, char *buf, size_t len);

/* What `raftfs status` and .raftfs/status show. */
struct node_member_status {
    uint64_t id;
    char addr[128];
    const char *role;         /* "leader", "follower", "learner", "joining", "leaving" */
    uint64_t match;           /* leader only: replicated up to */
    double last_contact_s;    /* -1 if never */
    char build[32];           /* its raftfs version ("": not heard from yet) */
    uint32_t command_version; /* the newest command version it applies (0: not known) */
};

struct node_status {
    uint64_t id, cluster_id, term, leader, commit, applied, revision;
    const char *role;
    /* "settled": the latest configuration is committed (as far as this
     * member knows) and not joint; "changing": a membership change is under
     * way, and the cluster may need more members up than usual. */
    const char *config;
    bool serializable; /* the node's barriers return at once */
    /* Seconds since this member last heard from a leader (0 on the leader,
     * -1 never): how stale its local (serializable) reads may be. */
    double leader_contact_s;
    struct node_member_status members[NODE_MAX_MEMBERS];
    size_t n_members;
};

/* A consistent copy of the node's state, from any thread. */
void node_get_status(struct node *n, struct node_status *out);

/* The member's metrics in Prometheus text form into buf (cap bytes);
 * returns the length the whole text needs (may exceed cap). */
size_t node_metrics_render(struct node *n, char *buf, size_t cap);

/* A status as one line of JSON (what `raftfs status` prints and
 * .raftfs/status shows) into buf; returns the length it needs, like
 * snprintf. Fields: id, cluster_id (hex string), role, config ("settled"
 * or "changing", as in struct node_status), term, leader (0:
 * none known), commit, applied, revision, reads ("linearizable" or
 * "serializable"), leader_contact_s (as in struct node_status), members: [{id,
 * address, role, match (known on the leader, else 0), last_contact_s
 * (-1: never)}]. */
size_t node_status_json(const struct node_status *st, char *buf, size_t cap);
/* The member list, one "ID ADDRESS ROLE" line each (as `raftfs member
 * list` prints it). */
size_t node_members_text(const struct node_status *st, char *buf, size_t cap);

/* Health, as GET /health of --metrics-addr answers it. A member is
 * healthy when it serves: started and not stopping, not failed closed (a
 * disk error, or removed from the cluster, or refused for a lost data
 * directory), not refusing writes for want of space, and it knows a
 * leader of its current term that it heard from within two election
 * timeouts (the longest a randomised election timeout runs), or is that
 * leader. A leader cut off from a majority steps down after an election
 * timeout (CheckQuorum) and a follower cut off becomes a pre-candidate,
 * which knows no leader: both turn unhealthy; so does a learner that no
 * longer hears its leader. The first rule that fails is the reason. */
struct node_health_facts {
    bool started, stopping;
    int failed;  /* errno the node failed closed with (ESHUTDOWN: removed, refused) */
    int stalled; /* ENOSPC: writes refused for want of space */
    uint64_t id, term, leader;
    double leader_contact_s; /* as in struct node_status (-1: never) */
    double election_timeout_s;
};
struct node_health {
    bool healthy;
    char reason[160]; /* empty when healthy */
    uint64_t id, term, leader;
};
/* The rule above, pure (for tests). */
void node_health_judge(const struct node_health_facts *f, struct node_health *out);
/* This member's health now, from any thread. */
void node_get_health(struct node *n, struct node_health *out);
/* As JSON, like etcd's: {"health":"true","reason":"","member":1,"term":2,
 * "leader":1}; "false" and a reason when not healthy. Returns the length
 * it needs, like snprintf. */
size_t node_health_json(const struct node_health *h, char *buf, size_t cap);

/* Counters, for status and tests. */
struct node_stats {
    uint64_t proposals;      /* proposals applied */
    uint64_t batches;        /* apply transactions */
    uint64_t failed;         /* requests that ended with a node error */
    uint64_t read_rounds;    /* read barriers asked of raft (ReadIndex) */
    uint64_t read_local;     /* read barriers a leader answered from its commit index */
    uint64_t read_published; /* of those, answered on the opener's thread (write_point) */
};
void node_get_stats(struct node *n, struct node_stats *out);

/* ---- logging (one line per event, logfmt: node_log.c) ---- */

enum node_log_level { NODE_LOG_ERROR, NODE_LOG_WARN, NODE_LOG_INFO, NODE_LOG_DEBUG };

void node_log_set_level(enum node_log_level level);
/* Logs go to f instead of stderr (NULL: back to stderr). Start-up only. */
void node_log_set_file(FILE *f);
/* Logs go to syslog(3) (ident "raftfs", facility daemon) instead of a file
 * or stderr; false: back. Start-up only. */
void node_log_set_syslog(bool on);
bool node_log_is_syslog(void);
/* This process's member id, in every line (member=). Start-up only. */
void node_log_set_member(uint64_t id);
/* The current term of member (term=); ignored unless member is the one
 * set above (a process running several nodes: tests). Any thread. */
void node_log_set_term(uint64_t member, uint64_t term);
/* In a process forked from the server (fs_guard.c), first thing: it does
 * not follow the term (lines carry none), and it drops the parent's
 * syslog connection before closing descriptors. */
void node_log_child(void);
/* The line node_log writes for msg (without its newline) into buf: the
 * length it needs, like snprintf. For writers that cannot call node_log. */
size_t node_log_format(char *buf, size_t cap, enum node_log_level level, const char *msg);
void node_log(enum node_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
