/* tests/sim/cluster.c: one simulated cluster: nodes, storage, application, clients and safety
 * checks. */
#include "cluster.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void net_send(struct sim *s, const struct raft_message *m);
void net_deliver(struct sim *s, void (*deliver)(struct sim *, const struct raft_message *));
void net_free(struct sim *s);

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        abort();
    }
    return p;
}

/* ---- reporting ---- */

void sim_violation(struct sim *s, const char *fmt, ...)
{
    if (s->res->violation) {
        return;
    }
    s->res->violation = true;
    s->res->step = s->now;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->res->why, sizeof(s->res->why), fmt, ap);
    va_end(ap);
    if (s->trace) {
        printf("[%6llu] VIOLATION %s\n", (unsigned long long)s->now, s->res->why);
    }
}

static void tracef(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tracef(struct sim *s, const char *fmt, ...)
{
    if (!s->trace) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    printf("[%6llu] sim ", (unsigned long long)s->now);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

struct trace_ctx {
    struct sim *s;
};

static void core_trace(void *ctx, const char *line)
{
    struct sim *s = ctx;
    printf("[%6llu] %s\n", (unsigned long long)s->now, line);
}

/* ---- registries for the safety checks ---- */

static uint64_t reg_hash(uint64_t index, uint64_t term)
{
    uint64_t z = index * 0x9E3779B97F4A7C15ull ^ term * 0xC2B2AE3D27D4EB4Full;
    return z ^ (z >> 31);
}

static void reg_grow(struct sim *s);

/* Log Matching (§3.5): the same (index, term) must always carry the same history. */
static void registry_check(struct sim *s, uint64_t index, uint64_t term, uint64_t chain,
                           uint64_t node)
{
    if (2 * (s->reg_n + 1) > s->reg_cap) {
        reg_grow(s);
    }
    size_t h = reg_hash(index, term) & (s->reg_cap - 1);
    while (s->reg_keys[h] != 0) {
        if (s->reg_keys[h] == index && s->reg_terms[h] == term) {
            if (s->reg_chain[h] != chain) {
                sim_violation(s, "log matching: n%llu entry %llu/%llu differs in history",
                              (unsigned long long)node, (unsigned long long)index,
                              (unsigned long long)term);
            }
            return;
        }
        h = (h + 1) & (s->reg_cap - 1);
    }
    s->reg_keys[h] = index;
    s->reg_terms[h] = term;
    s->reg_chain[h] = chain;
    s->reg_n++;
}

static bool registry_get(struct sim *s, uint64_t index, uint64_t term, uint64_t *chain)
{
    if (s->reg_cap == 0) {
        return false;
    }
    size_t h = reg_hash(index, term) & (s->reg_cap - 1);
    while (s->reg_keys[h] != 0) {
        if (s->reg_keys[h] == index && s->reg_terms[h] == term) {
            *chain = s->reg_chain[h];
            return true;
        }
        h = (h + 1) & (s->reg_cap - 1);
    }
    return false;
}

static void reg_grow(struct sim *s)
{
    size_t old_cap = s->reg_cap;
    uint64_t *k = s->reg_keys, *t = s->reg_terms, *c = s->reg_chain;
    s->reg_cap = old_cap ? old_cap * 2 : 4096;
    s->reg_keys = calloc(s->reg_cap, sizeof(uint64_t));
    s->reg_terms = calloc(s->reg_cap, sizeof(uint64_t));
    s->reg_chain = calloc(s->reg_cap, sizeof(uint64_t));
    if (!s->reg_keys || !s->reg_terms || !s->reg_chain) {
        abort();
    }
    s->reg_n = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (k[i] != 0) {
            size_t h = reg_hash(k[i], t[i]) & (s->reg_cap - 1);
            while (s->reg_keys[h] != 0) {
                h = (h + 1) & (s->reg_cap - 1);
            }
            s->reg_keys[h] = k[i];
            s->reg_terms[h] = t[i];
            s->reg_chain[h] = c[i];
            s->reg_n++;
        }
    }
    free(k);
    free(t);
    free(c);
}

/* ---- the application: a few registers with client deduplication ---- */

struct cmd {
    uint64_t client;
    uint64_t seq;
    uint64_t key;
    uint64_t value;
};

#define IMAGE_FIXED (8 * (2 + SIM_KEYS + SIM_MAX_CLIENTS))

static size_t image_encode(const struct app_state *a, uint8_t **out)
{
    size_t clen = raft_conf_encoded_size(&a->conf);
    size_t size = IMAGE_FIXED + clen;
    uint8_t *p = xmalloc(size);
    uint64_t words[2 + SIM_KEYS + SIM_MAX_CLIENTS];
    size_t w = 0;
    words[w++] = a->applied;
    for (int i = 0; i < SIM_KEYS; i++) {
        words[w++] = a->regs[i];
    }
    for (int i = 0; i < SIM_MAX_CLIENTS; i++) {
        words[w++] = a->dedup[i];
    }
    words[w++] = clen;
    memcpy(p, words, sizeof(words));
    raft_conf_encode(&a->conf, p + IMAGE_FIXED);
    *out = p;
    return size;
}

static bool image_decode(const uint8_t *p, size_t size, struct app_state *a)
{
    uint64_t words[2 + SIM_KEYS + SIM_MAX_CLIENTS];
    if (size < IMAGE_FIXED) {
        return false;
    }
    memcpy(words, p, sizeof(words));
    size_t w = 0;
    a->applied = words[w++];
    for (int i = 0; i < SIM_KEYS; i++) {
        a->regs[i] = words[w++];
    }
    for (int i = 0; i < SIM_MAX_CLIENTS; i++) {
        a->dedup[i] = words[w++];
    }
    uint64_t clen = words[w++];
    return clen == size - IMAGE_FIXED &&
           raft_conf_decode(p + IMAGE_FIXED, (size_t)clen, &a->conf) == 0;
}

static void app_apply(struct sim *s, struct sim_node *n, const struct raft_entry *e)
{
    if (e->index != n->app.applied + 1) {
        /* Trap 14: never twice, never a gap. */
        sim_violation(s, "n%llu applies %llu after %llu", (unsigned long long)n->id,
                      (unsigned long long)e->index, (unsigned long long)n->app.applied);
        return;
    }
    const struct sim_entry *se = disk_entry(&n->disk, e->index);
    if (se == NULL || se->e.term != e->term) {
        sim_violation(s, "n%llu applies %llu not in its durable log", (unsigned long long)n->id,
                      (unsigned long long)e->index);
        return;
    }
    /* State machine safety (§3.6.3): one command per index everywhere. */
    if (e->index <= s->n_applied) {
        struct applied_rec *a = &s->applied[e->index - 1];
        if (a->term != e->term || a->chain != se->chain) {
            sim_violation(s, "state machine safety: n%llu applies %llu/%llu, others %llu/%llu",
                          (unsigned long long)n->id, (unsigned long long)e->index,
                          (unsigned long long)e->term, (unsigned long long)e->index,
                          (unsigned long long)a->term);
            return;
        }
    } else {
        if (e->index != s->n_applied + 1) {
            sim_violation(s, "n%llu applies %llu beyond the global applied %zu",
                          (unsigned long long)n->id, (unsigned long long)e->index, s->n_applied);
            return;
        }
        if (s->n_applied == s->cap_applied) {
            s->cap_applied = s->cap_applied ? s->cap_applied * 2 : 1024;
            s->applied = realloc(s->applied, s->cap_applied * sizeof(*s->applied));
            if (s->applied == NULL) {
                abort();
            }
        }
        struct applied_rec *a = &s->applied[s->n_applied++];
        a->term = e->term;
        a->chain = se->chain;
        /* The leader that committed it is among the leaders seen so far or alive now. */
        a->max_leader_term = s->max_leader_term;
        for (uint32_t k = 0; k < s->n_nodes; k++) {
            struct sim_node *o = &s->nodes[k];
            if (o->alive && raft_role(o->r) == RAFT_LEADER &&
                raft_term(o->r) > a->max_leader_term) {
                a->max_leader_term = raft_term(o->r);
            }
        }
        s->res->commits++;
    }
    n->app.applied = e->index;
    if (e->type == RAFT_ENTRY_CONF) {
        struct raft_conf c;
        if (raft_conf_decode(e->data, e->len, &c) == 0) {
            n->app.conf = c;
        }
    } else if (e->type == RAFT_ENTRY_NORMAL && e->len == sizeof(struct cmd)) {
        struct cmd c;
        memcpy(&c, e->data, sizeof(c));
        if (c.client >= 1 && c.client <= SIM_MAX_CLIENTS && c.key < SIM_KEYS &&
            c.seq > n->app.dedup[c.client - 1]) {
            n->app.dedup[c.client - 1] = c.seq;
            n->app.regs[c.key] = c.value;
        }
    }
}

/* ---- nodes ---- */

static void node_start(struct sim *s, uint32_t i)
{
    struct sim_node *n = &s->nodes[i];
    struct raft_config cfg;
    raft_config_init(&cfg);
    cfg.id = n->id;
    cfg.election_ticks = s->p.election_ticks;
    cfg.heartbeat_ticks = s->p.heartbeat_ticks;
    cfg.pre_vote = s->p.pre_vote;
    cfg.check_quorum = s->p.check_quorum;
    cfg.seed = rng_u64(&s->g);
    cfg.applied = n->app.applied;
    cfg.max_msg_bytes = s->p.max_msg_bytes;
    cfg.max_inflight_msgs = s->p.max_inflight;
    cfg.max_inflight_bytes = s->p.max_msg_bytes * s->p.max_inflight;
    cfg.max_snapshot_chunk = s->p.max_chunk;
    cfg.max_apply_bytes = 256;
    cfg.max_pending_reads = 64;
    /* One read round at a time (the default) or pipelined ones, by seed; not drawn from the
     * generator, so that every seed's history stays what it was. */
    cfg.max_read_rounds = (uint32_t)(s->seed % 4) + 1;
    cfg.read_round_all = (s->seed / 4) % 2 == 1; /* both fan-outs, every round count */
    cfg.promote_max_lag = 4;
    if (n->founder) {
        cfg.bootstrap = s->initial;
    }
    disk_storage(&n->disk, &cfg.storage);
    if (s->trace) {
        cfg.trace = core_trace;
        cfg.trace_ctx = s;
    }
    int rc = raft_new(&cfg, &n->r);
    if (rc != 0) {
        sim_violation(s, "n%llu restart failed: %s", (unsigned long long)n->id, raft_strerror(rc));
        n->alive = false;
        return;
    }
    /* A third of the seeds with PreVote start every member with its election timer moved
     * on, as node/ does once a majority is reached (raft_advance_election); by seed, not
     * drawn, as above. Without PreVote (node/ always has it) a member restarted into a live
     * cluster campaigns at once and deposes its leader: seed 3584, crashing a member 91
     * times, then broke liveness. */
    if (s->seed % 3 == 2 && s->p.pre_vote && s->p.election_ticks > 2)
        raft_advance_election(n->r, s->p.election_ticks - 2);
    n->alive = true;
    n->last_commit = raft_commit_index(n->r);
    n->last_role = RAFT_FOLLOWER;
    n->last_term = raft_term(n->r);
    n->lead_last_index = 0;
    free(n->incoming);
    n->incoming = NULL;
    n->incoming_len = 0;
}

void sim_crash(struct sim *s, uint32_t i, bool torn)
{
    struct sim_node *n = &s->nodes[i];
    if (!n->alive) {
        return;
    }
    tracef(s, "crash n%llu%s", (unsigned long long)n->id, torn ? " torn" : "");
    raft_free(n->r);
    n->r = NULL;
    n->alive = false;
    disk_crash(&n->disk, torn, &s->g);
    free(n->incoming);
    n->incoming = NULL;
    n->incoming_len = 0;
    s->res->crashes++;
}

void sim_restart(struct sim *s, uint32_t i)
{
    if (s->nodes[i].alive) {
        return;
    }
    struct sim_node *n = &s->nodes[i];
    tracef(s, "restart n%llu", (unsigned long long)n->id);
    if (s->p.fresh_crash_pm > 0) {
        for (uint32_t o = 0; o < s->n_nodes; o++) {
            s->blocked[i][o] = s->blocked[o][i] = false;
        }
    }
    /* What the state machine applied must still be what the durable log holds there: a
     * crash may lose unacknowledged writes, never applied ones (traps 12, 14). */
    const struct sim_entry *e = disk_entry(&n->disk, n->app.applied);
    if (e != NULL && n->app.applied <= s->n_applied &&
        (e->e.term != s->applied[n->app.applied - 1].term ||
         e->chain != s->applied[n->app.applied - 1].chain)) {
        sim_violation(s, "n%llu restarts with a log that differs at applied index %llu",
                      (unsigned long long)n->id, (unsigned long long)n->app.applied);
        return;
    }
    node_start(s, i);
}

static struct client *client_of_cookie(struct sim *s, uint64_t cookie)
{
    uint64_t ci = cookie >> 40;
    if (ci < 1 || ci > s->p.n_clients) {
        return NULL;
    }
    struct client *c = &s->clients[ci - 1];
    if ((cookie & ((1ull << 40) - 1)) != c->attempt || c->st != CL_WAIT) {
        return NULL; /* an answer to an earlier attempt */
    }
    return c;
}

static void client_complete(struct sim *s, struct client *c, uint64_t value)
{
    struct lin_op *op = &s->hist[c->key][s->n_hist[c->key]++];
    op->write = c->write;
    op->value = c->write ? c->value : value;
    op->invoke = c->invoke;
    op->complete = ++s->clock;
    s->res->ops_ok++;
    tracef(s, "client %u %s key=%u value=%llu ok", c->idx, c->write ? "write" : "read", c->key,
           (unsigned long long)op->value);
    c->st = CL_IDLE;
    c->next_at = s->now + rng_below(&s->g, 8);
}

static void client_retry(struct sim *s, struct client *c, uint64_t hint)
{
    /* Writes keep trying once their key has many unknown outcomes: each one multiplies
     * the orders the linearizability check may have to consider. */
    bool may_give_up = !c->write || s->n_unknown[c->key] < SIM_MAX_UNKNOWN;
    if (!s->healed && c->attempts >= 8 && may_give_up) {
        /* Give up during the faults. A write that reached some leader's log has an unknown
         * outcome: it may still take effect (at most once: deduplicated by sequence), so it
         * stays in the history without an answer. Anything else simply failed. */
        if (c->write && c->proposed && s->n_unknown[c->key] < SIM_MAX_UNKNOWN) {
            s->n_unknown[c->key]++;
            struct lin_op *op = &s->hist[c->key][s->n_hist[c->key]++];
            op->write = true;
            op->value = c->value;
            op->invoke = c->invoke;
            op->complete = LIN_NEVER;
            s->res->ops_unknown++;
        }
        tracef(s, "client %u gives up seq=%llu (%s)", c->idx, (unsigned long long)c->seq,
               c->write && c->proposed ? "unknown" : "failed");
        c->st = CL_IDLE;
        c->next_at = s->now + rng_below(&s->g, 8);
        return;
    }
    if (c->st == CL_WAIT || c->st == CL_WAIT_APPLY) {
        tracef(s, "client %u retries (hint n%llu)", c->idx, (unsigned long long)hint);
    }
    c->st = CL_SUBMIT;
    c->hint = hint;
    c->next_at = s->now + 1 + rng_below(&s->g, 3);
}

/* Whether entry index is durable on d: 1 with its term (0 when inside the snapshot), 0 if
 * not. */
static int durable_entry(const struct sim_disk *d, uint64_t index, uint64_t *term)
{
    if (index <= d->snap.index) {
        *term = 0;
        return 1;
    }
    if (index - d->snap.index > d->dur.n) {
        return 0;
    }
    *term = d->dur.v[index - d->snap.index - 1].e.term;
    return 1;
}

/* Trap 5: an acknowledgement only covers entries already durable; remember the highest. */
static void note_ack(struct sim *s, struct sim_node *n, const struct raft_message *m)
{
    bool ack = (m->type == RAFT_MSG_APPEND_RESP && !m->reject) ||
               (m->type == RAFT_MSG_SNAPSHOT_RESP && m->done);
    if (!ack || m->index == 0) {
        return;
    }
    uint64_t t = 0;
    if (!durable_entry(&n->disk, m->index, &t)) {
        sim_violation(s, "n%llu acknowledges %llu, not durable", (unsigned long long)n->id,
                      (unsigned long long)m->index);
        return;
    }
    if (m->term != n->ack_term || m->index > n->ack_index) {
        n->ack_term = m->term;
        n->ack_index = m->index;
        n->ack_entry_term = t;
    }
}

static void node_ready(struct sim *s, uint32_t i)
{
    struct sim_node *n = &s->nodes[i];
    for (int round = 0; round < 32 && n->alive && raft_has_ready(n->r); round++) {
        struct raft_ready rd;
        int rc = raft_ready(n->r, &rd);
        if (rc != 0) {
            sim_violation(s, "n%llu ready: %s", (unsigned long long)n->id, raft_strerror(rc));
            return;
        }
        if (rd.hard_state_changed) {
            struct raft_hard_state *old = &n->disk.hs;
            if (rd.hard_state.term < old->term) {
                sim_violation(s, "n%llu term goes back %llu -> %llu", (unsigned long long)n->id,
                              (unsigned long long)old->term,
                              (unsigned long long)rd.hard_state.term);
            }
            if (rd.hard_state.term == old->term && old->vote != 0 &&
                rd.hard_state.vote != old->vote) {
                sim_violation(s, "n%llu votes twice in term %llu (%llu then %llu)",
                              (unsigned long long)n->id, (unsigned long long)old->term,
                              (unsigned long long)old->vote,
                              (unsigned long long)rd.hard_state.vote);
            }
            n->disk.hs = rd.hard_state; /* durable before any message leaves */
        }
        if (rd.has_snapshot_chunk) {
            struct raft_snapshot_chunk *ch = &rd.snapshot_chunk;
            if (ch->offset == 0) {
                n->incoming_len = 0;
            }
            if (ch->offset != n->incoming_len) {
                sim_violation(s, "n%llu chunk at %llu, have %zu", (unsigned long long)n->id,
                              (unsigned long long)ch->offset, n->incoming_len);
            } else {
                n->incoming = realloc(n->incoming, n->incoming_len + ch->len + 1);
                if (ch->len > 0) {
                    memcpy(n->incoming + n->incoming_len, ch->data, ch->len);
                }
                n->incoming_len += ch->len;
            }
        }
        if (rd.has_snapshot) {
            struct app_state a;
            uint64_t chain = 0;
            memset(&a, 0, sizeof(a));
            if (n->incoming_len != rd.snapshot.size ||
                !image_decode(n->incoming, n->incoming_len, &a) || a.applied != rd.snapshot.index ||
                !registry_get(s, rd.snapshot.index, rd.snapshot.term, &chain)) {
                sim_violation(s, "n%llu cannot install snapshot %llu", (unsigned long long)n->id,
                              (unsigned long long)rd.snapshot.index);
            } else if (a.applied < n->app.applied) {
                sim_violation(s, "n%llu snapshot %llu older than applied %llu",
                              (unsigned long long)n->id, (unsigned long long)a.applied,
                              (unsigned long long)n->app.applied);
            } else {
                /* The image must be the state machine every member had at that index. */
                if (a.applied <= s->n_applied && s->applied[a.applied - 1].chain != chain) {
                    sim_violation(s, "n%llu snapshot %llu of another history",
                                  (unsigned long long)n->id, (unsigned long long)a.applied);
                }
                tracef(s, "n%llu installs snapshot %llu", (unsigned long long)n->id,
                       (unsigned long long)a.applied);
                disk_install(&n->disk, &rd.snapshot, n->incoming, chain);
                n->app = a;
                s->res->snapshots_installed++;
            }
            n->incoming_len = 0;
        }
        if (rd.n_entries > 0) {
            if (raft_role(n->r) == RAFT_LEADER &&
                rd.entries[0].index != disk_last_index(&n->disk) + 1) {
                sim_violation(s, "leader n%llu overwrites its log at %llu",
                              (unsigned long long)n->id, (unsigned long long)rd.entries[0].index);
            }
            uint32_t max_sync = s->healed && s->p.max_sync_delay > 2 ? 2 : s->p.max_sync_delay;
            uint64_t sync_at = s->now + rng_below(&s->g, max_sync + 1);
            disk_write(&n->disk, rd.entries, rd.n_entries, sync_at);
            for (size_t k = 0; k < rd.n_entries; k++) {
                const struct sim_entry *e = disk_entry(&n->disk, rd.entries[k].index);
                registry_check(s, e->e.index, e->e.term, e->chain, n->id);
            }
        }
        for (size_t k = 0; k < rd.n_messages; k++) {
            note_ack(s, n, &rd.messages[k]);
            net_send(s, &rd.messages[k]);
        }
        for (size_t k = 0; k < rd.n_committed && !s->res->violation; k++) {
            app_apply(s, n, &rd.committed[k]);
        }
        for (size_t k = 0; k < rd.n_proposals; k++) {
            struct client *c = client_of_cookie(s, rd.proposals[k].cookie);
            if (c == NULL) {
                continue;
            }
            if (rd.proposals[k].status == 0) {
                client_complete(s, c, 0);
            } else {
                client_retry(s, c, raft_leader(n->r));
            }
        }
        for (size_t k = 0; k < rd.n_reads; k++) {
            struct client *c = client_of_cookie(s, rd.reads[k].cookie);
            if (c == NULL) {
                continue;
            }
            if (rd.reads[k].status == 0) {
                c->st = CL_WAIT_APPLY;
                c->read_index = rd.reads[k].index;
            } else {
                client_retry(s, c, raft_leader(n->r));
            }
        }
        raft_advance(n->r, &rd);
    }
}

static void deliver(struct sim *s, const struct raft_message *m)
{
    struct sim_node *n = &s->nodes[m->to - 1];
    if (!n->alive) {
        return;
    }
    int rc = raft_step(n->r, m);
    if (rc != 0) {
        sim_violation(s, "n%llu step: %s", (unsigned long long)n->id, raft_strerror(rc));
    }
}

/* ---- clients ---- */

static int pick_node(struct sim *s, uint64_t hint)
{
    if (hint >= 1 && hint <= s->n_nodes && s->nodes[hint - 1].alive) {
        return (int)hint - 1;
    }
    uint32_t alive[SIM_MAX_NODES], k = 0;
    for (uint32_t i = 0; i < s->n_nodes; i++) {
        if (s->nodes[i].alive) {
            alive[k++] = i;
        }
    }
    return k == 0 ? -1 : (int)alive[rng_below(&s->g, k)];
}

static void client_submit(struct sim *s, struct client *c)
{
    int i = pick_node(s, c->hint);
    if (i < 0) {
        client_retry(s, c, 0);
        return;
    }
    struct sim_node *n = &s->nodes[i];
    c->attempt++;
    c->attempts++;
    c->node = (uint32_t)i;
    uint64_t cookie = ((uint64_t)c->idx << 40) | c->attempt;
    int rc;
    if (c->write) {
        struct cmd cmd = {.client = c->idx, .seq = c->seq, .key = c->key, .value = c->value};
        rc = raft_propose(n->r, &cmd, sizeof(cmd), cookie, NULL, NULL);
    } else {
        rc = raft_read_index(n->r, cookie);
    }
    if (rc != 0) {
        client_retry(s, c, raft_leader(n->r));
        if (!raft_error_retryable(rc)) {
            sim_violation(s, "client %u got non-retryable %s", c->idx, raft_strerror(rc));
        }
        return;
    }
    c->st = CL_WAIT;
    c->proposed = c->proposed || c->write;
    c->deadline = s->now + 6 * s->p.election_ticks + 20;
    tracef(s, "client %u %s key=%u seq=%llu submitted to n%u attempt %llu", c->idx,
           c->write ? "write" : "read", c->key, (unsigned long long)c->seq, c->node + 1,
           (unsigned long long)c->attempt);
}

static void clients_step(struct sim *s)
{
    for (uint32_t k = 0; k < s->p.n_clients; k++) {
        struct client *c = &s->clients[k];
        switch (c->st) {
        case CL_IDLE: {
            if (s->clients_stop || s->now < c->next_at) {
                break;
            }
            uint32_t key = (uint32_t)rng_below(&s->g, SIM_KEYS);
            if (s->n_hist[key] + s->p.n_clients >= LIN_MAX_OPS) {
                break; /* keep each history small so that the check stays fast */
            }
            c->seq++;
            c->key = key;
            c->write = rng_chance(&s->g, 500);
            c->value = ((uint64_t)c->idx << 32) | c->seq;
            c->invoke = ++s->clock;
            c->hint = c->node + 1; /* stick to the member that answered last */
            c->attempts = 0;
            c->proposed = false;
            c->st = CL_SUBMIT;
            c->next_at = s->now;
            break;
        }
        case CL_SUBMIT:
            if (s->now >= c->next_at) {
                client_submit(s, c);
            }
            break;
        case CL_WAIT:
            if (!s->nodes[c->node].alive || s->now >= c->deadline) {
                client_retry(s, c, 0);
            }
            break;
        case CL_WAIT_APPLY: {
            struct sim_node *n = &s->nodes[c->node];
            if (!n->alive || s->now >= c->deadline) {
                client_retry(s, c, 0);
            } else if (n->app.applied >= c->read_index) {
                client_complete(s, c, n->app.regs[c->key]);
            }
            break;
        }
        }
    }
}

/* ---- faults ---- */

static void change_partition(struct sim *s)
{
    memset(s->blocked, 0, sizeof(s->blocked));
    uint32_t n = s->n_nodes;
    switch (rng_below(&s->g, 4)) {
    case 0:
        tracef(s, "partition healed");
        return;
    case 1: { /* symmetric split */
        uint64_t side = rng_u64(&s->g);
        for (uint32_t a = 0; a < n; a++) {
            for (uint32_t b = 0; b < n; b++) {
                s->blocked[a][b] = ((side >> a) & 1) != ((side >> b) & 1);
            }
        }
        tracef(s, "partition split mask=%llx", (unsigned long long)(side & ((1u << n) - 1)));
        return;
    }
    case 2: { /* asymmetric: random one-way links */
        for (uint32_t a = 0; a < n; a++) {
            for (uint32_t b = 0; b < n; b++) {
                s->blocked[a][b] = a != b && rng_chance(&s->g, 300);
            }
        }
        tracef(s, "partition asymmetric");
        return;
    }
    default: { /* isolate one member, possibly one way only */
        uint32_t v = (uint32_t)rng_below(&s->g, n);
        uint64_t how = rng_below(&s->g, 3);
        for (uint32_t o = 0; o < n; o++) {
            if (how != 1) {
                s->blocked[v][o] = o != v;
            }
            if (how != 2) {
                s->blocked[o][v] = o != v;
            }
        }
        tracef(s, "partition isolate n%u how=%llu", v + 1, (unsigned long long)how);
        return;
    }
    }
}

int sim_leader(struct sim *s)
{
    int best = -1;
    for (uint32_t i = 0; i < s->n_nodes; i++) {
        struct sim_node *n = &s->nodes[i];
        if (n->alive && raft_role(n->r) == RAFT_LEADER &&
            (best < 0 || raft_term(n->r) > raft_term(s->nodes[best].r))) {
            best = (int)i;
        }
    }
    return best;
}

static void random_conf_change(struct sim *s)
{
    int li = sim_leader(s);
    if (li < 0) {
        return;
    }
    struct raft *r = s->nodes[li].r;
    const struct raft_conf *c = raft_conf(r);
    struct raft_change ch[3];
    size_t n = 0;
    uint64_t id = 1 + rng_below(&s->g, s->n_nodes);
    bool voter = raft_conf_is_voter(c, id), learner = raft_conf_is_learner(c, id);
    switch (rng_below(&s->g, 5)) {
    case 0: /* add a learner, add a voter directly, or promote a learner */
        if (voter) {
            return;
        }
        ch[n++] = (struct raft_change){learner || rng_chance(&s->g, 300) ? RAFT_CHANGE_ADD_VOTER
                                                                         : RAFT_CHANGE_ADD_LEARNER,
                                       id};
        break;
    case 1: /* remove */
        if (c->n_voters <= 2 && voter) {
            return;
        }
        ch[n++] = (struct raft_change){RAFT_CHANGE_REMOVE, id};
        break;
    case 2: /* demote a voter */
        if (!voter || c->n_voters <= 2) {
            return;
        }
        ch[n++] = (struct raft_change){RAFT_CHANGE_ADD_LEARNER, id};
        break;
    case 3: { /* replace several at once: remove one voter, promote/add another */
        uint64_t other = 1 + rng_below(&s->g, s->n_nodes);
        if (!voter || other == id || raft_conf_is_voter(c, other)) {
            return;
        }
        ch[n++] = (struct raft_change){RAFT_CHANGE_REMOVE, id};
        ch[n++] = (struct raft_change){RAFT_CHANGE_ADD_VOTER, other};
        break;
    }
    default: /* a second change in a row: must be refused while one is pending */
        ch[n++] =
            (struct raft_change){learner ? RAFT_CHANGE_ADD_VOTER : RAFT_CHANGE_ADD_LEARNER, id};
        break;
    }
    int rc = raft_conf_change(r, ch, n, 0);
    tracef(s, "conf change on n%d (%zu changes, first %u %llu): %s", li + 1, n, ch[0].type,
           (unsigned long long)ch[0].id, raft_strerror(rc));
    if (rc == 0) {
        s->res->conf_changes++;
        /* One change at a time: a second one right away is refused. */
        struct raft_change again = {RAFT_CHANGE_REMOVE, id};
        int rc2 = raft_conf_change(r, &again, 1, 0);
        if (raft_role(r) == RAFT_LEADER && rc2 != RAFT_ECONFPENDING) {
            sim_violation(s, "second conf change not refused: %s", raft_strerror(rc2));
        }
    } else if (rc != RAFT_EINVAL && !raft_error_retryable(rc)) {
        sim_violation(s, "conf change failed with %s", raft_strerror(rc));
    }
}

static void random_transfer(struct sim *s)
{
    int li = sim_leader(s);
    if (li < 0) {
        return;
    }
    struct raft *r = s->nodes[li].r;
    const struct raft_conf *c = raft_conf(r);
    uint64_t target = c->voters[rng_below(&s->g, c->n_voters)];
    int rc = raft_transfer_leader(r, target);
    tracef(s, "transfer n%d -> n%llu: %s", li + 1, (unsigned long long)target, raft_strerror(rc));
    if (rc == 0) {
        s->res->transfers++;
        /* Trap: proposals during a transfer are refused with a retryable error. */
        uint8_t b = 0;
        int prc = raft_propose(r, &b, 1, 0, NULL, NULL);
        if (prc != RAFT_ETRANSFER && raft_role(r) == RAFT_LEADER) {
            sim_violation(s, "proposal during transfer gave %s", raft_strerror(prc));
        }
    }
}

static void random_compact(struct sim *s)
{
    uint32_t i = (uint32_t)rng_below(&s->g, s->n_nodes);
    struct sim_node *n = &s->nodes[i];
    if (!n->alive || n->app.applied <= n->disk.snap.index + 1) {
        return;
    }
    uint64_t index = n->app.applied;
    const struct sim_entry *e = disk_entry(&n->disk, index);
    if (e == NULL || index > n->disk.snap.index + n->disk.dur.n) {
        return;
    }
    struct app_state a = n->app;
    uint8_t *data = NULL;
    struct raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = index;
    meta.term = e->e.term;
    meta.conf = a.conf;
    meta.size = image_encode(&a, &data);
    tracef(s, "n%llu compacts to %llu", (unsigned long long)n->id, (unsigned long long)index);
    disk_compact(&n->disk, &meta, data, e->chain);
}

/* ---- checks after every step ---- */

static void check_node(struct sim *s, struct sim_node *n)
{
    char why[256];
    if (raft_check(n->r, why, sizeof(why)) != 0) {
        sim_violation(s, "n%llu invariant: %s", (unsigned long long)n->id, why);
        return;
    }
    struct raft *r = n->r;
    uint64_t term = raft_term(r);
    uint64_t commit = raft_commit_index(r);
    /* What this member acknowledged in its current term is still durable (a crash, a later
     * write or a snapshot install never takes it away while the leader may count it). */
    if (n->ack_term == term && n->ack_index > 0) {
        uint64_t t = 0;
        if (!durable_entry(&n->disk, n->ack_index, &t) ||
            (t != 0 && n->ack_entry_term != 0 && t != n->ack_entry_term)) {
            sim_violation(s, "n%llu lost entry %llu it acknowledged in term %llu",
                          (unsigned long long)n->id, (unsigned long long)n->ack_index,
                          (unsigned long long)term);
        }
    }
    if (commit < n->last_commit) {
        sim_violation(s, "n%llu commit went back %llu -> %llu", (unsigned long long)n->id,
                      (unsigned long long)n->last_commit, (unsigned long long)commit);
    }
    n->last_commit = commit;
    /* Nothing once committed is lost: what this member holds as committed is what was
     * applied everywhere. */
    if (commit > 0 && commit <= s->n_applied) {
        uint64_t t = 0;
        if (raft_log_term(r, commit, &t) == 0 && t != s->applied[commit - 1].term) {
            sim_violation(s, "n%llu commit %llu has term %llu, applied elsewhere as %llu",
                          (unsigned long long)n->id, (unsigned long long)commit,
                          (unsigned long long)t, (unsigned long long)s->applied[commit - 1].term);
        }
    }
    if (raft_role(r) == RAFT_LEADER) {
        /* Election safety (§3.6.3): at most one leader per term. */
        if (term >= s->cap_leader_of_term) {
            size_t cap = s->cap_leader_of_term ? s->cap_leader_of_term : 256;
            while (cap <= term) {
                cap *= 2;
            }
            s->leader_of_term = realloc(s->leader_of_term, cap * sizeof(uint64_t));
            memset(s->leader_of_term + s->cap_leader_of_term, 0,
                   (cap - s->cap_leader_of_term) * sizeof(uint64_t));
            s->cap_leader_of_term = cap;
        }
        if (s->leader_of_term[term] != 0 && s->leader_of_term[term] != n->id) {
            sim_violation(s, "two leaders in term %llu: n%llu and n%llu", (unsigned long long)term,
                          (unsigned long long)s->leader_of_term[term], (unsigned long long)n->id);
            return;
        }
        bool fresh = n->last_role != RAFT_LEADER || n->last_term != term;
        if (fresh) {
            s->leader_of_term[term] = n->id;
            s->res->elections++;
            if (!s->healed && rng_chance(&s->g, s->p.fresh_crash_pm)) {
                /* Kill it soon; half the time cut it off first, so that its first entries
                 * stay on it alone (the start of the Figure 3.7 story). */
                n->crash_at = s->now + 1 + rng_below(&s->g, 6);
                if (rng_chance(&s->g, 500)) {
                    for (uint32_t o = 0; o < s->n_nodes; o++) {
                        s->blocked[n->id - 1][o] = s->blocked[o][n->id - 1] = o != n->id - 1;
                    }
                    tracef(s, "isolate fresh leader n%llu", (unsigned long long)n->id);
                }
            }
            /* Leader completeness (§3.6.3): every entry committed by a leader of an earlier
             * term is in the new leader's log. */
            size_t lo = 0, hi = s->n_applied;
            while (lo < hi) { /* the last index whose committing leader term < term */
                size_t mid = (lo + hi) / 2;
                if (s->applied[mid].max_leader_term < term) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            if (lo > 0) {
                uint64_t t = 0;
                int rc = raft_log_term(r, lo, &t);
                if ((rc == 0 && t != s->applied[lo - 1].term) || rc == RAFT_EUNAVAILABLE) {
                    sim_violation(s,
                                  "leader completeness: n%llu leads term %llu without "
                                  "committed entry %zu",
                                  (unsigned long long)n->id, (unsigned long long)term, lo);
                }
            }
            n->lead_last_index = 0;
            if (term > s->max_leader_term) {
                s->max_leader_term = term;
            }
        } else if (n->lead_last_index > 0) {
            /* Leader append-only (§3.6.3). */
            uint64_t t = 0;
            int rc = raft_log_term(r, n->lead_last_index, &t);
            if ((rc == 0 && t != n->lead_last_term) || rc == RAFT_EUNAVAILABLE) {
                sim_violation(s, "leader n%llu lost or changed entry %llu",
                              (unsigned long long)n->id, (unsigned long long)n->lead_last_index);
            }
        }
        n->lead_last_index = raft_last_index(r);
        raft_log_term(r, n->lead_last_index, &n->lead_last_term);
    }
    n->last_role = raft_role(r);
    n->last_term = term;
}

/* ---- the step ---- */

static void node_tick(struct sim *s, struct sim_node *n)
{
    n->clock_acc += n->rate_num;
    while (n->clock_acc >= n->rate_den && n->alive) {
        n->clock_acc -= n->rate_den;
        int rc = raft_tick(n->r);
        if (rc != 0) {
            sim_violation(s, "n%llu tick: %s", (unsigned long long)n->id, raft_strerror(rc));
        }
    }
}

bool sim_step(struct sim *s)
{
    s->now++;
    bool chaos = s->now <= s->p.chaos_steps;
    if (!chaos && !s->healed) {
        s->healed = true;
        memset(s->blocked, 0, sizeof(s->blocked));
        tracef(s, "heal: all faults off");
    }
    if (chaos) {
        if (rng_chance(&s->g, s->p.partition_pm)) {
            change_partition(s);
        }
        if (rng_chance(&s->g, s->p.crash_pm)) {
            uint32_t i = (uint32_t)rng_below(&s->g, s->n_nodes);
            if (s->nodes[i].alive) {
                sim_crash(s, i, rng_chance(&s->g, s->p.torn_pm));
                s->nodes[i].restart_at = s->now + 3 + rng_below(&s->g, s->p.max_down);
            }
        }
        if (rng_chance(&s->g, s->p.leader_crash_pm)) {
            int li = sim_leader(s);
            if (li >= 0) {
                sim_crash(s, (uint32_t)li, rng_chance(&s->g, s->p.torn_pm));
                s->nodes[li].restart_at = s->now + 3 + rng_below(&s->g, s->p.max_down);
            }
        }
        if (rng_chance(&s->g, s->p.leader_isolate_pm)) {
            int li = sim_leader(s);
            if (li >= 0) {
                memset(s->blocked, 0, sizeof(s->blocked));
                for (uint32_t o = 0; o < s->n_nodes; o++) {
                    s->blocked[li][o] = s->blocked[o][li] = o != (uint32_t)li;
                }
                tracef(s, "partition isolate leader n%d", li + 1);
            }
        }
        if (rng_chance(&s->g, s->p.conf_pm)) {
            random_conf_change(s);
        }
        if (rng_chance(&s->g, s->p.transfer_pm)) {
            random_transfer(s);
        }
    }
    for (uint32_t i = 0; i < s->n_nodes; i++) {
        struct sim_node *n = &s->nodes[i];
        if (n->alive && n->crash_at != 0 && s->now >= n->crash_at && !s->healed) {
            n->crash_at = 0;
            sim_crash(s, i, rng_chance(&s->g, s->p.torn_pm));
            n->restart_at = s->now + 3 + rng_below(&s->g, s->p.max_down);
        }
        if (!s->nodes[i].alive && (s->healed || s->now >= s->nodes[i].restart_at)) {
            sim_restart(s, i);
        }
    }
    if (rng_chance(&s->g, s->p.compact_pm)) {
        random_compact(s);
    }
    net_deliver(s, deliver);
    for (uint32_t i = 0; i < s->n_nodes && !s->res->violation; i++) {
        struct sim_node *n = &s->nodes[i];
        uint64_t index = 0, term = 0;
        while (n->alive && disk_sync(&n->disk, s->now, &index, &term)) {
            int rc = raft_persisted(n->r, index, term);
            if (rc != 0) {
                sim_violation(s, "n%llu persisted: %s", (unsigned long long)n->id,
                              raft_strerror(rc));
            }
        }
        if (n->alive) {
            node_tick(s, n);
        }
    }
    clients_step(s);
    for (uint32_t i = 0; i < s->n_nodes && !s->res->violation; i++) {
        if (s->nodes[i].alive) {
            node_ready(s, i);
        }
    }
    for (uint32_t i = 0; i < s->n_nodes && !s->res->violation; i++) {
        if (s->nodes[i].alive) {
            check_node(s, &s->nodes[i]);
        }
    }
    return !s->res->violation;
}

void sim_init(struct sim *s, uint64_t seed, const struct sim_params *p, bool trace,
              struct sim_result *res)
{
    memset(s, 0, sizeof(*s));
    memset(res, 0, sizeof(*res));
    s->seed = seed;
    s->p = *p;
    s->g.s = seed * 0x2545F4914F6CDD1Dull + 1;
    s->trace = trace;
    s->res = res;
    s->n_nodes = p->n_nodes + p->n_spares;
    for (uint32_t i = 0; i < p->n_nodes; i++) {
        s->initial.voters[s->initial.n_voters++] = i + 1;
    }
    static const uint32_t rates[][2] = {{1, 1}, {3, 4}, {5, 4}, {2, 3}, {3, 2}, {1, 2}, {2, 1}};
    for (uint32_t i = 0; i < s->n_nodes; i++) {
        struct sim_node *n = &s->nodes[i];
        n->id = i + 1;
        n->founder = i < p->n_nodes;
        disk_init(&n->disk);
        uint32_t k = p->varied_clocks ? (uint32_t)rng_below(&s->g, 7) : 0;
        n->rate_num = rates[k][0];
        n->rate_den = rates[k][1];
        node_start(s, i);
    }
    for (uint32_t k = 0; k < p->n_clients; k++) {
        s->clients[k].idx = k + 1;
        s->clients[k].next_at = rng_below(&s->g, 20);
    }
}

void sim_destroy(struct sim *s)
{
    for (uint32_t i = 0; i < s->n_nodes; i++) {
        raft_free(s->nodes[i].r);
        disk_free(&s->nodes[i].disk);
        free(s->nodes[i].incoming);
    }
    net_free(s);
    free(s->leader_of_term);
    free(s->applied);
    free(s->reg_keys);
    free(s->reg_terms);
    free(s->reg_chain);
}

/* Liveness and linearizability at the end of a run. */
static void final_checks(struct sim *s)
{
    for (uint32_t k = 0; k < s->p.n_clients; k++) {
        struct client *c = &s->clients[k];
        if (c->st != CL_IDLE) {
            sim_violation(s,
                          "liveness: client %u op seq %llu still pending %llu steps after "
                          "heal",
                          c->idx, (unsigned long long)c->seq, (unsigned long long)s->p.heal_steps);
            return;
        }
    }
    if (sim_leader(s) < 0) {
        sim_violation(s, "liveness: no leader %u steps after heal", s->p.heal_steps);
        return;
    }
    for (int key = 0; key < SIM_KEYS; key++) {
        if (!lin_check(s->hist[key], s->n_hist[key], 0)) {
            sim_violation(s, "linearizability: history of key %d (%zu ops) not linearizable", key,
                          s->n_hist[key]);
            if (s->trace) {
                for (size_t i = 0; i < s->n_hist[key]; i++) {
                    struct lin_op *op = &s->hist[key][i];
                    printf("  %s %llu [%llu, %llu]\n", op->write ? "write" : "read",
                           (unsigned long long)op->value, (unsigned long long)op->invoke,
                           (unsigned long long)op->complete);
                }
            }
            return;
        }
    }
}

void sim_run(uint64_t seed, const struct sim_params *p, bool trace, struct sim_result *res)
{
    struct sim *s = xmalloc(sizeof(*s));
    sim_init(s, seed, p, trace, res);
    uint64_t end = (uint64_t)p->chaos_steps + p->heal_steps;
    while (s->now < end && sim_step(s)) {
        if (s->now == p->chaos_steps + p->heal_steps / 2) {
            s->clients_stop = true;
        }
    }
    if (!res->violation) {
        final_checks(s);
    }
    sim_destroy(s);
    free(s);
}
