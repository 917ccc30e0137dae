/* node_metrics.c - what a member reports about itself: counters and
 * latency histograms in Prometheus text form (.raftfs/metrics), its status
 * as JSON (.raftfs/status, `raftfs status`) and its member list
 * (.raftfs/members).
 *
 * Counters and histograms are updated under the node's mutex (the loop
 * thread does nearly all of it; rendering happens on FUSE threads); the
 * byte counters are atomics the connections add to. Latencies are in
 * seconds, with fixed buckets from 50 us to 10 s.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "node_internal.h"

static const double bucket_le[NODE_HIST_BUCKETS] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                    0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                                    0.5,     1,      2.5,     5,      10};

void node_hist_observe(struct node_hist *h, double seconds)
{
    for (int i = 0; i < NODE_HIST_BUCKETS; i++)
        if (seconds <= bucket_le[i])
            h->buckets[i]++;
    h->count++;
    h->sum += seconds;
}

void node_metric_observe(struct node *n, struct node_hist *h, uint64_t start_us)
{
    uint64_t now = node_now_us();
    pthread_mutex_lock(&n->mu);
    node_hist_observe(h, (double)(now - start_us) / 1e6);
    pthread_mutex_unlock(&n->mu);
}

void node_metric_add(struct node *n, uint64_t *counter, uint64_t v)
{
    pthread_mutex_lock(&n->mu);
    *counter += v;
    pthread_mutex_unlock(&n->mu);
}

uint64_t node_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct out {
    char *buf;
    size_t cap, len;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->buf && o->len < o->cap ? o->cap - o->len : 0;
    int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

static void counter(struct out *o, const char *name, const char *help, uint64_t v)
{
    put(o, "# HELP raftfs_%s %s\n# TYPE raftfs_%s counter\nraftfs_%s %" PRIu64 "\n", name, help,
        name, name, v);
}

static void gauge(struct out *o, const char *name, const char *help, uint64_t v)
{
    put(o, "# HELP raftfs_%s %s\n# TYPE raftfs_%s gauge\nraftfs_%s %" PRIu64 "\n", name, help, name,
        name, v);
}

static void hist(struct out *o, const char *name, const char *help, const struct node_hist *h)
{
    put(o, "# HELP raftfs_%s %s\n# TYPE raftfs_%s histogram\n", name, help, name);
    for (int i = 0; i < NODE_HIST_BUCKETS; i++)
        put(o, "raftfs_%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bucket_le[i], h->buckets[i]);
    put(o, "raftfs_%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->count);
    put(o, "raftfs_%s_sum %.6f\nraftfs_%s_count %" PRIu64 "\n", name, h->sum, name, h->count);
}

size_t node_metrics_render(struct node *n, char *buf, size_t cap)
{
    struct node_metrics m;
    struct node_status st;
    struct node_stats stats;
    pthread_mutex_lock(&n->mu);
    m = n->metrics;
    st = n->status;
    stats = n->stats;
    pthread_mutex_unlock(&n->mu);
    uint64_t pin, pout, cin, cout;
    net_counters_load(&n->peer_io, &pin, &pout);
    net_counters_load(&n->client_io, &cin, &cout);
    struct out o = {.buf = buf, .cap = cap};
    gauge(&o, "member_id", "This member's id.", st.id);
    gauge(&o, "is_leader", "1 if this member is the leader.", st.leader && st.leader == st.id);
    gauge(&o, "term", "The current Raft term.", st.term);
    gauge(&o, "commit_index", "The highest log index known committed.", st.commit);
    gauge(&o, "applied_index", "The highest log index applied here.", st.applied);
    gauge(&o, "revision", "The store's revision.", st.revision);
    counter(&o, "proposals_applied_total", "Commands applied here.", stats.proposals);
    counter(&o, "proposals_failed_total", "Requests that ended with a node error.", stats.failed);
    counter(&o, "apply_batches_total", "Apply transactions.", stats.batches);
    counter(&o, "read_rounds_total", "Read barriers asked of the leader (ReadIndex).",
            stats.read_rounds);
    counter(&o, "read_local_total",
            "Read barriers of write-only opens this leader answered from its commit index.",
            stats.read_local);
    counter(&o, "read_published_total",
            "Of those, answered on the opener's own thread from the published commit point.",
            stats.read_published);
    counter(&o, "elections_total", "Elections this member started (as a candidate).", m.elections);
    counter(&o, "leader_changes_total", "Times this member saw a new leader.", m.leader_changes);
    counter(&o, "snapshots_taken_total", "Snapshots taken here (log compactions).",
            m.snapshots_taken);
    counter(&o, "snapshots_installed_total", "Snapshots received and installed.",
            m.snapshots_installed);
    counter(&o, "snapshots_sent_total",
            "Snapshot transfers to followers started (first chunk read).", m.snapshots_sent);
    counter(&o, "snapshot_chunks_sent_total", "Snapshot chunks read for followers.",
            m.snapshot_chunks_sent);
    counter(&o, "snapshot_chunks_received_total", "Snapshot chunks received.",
            m.snapshot_chunks_received);
    counter(&o, "peer_bytes_in_total", "Bytes received on connections with other members.", pin);
    counter(&o, "peer_bytes_out_total", "Bytes sent on connections with other members.", pout);
    counter(&o, "client_bytes_in_total", "Bytes received from clients.", cin);
    counter(&o, "client_bytes_out_total", "Bytes sent to clients.", cout);
    hist(&o, "proposal_seconds", "From a proposal's submission to its application here.",
         &m.proposal);
    hist(&o, "log_persist_seconds", "Writing (and fsync'ing) hard state and log entries.",
         &m.persist);
    hist(&o, "apply_seconds", "One apply transaction.", &m.apply);
    hist(&o, "read_index_seconds", "From a read barrier's request to its read point applied.",
         &m.read_index);
    return o.len;
}

static void put_json_string(struct out *o, const char *s)
{
    put(o, "\"");
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(o, "\\%c", c);
        else if (c < 0x20)
            put(o, "\\u%04x", c);
        else
            put(o, "%c", c);
    }
    put(o, "\"");
}

size_t node_status_json(const struct node_status *st, char *buf, size_t cap)
{
    struct out o = {.buf = buf, .cap = cap};
    put(&o, "{\"id\": %" PRIu64 ", \"cluster_id\": \"%016" PRIx64 "\", \"role\": ", st->id,
        st->cluster_id);
    put_json_string(&o, st->role);
    put(&o, ", \"config\": ");
    put_json_string(&o, st->config ? st->config : "unknown");
    put(&o,
        ", \"term\": %" PRIu64 ", \"leader\": %" PRIu64 ", \"commit\": %" PRIu64
        ", \"applied\": %" PRIu64 ", \"revision\": %" PRIu64
        ", \"reads\": \"%s\", \"leader_contact_s\": %.3f, \"members\": [",
        st->term, st->leader, st->commit, st->applied, st->revision,
        st->serializable ? "serializable" : "linearizable", st->leader_contact_s);
    for (size_t i = 0; i < st->n_members; i++) {
        const struct node_member_status *m = &st->members[i];
        put(&o, "%s{\"id\": %" PRIu64 ", \"address\": ", i ? ", " : "", m->id);
        put_json_string(&o, m->addr);
        put(&o, ", \"role\": ");
        put_json_string(&o, m->role);
        put(&o, ", \"match\": %" PRIu64 ", \"last_contact_s\": %.3f, \"build\": ", m->match,
            m->last_contact_s);
        put_json_string(&o, m->build);
        put(&o, ", \"command_version\": %" PRIu32 "}", m->command_version);
    }
    put(&o, "]}\n");
    return o.len;
}

size_t node_members_text(const struct node_status *st, char *buf, size_t cap)
{
    struct out o = {.buf = buf, .cap = cap};
    for (size_t i = 0; i < st->n_members; i++)
        put(&o, "%" PRIu64 " %s %s\n", st->members[i].id,
            st->members[i].addr[0] ? st->members[i].addr : "-",
            st->members[i].role ? st->members[i].role : "-");
    return o.len;
}
