/* node_peer.c - the outbound connection to each peer: dial, Hello,
 * reconnect with backoff; Raft messages and forwarded commands out.
 *
 * Each member dials every other one and sends only on its own outbound
 * connection; what arrives on a peer's outbound connection to us is
 * handled by the server (node_client.c). A message for a peer that is not
 * connected, or whose queue is full, is dropped: Raft resends what
 * matters, and one slow or dead peer never holds up the others.
 *
 * So a member whose Hello a peer refuses reaches that peer with nothing:
 * not a vote, not an acknowledgement, not a forwarded write (send_to
 * needs a greeted connection). A member that lost its data directory and
 * came back under its old id is refused so by every member that recorded
 * its incarnation (node_client.c hello_ok), which isolates it; refused by
 * most of the others, it stops (check_removed).
 *
 * With TLS (node.tls) the connection is TLS: this member shows its
 * certificate, and the peer's must be signed by the CA and name the host
 * of the peer's address (its IP address, or its DNS name). A failed
 * handshake is logged once per reason, naming the peer and OpenSSL's
 * reason, and dialed again with backoff.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net_tls.h"
#include "net_wire.h"
#include "node_internal.h"
#include "node_wire.h"

#define PEER_BACKOFF_MIN_MS 50
#define PEER_BACKOFF_MAX_MS 1000
#define PEER_MAX_QUEUED     (32ULL << 20)

/* Peers live in fixed slots (a connection's callbacks point at its slot);
 * a free slot has id 0. */
struct node_peer *node_peer_find(struct node *n, uint64_t id)
{
    if (!id)
        return NULL;
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i].id == id)
            return &n->peers[i];
    return NULL;
}

static int peer_fill(struct node *n, struct node_peer *p, uint64_t id, const char *addr, char *err,
                     size_t err_len)
{
    struct net_addr a;
    char why[256];
    int rc = net_addr_parse(addr, &a, why, sizeof(why));
    if (rc) {
        if (err)
            snprintf(err, err_len, "member %llu: %s", (unsigned long long)id, why);
        return rc;
    }
    memset(p, 0, sizeof(*p));
    p->n = n;
    p->id = id;
    p->addr = a;
    snprintf(p->name, sizeof(p->name), "%s", addr);
    p->backoff_ms = PEER_BACKOFF_MIN_MS;
    return 0;
}

int node_peers_init(struct node *n, char *err, size_t err_len)
{
    /* A member that joined knows its peers from its configuration once
     * that arrived; the list the join named serves only until then (a
     * member removed since must not be let in from it). */
    if (n->cfg.joining && n->applied_conf.n_voters > 0)
        return 0;
    for (size_t i = 0; i < n->cfg.n_members; i++) {
        const struct node_member *m = &n->cfg.members[i];
        if (m->id == n->cfg.id)
            continue;
        int rc = peer_fill(n, &n->peers[n->n_peers], m->id, m->addr, err, err_len);
        if (rc)
            return rc;
        n->n_peers++;
    }
    return 0;
}

void node_peer_set(struct node *n, uint64_t id, const char *addr)
{
    struct node_peer *p = node_peer_find(n, id);
    if (p && !strcmp(p->name, addr))
        return;
    if (p) {
        if (p->conn)
            net_conn_close(p->conn, 0, false);
        p->id = 0;
    } else {
        for (size_t i = 0; i < n->n_peers && !p; i++)
            if (!n->peers[i].id && !n->peers[i].conn)
                p = &n->peers[i];
        if (!p && n->n_peers < NODE_MAX_MEMBERS)
            p = &n->peers[n->n_peers++];
        if (!p) {
            node_log(NODE_LOG_WARN, "more than %d members: member %llu is not dialed",
                     NODE_MAX_MEMBERS, (unsigned long long)id);
            return;
        }
    }
    if (peer_fill(n, p, id, addr, NULL, 0) == 0)
        node_log(NODE_LOG_INFO, "member %llu is at %s", (unsigned long long)id, addr);
    else
        node_log(NODE_LOG_WARN, "member %llu has an unusable address '%s'", (unsigned long long)id,
                 addr);
}

void node_peer_remove(struct node *n, uint64_t id)
{
    struct node_peer *p = node_peer_find(n, id);
    if (!p)
        return;
    if (p->conn)
        net_conn_close(p->conn, 0, false);
    p->id = 0;
    node_server_drop_peer(n, id);
    node_log(NODE_LOG_INFO, "member %llu left the directory", (unsigned long long)id);
}

