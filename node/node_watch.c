/* node_watch.c - watches over the client protocol (WatchRequest): the
 * changes under a prefix, read from the store's change history
 * (store_events) and streamed on the request's id.
 *
 * Design notes
 * 1. Everything runs on the loop thread. After every turn (and tick) each
 *    watcher that is behind the store's revision gets what it has not
 *    seen, read in one read transaction: events are keyed by revision, so
 *    a watcher resumed elsewhere from its last revision + 1 misses nothing
 *    and repeats nothing, and one on a member that is behind simply waits.
 * 2. A slow reader never blocks the member: a watcher whose connection has
 *    more than WATCH_QUEUE_MAX bytes queued is skipped until it drains,
 *    and each pass sends at most WATCH_BATCH_EVENTS events or
 *    WATCH_BATCH_BYTES, and the rest of a txn's revision: a response
 *    never splits a revision, so resuming from the last one + 1 is right. One that falls behind the
 * compacted history gets ERANGE and its watch ends (the client lists again).
 * 3. A watch ends with its connection. A watcher that got nothing for
 *    WATCH_PROGRESS_MS gets a response without events whose revision says
 *    how far it has seen everything: the client knows the member is alive
 *    (and, should it fail, where to resume).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net_wire.h"
#include "node_internal.h"

#define WATCH_QUEUE_MAX    (1u << 20)
#define WATCH_PROGRESS_MS  1000 /* a response at least this often, events or not */
#define WATCH_BATCH_EVENTS 1000
/* Room for the end of a revision begun at the limit: a txn's events. */
#define WATCH_BATCH_ROOM  (WATCH_BATCH_EVENTS + STORE_MAX_TXN_OPS)
#define WATCH_BATCH_BYTES (512u << 10)

struct node_watcher {
    struct net_conn *conn;
    void *owner; /* the client it belongs to (node_client.c) */
    uint64_t id; /* the request's */
    char *prefix;
    size_t prefix_len;
    uint64_t next;    /* the first revision not yet examined */
    uint64_t sent_ms; /* when the last response was queued */
    bool values;
    struct node_watcher *next_w;
};

/* Does path lie under the watch's prefix ("/" is everything)? */
static bool under(const struct node_watcher *w, const char *path, size_t len)
{
    if (w->prefix_len == 1)
        return true;
    return len >= w->prefix_len && !memcmp(path, w->prefix, w->prefix_len) &&
           (len == w->prefix_len || path[w->prefix_len] == '/');
}

static void send_resp(struct node_watcher *w, Raftfs__ClientResponse *resp)
{
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    env.body_case = RAFTFS__ENVELOPE__BODY_RESPONSE;
    env.response = resp;
    int rc = net_wire_send(w->conn, &env);
    if (rc) {
        node_log(NODE_LOG_WARN, "watcher %s: cannot queue events (%s): closing",
                 net_conn_peer(w->conn), strerror(rc));
        net_conn_close(w->conn, rc, false);
    }
}

struct batch {
    struct node_watcher *w;
    struct store_txn *t;
    Raftfs__Event *ev;
    Raftfs__Event **ptrs;
    size_t n;
    size_t bytes;
    uint64_t last; /* the last revision examined */
    bool full;
};

static int batch_add(void *ctx, const struct store_event *e)
{
    struct batch *b = ctx;
    if ((b->n >= WATCH_BATCH_EVENTS || b->bytes >= WATCH_BATCH_BYTES) && e->revision != b->last) {
        b->full = true; /* b->last is whole */
        return -1;
    }
    if (b->n == WATCH_BATCH_ROOM) {
        b->full = true; /* cannot happen: a revision has at most STORE_MAX_TXN_OPS events */
        b->last = e->revision - 1;
        return -1;
    }
    b->last = e->revision;
    if (!under(b->w, e->path, e->path_len) && !(e->path2 && under(b->w, e->path2, e->path2_len)))
        return 0;
    Raftfs__Event *x = &b->ev[b->n];
    raftfs__event__init(x);
    x->revision = e->revision;
    x->op = (uint32_t)e->op;
    /* The event's bytes live in the read transaction, which outlives the
     * response (sent before it ends). */
    x->path.data = (uint8_t *)e->path;
    x->path.len = e->path_len;
    if (e->path2) {
        x->has_path2 = true;
        x->path2.data = (uint8_t *)e->path2;
        x->path2.len = e->path2_len;
    }
    if (e->type) {
        x->has_dir = x->has_mode = x->has_ino = x->has_size = true;
        x->dir = e->type == STORE_TYPE_DIR;
        x->mode = e->mode;
        x->ino = e->ino;
        x->size = e->size;
    }
    if (b->w->values && (e->op == STORE_OP_PUT || e->op == STORE_OP_APPEND) && e->ino) {
        struct store_attr a;
        const void *d;
        size_t len;
        if (!store_getattr(b->t, e->ino, &a) && a.mod_revision == e->revision &&
            !store_read(b->t, e->ino, &d, &len)) {
            x->has_value = true;
            x->value.data = (uint8_t *)d;
            x->value.len = len;
            b->bytes += len;
        }
    }
    b->bytes += 64 + e->path_len + e->path2_len;
    b->ptrs[b->n] = x;
    b->n++;
    return 0;
}

