/* node_internal.h - struct node and what node/'s files share. */
#ifndef RAFTFS_NODE_INTERNAL_H
#define RAFTFS_NODE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "net_conn.h"
#include "net_loop.h"
#include "node.h"
#include "raft.h"
#include "raftfs.pb-c.h"
#include "store_log.h"

enum node_req_kind { NODE_REQ_PROPOSE, NODE_REQ_BARRIER };

/* A request waiting for the node: a proposal until its (client_id, seq)
 * is applied here, a barrier until the applied index reaches its read
 * index. */
struct node_req {
    enum node_req_kind kind;
    void *data; /* PROPOSE: the encoded command, owned */
    size_t len;
    uint64_t client_id, seq;
    node_done_fn done;
    void *ctx;
    uint64_t deadline_ms; /* fails with ETIMEDOUT (or `answer`) after */
    int answer;           /* a definite refusal (ENOSPC, EFBIG): deadline 0 */
    uint64_t retry_ms;    /* next (re)submission; 0 = now */
    uint64_t cookie;      /* BARRIER: the ReadIndex request's cookie */
    uint64_t read_index;  /* BARRIER: known once the leader answered */
    bool read_known;
    bool leader_local;     /* BARRIER: node_read_barrier_for_write */
    uint64_t start_us;     /* when it was submitted, for the latency metrics */
    bool early;            /* PROPOSE: answered before its batch commits (node_submit) */
    uint32_t handed;       /* PROPOSE: times proposed to raft or forwarded to a leader */
    struct node_req *next; /* inbox, or the pending list */
};

/* Latency histograms and counters (node_metrics.c); under node.mu. */
#define NODE_HIST_BUCKETS 17
struct node_hist {
    uint64_t buckets[NODE_HIST_BUCKETS]; /* cumulative, as Prometheus wants */
    uint64_t count;
    double sum;
};

struct node_metrics {
    struct node_hist proposal, persist, apply, read_index;
    uint64_t elections, leader_changes, snapshots_taken, snapshots_installed;
    uint64_t snapshots_sent; /* transfers started (first chunk read for a follower) */
    uint64_t snapshot_chunks_sent, snapshot_chunks_received;
};

void node_hist_observe(struct node_hist *h, double seconds);
/* Observes now - start_us into h / adds v to a counter, under the lock. */
void node_metric_observe(struct node *n, struct node_hist *h, uint64_t start_us);
void node_metric_add(struct node *n, uint64_t *counter, uint64_t v);
uint64_t node_now_us(void);

/* An outbound connection to one peer (node_peer.c). */
struct node_peer {
    struct node *n;
    uint64_t id;
    struct net_addr addr;
    char name[128];
    struct net_conn *conn; /* NULL when not connected */
    bool ready;            /* greeted */
    uint64_t next_dial_ms;
    uint32_t backoff_ms;
    uint64_t last_heard_ms;    /* any frame from it, on any connection */
    uint64_t dropped;          /* messages dropped (not connected, queue full) */
    uint64_t refused_since_ms; /* it refuses us as "not a member" since (0: it does not) */
    bool refused_lost;         /* ... because this member's state was lost (incarnation) */
    uint64_t incarnation;      /* from the Hello of its open connection to us (0: none) */
    /* Its build and newest command version, from its last Hello or
     * HelloReply ("" and 0: not heard yet): kept after it disconnects. */
    char build[32];
    uint32_t cmd_version;
    char tls_why[200]; /* the last TLS failure logged (logged again when it changes) */
};

/* Records what a member said of its build in a Hello or HelloReply. */
void node_peer_version(struct node_peer *p, const char *build, bool has_cmd, uint32_t cmd);
/* The first member known to apply commands only up to a version older
 * than version (its id, else 0), with its build in build. */
uint64_t node_member_too_old(struct node *n, uint32_t version, char build[32]);

/* What a member's Hello refusal says when the Hello's incarnation is not
 * the one the directory records (node_client.c hello_ok); the refused
 * member recognises it by this text (node_peer.c). */
#define NODE_LOST_STATE_REFUSAL "came back with a new data directory"

struct node_server;      /* node_client.c */
struct node_watcher;     /* node_watch.c */
struct node_member_task; /* node_member.c */

/* A client id for one node_propose caller at a time (see node_propose). */
struct node_lane {
    uint64_t client_id;
    uint64_t seq;
    struct node_lane *next;
};
#define NODE_LANE_BITS 16 /* own client ids: a random base | lane number */

