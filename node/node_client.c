/* node_client.c - the member's port, on the node's loop: every
 * connection starts with a Hello, which makes it a peer's (member_id set:
 * Raft messages and forwarded commands come in) or a client's (requests
 * write, get, list, status, each answered once, by id).
 *
 * Every frame is checked: a frame that is not an Envelope, anything before
 * the Hello, a second Hello, a wrong version or cluster, an unknown member,
 * a Raft message that does not come from its connection's member, or a
 * body the role may not send closes that connection with a log line and
 * touches nothing else. Writes go through the node like the mount's;
 * linearizable reads wait for a read barrier, serializable ones do not.
 *
 * With TLS (node.tls) every connection is TLS. The port serves members
 * and clients alike, so the handshake always asks for a certificate and
 * verifies one that is shown (a bad one is refused there, with a log
 * line); clients may come without one unless --client-cert-auth, but a
 * Hello that says it is a member's needs a verified certificate.
 *
 * A backup image (SnapshotRequest) is written on a thread of its own and
 * held by its connection while the client reads it in chunks.
 *
 * Access control (store_auth.c): a client's Hello may log in with a
 * password (checked off the loop, node_auth.c) or, with TLS, by its
 * certificate's common name; every write carries the connection's user,
 * which apply checks, and reads are checked here after their barrier.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "net_conn.h"
#include "net_tls.h"
#include "net_wire.h"
#include "node_auth.h"
#include "node_internal.h"
#include "node_wire.h"

#define CLIENT_MAX_PENDING 1024 /* writes in flight per connection */
#define CLIENT_LIST_MAX    1000 /* entries per list page */
/* Backup images (SnapshotRequest) held at once, and their chunks. */
#define CLIENT_BACKUPS_MAX    2
#define CLIENT_SNAP_CHUNK     (1U << 20)
#define CLIENT_SNAP_CHUNK_MAX (4U << 20)

struct client {
    struct node_server *srv;
    struct net_conn *conn; /* NULL once closed */
    bool hello;
    uint64_t peer_id;     /* a member's connection: its id */
    uint64_t incarnation; /* ... and its Hello's incarnation (0: none) */
    unsigned pending;     /* requests waiting for the node */
    bool authing;         /* its Hello's password is being checked */
    /* The user its Hello logged in as (empty: anonymous): every command it
     * sends carries it, every read is checked against it (store_auth.c). */
    char user[STORE_AUTH_NAME_MAX + 1];
    size_t user_len;
    /* The image of a SnapshotRequest being served (backup_fd > 0: calloc
     * makes 0 mean none; an fd of 0 is stdin, never an image). */
    int backup_fd;
    struct store_snapshot_info backup;
    uint64_t backup_term;
    bool backup_writing; /* a backup_job of this client runs */
    struct client *prev, *next;
};

struct node_server {
    struct node *n;
    int lfd;
    uint64_t cluster_id, member_id;
    struct net_conn_limits limits;
    struct client *clients;
    uint64_t own_client_id, next_seq; /* for writes that came without an id */
    struct node_auth *auth;           /* password checks and hashes */
    unsigned backups;                 /* backup images, being written or held */
    /* Backup images being written, each on its own thread (backup_main);
     * a finished one is told through backup_efd. */
    int backup_efd;
    pthread_mutex_t backup_mu;
    struct backup_job *jobs; /* under backup_mu */
};

/* A backup image being written off the loop: its client's pending count
 * keeps the client until the loop has taken the result (backup_ready). */
struct backup_job {
    struct node *n;
    struct client *c;
    uint64_t id; /* of the request */
    uint32_t limit;
    pthread_t thread;
    bool done; /* under backup_mu; then rc, fd, info and term are set */
    int rc, fd;
    struct store_snapshot_info info;
    uint64_t term;
    struct backup_job *next;
};

/* A request waiting for the node: a write, or a read after its barrier. */
struct write_ctx {
    struct client *c;
    uint64_t id;
    Raftfs__ClientRequest *req; /* reads: the request, owned (its envelope) */
    Raftfs__Envelope *env;
};

static void client_unlink_free(struct client *c)
{
    struct node_server *s = c->srv;
    if (c->backup_fd > 0) { /* client_close dropped it, unless never closed */
        close(c->backup_fd);
        s->backups--;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

int64_t node_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void node_attr_to_wire(const struct store_attr *a, Raftfs__Attr *w)
{
    raftfs__attr__init(w);
    w->ino = a->ino;
    w->dir = a->type == STORE_TYPE_DIR;
    w->mode = a->mode;
    w->uid = a->uid;
    w->gid = a->gid;
    w->size = a->size;
    w->mtime_ns = a->mtime_ns;
    w->ctime_ns = a->ctime_ns;
    w->has_atime_ns = true;
    w->atime_ns = a->atime_ns;
    w->has_nlink = true;
    w->nlink = a->nlink;
    w->create_revision = a->create_revision;
    w->mod_revision = a->mod_revision;
    w->version = a->version;
}

static void respond(struct client *c, Raftfs__ClientResponse *resp)
{
    if (!c->conn)
        return;
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    env.body_case = RAFTFS__ENVELOPE__BODY_RESPONSE;
    env.response = resp;
    int rc = net_wire_send(c->conn, &env);
    if (rc) {
        node_log(NODE_LOG_WARN, "client %s: cannot queue a response (%s): closing",
                 net_conn_peer(c->conn), strerror(rc));
        net_conn_close(c->conn, rc, false);
    }
}

static void respond_err(struct client *c, uint64_t id, int err, const char *msg)
{
    Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
    resp.id = id;
    resp.err = err;
    resp.message = (char *)msg;
    respond(c, &resp);
}

static void write_done(void *ctx, int rc, const struct store_result *res)
{
    struct write_ctx *w = ctx;
    struct client *c = w->c;
    c->pending--;
    if (c->conn) {
        Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
        Raftfs__Attr attr;
        resp.id = w->id;
        resp.err = rc ? rc : res->err;
        if (!rc) {
            resp.has_revision = true;
            resp.revision = res->revision;
            if (res->has_attr && !res->err) {
                node_attr_to_wire(&res->attr, &attr);
                resp.attr = &attr;
            }
            if (res->op == STORE_OP_TXN) {
                resp.has_succeeded = true;
                resp.succeeded = res->txn_succeeded;
                resp.has_failed_op = res->txn_failed_op != 0;
                resp.failed_op = res->txn_failed_op;
            }
        }
        respond(c, &resp);
    } else if (c->pending == 0) {
        client_unlink_free(c); /* closed while writes were in flight */
    }
    net_wire_free(w->env);
    free(w);
}

/* Whether c's user may do want (STORE_PERM_*; 0: only be a user) on path
 * (NULL: what only the role root may), as this member's state says: 0,
 * EPERM (anonymous, or no such user), EACCES, or an error of the store. */
static int client_may(struct client *c, const char *path, size_t len, unsigned want)
{
    struct store_txn *t;
    int rc = store_txn_begin(c->srv->n->store, &t);
    if (rc)
        return rc;
    rc = path ? store_auth_allowed(t, c->user, c->user_len, path, len, want)
              : store_auth_root(t, c->user, c->user_len);
    store_txn_end(t);
    return rc;
}

static const char *refusal(int err)
{
    return err == EPERM    ? "not logged in (or no such user) while access control is enabled"
           : err == EACCES ? "permission denied"
                           : NULL;
}

/* Stamps a client's command and hands it to the node. */
static void submit_write(struct client *c, const Raftfs__ClientRequest *req)
{
    struct node_server *s = c->srv;
    struct node *n = s->n;
    if (c->pending >= CLIENT_MAX_PENDING) {
        respond_err(c, req->id, EAGAIN, "too many requests in flight on this connection");
        return;
    }
    Raftfs__Command *cmd = req->write;
    /* A command some member would refuse to apply (it would fail closed
     * there): refused here, before it is in the log. */
    char build[32];
    uint64_t old =
        cmd->version > STORE_CMD_VERSION_PLAIN ? node_member_too_old(n, cmd->version, build) : 0;
    if (old) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "member %llu runs raftfs %s, which does not apply commands of version %u: "
                 "upgrade it first",
                 (unsigned long long)old, build, cmd->version);
        respond_err(c, req->id, EPROTONOSUPPORT, msg);
        return;
    }
    /* The member that takes the write is its proposer: it stamps the time
     * unless the client chose one, and always the connection's user, which
     * apply checks (store_auth.c): a client cannot speak for another. The
     * client's (client_id, seq) make it exactly once across retries; a
     * client without one gets ours. */
    if (!cmd->time_ns)
        cmd->time_ns = node_now_ns();
    uint64_t cid = req->has_client_id && req->client_id ? req->client_id : 0;
    uint64_t seq = cid && req->has_seq ? req->seq : 0;
    if (!cid || !seq) {
        /* Without an id of its own a request cannot be retried safely:
         * give it a fresh one (its session is soon evicted). */
        cid = s->own_client_id + ++s->next_seq * 0x9e3779b97f4a7c15ULL;
        seq = 1;
    }
    cmd->has_client_id = cmd->has_seq = true;
    cmd->client_id = cid;
    cmd->seq = seq;
    ProtobufCBinaryData sent_user = cmd->user;
    protobuf_c_boolean sent_has_user = cmd->has_user;
    cmd->has_user = true;
    cmd->user.data = (uint8_t *)c->user;
    cmd->user.len = c->user_len;
    size_t len = raftfs__command__get_packed_size(cmd);
    void *data = malloc(len ? len : 1);
    struct write_ctx *w = calloc(1, sizeof(*w));
    if (data && w)
        raftfs__command__pack(cmd, data);
    cmd->user = sent_user; /* the envelope frees what it unpacked */
    cmd->has_user = sent_has_user;
    if (!data || !w) {
        free(data);
        free(w);
        respond_err(c, req->id, ENOMEM, "out of memory");
        return;
    }
    w->c = c;
    w->id = req->id;
    /* Answered early: this client's next request is served on the loop
     * thread, after the batch committed (node_submit). */
    int rc = node_submit(n, data, len, cid, seq, true, write_done, w);
    if (rc) {
        free(w);
        respond_err(c, req->id, rc, "not accepting writes");
        return;
    }
    c->pending++;
}