/* Sends w what it has not seen; false if it must be dropped. */
static bool pump_one(struct node *n, struct node_watcher *w, struct batch *b)
{
    if (!net_conn_is_open(w->conn))
        return false;
    if (net_conn_queued(w->conn) > WATCH_QUEUE_MAX)
        return true; /* a slow reader: later */
    struct store_txn *t;
    if (store_txn_begin(n->store, &t))
        return true;
    uint64_t rev = store_txn_revision(t);
    bool keep = true;
    while (keep && w->next <= rev && net_conn_queued(w->conn) <= WATCH_QUEUE_MAX) {
        b->w = w;
        b->t = t;
        b->n = 0;
        b->bytes = 0;
        b->full = false;
        b->last = 0;
        uint64_t compacted = 0;
        int rc = store_events(t, w->next, batch_add, b, &compacted);
        Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
        resp.id = w->id;
        if (rc == STORE_ECOMPACTED) {
            resp.err = ERANGE;
            resp.message = "the revisions asked for are compacted: list again";
            resp.has_compact_revision = true;
            resp.compact_revision = compacted;
            send_resp(w, &resp);
            keep = false;
            break;
        }
        if (rc) {
            resp.err = rc;
            resp.message = "cannot read the change history";
            send_resp(w, &resp);
            keep = false;
            break;
        }
        uint64_t upto = b->full ? b->last : rev;
        if (b->n) {
            resp.has_revision = true;
            resp.revision = upto;
            resp.n_events = b->n;
            resp.events = b->ptrs;
            send_resp(w, &resp);
            w->sent_ms = net_now_ms();
        }
        w->next = upto + 1;
        if (!b->full)
            break;
    }
    store_txn_end(t);
    if (keep && net_conn_is_open(w->conn) && net_now_ms() - w->sent_ms >= WATCH_PROGRESS_MS) {
        /* Progress: every change up to next - 1 has been sent. It tells
         * the client this member is alive, and where to resume. */
        Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
        resp.id = w->id;
        resp.has_revision = true;
        resp.revision = w->next - 1;
        send_resp(w, &resp);
        w->sent_ms = net_now_ms();
    }
    return keep && net_conn_is_open(w->conn);
}

void node_watch_pump(struct node *n)
{
    if (!n->watchers)
        return;
    struct batch b = {0};
    b.ev = malloc(WATCH_BATCH_ROOM * sizeof(*b.ev));
    b.ptrs = malloc(WATCH_BATCH_ROOM * sizeof(*b.ptrs));
    if (!b.ev || !b.ptrs) {
        free(b.ev);
        free(b.ptrs);
        return; /* tried again after the next turn */
    }
    for (struct node_watcher **pp = &n->watchers; *pp;) {
        struct node_watcher *w = *pp;
        if (pump_one(n, w, &b)) {
            pp = &w->next_w;
            continue;
        }
        *pp = w->next_w;
        free(w->prefix);
        free(w);
    }
    free(b.ev);
    free(b.ptrs);
}

int node_watch_add(struct node *n, struct net_conn *conn, void *owner, uint64_t id,
                   const void *prefix, size_t prefix_len, uint64_t from, bool values)
{
    if (!prefix_len || ((const char *)prefix)[0] != '/' || memchr(prefix, 0, prefix_len) ||
        (prefix_len > 1 && ((const char *)prefix)[prefix_len - 1] == '/'))
        return EINVAL;
    struct node_watcher *w = calloc(1, sizeof(*w));
    if (!w || !(w->prefix = malloc(prefix_len))) {
        free(w);
        return ENOMEM;
    }
    memcpy(w->prefix, prefix, prefix_len);
    w->prefix_len = prefix_len;
    w->conn = conn;
    w->owner = owner;
    w->id = id;
    w->values = values;
    struct store_txn *t;
    int rc = store_txn_begin(n->store, &t);
    if (rc) {
        free(w->prefix);
        free(w);
        return rc;
    }
    uint64_t rev = store_txn_revision(t);
    store_txn_end(t);
    w->next = from ? from : rev + 1;
    w->sent_ms = net_now_ms();
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
    resp.id = id;
    resp.has_revision = true;
    resp.revision = w->next - 1;
    env.body_case = RAFTFS__ENVELOPE__BODY_RESPONSE;
    env.response = &resp;
    if ((rc = net_wire_send(conn, &env))) {
        free(w->prefix);
        free(w);
        return rc;
    }
    w->next_w = n->watchers;
    n->watchers = w;
    node_watch_pump(n); /* a start in the past: what is there already */
    return 0;
}

void node_watch_drop_owner(struct node *n, void *owner)
{
    for (struct node_watcher **pp = &n->watchers; *pp;) {
        struct node_watcher *w = *pp;
        if (w->owner != owner) {
            pp = &w->next_w;
            continue;
        }
        *pp = w->next_w;
        free(w->prefix);
        free(w);
    }
}