struct node {
    struct node_config cfg;
    struct store *store;
    struct net_loop *loop;
    struct net_tls *tls; /* TLS for the port and the peers, or NULL: plaintext */
    pthread_t thread;
    struct node_server *server;
    struct node_watcher *watchers; /* watches of the client protocol */
    uint64_t mount_client_id;
    uint64_t incarnation; /* of the data directory (store identity); set at open */

    /* loop thread only */
    struct raft *raft;
    struct raft_config rcfg; /* what raft was made from (to remake it) */
    struct node_peer peers[NODE_MAX_MEMBERS];
    size_t n_peers;
    int tick_timer;
    uint64_t applied; /* applied and visible to readers (committed) */
    /* The leader's commit point (raft_leader_commit_point) as of the ready
     * being handled, published before anything of that ready is sent or
     * answered; 0 when this member is not a leader with its no-op
     * committed. node_read_barrier_for_write reads it from FUSE threads. */
    _Atomic uint64_t write_point;
    /* Openers waiting for the applied index to reach write_point: the loop
     * wakes them when it moves (node_raft_visible_moved). */
    pthread_mutex_t vis_mu;
    pthread_cond_t vis_cv;
    _Atomic uint32_t vis_waiters;
    uint64_t counted;           /* last index counted in stats (a batch retried counts once) */
    uint64_t deferred_since_ms; /* applies left uncommitted since (0: none) */
    uint64_t reapply_to;        /* a failed commit lost applies up to here: again from the log */
    uint64_t next_cookie;
    struct node_req *pending; /* proposals and barriers in flight */
    size_t n_pending;
    struct store_entry *entries; /* apply batch buffers */
    struct store_result *results;
    size_t batch_cap;
    uint64_t leader_seen;                /* for logging leader changes */
    int role_seen;                       /* for counting elections */
    uint64_t leader_heard_ms;            /* a leader last heard from (0: never) */
    struct node_member_task *member_ops; /* membership changes in progress */
    uint64_t member_client_id, member_seq;
    uint64_t next_dir_check_ms;
    /* The leader's lease clocks (node_lease.c); leases_loaded: this member
     * leads and has read every lease of its store. */
    struct node_lease *leases;
    size_t n_leases, cap_leases;
    bool leases_loaded;
    uint64_t lease_client_id, lease_seq;
    /* Members a configuration applied here removed, whose directory entry
     * the leader deletes (one removed while leading cannot delete its own:
     * node_members_tick). In memory only. */
    uint64_t dir_removed[3 * RAFT_CONF_MAX];
    size_t n_dir_removed;
    /* Where members the directory here does not know yet answered a dial
     * meant for another id (node_peer.c): until the directory has them. */
    struct node_member learned[NODE_MAX_MEMBERS];
    size_t n_learned;
    bool peers_resync;        /* node_members_sync at the next tick */
    bool removed;             /* an applied configuration no longer has this member */
    bool election_advanced;   /* node_raft_majority_reached ran its course (once a start) */
    bool removed_lost;        /* refused: its data directory is a new one */
    struct store_space space; /* store_space, refreshed every tick */
    bool space_refused;       /* a write was refused for room: compact early */
    uint64_t next_forward_refusal_log_ms; /* rate of the "no room" log line */
    uint64_t snap_index;                  /* the log starts after this (node_snap.c) */
    uint64_t next_low_snap_ms;            /* compaction for room: not before */
    struct raft_conf applied_conf;        /* configuration at the applied index */
    /* A ready whose persisting or applying failed for lack of space: kept
     * and retried every tick, nothing else moves meanwhile. */
    struct raft_ready rd;
    bool rd_held;
    int rd_stage;
    size_t rd_applied;  /* committed entries of rd already applied */
    bool rd_sent_early; /* rd's messages left before its entries were durable */
    uint64_t hs_term;   /* the term and vote last made durable */
    uint64_t hs_vote;

    pthread_mutex_t mu; /* guards the fields below */
    struct node_req *inbox, *inbox_tail;
    bool started, stopping;
    int failed;  /* 0, or the errno the node failed closed with */
    int stalled; /* ENOSPC while a ready waits for space: writes fail fast */
    struct node_lane *free_lanes;
    uint64_t n_lanes;
    struct node_stats stats;
    struct node_metrics metrics;
    struct net_counters peer_io, client_io; /* atomic, outside the lock */
    struct node_status status;              /* refreshed by the loop every turn */
};

