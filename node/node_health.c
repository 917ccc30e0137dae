/* node_health.c - whether this member serves, for GET /health: the rule
 * (node.h, struct node_health_facts), the facts it is judged on, and the
 * JSON answer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "node_internal.h"

void node_health_judge(const struct node_health_facts *f, struct node_health *out)
{
    memset(out, 0, sizeof(*out));
    out->id = f->id;
    out->term = f->term;
    out->leader = f->leader;
    const char *why = NULL;
    char buf[sizeof(out->reason)];
    if (f->stopping)
        why = "stopping";
    else if (!f->started)
        why = "not started";
    else if (f->failed == ESHUTDOWN)
        why = "removed from the cluster, or refused by it (see the log): serves nothing more";
    else if (f->failed) {
        snprintf(buf, sizeof(buf), "failed closed (%s): restart the member", strerror(f->failed));
        why = buf;
    } else if (f->stalled)
        why = "no space for the log or the store: writes are refused";
    else if (!f->leader)
        why = "no leader";
    else if (f->leader != f->id &&
             (f->leader_contact_s < 0 || f->leader_contact_s > 2 * f->election_timeout_s)) {
        snprintf(buf, sizeof(buf), "leader %" PRIu64 " not heard from for %.1f s", f->leader,
                 f->leader_contact_s);
        why = buf;
    }
    out->healthy = !why;
    snprintf(out->reason, sizeof(out->reason), "%s", why ? why : "");
}

void node_get_health(struct node *n, struct node_health *out)
{
    struct node_health_facts f = {0};
    pthread_mutex_lock(&n->mu);
    f.started = n->started;
    f.stopping = n->stopping;
    f.failed = n->failed;
    f.stalled = n->stalled;
    f.term = n->status.term;
    f.leader = n->status.leader;
    f.leader_contact_s = n->status.leader_contact_s;
    pthread_mutex_unlock(&n->mu);
    f.id = n->cfg.id;
    f.election_timeout_s = (double)n->cfg.election_ticks * n->cfg.tick_ms / 1000.0;
    node_health_judge(&f, out);
}

size_t node_health_json(const struct node_health *h, char *buf, size_t cap)
{
    /* the reason is our own text: no quote or backslash to escape */
    int len = snprintf(buf, cap,
                       "{\"health\":\"%s\",\"reason\":\"%s\",\"member\":%" PRIu64
                       ",\"term\":%" PRIu64 ",\"leader\":%" PRIu64 "}\n",
                       h->healthy ? "true" : "false", h->reason, h->id, h->term, h->leader);
    return len < 0 ? 0 : (size_t)len;
}