/* A job dropped at close: what it held goes (the client goes elsewhere). */
static void drop_write_job(struct node_auth_job *j)
{
    struct write_ctx *w = j->ctx;
    net_wire_free(w->env);
    free(w);
    free(j);
}

/* A new password's hash is made: the AUTH change goes on with it (and
 * without the password, which the log never holds). */
static void password_hashed(struct node_auth_job *j)
{
    struct write_ctx *w = j->ctx;
    struct client *c = w->c;
    c->pending--;
    if (c->conn && j->result) {
        respond_err(c, w->id, j->result, "cannot hash the password");
    } else if (c->conn) {
        Raftfs__AuthChange *au = w->req->write->auth;
        au->has_password_hash = true;
        au->password_hash.data = (uint8_t *)j->hash;
        au->password_hash.len = strlen(j->hash);
        submit_write(c, w->req);
        au->has_password_hash = false; /* not the envelope's to free */
        au->password_hash.data = NULL;
        au->password_hash.len = 0;
    } else if (c->pending == 0) {
        client_unlink_free(c);
    }
    explicit_bzero(j->hash, sizeof(j->hash));
    drop_write_job(j);
}

#define CLIENT_PASSWORD_MAX 1024

static bool password_ok(const ProtobufCBinaryData *p)
{
    return p->len && p->len <= CLIENT_PASSWORD_MAX && !memchr(p->data, 0, p->len);
}

/* A write. An AUTH change with a password has it hashed first (off the
 * loop: node_auth.c), taking the envelope over (returns true). */
static bool handle_write(struct client *c, Raftfs__Envelope *env)
{
    Raftfs__ClientRequest *req = env->request;
    Raftfs__Command *cmd = req->write;
    if (cmd->op_case != RAFTFS__COMMAND__OP_AUTH || !cmd->auth->has_password) {
        if (cmd->op_case == RAFTFS__COMMAND__OP_AUTH && cmd->auth->has_password_hash)
            respond_err(c, req->id, EINVAL, "the member makes the hash: send the password");
        else
            submit_write(c, req);
        return false;
    }
    Raftfs__AuthChange *au = cmd->auth;
    if (au->has_password_hash || !password_ok(&au->password)) {
        respond_err(c, req->id, EINVAL, "a password is 1 to 1024 bytes, without NUL");
        return false;
    }
    if (c->pending >= CLIENT_MAX_PENDING) {
        respond_err(c, req->id, EAGAIN, "too many requests in flight on this connection");
        return false;
    }
    struct node_auth_job *j = calloc(1, sizeof(*j));
    struct write_ctx *w = calloc(1, sizeof(*w));
    char *pw = malloc(au->password.len + 1);
    if (!j || !w || !pw) {
        free(j);
        free(w);
        free(pw);
        respond_err(c, req->id, ENOMEM, "out of memory");
        return false;
    }
    memcpy(pw, au->password.data, au->password.len);
    pw[au->password.len] = 0;
    explicit_bzero(au->password.data, au->password.len);
    au->has_password = false;
    w->c = c;
    w->id = req->id;
    w->req = req;
    w->env = env;
    j->kind = NODE_AUTH_HASH;
    j->password = pw;
    j->done = password_hashed;
    j->drop = drop_write_job;
    j->ctx = w;
    c->pending++;
    node_auth_submit(c->srv->auth, j);
    return true;
}

static void serve_read(struct client *c, const Raftfs__ClientRequest *req);

/* A read's barrier is through: serve it (on the loop thread). */
static void read_ready(void *ctx, int rc, const struct store_result *res)
{
    struct write_ctx *w = ctx;
    struct client *c = w->c;
    (void)res;
    c->pending--;
    if (c->conn) {
        if (rc)
            respond_err(c, w->id, rc, "no linearizable read point (no quorum?)");
        else
            serve_read(c, w->req);
    } else if (c->pending == 0) {
        client_unlink_free(c);
    }
    net_wire_free(w->env);
    free(w);
}

/* Serializable reads now; linearizable ones after a read barrier. The
 * envelope is taken over (freed when done); returns true if it was. */
static bool handle_read(struct client *c, Raftfs__Envelope *env)
{
    Raftfs__ClientRequest *req = env->request;
    Raftfs__Consistency cons = RAFTFS__CONSISTENCY__LINEARIZABLE;
    if (req->op_case == RAFTFS__CLIENT_REQUEST__OP_GET && req->get->has_consistency)
        cons = req->get->consistency;
    if (req->op_case == RAFTFS__CLIENT_REQUEST__OP_LIST && req->list->has_consistency)
        cons = req->list->consistency;
    if (req->op_case == RAFTFS__CLIENT_REQUEST__OP_EXPORT && req->export->has_consistency)
        cons = req->export->consistency;
    /* A serializable read sees at least what this member has answered:
     * an early answer (node_submit) may precede its batch's commit, which
     * waits when the disk is full. */
    bool serializable = cons == RAFTFS__CONSISTENCY__SERIALIZABLE;
    if (serializable && !node_raft_answered_ahead(c->srv->n)) {
        serve_read(c, req);
        return false;
    }
    if (c->pending >= CLIENT_MAX_PENDING) {
        respond_err(c, req->id, EAGAIN, "too many requests in flight on this connection");
        return false;
    }
    struct write_ctx *w = calloc(1, sizeof(*w));
    if (!w) {
        respond_err(c, req->id, ENOMEM, "out of memory");
        return false;
    }
    w->c = c;
    w->id = req->id;
    w->req = req;
    w->env = env;
    int rc = serializable ? node_raft_wait_answered(c->srv->n, read_ready, w)
                          : node_submit_barrier(c->srv->n, read_ready, w);
    if (rc) {
        free(w);
        respond_err(c, req->id, rc, "not serving reads");
        return false;
    }
    c->pending++;
    return true;
}

