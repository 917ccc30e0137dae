/* tests/unit/test_raft_harness.c: a hand-driven cluster of raft cores for deterministic scenario
 * tests. */
#include "test_raft_harness.h"

#include <string.h>

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        abort();
    }
    return p;
}

static void capture_line(void *ctx, const char *line)
{
    struct th *t = ctx;
    if (!t->capture) {
        return;
    }
    size_t len = strlen(line);
    t->trace = realloc(t->trace, t->trace_len + len + 2);
    memcpy(t->trace + t->trace_len, line, len);
    t->trace_len += len;
    t->trace[t->trace_len++] = '\n';
    t->trace[t->trace_len] = 0;
}

void th_capture(struct th *t)
{
    t->capture = true;
    free(t->trace);
    t->trace = NULL;
    t->trace_len = 0;
}

struct raft *th_r(struct th *t, uint64_t id)
{
    CHECK(id >= 1 && id <= t->n && t->nodes[id].alive);
    return t->nodes[id].r;
}

static void check(struct th *t, uint64_t id)
{
    struct th_node *n = &t->nodes[id];
    char why[256];
    if (n->alive && n->check_every && raft_check(n->r, why, sizeof(why)) != 0) {
        fprintf(stderr, "n%llu invariant broken: %s\n", (unsigned long long)id, why);
        exit(1);
    }
}

void th_start(struct th *t, uint64_t id)
{
    struct th_node *n = &t->nodes[id];
    struct raft_config cfg;
    raft_config_init(&cfg);
    cfg.id = id;
    /* raft.h: a different seed at every start (the first one is the id). */
    cfg.seed = id + 1000 * (uint64_t)n->starts++;
    cfg.applied = n->n_applied > 0 ? n->applied[n->n_applied - 1].index : n->disk.snap.index;
    if (id <= t->bootstrap.n_voters) {
        cfg.bootstrap = t->bootstrap;
    }
    disk_storage(&n->disk, &cfg.storage);
    cfg.trace = capture_line;
    cfg.trace_ctx = t;
    if (t->tweak != NULL) {
        t->tweak(&cfg, id);
    }
    CHECK_EQ(raft_new(&cfg, &n->r), 0);
    n->alive = true;
    check(t, id);
}

void th_init(struct th *t, uint32_t n_voters, uint32_t n_nodes,
             void (*tweak)(struct raft_config *cfg, uint64_t id))
{
    memset(t, 0, sizeof(*t));
    CHECK(n_nodes <= TH_MAX && n_voters <= n_nodes);
    t->n = n_nodes;
    t->tweak = tweak;
    for (uint32_t i = 1; i <= n_voters; i++) {
        t->bootstrap.voters[t->bootstrap.n_voters++] = i;
    }
    for (uint64_t id = 1; id <= n_nodes; id++) {
        disk_init(&t->nodes[id].disk);
        t->nodes[id].check_every = true;
        th_start(t, id);
    }
}

static void msg_free(struct raft_message *m)
{
    for (size_t i = 0; i < m->n_entries; i++) {
        free(m->entries[i].data);
    }
    free(m->entries);
    free(m->data);
}

void th_free(struct th *t)
{
    for (uint64_t id = 1; id <= t->n; id++) {
        raft_free(t->nodes[id].r);
        disk_free(&t->nodes[id].disk);
        free(t->nodes[id].incoming);
    }
    for (size_t i = 0; i < t->nq; i++) {
        msg_free(&t->q[i]);
    }
    free(t->q);
    free(t->trace);
}

void th_crash(struct th *t, uint64_t id)
{
    struct th_node *n = &t->nodes[id];
    raft_free(n->r);
    n->r = NULL;
    n->alive = false;
    disk_crash(&n->disk, false, NULL);
    n->incoming_len = 0;
}

