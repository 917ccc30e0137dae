/* tests/sim/net.c: the simulated network: copies, drops, duplicates, delays, partitions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        abort();
    }
    return p;
}

static void msg_copy(struct raft_message *dst, const struct raft_message *src)
{
    *dst = *src;
    dst->entries = NULL;
    dst->data = NULL;
    if (src->n_entries > 0) {
        dst->entries = xmalloc(src->n_entries * sizeof(*dst->entries));
        for (size_t i = 0; i < src->n_entries; i++) {
            dst->entries[i] = src->entries[i];
            dst->entries[i].data = NULL;
            if (src->entries[i].len > 0) {
                dst->entries[i].data = xmalloc(src->entries[i].len);
                memcpy(dst->entries[i].data, src->entries[i].data, src->entries[i].len);
            }
        }
    }
    if (src->len > 0) {
        dst->data = xmalloc(src->len);
        memcpy(dst->data, src->data, src->len);
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

static void net_push(struct sim *s, const struct raft_message *m, uint64_t at)
{
    if (s->n_net == s->cap_net) {
        s->cap_net = s->cap_net ? s->cap_net * 2 : 256;
        s->net = realloc(s->net, s->cap_net * sizeof(*s->net));
        if (s->net == NULL) {
            abort();
        }
    }
    struct sim_msg *sm = &s->net[s->n_net++];
    msg_copy(&sm->m, m);
    sm->deliver_at = at;
}

void net_send(struct sim *s, const struct raft_message *m);
static const char *const type_names[] = {"?",
                                         "append",
                                         "append_resp",
                                         "vote",
                                         "vote_resp",
                                         "prevote",
                                         "prevote_resp",
                                         "heartbeat",
                                         "heartbeat_resp",
                                         "snapshot",
                                         "snapshot_resp",
                                         "timeout_now",
                                         "read_index",
                                         "read_index_resp"};

static void trace_msg(struct sim *s, const char *what, const struct raft_message *m)
{
    if (!s->trace) {
        return;
    }
    printf("[%6llu] net %s %s n%llu->n%llu t%llu", (unsigned long long)s->now, what,
           m->type <= RAFT_MSG_TYPE_MAX ? type_names[m->type] : "?", (unsigned long long)m->from,
           (unsigned long long)m->to, (unsigned long long)m->term);
    switch (m->type) {
    case RAFT_MSG_APPEND:
        printf(" prev=%llu/%llu n=%zu commit=%llu", (unsigned long long)m->prev_index,
               (unsigned long long)m->prev_term, m->n_entries, (unsigned long long)m->commit);
        break;
    case RAFT_MSG_APPEND_RESP:
        printf(" index=%llu%s hint=%llu/%llu", (unsigned long long)m->index,
               m->reject ? " reject" : "", (unsigned long long)m->hint_index,
               (unsigned long long)m->hint_term);
        break;
    case RAFT_MSG_HEARTBEAT:
        printf(" commit=%llu ctx=%llu", (unsigned long long)m->commit,
               (unsigned long long)m->context);
        break;
    case RAFT_MSG_SNAPSHOT:
    case RAFT_MSG_SNAPSHOT_RESP:
        printf(" snap=%llu offset=%llu%s%s", (unsigned long long)m->snap.index,
               (unsigned long long)m->offset, m->reject ? " reject" : "", m->done ? " done" : "");
        break;
    default:
        if (m->reject) {
            printf(" reject");
        }
        if (m->context) {
            printf(" ctx=%llu", (unsigned long long)m->context);
        }
        break;
    }
    printf("\n");
}

void net_send(struct sim *s, const struct raft_message *m)
{
    trace_msg(s, "send", m);
    if (m->to == 0 || m->to > s->n_nodes) {
        return;
    }
    if (!s->healed && rng_chance(&s->g, s->p.drop_pm)) {
        return;
    }
    uint32_t max_delay = s->healed ? 2 : s->p.max_delay;
    net_push(s, m, s->now + 1 + rng_below(&s->g, max_delay));
    if (!s->healed && rng_chance(&s->g, s->p.dup_pm)) {
        net_push(s, m, s->now + 1 + rng_below(&s->g, max_delay * 2));
    }
}

/* Delivers every message due now, in a random order. */
void net_deliver(struct sim *s, void (*deliver)(struct sim *, const struct raft_message *));
void net_deliver(struct sim *s, void (*deliver)(struct sim *, const struct raft_message *))
{
    size_t n_due = 0;
    struct sim_msg *due = NULL;
    size_t keep = 0;
    for (size_t i = 0; i < s->n_net; i++) {
        if (s->net[i].deliver_at <= s->now) {
            if (due == NULL) {
                due = xmalloc(s->n_net * sizeof(*due));
            }
            due[n_due++] = s->net[i];
        } else {
            s->net[keep++] = s->net[i];
        }
    }
    s->n_net = keep;
    for (size_t i = n_due; i > 1; i--) {
        size_t j = (size_t)rng_below(&s->g, i);
        struct sim_msg t = due[i - 1];
        due[i - 1] = due[j];
        due[j] = t;
    }
    for (size_t i = 0; i < n_due; i++) {
        const struct raft_message *m = &due[i].m;
        if (!s->blocked[m->from - 1][m->to - 1] && s->res->violation == false) {
            trace_msg(s, "recv", m);
            deliver(s, m);
        }
        msg_free(&due[i].m);
    }
    free(due);
}

void net_free(struct sim *s);
void net_free(struct sim *s)
{
    for (size_t i = 0; i < s->n_net; i++) {
        msg_free(&s->net[i].m);
    }
    free(s->net);
    s->net = NULL;
    s->n_net = 0;
    s->cap_net = 0;
}