static void handle_get(struct client *c, const Raftfs__ClientRequest *req)
{
    struct node *n = c->srv->n;
    const Raftfs__GetRequest *g = req->get;
    Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
    Raftfs__Attr attr;
    struct store_txn *t;
    struct store_attr a;
    resp.id = req->id;
    int rc = 0;
    if (!(rc = store_txn_begin(n->store, &t))) {
        rc = store_auth_allowed(t, c->user, c->user_len, (const char *)g->path.data, g->path.len,
                                STORE_PERM_READ);
        if (!rc)
            rc = store_resolve(t, (const char *)g->path.data, g->path.len, &a);
        if (!rc) {
            node_attr_to_wire(&a, &attr);
            resp.attr = &attr;
            resp.has_revision = true;
            resp.revision = store_txn_revision(t);
            if ((!g->has_value || g->value) && a.type == STORE_TYPE_FILE) {
                const void *d;
                size_t len;
                rc = store_read(t, a.ino, &d, &len);
                if (!rc) {
                    resp.has_value = true;
                    resp.value.data = (uint8_t *)d;
                    resp.value.len = len;
                }
            }
        }
        resp.err = rc;
        if (rc)
            resp.attr = NULL;
        respond(c, &resp); /* copies the value out of the map */
        store_txn_end(t);
        return;
    }
    respond_err(c, req->id, rc, NULL);
}

struct list_acc {
    Raftfs__Dirent *ents;
    Raftfs__Dirent **ptrs;
    char *names;
    size_t n, limit, names_len;
    bool more;
};

static int list_cb(void *ctx, const struct store_dirent *e)
{
    struct list_acc *acc = ctx;
    if (acc->n == acc->limit) {
        acc->more = true;
        return 1;
    }
    Raftfs__Dirent *d = &acc->ents[acc->n];
    raftfs__dirent__init(d);
    memcpy(acc->names + acc->names_len, e->name, e->name_len);
    d->name.data = (uint8_t *)acc->names + acc->names_len;
    d->name.len = e->name_len;
    d->dir = e->type == STORE_TYPE_DIR;
    d->ino = e->ino;
    acc->names_len += e->name_len;
    acc->ptrs[acc->n++] = d;
    return 0;
}

static void handle_list(struct client *c, const Raftfs__ClientRequest *req)
{
    struct node *n = c->srv->n;
    const Raftfs__ListRequest *lr = req->list;
    Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
    struct store_txn *t;
    struct store_attr a;
    struct list_acc acc = {0};
    resp.id = req->id;
    acc.limit =
        lr->has_limit && lr->limit && lr->limit < CLIENT_LIST_MAX ? lr->limit : CLIENT_LIST_MAX;
    acc.ents = calloc(acc.limit, sizeof(*acc.ents));
    acc.ptrs = calloc(acc.limit, sizeof(*acc.ptrs));
    acc.names = malloc(acc.limit * STORE_MAX_NAME_BYTES_BOUND);
    int rc = !acc.ents || !acc.ptrs || !acc.names ? ENOMEM : 0;
    if (!rc && !(rc = store_txn_begin(n->store, &t))) {
        rc = store_auth_allowed(t, c->user, c->user_len, (const char *)lr->path.data, lr->path.len,
                                STORE_PERM_READ);
        if (!rc)
            rc = store_resolve(t, (const char *)lr->path.data, lr->path.len, &a);
        if (!rc && a.type != STORE_TYPE_DIR)
            rc = ENOTDIR;
        if (!rc)
            rc = store_list(t, a.ino, lr->has_after ? (const char *)lr->after.data : NULL,
                            lr->has_after ? lr->after.len : 0, list_cb, &acc);
        if (!rc) {
            resp.n_entries = acc.n;
            resp.entries = acc.ptrs;
            resp.has_more = true;
            resp.more = acc.more;
            resp.has_revision = true;
            resp.revision = store_txn_revision(t);
        }
        store_txn_end(t);
    }
    resp.err = rc;
    respond(c, &resp);
    free(acc.ents);
    free(acc.ptrs);
    free(acc.names);
}

static void handle_status(struct client *c, const Raftfs__ClientRequest *req)
{
    struct node_server *s = c->srv;
    Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
    Raftfs__StatusReply st = RAFTFS__STATUS_REPLY__INIT;
    Raftfs__MemberStatus ms[NODE_MAX_MEMBERS];
    Raftfs__MemberStatus *members[NODE_MAX_MEMBERS];
    struct node_status ns;
    node_get_status(s->n, &ns);
    resp.id = req->id;
    st.id = ns.id;
    st.role = (char *)ns.role;
    st.has_term = st.has_leader = st.has_commit = st.has_applied = st.has_revision = true;
    st.term = ns.term;
    st.leader = ns.leader;
    st.commit = ns.commit;
    st.applied = ns.applied;
    st.revision = ns.revision;
    st.has_cluster_id = st.has_serializable = true;
    st.cluster_id = ns.cluster_id;
    st.serializable = ns.serializable;
    st.has_leader_contact_s = true;
    st.leader_contact_s = ns.leader_contact_s;
    st.config = (char *)ns.config;
    for (size_t i = 0; i < ns.n_members; i++) {
        raftfs__member_status__init(&ms[i]);
        ms[i].id = ns.members[i].id;
        ms[i].address = ns.members[i].addr;
        ms[i].role = (char *)ns.members[i].role;
        ms[i].has_match = true;
        ms[i].match = ns.members[i].match;
        ms[i].has_last_contact_s = true;
        ms[i].last_contact_s = ns.members[i].last_contact_s;
        ms[i].build = ns.members[i].build[0] ? ns.members[i].build : NULL;
        ms[i].has_command_version = ns.members[i].command_version != 0;
        ms[i].command_version = ns.members[i].command_version;
        members[i] = &ms[i];
    }
    st.n_members = ns.n_members;
    st.members = members;
    resp.status = &st;
    respond(c, &resp);
}

/* The member list (with addresses) as a status reply. */
static void respond_members(struct client *c, uint64_t id, int err, const char *msg)
{
    struct node_server *s = c->srv;
    Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
    Raftfs__StatusReply st = RAFTFS__STATUS_REPLY__INIT;
    Raftfs__MemberStatus ms[NODE_MAX_MEMBERS];
    Raftfs__MemberStatus *ptrs[NODE_MAX_MEMBERS];
    struct node_status ns;
    struct node_member dir[NODE_MAX_MEMBERS];
    size_t ndir = 0;
    node_get_status(s->n, &ns);
    node_members_list(s->n, dir, &ndir);
    resp.id = id;
    resp.err = err;
    resp.message = (char *)msg;
    resp.has_cluster_id = true;
    resp.cluster_id = s->cluster_id;
    st.id = ns.id;
    st.role = (char *)ns.role;
    st.has_leader = true;
    st.leader = ns.leader;
    /* Every member of the configuration, and directory entries not (or no
     * longer) in it. */
    size_t k = 0;
    for (size_t i = 0; i < ns.n_members; i++) {
        raftfs__member_status__init(&ms[k]);
        ms[k].id = ns.members[i].id;
        ms[k].role = (char *)ns.members[i].role;
        for (size_t j = 0; j < ndir; j++)
            if (dir[j].id == ms[k].id)
                ms[k].address = dir[j].addr;
        ptrs[k] = &ms[k];
        k++;
    }
    for (size_t j = 0; j < ndir && k < NODE_MAX_MEMBERS; j++) {
        bool listed = false;
        for (size_t i = 0; i < ns.n_members; i++)
            listed |= ns.members[i].id == dir[j].id;
        if (listed)
            continue;
        raftfs__member_status__init(&ms[k]);
        ms[k].id = dir[j].id;
        ms[k].address = dir[j].addr;
        ms[k].role = "not a member";
        ptrs[k] = &ms[k];
        k++;
    }
    st.n_members = k;
    st.members = ptrs;
    resp.status = &st;
    respond(c, &resp);
}

static void member_done(void *ctx, int rc, const struct store_result *res)
{
    struct write_ctx *w = ctx;
    struct client *c = w->c;
    (void)res;
    c->pending--;
    if (c->conn)
        respond_members(c, w->id, rc, rc ? strerror(rc) : NULL);
    else if (c->pending == 0)
        client_unlink_free(c);
    free(w);
}

/* Answers EAGAIN with the leader's id and address, if this member knows
 * them; false if it does not. */