static void queue_msg(struct th *t, const struct raft_message *src)
{
    if (t->nq == t->capq) {
        t->capq = t->capq ? t->capq * 2 : 64;
        t->q = realloc(t->q, t->capq * sizeof(*t->q));
    }
    struct raft_message *m = &t->q[t->nq++];
    *m = *src;
    m->entries = NULL;
    m->data = NULL;
    if (src->n_entries > 0) {
        m->entries = xmalloc(src->n_entries * sizeof(*m->entries));
        for (size_t i = 0; i < src->n_entries; i++) {
            m->entries[i] = src->entries[i];
            m->entries[i].data = NULL;
            if (src->entries[i].len > 0) {
                m->entries[i].data = xmalloc(src->entries[i].len);
                memcpy(m->entries[i].data, src->entries[i].data, src->entries[i].len);
            }
        }
    }
    if (src->len > 0) {
        m->data = xmalloc(src->len);
        memcpy(m->data, src->data, src->len);
    }
}

void th_sync(struct th *t, uint64_t id)
{
    struct th_node *n = &t->nodes[id];
    uint64_t index = 0, term = 0;
    while (n->alive && disk_sync(&n->disk, UINT64_MAX, &index, &term)) {
        CHECK_EQ(raft_persisted(n->r, index, term), 0);
    }
    check(t, id);
}

static void apply(struct th_node *n, const struct raft_entry *e)
{
    CHECK(n->n_applied < sizeof(n->applied) / sizeof(n->applied[0]));
    CHECK(n->n_applied == 0 ? 1 : e->index == n->applied[n->n_applied - 1].index + 1);
    struct th_applied *a = &n->applied[n->n_applied++];
    a->index = e->index;
    a->term = e->term;
    a->type = e->type;
    a->value = 0;
    if (e->type == RAFT_ENTRY_NORMAL && e->len >= 8) {
        memcpy(&a->value, e->data, 8);
    }
}

void th_ready(struct th *t, uint64_t id)
{
    struct th_node *n = &t->nodes[id];
    for (int round = 0; round < 64 && n->alive && raft_has_ready(n->r); round++) {
        struct raft_ready rd;
        CHECK_EQ(raft_ready(n->r, &rd), 0);
        if (rd.hard_state_changed) {
            n->disk.hs = rd.hard_state;
        }
        if (rd.has_snapshot_chunk) {
            if (rd.snapshot_chunk.offset == 0) {
                n->incoming_len = 0;
            }
            CHECK_EQ(rd.snapshot_chunk.offset, n->incoming_len);
            n->incoming = realloc(n->incoming, n->incoming_len + rd.snapshot_chunk.len + 1);
            if (rd.snapshot_chunk.len > 0) {
                memcpy(n->incoming + n->incoming_len, rd.snapshot_chunk.data,
                       rd.snapshot_chunk.len);
            }
            n->incoming_len += rd.snapshot_chunk.len;
        }
        if (rd.has_snapshot) {
            CHECK_EQ(n->incoming_len, rd.snapshot.size);
            disk_install(&n->disk, &rd.snapshot, n->incoming, 0);
            n->installs++;
            n->last_install = rd.snapshot;
            /* The image is the list of applied values (see th_compact). */
            n->n_applied = 0;
            struct th_applied a = {.index = rd.snapshot.index, .term = rd.snapshot.term};
            n->applied[n->n_applied++] = a;
        }
        if (rd.n_entries > 0) {
            disk_write(&n->disk, rd.entries, rd.n_entries, 0);
        }
        for (size_t k = 0; k < rd.n_messages; k++) {
            queue_msg(t, &rd.messages[k]);
        }
        for (size_t k = 0; k < rd.n_committed; k++) {
            apply(n, &rd.committed[k]);
        }
        for (size_t k = 0; k < rd.n_reads && n->n_reads < 64; k++) {
            n->reads[n->n_reads++] = rd.reads[k];
        }
        for (size_t k = 0; k < rd.n_proposals && n->n_props < 64; k++) {
            n->props[n->n_props++] = rd.proposals[k];
        }
        raft_advance(n->r, &rd);
        if (!n->hold_sync) {
            th_sync(t, id);
        }
        check(t, id);
    }
}

void th_ready_all(struct th *t)
{
    for (uint64_t id = 1; id <= t->n; id++) {
        th_ready(t, id);
    }
}