/* node.c */
void node_req_finish(struct node *n, struct node_req *r, int rc, const struct store_result *res);
/* A read barrier request (NULL if there is no memory). */
struct node_req *node_req_barrier_new(node_done_fn done, void *ctx);
/* A proposal request owning data (freed here if there is no memory: NULL). */
struct node_req *node_req_propose_new(void *data, size_t len, uint64_t client_id, uint64_t seq,
                                      node_done_fn done, void *ctx);

/* node_raft.c */
int node_raft_init(struct node *n, char *err, size_t err_len);
void node_raft_fini(struct node *n);
/* The loop's turn: takes new requests, runs Raft's ready loop. */
void node_raft_turn(struct net_loop *l, void *ctx);
/* Idle hook: commits deferred applies (node_raft.c). */
void node_raft_idle(struct net_loop *l, void *ctx);
void node_raft_tick(struct net_loop *l, void *ctx);
/* A peer connection is ready: at start, once a majority of the voters is
 * reached and no leader is known, the election timer is moved on. */
void node_raft_majority_reached(struct node *n);
/* The applied (visible) index may have moved: wakes node_read_barrier_for_write's waiters. */
void node_raft_visible_moved(struct node *n);
/* A message from peer `from` (already checked against the connection). */
void node_raft_step(struct node *n, const struct raft_message *m);
/* Adds a request made on the loop thread to the pending ones. */
void node_raft_enqueue(struct node *n, struct node_req *r);
/* Whether a command was answered early (node_submit) whose batch is not
 * visible in the store yet: its commit failed for room and waits. */
bool node_raft_answered_ahead(const struct node *n);
/* done(ctx, 0, NULL) once every command answered so far is visible in the
 * store; ETIMEDOUT after the node's timeout. Loop thread. ENOMEM. */
int node_raft_wait_answered(struct node *n, node_done_fn done, void *ctx);
/* A command forwarded by a follower: proposed here if this is the leader. */
void node_raft_forwarded(struct node *n, const void *data, size_t len);
/* A member's role as `member list` shows it, from the latest configuration
 * and the latest one known committed: "leader"; "learner"; "follower" for a
 * voter of every configuration that may be in force (both halves of a
 * joint one, committed or not); otherwise "joining" (a voter of the latest
 * configuration's incoming half only) or "leaving". */
const char *node_member_role(const struct raft_conf *latest, const struct raft_conf *committed,
                             uint64_t id, uint64_t leader);
/* Marks the node failed (fail closed) with rc. */
void node_fail(struct node *n, int rc, const char *what);

/* node_snap.c */
int node_snap_init(struct node *n, char *err, size_t err_len);
/* Snapshot at the applied index, then compact the log to it. */
int node_snap_take(struct node *n);
/* raft_storage.snapshot_read (RAFT_* codes). */
int node_snap_read(struct node *n, uint64_t index, uint64_t term, uint64_t offset, size_t max,
                   uint8_t **data, size_t *len);
/* A received chunk, durable on return; and installing the whole image. */
int node_snap_chunk(struct node *n, const struct raft_snapshot_chunk *c);
int node_snap_install(struct node *n, const struct raft_snapshot_meta *meta);
/* An image of the applied state for an online backup (SnapshotRequest),
 * in an unnamed file of DIR/snapshots: *fd (the caller closes it) at
 * offset 0 of nothing in particular (read it with pread), *info its
 * index, revision and size, *term the term of its index. Runs on any
 * thread (node_client.c gives it one). Errors of store_snapshot_write and
 * store_log_term (ERANGE: compacted meanwhile), errnos of mkostemp. */
int node_snap_backup(struct node *n, int *fd, struct store_snapshot_info *info, uint64_t *term);

/* node_member.c */
/* The outcome of a configuration change proposed with cookie. */
void node_member_conf_result(struct node *n, uint64_t cookie, int status);
/* Answers the changes whose configuration has settled (node_member.c note
 * 3), or whose time is up. After every ready and every tick. */
void node_member_settle(struct node *n);
/* This member applied its own removal: answers the changes in progress
 * (its own removal: done; any other: ESHUTDOWN). */