static bool redirect(struct client *c, uint64_t id)
{
    struct node *n = c->srv->n;
    struct node_status ns;
    node_get_status(n, &ns);
    char leader_addr[STORE_MAX_ADDR_BYTES + 1];
    if (!ns.leader || ns.leader == ns.id ||
        !node_member_addr(n, ns.leader, leader_addr, sizeof(leader_addr)))
        return false;
    Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
    resp.id = id;
    resp.err = EAGAIN;
    resp.message = "not the leader";
    resp.has_leader_id = true;
    resp.leader_id = ns.leader;
    resp.leader_address = leader_addr;
    respond(c, &resp);
    return true;
}

struct lease_list {
    struct node *n;
    Raftfs__LeaseStatus *items;
    Raftfs__LeaseStatus **ptrs;
    size_t len, cap;
};

static int list_lease(void *ctx, const struct store_lease *l)
{
    struct lease_list *ll = ctx;
    if (ll->len == ll->cap) {
        size_t cap = ll->cap ? ll->cap * 2 : 16;
        Raftfs__LeaseStatus *items = realloc(ll->items, cap * sizeof(*items));
        if (!items)
            return ENOMEM;
        ll->items = items;
        Raftfs__LeaseStatus **ptrs = realloc(ll->ptrs, cap * sizeof(*ptrs));
        if (!ptrs)
            return ENOMEM;
        ll->ptrs = ptrs;
        ll->cap = cap;
    }
    Raftfs__LeaseStatus *x = &ll->items[ll->len++];
    raftfs__lease_status__init(x);
    x->id = l->id;
    x->ttl_ms = l->ttl_ms;
    int64_t left = 0;
    x->has_remaining_ms = !node_lease_remaining(ll->n, l->id, &left);
    x->remaining_ms = left;
    x->has_keys = true;
    x->keys = l->keys;
    for (size_t i = 0; i < ll->len; i++)
        ll->ptrs[i] = &ll->items[i]; /* items may have moved */
    return 0;
}

static void handle_member(struct client *c, const Raftfs__ClientRequest *req)
{
    struct node *n = c->srv->n;
    const Raftfs__MemberRequest *mr = req->member;
    if (mr->op == RAFTFS__MEMBER_REQUEST__OP__LIST) {
        respond_members(c, req->id, 0, NULL);
        return;
    }
    int may = client_may(c, NULL, 0, 0);
    if (may) {
        respond_err(c, req->id, may, refusal(may));
        return;
    }
    static const enum node_member_op ops[] = {
        [RAFTFS__MEMBER_REQUEST__OP__ADD] = NODE_MEMBER_ADD,
        [RAFTFS__MEMBER_REQUEST__OP__ADD_LEARNER] = NODE_MEMBER_ADD_LEARNER,
        [RAFTFS__MEMBER_REQUEST__OP__PROMOTE] = NODE_MEMBER_PROMOTE,
        [RAFTFS__MEMBER_REQUEST__OP__REMOVE] = NODE_MEMBER_REMOVE,
        [RAFTFS__MEMBER_REQUEST__OP__TRANSFER] = NODE_MEMBER_TRANSFER,
    };
    if ((unsigned)mr->op > RAFTFS__MEMBER_REQUEST__OP__TRANSFER) {
        respond_err(c, req->id, EINVAL, "unknown member operation");
        return;
    }
    char addr[STORE_MAX_ADDR_BYTES + 1] = "";
    if (mr->has_address) {
        if (!mr->address.len || mr->address.len > STORE_MAX_ADDR_BYTES ||
            memchr(mr->address.data, 0, mr->address.len)) {
            respond_err(c, req->id, EINVAL, "bad address");
            return;
        }
        memcpy(addr, mr->address.data, mr->address.len);
        addr[mr->address.len] = 0;
    }
    struct write_ctx *w = calloc(1, sizeof(*w));
    if (!w) {
        respond_err(c, req->id, ENOMEM, "out of memory");
        return;
    }
    w->c = c;
    w->id = req->id;
    enum node_member_op op = ops[mr->op];
    int rc = node_member_change(n, op, mr->id, addr, member_done, w);
    if (rc == 0 && op == NODE_MEMBER_TRANSFER) {
        free(w);
        respond_members(c, req->id, 0, NULL);
        return;
    }
    if (rc == 0) {
        c->pending++;
        return;
    }
    free(w);
    if (rc == EAGAIN && redirect(c, req->id))
        return;
    respond_members(c, req->id, rc,
                    rc == EAGAIN  ? "not the leader, or not caught up yet"
                    : rc == EPERM ? "this cluster speaks plaintext, and that address is not "
                                    "loopback: members off loopback need TLS (or --allow-plaintext)"
                                  : strerror(rc));
}

/* Leases: the leader's clocks (node_lease.c). */
static void handle_lease(struct client *c, const Raftfs__ClientRequest *req)
{
    struct node *n = c->srv->n;
    const Raftfs__LeaseRequest *lr = req->lease;
    Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
    resp.id = req->id;
    Raftfs__LeaseStatus one = RAFTFS__LEASE_STATUS__INIT, *ptr = &one;
    struct store_lease l;
    int64_t left = 0;
    int rc = client_may(c, "/", 1, 0);
    if (rc) {
        respond_err(c, req->id, rc, refusal(rc));
        return;
    }
    if (lr->op == RAFTFS__LEASE_REQUEST__OP__KEEP_ALIVE) {
        rc = node_lease_keep_alive(n, lr->id, &l, &left);
    } else if (lr->op == RAFTFS__LEASE_REQUEST__OP__TIME_TO_LIVE) {
        struct store_txn *t;
        rc = raft_role(n->raft) == RAFT_LEADER ? store_txn_begin(n->store, &t) : EAGAIN;
        if (!rc) {
            rc = store_lease_get(t, lr->id, &l);
            store_txn_end(t);
        }
        if (!rc)
            rc = node_lease_remaining(n, lr->id, &left);
    } else if (lr->op == RAFTFS__LEASE_REQUEST__OP__LIST) {
        if (!node_leases_ready(n)) {
            if (!redirect(c, req->id))
                respond_err(c, req->id, EAGAIN, "not the leader");
            return;
        }
        struct lease_list ll = {.n = n};
        struct store_txn *t;
        if (!(rc = store_txn_begin(n->store, &t))) {
            rc = store_leases(t, list_lease, &ll);
            store_txn_end(t);
        }
        if (!rc) {
            resp.n_leases = ll.len;
            resp.leases = ll.ptrs;
        }
        resp.err = rc;
        respond(c, &resp);
        free(ll.items);
        free(ll.ptrs);
        return;
    } else {
        respond_err(c, req->id, EINVAL, "unknown lease operation");
        return;
    }
    if (rc == EAGAIN && redirect(c, req->id))
        return;
    if (rc) {
        respond_err(c, req->id, rc,
                    rc == ENOKEY   ? "no such lease (expired, revoked or never granted)"
                    : rc == EAGAIN ? "not the leader"
                                   : NULL);
        return;
    }
    one.id = l.id;
    one.ttl_ms = l.ttl_ms;
    one.has_remaining_ms = true;
    one.remaining_ms = left;
    one.has_keys = true;
    one.keys = l.keys;
    resp.n_leases = 1;
    resp.leases = &ptr;
    respond(c, &resp);
}

/* Users or roles, copied out of the store for one reply: one block each. */
struct auth_acc {
    bool roles;
    Raftfs__AuthItem **items;
    size_t n, cap;
};

