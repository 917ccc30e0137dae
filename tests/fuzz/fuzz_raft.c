/* fuzz_raft.c - the Raft core (raft/) driven by a fake peer: member 1 of a
 * three-voter cluster (the scenario harness of tests/unit, over the
 * simulator's in-memory storage) gets every message type from members 2
 * and 3 with fields the input chooses, and the input also ticks it,
 * proposes, reads, changes the membership, transfers leadership, runs
 * ready/advance cycles, makes its writes durable (or not yet), compacts
 * its log, crashes and restarts it, and answers what it sent as an honest
 * peer would (so that it gets far: leader, snapshots, reads). It never
 * asserts or crashes, raft_step never fails (the storage cannot), and
 * raft_check holds after every step (the harness checks it after every
 * ready too, with the ready contract: chunk offsets, install sizes, apply
 * order).
 *
 * The generator builds messages that no peer could send (terms beyond the
 * sender's, indexes past the end, bogus chunks, configurations that leave
 * member 1 out) on purpose: raft_step must refuse or survive all of them.
 * The one constraint is the cluster's own: the peers are 2 and 3 (4 as a
 * stranger), and the message is addressed to 1, as node/ delivers only
 * those (node_peer.c drops a message whose `to` is another member).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "test_raft_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STEPS   96 /* the harness keeps 512 applied entries: 96 steps add at most 4 each */
#define MAX_ENTRIES 4
#define PEER_MAX    ((uint64_t)1 << 62) /* raft/impl.h RAFT_PEER_MAX */

/* A number near base (most often), small, or near the largest values a
 * peer may send (and just past them). */
static uint64_t in_num(struct input *in, uint64_t base)
{
    uint8_t b = in_byte(in);
    if (b < 200) {
        int64_t d = (int64_t)(b % 7) - 3;
        return d < 0 && (uint64_t)-d > base ? 0 : base + (uint64_t)d;
    }
    if (b < 240)
        return b % 16;
    if (b < 252)
        return PEER_MAX - (b % 4) + (b & 1);
    return UINT64_MAX - (b % 4);
}

static void in_conf(struct input *in, struct raft_conf *c)
{
    uint8_t b = in_byte(in);
    memset(c, 0, sizeof(*c));
    /* Voters: a subset of 1..4 (bits); learners and an old set at times. */
    for (uint64_t id = 1; id <= 4; id++)
        if (b & (1u << (id - 1)))
            c->voters[c->n_voters++] = id;
    if (b & 0x10)
        c->learners[c->n_learners++] = b & 0x20 ? 4 : 5;
    if (b & 0x40) {
        c->voters_old[c->n_voters_old++] = 1;
        c->voters_old[c->n_voters_old++] = 2;
        if (b & 0x80)
            c->voters_old[c->n_voters_old++] = 3;
    }
}

/* Entry payloads live here until the step that uses them is over. */
struct scratch {
    struct raft_entry ents[MAX_ENTRIES];
    uint8_t bufs[MAX_ENTRIES][128];
    uint8_t chunk[16];
};

static void in_entries(struct input *in, struct raft_message *m, struct scratch *sc)
{
    m->n_entries = in_byte(in) % (MAX_ENTRIES + 1);
    m->entries = m->n_entries ? sc->ents : NULL;
    uint64_t index = m->prev_index + 1, term = m->prev_term;
    for (size_t i = 0; i < m->n_entries; i++) {
        struct raft_entry *e = &sc->ents[i];
        uint8_t b = in_byte(in);
        /* Mostly consecutive, terms rising to the message's; not always. */
        e->index = b & 0x80 ? in_num(in, index) : index;
        uint64_t t = b & 0x40 ? in_num(in, m->term) : term + (b & 1);
        if (!(b & 0x40) && t > m->term)
            t = m->term;
        e->term = t;
        term = t;
        index = e->index + 1;
        e->data = sc->bufs[i];
        switch ((b >> 1) & 7) {
        case 0:
        case 1:
        case 2:
            e->type = RAFT_ENTRY_NORMAL;
            e->len = 8;
            memset(e->data, b, 8);
            break;
        case 3:
            e->type = RAFT_ENTRY_NOOP;
            e->len = 0;
            e->data = NULL;
            break;
        case 4:
        case 5: {
            struct raft_conf c;
            in_conf(in, &c);
            e->type = RAFT_ENTRY_CONF;
            e->len = (uint32_t)raft_conf_encoded_size(&c);
            if (e->len > sizeof(sc->bufs[i]))
                abort();
            raft_conf_encode(&c, e->data);
            break;
        }
        case 6: /* a configuration entry that does not decode */
            e->type = RAFT_ENTRY_CONF;
            e->len = in_byte(in) % 16;
            memset(e->data, in_byte(in), e->len);
            break;
        default: /* an unknown type */
            e->type = in_byte(in);
            e->len = 1;
            e->data[0] = 1;
            break;
        }
    }
}