void node_member_removed(struct node *n);
/* Peers follow the member directory. */
void node_members_sync(struct node *n);
/* Member id of this cluster answered at addr (a dial meant for another id
 * that used to be there): if the directory here has no address for id
 * (a member that is behind, with the directory of an old image), it is
 * reached there until the directory says otherwise, so that it can answer
 * a leader it has not heard of (found by tests/chaos, seed 101). */
void node_member_learn(struct node *n, uint64_t id, const char *addr);
/* Leader: write down directory entries missing for known members, and
 * the incarnations learnt from their Hellos. */
void node_members_tick(struct node *n);
/* The incarnation the directory records for member id into *out (0: not
 * known, or not in the directory). EIO if the directory is damaged. */
int node_member_incarnation(struct node *n, uint64_t id, uint64_t *out);

/* node_peer.c */
/* Adds peer id at addr, or moves it there. */
void node_peer_set(struct node *n, uint64_t id, const char *addr);
void node_peer_remove(struct node *n, uint64_t id);
int node_peers_init(struct node *n, char *err, size_t err_len);
void node_peers_fini(struct node *n);
/* Sends m to its m->to (dropped if the peer is not reachable now). */
void node_peer_send_raft(struct node *n, const struct raft_message *m);
/* Puts every peer's queued frames on the wire now (node_raft.c, before
 * blocking on an fsync). */
void node_peers_flush(struct node *n);
/* Sends a forwarded command to peer `to`. */
void node_peer_forward(struct node *n, uint64_t to, const void *data, size_t len);
/* Dials peers that are due (from the tick). */
void node_peers_tick(struct node *n);
struct node_peer *node_peer_find(struct node *n, uint64_t id);

/* node_client.c: the server for clients and inbound peer connections */
int node_server_open(struct node *n, const char *addr, char *err, size_t err_len);
/* Closes the connections a member (no longer in the directory) made to us. */
void node_server_drop_peer(struct node *n, uint64_t id);
/* Writes every connection's queued output now (answers given mid-turn). */
void node_server_flush(struct node *n);
void node_server_close(struct node *n);

/* node_watch.c */
/* Starts a watch of the changes under prefix from revision `from` (0: the
 * next change) for request id on conn, owned by `owner` (a client): the
 * first response is queued here. EINVAL (a bad prefix), ENOMEM, or an
 * errno of the store or of sending. */
int node_watch_add(struct node *n, struct net_conn *conn, void *owner, uint64_t id,
                   const void *prefix, size_t prefix_len, uint64_t from, bool values);
/* Sends every watcher what it has not seen yet (after each turn and tick). */
void node_watch_pump(struct node *n);
/* Ends the watches of owner (its connection closed). */
void node_watch_drop_owner(struct node *n, void *owner);

/* node_lease.c */
struct node_lease {
    uint64_t id, ttl_ms;
    uint64_t deadline_ms; /* net_now_ms() at which it expires */
    uint64_t proposed_ms; /* when its revoke was proposed (0: not yet) */
};
/* Each tick: loads the leases on becoming leader, forgets them on losing
 * it, and proposes the revoke of each expired one. */
void node_leases_tick(struct node *n);
/* After a batch is decided: grants start a clock, revokes end one. */
void node_leases_applied(struct node *n, const struct store_result *results,
                         const struct store_entry *entries, size_t count);
/* Is this member the leader, with its lease clocks loaded (now, if they
 * were not)? */
bool node_leases_ready(struct node *n);
/* The leader's keep-alive: the lease lives ttl from now. EAGAIN (not the
 * leader), ENOKEY (no such lease, or expiring already). */
int node_lease_keep_alive(struct node *n, uint64_t id, struct store_lease *out, int64_t *remaining);
/* How long lease id has left on the leader's clock. EAGAIN, ENOKEY. */
int node_lease_remaining(struct node *n, uint64_t id, int64_t *remaining);
/* CLOCK_REALTIME in ns: the time a proposer stamps on a command. */
int64_t node_now_ns(void);

/* node_export.c */
/* Serves one page of an export (ExportRequest) from a read transaction of
 * s: fills resp (its id set by the caller) and calls send(ctx, resp) while
 * the page's values are still mapped. */
void node_export_page(struct store *s, const Raftfs__ExportRequest *x,
                      void (*send)(void *ctx, Raftfs__ClientResponse *resp), void *ctx,
                      Raftfs__ClientResponse *resp);

/* node_client.c: an entry's metadata as the wire carries it. */
void node_attr_to_wire(const struct store_attr *a, Raftfs__Attr *w);

#endif