static int auth_item(void *ctx, const struct store_auth_item *it)
{
    struct auth_acc *acc = ctx;
    if (acc->n == acc->cap) {
        size_t cap = acc->cap ? 2 * acc->cap : 16;
        Raftfs__AuthItem **p = realloc(acc->items, cap * sizeof(*p));
        if (!p)
            return ENOMEM;
        acc->items = p;
        acc->cap = cap;
    }
    size_t bytes = it->name_len;
    for (size_t i = 0; i < it->n_items; i++)
        bytes += it->item_lens[i];
    size_t n = it->n_items;
    /* item | roles[n] | perms[n] | perm ptrs[n] | bytes */
    size_t head = sizeof(Raftfs__AuthItem) +
                  n * (sizeof(ProtobufCBinaryData) + sizeof(Raftfs__AuthPermission) +
                       sizeof(Raftfs__AuthPermission *));
    unsigned char *blk = malloc(head + bytes + 1);
    if (!blk)
        return ENOMEM;
    Raftfs__AuthItem *item = (Raftfs__AuthItem *)blk;
    ProtobufCBinaryData *roles = (ProtobufCBinaryData *)(item + 1);
    Raftfs__AuthPermission *perms = (Raftfs__AuthPermission *)(roles + n);
    Raftfs__AuthPermission **pptrs = (Raftfs__AuthPermission **)(perms + n);
    unsigned char *b = blk + head;
    raftfs__auth_item__init(item);
    memcpy(b, it->name, it->name_len);
    item->name.data = b;
    item->name.len = it->name_len;
    b += it->name_len;
    for (size_t i = 0; i < n; i++) {
        memcpy(b, it->items[i], it->item_lens[i]);
        ProtobufCBinaryData d = {.len = it->item_lens[i], .data = b};
        b += it->item_lens[i];
        roles[i] = d;
        raftfs__auth_permission__init(&perms[i]);
        perms[i].prefix = d;
        perms[i].perm = it->perms[i];
        pptrs[i] = &perms[i];
    }
    if (acc->roles) {
        item->n_perms = n;
        item->perms = pptrs;
    } else {
        item->has_has_password = true;
        item->has_password = it->has_password;
        item->n_roles = n;
        item->roles = roles;
    }
    acc->items[acc->n++] = item;
    return 0;
}

/* Reading access control: status and who-am-i for anyone, the rest for
 * root (once enabled). */
static void handle_auth(struct client *c, const Raftfs__ClientRequest *req)
{
    const Raftfs__AuthRequest *ar = req->auth;
    Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
    Raftfs__AuthReply reply = RAFTFS__AUTH_REPLY__INIT;
    struct auth_acc acc = {0};
    struct store_txn *t = NULL;
    resp.id = req->id;
    int rc = store_txn_begin(c->srv->n->store, &t);
    bool on = false;
    if (!rc)
        rc = store_auth_enabled(t, &on);
    bool open =
        ar->op == RAFTFS__AUTH_REQUEST__OP__STATUS || ar->op == RAFTFS__AUTH_REQUEST__OP__WHO_AM_I;
    if (!rc && !open)
        rc = store_auth_root(t, c->user, c->user_len);
    if (!rc && (unsigned)ar->op > RAFTFS__AUTH_REQUEST__OP__ROLE_GET)
        rc = EINVAL;
    if (!rc && !open) {
        bool roles = acc.roles = ar->op == RAFTFS__AUTH_REQUEST__OP__ROLE_LIST ||
                                 ar->op == RAFTFS__AUTH_REQUEST__OP__ROLE_GET;
        bool one = ar->op == RAFTFS__AUTH_REQUEST__OP__USER_GET ||
                   ar->op == RAFTFS__AUTH_REQUEST__OP__ROLE_GET;
        if (one && !ar->has_name)
            rc = EINVAL;
        else
            rc = store_auth_list(t, roles, one ? (const char *)ar->name.data : NULL,
                                 one ? ar->name.len : 0, auth_item, &acc);
    }
    if (t)
        store_txn_end(t);
    if (rc) {
        respond_err(c, req->id, rc,
                    rc == ENOENT   ? "no such user or role"
                    : rc == EINVAL ? "bad request"
                                   : refusal(rc));
    } else {
        reply.has_enabled = true;
        reply.enabled = on;
        reply.has_user = true;
        reply.user.data = (uint8_t *)c->user;
        reply.user.len = c->user_len;
        reply.n_items = acc.n;
        reply.items = acc.items;
        resp.auth = &reply;
        respond(c, &resp);
    }
    for (size_t i = 0; i < acc.n; i++)
        free(acc.items[i]);
    free(acc.items);
}

static void backup_drop(struct client *c)
{
    if (c->backup_fd <= 0)
        return;
    close(c->backup_fd);
    c->backup_fd = 0;
    c->srv->backups--;
}

/* Answers id with the bytes of c's image from off (at most limit), and
 * with its description if info. */