void node_peers_fini(struct node *n)
{
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i].conn)
            net_conn_close(n->peers[i].conn, ESHUTDOWN, false);
}

static void peer_connected(struct net_conn *c, void *ctx)
{
    struct node_peer *p = ctx;
    struct node *n = p->n;
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    Raftfs__Hello hello = RAFTFS__HELLO__INIT;
    hello.protocol_version = NET_WIRE_VERSION;
    hello.cluster_id = n->cfg.cluster_id;
    hello.has_member_id = hello.has_to_member_id = true;
    hello.member_id = n->cfg.id;
    hello.to_member_id = p->id;
    hello.has_incarnation = true;
    hello.incarnation = n->incarnation;
    hello.build = RAFTFS_VERSION;
    hello.has_command_version = true;
    hello.command_version = STORE_CMD_VERSION;
    env.body_case = RAFTFS__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    if (net_wire_send(c, &env))
        net_conn_close(c, EIO, false);
}

static int peer_frame(struct net_conn *c, const uint8_t *payload, size_t len, void *ctx)
{
    struct node_peer *p = ctx;
    Raftfs__Envelope *env = net_wire_unpack(payload, len);
    if (!env)
        return EPROTO;
    int rc = 0;
    if (!p->ready && env->body_case == RAFTFS__ENVELOPE__BODY_HELLO_REPLY) {
        if (env->hello_reply->ok) {
            p->ready = true;
            p->refused_since_ms = 0;
            p->refused_lost = false;
            p->backoff_ms = PEER_BACKOFF_MIN_MS;
            p->last_heard_ms = net_now_ms();
            p->tls_why[0] = 0;
            const Raftfs__HelloReply *hr = env->hello_reply;
            node_peer_version(p, hr->build, hr->has_command_version, hr->command_version);
            node_log(NODE_LOG_INFO, "connected to member %llu at %s (raftfs %s, commands up to %u)",
                     (unsigned long long)p->id, p->name, p->build[0] ? p->build : "unknown",
                     p->cmd_version);
            node_raft_majority_reached(p->n);
        } else {
            const char *why = env->hello_reply->error ? env->hello_reply->error : "";
            bool lost = strstr(why, NODE_LOST_STATE_REFUSAL) != NULL;
            if (lost && !p->refused_lost)
                node_log(NODE_LOG_ERROR,
                         "member %llu at %s refuses this member: %s (rejoining with lost state "
                         "could lose committed writes or vote twice: unmount this one, then "
                         "start it with an empty --data as a new member: --id NEWID --listen "
                         "HOST:PORT --join MEMBERS)",
                         (unsigned long long)p->id, p->name, why);
            else if (!lost)
                node_log(NODE_LOG_WARN, "member %llu at %s refused us: %s",
                         (unsigned long long)p->id, p->name, *why ? why : "no reason given");
            if ((lost || strstr(why, "is not a member")) && !p->refused_since_ms)
                p->refused_since_ms = net_now_ms();
            const Raftfs__HelloReply *r = env->hello_reply;
            if (r->has_member_id && r->member_id && r->member_id != p->id &&
                r->member_id != p->n->cfg.id && r->has_cluster_id &&
                r->cluster_id == p->n->cfg.cluster_id)
                node_member_learn(p->n, r->member_id, p->name);
            p->refused_lost |= lost;
            rc = EPROTO;
        }
    } else {
        rc = EPROTO; /* nothing else comes back on our own connection */
    }
    net_wire_free(env);
    (void)c;
    return rc;
}

static void peer_closed(struct net_conn *c, int err, void *ctx)
{
    struct node_peer *p = ctx;
    const char *tls = net_conn_tls_error(c);
    if (tls && strcmp(tls, p->tls_why)) {
        node_log(NODE_LOG_WARN, "connection to member %llu at %s refused: %s",
                 (unsigned long long)p->id, p->name, tls);
        snprintf(p->tls_why, sizeof(p->tls_why), "%s", tls);
    }
    if (p->ready)
        node_log(NODE_LOG_INFO, "lost the connection to member %llu (%s)",
                 (unsigned long long)p->id, err ? strerror(err) : "closed");
    p->conn = NULL;
    p->ready = false;
    p->next_dial_ms = net_now_ms() + p->backoff_ms;
    p->backoff_ms =
        p->backoff_ms * 2 > PEER_BACKOFF_MAX_MS ? PEER_BACKOFF_MAX_MS : p->backoff_ms * 2;
}