void th_deliver_one(struct th *t, size_t i)
{
    CHECK(i < t->nq);
    struct raft_message m = t->q[i];
    memmove(&t->q[i], &t->q[i + 1], (t->nq - i - 1) * sizeof(*t->q));
    t->nq--;
    struct th_node *n = &t->nodes[m.to];
    if (m.to >= 1 && m.to <= t->n && n->alive) {
        CHECK_EQ(raft_step(n->r, &m), 0);
        check(t, m.to);
    }
    msg_free(&m);
}

size_t th_deliver(struct th *t)
{
    size_t n = t->nq;
    for (size_t i = 0; i < n; i++) {
        th_deliver_one(t, 0);
    }
    return n;
}

static bool matches(const struct raft_message *m, uint32_t type, uint64_t from, uint64_t to)
{
    return (type == 0 || m->type == type) && (from == 0 || m->from == from) &&
           (to == 0 || m->to == to);
}

size_t th_drop(struct th *t, uint32_t type, uint64_t from, uint64_t to)
{
    size_t keep = 0, dropped = 0;
    for (size_t i = 0; i < t->nq; i++) {
        if (matches(&t->q[i], type, from, to)) {
            msg_free(&t->q[i]);
            dropped++;
        } else {
            t->q[keep++] = t->q[i];
        }
    }
    t->nq = keep;
    return dropped;
}

long th_find(struct th *t, uint32_t type, uint64_t from, uint64_t to)
{
    for (size_t i = 0; i < t->nq; i++) {
        if (matches(&t->q[i], type, from, to)) {
            return (long)i;
        }
    }
    return -1;
}

void th_settle(struct th *t)
{
    for (int i = 0; i < 200; i++) {
        th_ready_all(t);
        if (th_deliver(t) == 0) {
            th_ready_all(t);
            if (t->nq == 0) {
                return;
            }
        }
    }
    CHECK(!"cluster did not settle");
}

void th_tick(struct th *t, uint64_t id, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        CHECK_EQ(raft_tick(th_r(t, id)), 0);
        check(t, id);
    }
    th_ready(t, id);
}

void th_elect(struct th *t, uint64_t id)
{
    struct raft *r = th_r(t, id);
    for (int i = 0; i < 100 && raft_role(r) == RAFT_FOLLOWER; i++) {
        th_tick(t, id, 1);
    }
    th_settle(t);
    CHECK_EQ(raft_role(th_r(t, id)), RAFT_LEADER);
}

uint64_t th_propose(struct th *t, uint64_t id, uint64_t value)
{
    uint64_t index = 0;
    CHECK_EQ(raft_propose(th_r(t, id), &value, sizeof(value), value, &index, NULL), 0);
    return index;
}

void th_compact(struct th *t, uint64_t id)
{
    struct th_node *n = &t->nodes[id];
    CHECK(n->n_applied > 0);
    uint64_t index = n->applied[n->n_applied - 1].index;
    if (index <= n->disk.snap.index) {
        return;
    }
    const struct sim_entry *e = disk_entry(&n->disk, index);
    CHECK(e != NULL);
    struct raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = index;
    meta.term = e->e.term;
    meta.conf = *raft_conf(n->r);
    meta.size = 40 + index % 7; /* an opaque image of a few chunks */
    uint8_t *data = xmalloc(meta.size);
    memset(data, (int)(index & 0xff), meta.size);
    disk_compact(&n->disk, &meta, data, e->chain);
}

struct raft_message th_append_msg(uint64_t from, uint64_t to, uint64_t term, uint64_t prev,
                                  uint64_t prev_term, uint64_t commit, struct raft_entry *ents,
                                  size_t n)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND;
    m.from = from;
    m.to = to;
    m.term = term;
    m.prev_index = prev;
    m.prev_term = prev_term;
    m.commit = commit;
    m.entries = ents;
    m.n_entries = n;
    return m;
}

void th_fill_entries(struct raft_entry *ents, size_t n, uint64_t first, uint64_t term,
                     const uint64_t *data)
{
    for (size_t i = 0; i < n; i++) {
        ents[i] = (struct raft_entry){.term = term,
                                      .index = first + i,
                                      .type = RAFT_ENTRY_NORMAL,
                                      .len = sizeof(*data),
                                      .data = (uint8_t *)data};
    }
}