static void backup_send(struct client *c, uint64_t id, uint64_t off, size_t limit, bool info)
{
    Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
    Raftfs__SnapshotInfo si = RAFTFS__SNAPSHOT_INFO__INIT;
    resp.id = id;
    if (c->backup_fd <= 0 || off > c->backup.bytes) {
        respond_err(c, id, ESTALE, "no snapshot image here at that offset: start again");
        return;
    }
    if (info) {
        si.index = c->backup.applied_index;
        si.term = c->backup_term;
        si.revision = c->backup.revision;
        si.size = c->backup.bytes;
        si.has_records = true;
        si.records = c->backup.records;
        resp.snapshot = &si;
    }
    size_t want = c->backup.bytes - off < limit ? (size_t)(c->backup.bytes - off) : limit;
    uint8_t *buf = malloc(want ? want : 1);
    if (!buf) {
        respond_err(c, id, ENOMEM, "out of memory");
        return;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(c->backup_fd, buf + got, want - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got < want) {
        free(buf);
        respond_err(c, id, EIO, "cannot read the snapshot image");
        return;
    }
    resp.has_value = true;
    resp.value.data = buf;
    resp.value.len = want;
    resp.has_more = true;
    resp.more = off + want < c->backup.bytes;
    resp.has_revision = true;
    resp.revision = c->backup.revision;
    respond(c, &resp);
    free(buf);
}

/* The image is written on a thread of its own, from one read transaction
 * of the committed state (node_snap.c note 5), so that a large tree does
 * not hold the loop: Raft ticks, writes and reads go on meanwhile. */
static void *backup_main(void *arg)
{
    struct backup_job *j = arg;
    int fd = -1;
    struct store_snapshot_info info;
    uint64_t term = 0;
    int rc = node_snap_backup(j->n, &fd, &info, &term);
    struct node_server *s = j->n->server;
    pthread_mutex_lock(&s->backup_mu);
    j->rc = rc;
    j->fd = rc ? -1 : fd;
    j->info = info;
    j->term = term;
    j->done = true;
    pthread_mutex_unlock(&s->backup_mu);
    uint64_t one = 1;
    ssize_t w = write(s->backup_efd, &one, sizeof(one));
    (void)w; /* a full counter already wakes the loop */
    return NULL;
}

/* Takes a finished job (its thread has ended or is ending): joined, its
 * client answered (or gone: the image is dropped), freed. */
static void backup_finish(struct node_server *s, struct backup_job *j)
{
    pthread_join(j->thread, NULL);
    struct client *c = j->c;
    c->pending--;
    c->backup_writing = false;
    if (j->rc || !c->conn) {
        if (j->fd >= 0)
            close(j->fd);
        s->backups--;
        if (j->rc) {
            node_log(NODE_LOG_WARN, "a snapshot image for a backup: %s", strerror(j->rc));
            /* ERANGE: the log was compacted past the image's index
             * meanwhile (its term is gone): a new image will do. */
            respond_err(c, j->id, j->rc == ERANGE ? EAGAIN : j->rc,
                        "cannot write a snapshot image");
        }
    } else {
        c->backup_fd = j->fd;
        c->backup = j->info;
        c->backup_term = j->term;
        node_log(NODE_LOG_INFO,
                 "client %s: a snapshot image at index %llu (%llu bytes) for a backup",
                 net_conn_peer(c->conn), (unsigned long long)j->info.applied_index,
                 (unsigned long long)j->info.bytes);
        backup_send(c, j->id, 0, j->limit, true);
    }
    if (!c->conn && c->pending == 0)
        client_unlink_free(c);
    free(j);
}

static void backup_ready(struct net_loop *l, int fd, uint32_t events, void *ctx)
{
    struct node_server *s = ctx;
    (void)l, (void)events;
    uint64_t count;
    ssize_t r = read(fd, &count, sizeof(count));
    (void)r;
    for (;;) {
        struct backup_job *done = NULL;
        pthread_mutex_lock(&s->backup_mu);
        for (struct backup_job **p = &s->jobs; *p; p = &(*p)->next)
            if ((*p)->done) {
                done = *p;
                *p = done->next;
                break;
            }
        pthread_mutex_unlock(&s->backup_mu);
        if (!done)
            break;
        backup_finish(s, done);
    }
}

/* SnapshotRequest: a new image at offset 0 (answered once written), then
 * its bytes. */
static void handle_snapshot(struct client *c, const Raftfs__ClientRequest *req)
{
    struct node_server *s = c->srv;
    const Raftfs__SnapshotRequest *sr = req->snapshot;
    uint64_t off = sr->has_offset ? sr->offset : 0;
    /* A backup holds every key, and access control too: root's alone. */
    int may = client_may(c, NULL, 0, 0);
    if (may) {
        respond_err(c, req->id, may, refusal(may));
        return;
    }
    size_t limit = sr->has_limit_bytes && sr->limit_bytes ? sr->limit_bytes : CLIENT_SNAP_CHUNK;
    if (limit > CLIENT_SNAP_CHUNK_MAX)
        limit = CLIENT_SNAP_CHUNK_MAX;
    if (limit > s->limits.max_frame / 2)
        limit = s->limits.max_frame / 2;
    if (off) {
        backup_send(c, req->id, off, limit, false);
        return;
    }
    backup_drop(c);
    if (c->backup_writing || s->backups >= CLIENT_BACKUPS_MAX) {
        respond_err(c, req->id, EBUSY, "too many snapshot images being served: try later");
        return;
    }
    struct backup_job *j = calloc(1, sizeof(*j));
    if (!j) {
        respond_err(c, req->id, ENOMEM, "out of memory");
        return;
    }
    *j = (struct backup_job){.n = s->n, .c = c, .id = req->id, .limit = (uint32_t)limit, .fd = -1};
    pthread_mutex_lock(&s->backup_mu);
    int rc = pthread_create(&j->thread, NULL, backup_main, j);
    if (!rc) {
        j->next = s->jobs;
        s->jobs = j;
    }
    pthread_mutex_unlock(&s->backup_mu);
    if (rc) {
        free(j);
        respond_err(c, req->id, rc, "cannot start writing a snapshot image");
        return;
    }
    s->backups++;
    c->pending++;
    c->backup_writing = true;
}

static void export_send(void *ctx, Raftfs__ClientResponse *resp)
{
    respond(ctx, resp);
}

static void serve_read(struct client *c, const Raftfs__ClientRequest *req)
{
    if (req->op_case == RAFTFS__CLIENT_REQUEST__OP_GET) {
        handle_get(c, req);
    } else if (req->op_case == RAFTFS__CLIENT_REQUEST__OP_EXPORT) {
        Raftfs__ClientResponse resp = RAFTFS__CLIENT_RESPONSE__INIT;
        resp.id = req->id;
        int rc = client_may(c, (const char *)req->export->prefix.data, req->export->prefix.len,
                            STORE_PERM_READ);
        if (rc)
            respond_err(c, req->id, rc, refusal(rc));
        else
            node_export_page(c->srv->n->store, req->export, export_send, c, &resp);
    } else {
        handle_list(c, req);
    }
}

/* Checks a Hello; on refusal fills why. */
static bool hello_ok(struct node_server *s, const Raftfs__Hello *h, char *why, size_t len)
{
    bool peer = h->has_member_id && h->member_id;
    if (h->protocol_version != NET_WIRE_VERSION) {
        snprintf(why, len, "protocol version %u, this member speaks %u", h->protocol_version,
                 NET_WIRE_VERSION);
        return false;
    }
    /* Clients may not know the cluster (0); members must. */
    if ((h->cluster_id || peer) && h->cluster_id != s->cluster_id) {
        snprintf(why, len, "cluster %016llx, this member is in cluster %016llx",
                 (unsigned long long)h->cluster_id, (unsigned long long)s->cluster_id);
        return false;
    }
    if (h->has_to_member_id && h->to_member_id && h->to_member_id != s->member_id) {
        snprintf(why, len, "meant for member %llu, this is member %llu",
                 (unsigned long long)h->to_member_id, (unsigned long long)s->member_id);
        return false;
    }
    if (peer && (h->member_id == s->member_id || !node_peer_find(s->n, h->member_id))) {
        snprintf(why, len, "member %llu is not a member this one knows",
                 (unsigned long long)h->member_id);
        return false;
    }
    /* A member whose data directory is not the one the cluster recorded
     * lost its state (term, vote, log): letting it in under its old id
     * could make it vote twice in a term, or count towards a majority
     * that lacks committed entries. node_member.c, note 4. */
    uint64_t known = 0;
    if (peer && node_member_incarnation(s->n, h->member_id, &known)) {
        snprintf(why, len, "the member directory cannot be read here");
        return false;
    }
    if (known && (!h->has_incarnation || h->incarnation != known)) {
        char got[32] = "none";
        if (h->has_incarnation)
            snprintf(got, sizeof(got), "%016llx", (unsigned long long)h->incarnation);
        snprintf(why, len,
                 "member %llu " NODE_LOST_STATE_REFUSAL
                 " (incarnation %s, the cluster knows %016llx): its state is lost; remove it "
                 "(raftfs member remove %llu) and add it again as a new member",
                 (unsigned long long)h->member_id, got, (unsigned long long)known,
                 (unsigned long long)h->member_id);
        return false;
    }
    return true;
}

/* With TLS, a member's Hello needs a verified certificate (mutual TLS
 * between members), whether or not clients must show one, and that
 * certificate must name the host the member is known at here (the member
 * directory's address), as the certificate of a member dialed must name
 * the host dialed: a client's certificate, or one made for another host,
 * cannot speak as a member. */
static bool hello_tls_ok(struct node_server *s, struct net_conn *conn, const Raftfs__Hello *h,
                         char *why, char *told, size_t len)
{
    if (!s->n->tls || !(h->has_member_id && h->member_id))
        return true;
    if (!net_conn_peer_verified(conn)) {
        snprintf(why, len,
                 "member %llu showed no certificate: members must (mutual TLS, with this "
                 "member's --cert-file)",
                 (unsigned long long)h->member_id);
        return false;
    }
    struct node_peer *p = node_peer_find(s->n, h->member_id);
    char host[128];
    if (!p || net_tls_host_of(p->name, host, sizeof(host)))
        return true; /* not a member known here: hello_ok refuses it */
    int rc = net_conn_peer_names(conn, host);
    if (rc == 0)
        return true;
    if (rc == EPERM) {
        snprintf(why, len,
                 "member %llu showed a certificate that is not for a server (its extended key "
                 "usage lacks serverAuth): a member's certificate serves its peers too",
                 (unsigned long long)h->member_id);
        return false;
    }
    snprintf(why, len,
             "member %llu showed a certificate that does not name %.80s, its host in the "
             "member directory: a member's certificate must name the address its peers dial",
             (unsigned long long)h->member_id, host);
    /* The peer is told the reason, not the host: any certificate of the CA
     * gets this far. */
    snprintf(told, len,
             "member %llu showed a certificate that does not name its host in the member "
             "directory: a member's certificate must name the address its peers dial",
             (unsigned long long)h->member_id);
    return false;
}

/* A frame on a member's connection: a Raft message from it, or a command it
 * forwards. Nothing is ever sent back on this connection (only the
 * HelloReply was): answers go out on this member's own connection to that
 * peer (node_peer.c), which must have passed the peer's Hello check. So a
 * member refused by the others (removed, or back with a lost data
 * directory) may still be dialled and sent messages, but whatever it
 * answers is dropped: it can neither vote nor acknowledge nor forward. */
static int peer_frame(struct client *c, Raftfs__Envelope *env)
{
    struct node *n = c->srv->n;
    struct node_peer *p = node_peer_find(n, c->peer_id);
    if (p)
        p->last_heard_ms = net_now_ms();
    if (env->body_case == RAFTFS__ENVELOPE__BODY_FORWARD) {
        /* Only a member of the configuration proposes through the leader. */
        if (raft_conf_is_voter(raft_conf(n->raft), c->peer_id) ||
            raft_conf_is_learner(raft_conf(n->raft), c->peer_id))
            node_raft_forwarded(n, env->forward->command.data, env->forward->command.len);
        return 0;
    }
    if (env->body_case != RAFTFS__ENVELOPE__BODY_RAFT) {
        node_log(NODE_LOG_WARN, "member %llu (%s): unexpected frame (body %d): closing",
                 (unsigned long long)c->peer_id, net_conn_peer(c->conn), (int)env->body_case);
        return EPROTO;
    }
    struct raft_message m;
    int rc = node_wire_raft_unpack(env->raft, &m);
    if (rc == 0 && (m.from != c->peer_id || m.to != n->cfg.id)) {
        node_log(NODE_LOG_WARN,
                 "member %llu (%s): a message from %llu to %llu on its connection: closing",
                 (unsigned long long)c->peer_id, net_conn_peer(c->conn), (unsigned long long)m.from,
                 (unsigned long long)m.to);
        rc = EPROTO;
    } else if (rc == EPROTO) {
        node_log(NODE_LOG_WARN, "member %llu (%s): malformed Raft message: closing",
                 (unsigned long long)c->peer_id, net_conn_peer(c->conn));
    }
    if (!rc)
        node_raft_step(n, &m);
    node_wire_raft_release(&m);
    return rc;
}

/* Sends the HelloReply: ok, or a refusal (why), after which the
 * connection closes once the reply is out. */
static int hello_reply_err(struct client *c, const char *why, int err)
{
    struct node_server *s = c->srv;
    Raftfs__Envelope out = RAFTFS__ENVELOPE__INIT;
    Raftfs__HelloReply reply = RAFTFS__HELLO_REPLY__INIT;
    out.body_case = RAFTFS__ENVELOPE__BODY_HELLO_REPLY;
    out.hello_reply = &reply;
    reply.has_member_id = reply.has_cluster_id = reply.has_protocol_version = true;
    reply.member_id = s->member_id;
    reply.cluster_id = s->cluster_id;
    reply.protocol_version = NET_WIRE_VERSION;
    reply.ok = why == NULL;
    reply.error = (char *)why;
    reply.has_err = err != 0;
    reply.err = err;
    reply.build = RAFTFS_VERSION;
    reply.has_command_version = true;
    reply.command_version = STORE_CMD_VERSION;
    int rc = net_wire_send(c->conn, &out);
    if (why) {
        net_conn_close(c->conn, EPROTO, true);
        rc = 0;
    }
    return rc;
}

static int hello_reply(struct client *c, const char *why)
{
    return hello_reply_err(c, why, 0);
}

#define LOGIN_REFUSED "authentication failed"

/* The password of a login is checked: the Hello is answered. */
static void login_done(struct node_auth_job *j)
{
    struct client *c = j->ctx;
    c->pending--;
    c->authing = false;
    if (!c->conn) {
        if (c->pending == 0)
            client_unlink_free(c);
    } else if (j->result) {
        node_log(NODE_LOG_WARN, "login of user %s from %s refused: wrong password", c->user,
                 net_conn_peer(c->conn));
        c->user_len = 0;
        c->user[0] = 0;
        hello_reply_err(c, LOGIN_REFUSED, EPERM);
    } else {
        c->hello = true;
        node_log(NODE_LOG_DEBUG, "user %s logged in from %s", c->user, net_conn_peer(c->conn));
        int rc = hello_reply(c, NULL);
        if (rc)
            net_conn_close(c->conn, rc, false);
    }
    explicit_bzero(j->hash, sizeof(j->hash));
    free(j);
}

static void drop_login_job(struct node_auth_job *j)
{
    free(j);
}

/* A client's Hello with a user: its password is checked against the
 * user's hash off the loop; the reply waits for that. */
static int login(struct client *c, const Raftfs__Hello *h)
{
    struct node_server *s = c->srv;
    const char *u = (const char *)h->user.data;
    size_t ulen = h->user.len;
    struct node_auth_job *j = calloc(1, sizeof(*j));
    struct store_txn *t;
    int rc = j ? store_auth_name_check(u, ulen) : ENOMEM;
    if (!rc && !(rc = store_txn_begin(s->n->store, &t))) {
        rc = store_auth_login(t, u, ulen, j->hash, sizeof(j->hash));
        store_txn_end(t);
    }
    if (!rc && (!h->has_password || !password_ok(&h->password)))
        rc = EPERM;
    if (!rc && !(j->password = malloc(h->password.len + 1)))
        rc = ENOMEM;
    if (rc) {
        free(j);
        node_log(NODE_LOG_WARN, "login from %s refused: %s", net_conn_peer(c->conn),
                 rc == EINVAL   ? "a malformed user name"
                 : rc == ENOENT ? "no such user"
                 : rc == ENOKEY ? "the user has no password (certificate only)"
                 : rc == EPERM  ? "no password given"
                                : strerror(rc));
        return hello_reply_err(c, LOGIN_REFUSED, EPERM);
    }
    memcpy(j->password, h->password.data, h->password.len);
    j->password[h->password.len] = 0;
    explicit_bzero(h->password.data, h->password.len);
    memcpy(c->user, u, ulen);
    c->user[ulen] = 0;
    c->user_len = ulen;
    j->kind = NODE_AUTH_VERIFY;
    j->done = login_done;
    j->drop = drop_login_job;
    j->ctx = c;
    c->authing = true;
    c->pending++;
    node_auth_submit(s->auth, j);
    return 0;
}

/* The first frame of a connection. */
static int handle_hello(struct client *c, const Raftfs__Envelope *env)
{
    struct node_server *s = c->srv;
    char why[256], told[256] = "";
    if (env->body_case != RAFTFS__ENVELOPE__BODY_HELLO) {
        node_log(NODE_LOG_WARN, "connection %s: sent something before its Hello: closing",
                 net_conn_peer(c->conn));
        return EPROTO;
    }
    const Raftfs__Hello *h = env->hello;
    if (!hello_tls_ok(s, c->conn, h, why, told, sizeof(why)) || !hello_ok(s, h, why, sizeof(why))) {
        node_log(NODE_LOG_WARN, "connection from %s refused: %s", net_conn_peer(c->conn), why);
        return hello_reply(c, *told ? told : why);
    }
    bool peer = h->has_member_id && h->member_id;
    if (!peer && h->has_user)
        return login(c, h);
    /* A client that logs in by certificate: its common name is its user
     * (as etcd's --client-cert-auth does); one that is not a valid name is
     * no user at all. */
    char cn[STORE_AUTH_NAME_MAX + 1];
    if (!peer && !net_conn_peer_cn(c->conn, cn, sizeof(cn)) &&
        !store_auth_name_check(cn, strlen(cn))) {
        memcpy(c->user, cn, strlen(cn) + 1);
        c->user_len = strlen(cn);
        node_log(NODE_LOG_DEBUG, "user %s logged in from %s by certificate", c->user,
                 net_conn_peer(c->conn));
    }
    c->hello = true;
    if (peer) {
        c->peer_id = h->member_id;
        if (h->has_incarnation)
            c->incarnation = h->incarnation;
        struct node_peer *p = node_peer_find(s->n, c->peer_id);
        if (p && c->incarnation)
            p->incarnation = c->incarnation; /* for the leader to record */
        if (p)
            node_peer_version(p, h->build, h->has_command_version, h->command_version);
        net_conn_set_counters(c->conn, &s->n->peer_io); /* from its Hello on */
    }
    return hello_reply(c, NULL);
}

static int client_frame(struct net_conn *conn, const uint8_t *p, size_t len, void *ctx)
{
    struct client *c = ctx;
    struct node_server *s = c->srv;
    Raftfs__Envelope *env = net_wire_unpack(p, len);
    if (!env) {
        node_log(NODE_LOG_WARN, "connection %s: undecodable frame (%zu bytes): closing",
                 net_conn_peer(conn), len);
        return EPROTO;
    }
    int rc = 0;
    if (c->authing) {
        node_log(NODE_LOG_WARN, "connection %s: sent something before its HelloReply: closing",
                 net_conn_peer(conn));
        net_wire_free(env);
        return EPROTO;
    }
    if (!c->hello) {
        rc = handle_hello(c, env);
        net_wire_free(env);
        return rc;
    }
    if (c->peer_id) {
        rc = peer_frame(c, env);
        net_wire_free(env);
        return rc;
    }
    if (env->body_case != RAFTFS__ENVELOPE__BODY_REQUEST) {
        node_log(NODE_LOG_WARN, "client %s: unexpected frame (body %d): closing",
                 net_conn_peer(conn), (int)env->body_case);
        net_wire_free(env);
        return EPROTO;
    }
    Raftfs__ClientRequest *req = env->request;
    switch (req->op_case) {
    case RAFTFS__CLIENT_REQUEST__OP_WRITE:
        if (handle_write(c, env))
            return 0; /* the envelope waits for the password's hash */
        break;
    case RAFTFS__CLIENT_REQUEST__OP_GET:
    case RAFTFS__CLIENT_REQUEST__OP_LIST:
    case RAFTFS__CLIENT_REQUEST__OP_EXPORT:
        if (handle_read(c, env))
            return 0; /* the envelope waits with the read */
        break;
    case RAFTFS__CLIENT_REQUEST__OP_STATUS:
        handle_status(c, req);
        break;
    case RAFTFS__CLIENT_REQUEST__OP_MEMBER:
        handle_member(c, req);
        break;
    case RAFTFS__CLIENT_REQUEST__OP_LEASE:
        handle_lease(c, req);
        break;
    case RAFTFS__CLIENT_REQUEST__OP_AUTH:
        handle_auth(c, req);
        break;
    case RAFTFS__CLIENT_REQUEST__OP_SNAPSHOT:
        handle_snapshot(c, req);
        break;
    case RAFTFS__CLIENT_REQUEST__OP_WATCH: {
        const Raftfs__WatchRequest *wr = req->watch;
        int err = client_may(c, (const char *)wr->prefix.data, wr->prefix.len, STORE_PERM_READ);
        if (err) {
            respond_err(c, req->id, err, refusal(err));
            break;
        }
        err = node_watch_add(s->n, conn, c, req->id, wr->prefix.data, wr->prefix.len,
                             wr->has_from_revision ? wr->from_revision : 0,
                             wr->has_values && wr->values);
        if (err)
            respond_err(c, req->id, err, err == EINVAL ? "bad prefix" : "cannot watch");
        break;
    }
    default:
        respond_err(c, req->id, EOPNOTSUPP, "unknown request");
        break;
    }
    net_wire_free(env);
    return 0;
}

/* A member's connection closed: the incarnation the leader may record for
 * it is that of a connection still open, or none. Only a member connected
 * now vouches for its data directory; an old Hello must not be recorded
 * for a member added again under the same id. */
static void peer_conn_gone(struct client *c)
{
    struct node_peer *p = node_peer_find(c->srv->n, c->peer_id);
    if (!p)
        return;
    p->incarnation = 0;
    for (struct client *o = c->srv->clients; o; o = o->next)
        if (o != c && o->conn && o->peer_id == c->peer_id && o->incarnation)
            p->incarnation = o->incarnation;
}

static void client_close(struct net_conn *conn, int err, void *ctx)
{
    struct client *c = ctx;
    const char *tls = net_conn_tls_error(conn);
    if (tls)
        node_log(NODE_LOG_WARN, "connection from %s %s: %s%s", net_conn_peer(conn),
                 strncmp(tls, "TLS handshake", 13) ? "closed" : "refused", tls,
                 strstr(tls, "wrong version number") ? " (not TLS: a plaintext client?)" : "");
    else if (err && err != ECONNRESET && err != EPIPE)
        node_log(NODE_LOG_INFO, "client %s closed: %s", net_conn_peer(conn), strerror(err));
    c->conn = NULL;
    backup_drop(c);
    node_watch_drop_owner(c->srv->n, c);
    if (c->peer_id)
        peer_conn_gone(c);
    if (c->pending == 0)
        client_unlink_free(c);
}

static const struct net_conn_ops client_ops = {.on_frame = client_frame, .on_close = client_close};

static void on_accept(struct net_loop *l, int fd, uint32_t events, void *ctx)
{
    struct node_server *s = ctx;
    (void)fd, (void)events;
    for (int i = 0; i < 64; i++) {
        int cfd;
        int rc = net_accept(s->lfd, &cfd, NULL);
        if (rc == EAGAIN)
            return;
        if (rc) {
            node_log(NODE_LOG_WARN, "accept failed: %s", strerror(rc));
            return;
        }
        struct client *c = calloc(1, sizeof(*c));
        if (!c) {
            close(cfd);
            continue;
        }
        c->srv = s;
        if (s->n->tls ? net_conn_new_tls(l, cfd, false, &s->limits, &client_ops, c, s->n->tls, NULL,
                                         &c->conn)
                      : net_conn_new(l, cfd, false, &s->limits, &client_ops, c, &c->conn)) {
            free(c);
            continue;
        }
        net_conn_set_counters(c->conn, &s->n->client_io); /* a member's: see client_frame */
        c->next = s->clients;
        if (s->clients)
            s->clients->prev = c;
        s->clients = c;
    }
}

int node_server_open(struct node *n, const char *addr, char *err, size_t err_len)
{
    struct net_addr a;
    int rc = net_addr_parse(addr, &a, err, err_len);
    if (rc)
        return rc;
    struct node_server *s = calloc(1, sizeof(*s));
    if (!s)
        return ENOMEM;
    s->n = n;
    s->cluster_id = n->cfg.cluster_id;
    s->member_id = n->cfg.id;
    s->own_client_id = n->mount_client_id ^ 0x5bd1e995c0ffee11ULL;
    /* A request or a Raft message carries at most a few values and paths. */
    struct store_limits lim;
    store_get_limits(n->store, &lim);
    s->limits.max_frame =
        4 * ((size_t)lim.max_value_bytes + 2 * (size_t)lim.max_path_bytes) + (2U << 20);
    if ((rc = node_auth_open(n->loop, &s->auth))) {
        snprintf(err, err_len, "cannot start the password thread: %s", strerror(rc));
        free(s);
        return rc;
    }
    if ((rc = net_listen(&a, 128, &s->lfd))) {
        snprintf(err, err_len, "cannot listen on %s: %s", addr, strerror(rc));
        node_auth_close(s->auth);
        free(s);
        return rc;
    }
    if ((rc = net_loop_watch(n->loop, s->lfd, EPOLLIN, on_accept, s))) {
        snprintf(err, err_len, "cannot watch %s: %s", addr, strerror(rc));
        close(s->lfd);
        node_auth_close(s->auth);
        free(s);
        return rc;
    }
    s->backup_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->backup_efd < 0 ||
        (rc = net_loop_watch(n->loop, s->backup_efd, EPOLLIN, backup_ready, s))) {
        rc = s->backup_efd < 0 ? errno : rc;
        snprintf(err, err_len, "cannot make the backup images' eventfd: %s", strerror(rc));
        if (s->backup_efd >= 0)
            close(s->backup_efd);
        net_loop_unwatch(n->loop, s->lfd);
        close(s->lfd);
        free(s);
        return rc;
    }
    pthread_mutex_init(&s->backup_mu, NULL);
    n->server = s;
    return 0;
}

