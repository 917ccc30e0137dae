/* node_wire.c - Raft messages to and from the wire. */
#include "node_wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void conf_to_wire(const struct raft_conf *c, Raftfs__RaftConf *w)
{
    raftfs__raft_conf__init(w);
    w->n_voters = c->n_voters;
    w->voters = (uint64_t *)c->voters;
    w->n_voters_old = c->n_voters_old;
    w->voters_old = (uint64_t *)c->voters_old;
    w->n_learners = c->n_learners;
    w->learners = (uint64_t *)c->learners;
}

static int conf_from_wire(const Raftfs__RaftConf *w, struct raft_conf *c)
{
    memset(c, 0, sizeof(*c));
    if (!w)
        return 0;
    if (w->n_voters > RAFT_CONF_MAX || w->n_voters_old > RAFT_CONF_MAX ||
        w->n_learners > RAFT_CONF_MAX)
        return EPROTO;
    /* protobuf-c leaves an empty repeated field NULL: never memcpy from it */
    if (w->n_voters)
        memcpy(c->voters, w->voters, w->n_voters * sizeof(uint64_t));
    if (w->n_voters_old)
        memcpy(c->voters_old, w->voters_old, w->n_voters_old * sizeof(uint64_t));
    if (w->n_learners)
        memcpy(c->learners, w->learners, w->n_learners * sizeof(uint64_t));
    c->n_voters = (uint32_t)w->n_voters;
    c->n_voters_old = (uint32_t)w->n_voters_old;
    c->n_learners = (uint32_t)w->n_learners;
    return 0;
}

int node_wire_raft_pack(const struct raft_message *m, void **out, size_t *len)
{
    Raftfs__RaftMessage w = RAFTFS__RAFT_MESSAGE__INIT;
    Raftfs__RaftSnapshotMeta snap = RAFTFS__RAFT_SNAPSHOT_META__INIT;
    Raftfs__RaftConf conf;
    Raftfs__RaftEntry *ents = NULL, **ptrs = NULL;
    w.type = m->type;
    w.from = m->from;
    w.to = m->to;
    w.term = m->term;
#define OPT(f)                                                                                     \
    do {                                                                                           \
        if (m->f) {                                                                                \
            w.has_##f = 1;                                                                         \
            w.f = m->f;                                                                            \
        }                                                                                          \
    } while (0)
    OPT(prev_index);
    OPT(prev_term);
    OPT(commit);
    OPT(index);
    OPT(hint_index);
    OPT(hint_term);
    OPT(last_index);
    OPT(last_term);
    OPT(context);
    OPT(offset);
    OPT(reject);
    OPT(transfer);
    OPT(done);
#undef OPT
    if (m->n_entries) {
        ents = calloc(m->n_entries, sizeof(*ents));
        ptrs = calloc(m->n_entries, sizeof(*ptrs));
        if (!ents || !ptrs) {
            free(ents);
            free(ptrs);
            return ENOMEM;
        }
        for (size_t i = 0; i < m->n_entries; i++) {
            raftfs__raft_entry__init(&ents[i]);
            ents[i].term = m->entries[i].term;
            ents[i].index = m->entries[i].index;
            ents[i].type = m->entries[i].type;
            if (m->entries[i].len) {
                ents[i].has_data = 1;
                ents[i].data.data = m->entries[i].data;
                ents[i].data.len = m->entries[i].len;
            }
            ptrs[i] = &ents[i];
        }
        w.n_entries = m->n_entries;
        w.entries = ptrs;
    }
    if (m->type == RAFT_MSG_SNAPSHOT || m->type == RAFT_MSG_SNAPSHOT_RESP) {
        snap.index = m->snap.index;
        snap.term = m->snap.term;
        snap.size = m->snap.size;
        conf_to_wire(&m->snap.conf, &conf);
        snap.conf = &conf;
        w.snap = &snap;
    }
    if (m->len) {
        w.has_data = 1;
        w.data.data = m->data;
        w.data.len = m->len;
    }
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    env.body_case = RAFTFS__ENVELOPE__BODY_RAFT;
    env.raft = &w;
    size_t n = raftfs__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf)
        raftfs__envelope__pack(&env, buf);
    free(ents);
    free(ptrs);
    if (!buf)
        return ENOMEM;
    *out = buf;
    *len = n;
    return 0;
}

int node_wire_raft_unpack(const Raftfs__RaftMessage *w, struct raft_message *m)
{
    memset(m, 0, sizeof(*m));
    if (w->type < 1 || w->type > RAFT_MSG_TYPE_MAX)
        return EPROTO;
    m->type = w->type;
    m->from = w->from;
    m->to = w->to;
    m->term = w->term;
    m->prev_index = w->prev_index;
    m->prev_term = w->prev_term;
    m->commit = w->commit;
    m->index = w->index;
    m->hint_index = w->hint_index;
    m->hint_term = w->hint_term;
    m->last_index = w->last_index;
    m->last_term = w->last_term;
    m->context = w->context;
    m->offset = w->offset;
    m->reject = w->reject;
    m->transfer = w->transfer;
    m->done = w->done;
    if (w->snap) {
        m->snap.index = w->snap->index;
        m->snap.term = w->snap->term;
        m->snap.size = w->snap->size;
        if (conf_from_wire(w->snap->conf, &m->snap.conf))
            return EPROTO;
    }
    if (w->has_data) {
        m->data = w->data.data;
        m->len = w->data.len;
    }
    if (w->n_entries) {
        m->entries = calloc(w->n_entries, sizeof(*m->entries));
        if (!m->entries)
            return ENOMEM;
        for (size_t i = 0; i < w->n_entries; i++) {
            const Raftfs__RaftEntry *e = w->entries[i];
            if (e->has_data && e->data.len > UINT32_MAX) {
                node_wire_raft_release(m);
                return EPROTO;
            }
            m->entries[i].term = e->term;
            m->entries[i].index = e->index;
            m->entries[i].type = e->type;
            m->entries[i].len = e->has_data ? (uint32_t)e->data.len : 0;
            m->entries[i].data = e->has_data ? e->data.data : NULL;
        }
        m->n_entries = w->n_entries;
    }
    return 0;
}

void node_wire_raft_release(struct raft_message *m)
{
    free(m->entries);
    m->entries = NULL;
    m->n_entries = 0;
}