/* A message to 1 from a peer, every field chosen by the input around
 * what 1 has (its term, last index, commit), so that both the stale and
 * the fresh are common. */
static void in_message(struct input *in, struct raft *r, struct raft_message *m, struct scratch *sc)
{
    memset(m, 0, sizeof(*m));
    uint8_t k = in_byte(in);
    m->type = k % (RAFT_MSG_TYPE_MAX + 1) == 0 ? (k < 128 ? 0 : 99) : k % (RAFT_MSG_TYPE_MAX + 1);
    uint8_t who = in_byte(in);
    m->from = who < 120 ? 2 : who < 240 ? 3 : who < 250 ? 4 : who < 254 ? 1 : 0;
    m->to = who == 255 ? 2 : 1;
    uint64_t last = raft_last_index(r), commit = raft_commit_index(r);
    m->term = in_num(in, raft_term(r) + 1);
    uint8_t f = in_byte(in);
    m->reject = f & 1;
    m->transfer = f & 2;
    m->done = f & 4;
    switch (m->type) {
    case RAFT_MSG_APPEND:
        m->prev_index = in_num(in, last);
        if (raft_log_term(r, m->prev_index, &m->prev_term) || (f & 8))
            m->prev_term = in_num(in, raft_term(r));
        m->commit = in_num(in, commit + 2);
        in_entries(in, m, sc);
        break;
    case RAFT_MSG_APPEND_RESP:
        m->index = in_num(in, last);
        m->hint_index = in_num(in, m->index);
        m->hint_term = in_num(in, raft_term(r));
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        m->last_index = in_num(in, last);
        m->last_term = in_num(in, raft_term(r));
        break;
    case RAFT_MSG_HEARTBEAT:
        m->commit = in_num(in, commit + 1);
        m->context = in_byte(in) % 8;
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_READ_INDEX:
        m->context = in_byte(in) % 8;
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        m->context = in_byte(in) % 8;
        m->index = in_num(in, commit);
        break;
    case RAFT_MSG_SNAPSHOT:
    case RAFT_MSG_SNAPSHOT_RESP:
        m->snap.index = in_num(in, last + 2);
        m->snap.term = in_num(in, m->term);
        m->snap.size = in_byte(in) % 24;
        if (f & 8)
            m->snap.size = in_num(in, PEER_MAX);
        in_conf(in, &m->snap.conf);
        m->offset = in_byte(in) % 24;
        m->len = in_byte(in) % (sizeof(sc->chunk) + 1);
        memset(sc->chunk, 0x5a, sizeof(sc->chunk));
        m->data = m->len || (f & 16) ? sc->chunk : NULL;
        m->index = in_num(in, last);
        if (f & 32) { /* a chunk that fits, the last one if it ends the image */
            m->offset = m->offset <= m->snap.size ? m->offset : m->snap.size;
            if (m->len > m->snap.size - m->offset)
                m->len = (size_t)(m->snap.size - m->offset);
            m->done = m->offset + m->len == m->snap.size;
        }
        break;
    default:
        break;
    }
}

/* What an honest peer answers to message q of member 1 (the input picks
 * acceptance and a few fields). */
static bool answer(struct input *in, const struct raft_message *q, struct raft_message *m)
{
    memset(m, 0, sizeof(*m));
    m->from = q->to;
    m->to = 1;
    m->term = q->term;
    uint8_t b = in_byte(in);
    m->reject = (b & 3) == 3;
    switch (q->type) {
    case RAFT_MSG_APPEND:
        m->type = RAFT_MSG_APPEND_RESP;
        m->index = m->reject ? q->prev_index : q->prev_index + q->n_entries;
        if (m->reject) {
            m->hint_index = q->prev_index ? q->prev_index - 1 : 0;
            m->hint_term = b >> 4;
        }
        return true;
    case RAFT_MSG_HEARTBEAT:
        m->type = RAFT_MSG_HEARTBEAT_RESP;
        m->context = q->context;
        return true;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        m->type = q->type == RAFT_MSG_VOTE ? RAFT_MSG_VOTE_RESP : RAFT_MSG_PREVOTE_RESP;
        return true;
    case RAFT_MSG_SNAPSHOT:
        m->type = RAFT_MSG_SNAPSHOT_RESP;
        m->snap.index = q->snap.index;
        m->snap.term = q->snap.term;
        m->offset = q->offset + q->len;
        m->done = q->done && !m->reject;
        m->index = m->done ? q->snap.index : 0;
        return true;
    case RAFT_MSG_READ_INDEX:
        m->type = RAFT_MSG_READ_INDEX_RESP;
        m->context = q->context;
        m->index = b >> 2;
        return true;
    default:
        return false; /* TIMEOUT_NOW and answers: nothing to say */
    }
}

