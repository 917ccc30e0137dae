/* node.h - the replica: the one place where proposals become applied
 * commands. fs/ (and later the client protocol) talks to it through this
 * narrow interface only: propose a command and wait for its result, ask for
 * a read barrier, read the store directly.
 *
 * This build serves a single member: a proposal is durable and committed
 * once it is applied in an fsync'ed LMDB transaction (store_apply_batch);
 * proposals that arrive together share one transaction (group commit).
 * Raft takes this place later without changing the interface.
 *
 * Threads: node_propose and node_read_barrier may be called from any number
 * of threads at once; one loop thread owned by the node applies.
 */
#ifndef RAFTFS_NODE_H
#define RAFTFS_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct node;
struct net_loop;

struct node_config {
    const char *data_dir;
    struct store_config store;
    size_t max_batch; /* commands per transaction; 0 = NODE_DEFAULT_MAX_BATCH */
};

#define NODE_DEFAULT_MAX_BATCH 256

/* Opens the data directory (store_open: creates, or refuses foreign and
 * damaged ones). err gets a one-line reason. Starts nothing: call
 * node_start in the process that will serve (LMDB and threads do not
 * survive fork). */
int node_open(struct node **out, const struct node_config *cfg, char *err, size_t err_len);

/* Starts the loop thread. ENOMEM/EAGAIN from pthread_create. */
int node_start(struct node *n);

/* Stops the loop: pending and later proposals fail with ESHUTDOWN. Waits
 * for the thread. Idempotent. */
void node_stop(struct node *n);

/* Stops (if needed) and closes the store. NULL is accepted. */
void node_close(struct node *n);

/* The store, for direct reads (store_txn_begin ...). Valid until
 * node_close. */
struct store *node_store(struct node *n);

/* Registers the store observer (see store.h); call before node_start. */
void node_set_observer(struct node *n, const struct store_observer *obs);

/* Called on the node's loop thread when a submitted command is done: rc 0
 * and res (valid during the call) when it was applied, else the node error
 * (as for node_propose) and res NULL. */
typedef void (*node_done_fn)(void *ctx, int rc, const struct store_result *res);

/* Where a command comes from: passed on to the store observer with every
 * change it causes (store_change.origin), so that the mount can skip the
 * changes its kernel already knows about. */
enum node_origin {
    NODE_ORIGIN_OTHER = 0,  /* another member (replicated) */
    NODE_ORIGIN_MOUNT = 1,  /* this member's mount (node_propose) */
    NODE_ORIGIN_CLIENT = 2, /* the client protocol */
};

/* Submits an encoded command (data is malloc'd; the node takes it over,
 * also on error) without waiting. done runs later on the loop thread, never
 * inside this call. Errors: ESHUTDOWN (not running), ENOMEM. */
int node_submit(struct node *n, enum node_origin origin, void *data, size_t len, node_done_fn done,
                void *ctx);

/* The node's event loop, for servers that run on the node's thread. */
struct net_loop *node_loop(struct node *n);

/* Proposes cmd for this member's mount (origin NODE_ORIGIN_MOUNT) and waits
 * until it is applied (committed and durable).
 * Returns 0 when it was applied: res holds the command's own result
 * (res->err 0 or its errno, see store.h). Otherwise the command was not
 * applied: ESHUTDOWN (stopping), ENOSPC (data filesystem or map full),
 * EIO (disk error: the node has failed closed and refuses everything
 * after), ENOMEM, or the errno of encoding (EINVAL). */
int node_propose(struct node *n, const struct store_cmd *cmd, struct store_result *res);

/* Waits until every command committed before the call is applied, so a read
 * that follows sees them (linearizable reads). Single member: proposals are
 * acknowledged only after they are applied, so this holds on return; it
 * fails only when the node has failed (EIO) or stopped (ESHUTDOWN). */
int node_read_barrier(struct node *n);

/* Serves the client protocol (net/raftfs.proto: Hello, then ClientRequest)
 * on addr ("HOST:PORT") from the node's loop, as member member_id of
 * cluster cluster_id. Call after node_open and before node_start; the port
 * is bound now, so a busy address fails here. err gets the reason. */
int node_client_listen(struct node *n, const char *addr, uint64_t cluster_id, uint64_t member_id,
                       char *err, size_t err_len);

/* Counters, for status and tests. */
struct node_stats {
    uint64_t proposals; /* proposals applied */
    uint64_t batches;   /* write transactions (fsyncs) */
    uint64_t failed;    /* proposals that got a node error */
};
void node_get_stats(struct node *n, struct node_stats *out);

/* ---- logging (one line per event, to stderr) ---- */

enum node_log_level { NODE_LOG_ERROR, NODE_LOG_WARN, NODE_LOG_INFO, NODE_LOG_DEBUG };

#include <stdio.h>

void node_log_set_level(enum node_log_level level);
/* Logs go to f instead of stderr (NULL: back to stderr). Start-up only. */
void node_log_set_file(FILE *f);
void node_log(enum node_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