void node_server_close(struct node *n)
{
    struct node_server *s = n->server;
    if (!s)
        return;
    net_loop_unwatch(n->loop, s->lfd);
    close(s->lfd);
    /* Password jobs still out are dropped; their clients go below. */
    node_auth_close(s->auth);
    /* Images still being written: waited for (the store stays open until
     * they are), their clients then closed with the others. */
    while (s->jobs) {
        struct backup_job *j = s->jobs;
        s->jobs = j->next;
        backup_finish(s, j);
    }
    net_loop_unwatch(n->loop, s->backup_efd);
    close(s->backup_efd);
    pthread_mutex_destroy(&s->backup_mu);
    while (s->clients) {
        struct client *c = s->clients;
        if (c->conn)
            net_conn_close(c->conn, ESHUTDOWN, false); /* may free c (nothing pending) */
        if (s->clients == c)
            client_unlink_free(c); /* its requests already failed with the node */
    }
    n->server = NULL;
    free(s);
}

void node_server_drop_peer(struct node *n, uint64_t id)
{
    struct node_server *s = n->server;
    if (!s || !id)
        return;
    struct client *next;
    for (struct client *c = s->clients; c; c = next) {
        next = c->next; /* closing may free c (client_close) */
        if (c->peer_id == id && c->conn)
            net_conn_close(c->conn, 0, false);
    }
}

void node_server_flush(struct node *n)
{
    if (!n->server)
        return;
    for (struct client *c = n->server->clients, *next; c; c = next) {
        next = c->next; /* a failed write closes, which may free c */
        if (c->conn && net_conn_queued(c->conn))
            net_conn_flush(c->conn);
    }
}