static void check(struct raft *r, const char *after)
{
    char why[256];
    if (raft_check(r, why, sizeof(why))) {
        fprintf(stderr, "fuzz_raft: after %s: %s\n", after, why);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    struct th *t = calloc(1, sizeof(*t));
    struct scratch *sc = calloc(1, sizeof(*sc));
    if (!t || !sc)
        abort();
    static int trace = -1; /* FUZZ_RAFT_TRACE set: each step to stderr */
    if (trace < 0)
        trace = getenv("FUZZ_RAFT_TRACE") != NULL;
    uint8_t setup = in_byte(&in);
    th_init(t, 3, 3, NULL);
    t->nodes[1].hold_sync = setup & 1;
    for (int step = 0; step < MAX_STEPS && in.left; step++) {
        struct raft *r = th_r(t, 1);
        uint8_t k = in_byte(&in);
        const char *what = "?";
        struct raft_message m;
        if (k < 110) {
            what = "step";
            in_message(&in, r, &m, sc);
            int rc = raft_step(r, &m);
            if (rc) {
                fprintf(stderr, "fuzz_raft: raft_step type %u: %s\n", m.type, raft_strerror(rc));
                abort();
            }
        } else if (k < 150) {
            what = "answer";
            /* Answer the message of 1 the input picks (the others wait). */
            if (t->nq) {
                size_t i = in_byte(&in) % t->nq;
                struct raft_message q = t->q[i];
                if (answer(&in, &t->q[i], &m)) {
                    int rc = raft_step(r, &m);
                    if (rc)
                        abort();
                }
                (void)q;
                th_drop(t, 0, 0, 0); /* the harness frees them */
            }
        } else if (k < 175) {
            what = "tick";
            uint32_t n = 1 + in_byte(&in) % 16;
            for (uint32_t i = 0; i < n; i++) {
                if (raft_tick(r))
                    abort();
                check(r, "tick");
            }
        } else if (k < 190) {
            what = "propose";
            uint64_t v = k;
            raft_propose(r, &v, sizeof(v), k, NULL, NULL);
        } else if (k < 200) {
            what = "read";
            raft_read_index(r, k);
        } else if (k < 206) {
            what = "conf change";
            struct raft_change ch[2];
            uint8_t b = in_byte(&in);
            ch[0].type = 1 + b % 3;
            ch[0].id = 1 + (b >> 2) % 5;
            ch[1].type = 1 + (b >> 5) % 3;
            ch[1].id = 4;
            raft_conf_change(r, ch, 1 + (b & 0x80 ? 1 : 0), k);
        } else if (k < 210) {
            what = "transfer";
            raft_transfer_leader(r, 1 + in_byte(&in) % 4);
        } else if (k < 240) {
            what = "ready";
            th_ready(t, 1);
            /* Messages of 1 stay queued for "answer", up to a few. */
            if (t->nq > 16)
                th_drop(t, 0, 0, 0);
        } else if (k < 248) {
            what = "sync";
            th_sync(t, 1);
        } else if (k < 252) {
            what = "compact";
            if (t->nodes[1].n_applied > 0 && !raft_has_ready(r))
                th_compact(t, 1);
        } else {
            what = "restart";
            th_drop(t, 0, 0, 0);
            th_crash(t, 1);
            th_start(t, 1);
        }
        check(th_r(t, 1), what);
        if (trace)
            fprintf(stderr, "fuzz_raft: %s: role %d term %llu commit %llu last %llu\n", what,
                    raft_role(th_r(t, 1)), (unsigned long long)raft_term(th_r(t, 1)),
                    (unsigned long long)raft_commit_index(th_r(t, 1)),
                    (unsigned long long)raft_last_index(th_r(t, 1)));
    }
    th_free(t);
    free(t);
    free(sc);
    return 0;
}