static const struct net_conn_ops peer_ops = {
    .on_connect = peer_connected, .on_frame = peer_frame, .on_close = peer_closed};

/* Refused as "not a member" by a majority of the others for a while: this
 * member was removed (the entry that says so never reaches it, as it is
 * no longer replicated to). Or refused because its data directory is not
 * the one the cluster recorded (its state was lost): it is cut off for
 * good, and stops alike, so that its mount fails instead of hanging. The
 * patience covers refusals by a member whose directory lags (one that
 * has not applied this member's addition yet). */
static void check_removed(struct node *n, uint64_t now)
{
    size_t others = 0, refusing = 0, lost = 0;
    uint64_t patience = 5ULL * n->cfg.tick_ms * n->cfg.election_ticks;
    for (size_t i = 0; i < n->n_peers; i++) {
        if (!n->peers[i].id)
            continue;
        others++;
        if (n->peers[i].refused_since_ms && now - n->peers[i].refused_since_ms >= patience) {
            refusing++;
            lost += n->peers[i].refused_lost;
        }
    }
    if (others && refusing * 2 > others) {
        n->removed = true;
        n->removed_lost = lost > 0;
    }
}

void node_peers_tick(struct node *n)
{
    uint64_t now = net_now_ms();
    check_removed(n, now);
    for (size_t i = 0; i < n->n_peers; i++) {
        struct node_peer *p = &n->peers[i];
        if (!p->id || p->conn || now < p->next_dial_ms)
            continue;
        int fd;
        struct net_conn_limits lim = {.max_queued = PEER_MAX_QUEUED};
        char host[128];
        if (n->tls && net_tls_host_of(p->name, host, sizeof(host))) {
            p->next_dial_ms = now + PEER_BACKOFF_MAX_MS;
            continue;
        }
        if (net_dial(&p->addr, &fd) ||
            (n->tls
                 ? net_conn_new_tls(n->loop, fd, true, &lim, &peer_ops, p, n->tls, host, &p->conn)
                 : net_conn_new(n->loop, fd, true, &lim, &peer_ops, p, &p->conn))) {
            p->conn = NULL;
            p->next_dial_ms = now + p->backoff_ms;
        } else {
            net_conn_set_counters(p->conn, &n->peer_io);
        }
    }
}

static void send_to(struct node_peer *p, const void *buf, size_t len)
{
    if (!p->conn || !p->ready || net_conn_send(p->conn, buf, len))
        p->dropped++;
}

void node_peer_send_raft(struct node *n, const struct raft_message *m)
{
    struct node_peer *p = node_peer_find(n, m->to);
    if (!p)
        return; /* not a member we know how to reach */
    void *buf;
    size_t len;
    if (node_wire_raft_pack(m, &buf, &len)) {
        p->dropped++;
        return;
    }
    send_to(p, buf, len);
    free(buf);
}

void node_peers_flush(struct node *n)
{
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i].id && n->peers[i].conn && n->peers[i].ready)
            net_conn_flush(n->peers[i].conn);
}

void node_peer_forward(struct node *n, uint64_t to, const void *data, size_t len)
{
    struct node_peer *p = node_peer_find(n, to);
    if (!p)
        return;
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    Raftfs__Forward fw = RAFTFS__FORWARD__INIT;
    fw.command.data = (uint8_t *)data;
    fw.command.len = len;
    env.body_case = RAFTFS__ENVELOPE__BODY_FORWARD;
    env.forward = &fw;
    void *buf;
    size_t blen;
    if (net_wire_pack(&env, &buf, &blen)) {
        p->dropped++;
        return;
    }
    send_to(p, buf, blen);
    free(buf);
}

void node_peer_version(struct node_peer *p, const char *build, bool has_cmd, uint32_t cmd)
{
    /* A build from before versions were said applies commands up to 2. */
    snprintf(p->build, sizeof(p->build), "%s", build && *build ? build : "before 0.1.0");
    p->cmd_version = has_cmd ? cmd : 2;
}

uint64_t node_member_too_old(struct node *n, uint32_t version, char build[32])
{
    for (size_t i = 0; i < n->n_peers; i++) {
        const struct node_peer *p = &n->peers[i];
        if (p->id != n->cfg.id && p->cmd_version && p->cmd_version < version) {
            snprintf(build, 32, "%s", p->build);
            return p->id;
        }
    }
    return 0;
}
