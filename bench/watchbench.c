/* watchbench.c - how fast a change reaches a watcher on another member.
 *
 *   watchbench latency  --write HOST:PORT --watch HOST:PORT [--count N] [--pause-ms MS]
 *   watchbench rate     --write HOST:PORT --watch HOST:PORT [--seconds S] [--batch K]
 *                       [--writers W]
 *
 * latency: one writer puts /watchbench/k (N times, a pause between) at one
 * member while a watch of /watchbench runs at another; for each change it
 * records from the put's send, and from its acknowledgement (committed),
 * to the event's arrival, and prints p50/p99/max of both.
 * rate: W writers send txns of K puts each as fast as they can for S
 * seconds; the watcher counts the events it gets. It prints the writes'
 * events/s and the watcher's, and how long after the last write the
 * watcher had every event (whether a single watcher keeps up).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_hist.h"
#include "net_client.h"
#include "store.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct net_client *open_client(const char *ep)
{
    struct net_client_config cfg = {.endpoints = ep, .timeout_ms = 10000};
    struct net_client *c;
    char err[256];
    if (net_client_open(&c, &cfg, err, sizeof(err))) {
        fprintf(stderr, "watchbench: %s\n", err);
        exit(2);
    }
    return c;
}

/* Sends cmd as a write; its revision, or 0 on failure. */
static uint64_t write_cmd(struct net_client *c, const struct store_cmd *cmd)
{
    void *buf;
    size_t len;
    if (store_cmd_encode(cmd, &buf, &len))
        return 0;
    Raftfs__Command *m = raftfs__command__unpack(NULL, len, buf);
    free(buf);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
    req.write = m;
    Raftfs__ClientResponse *r = NULL;
    uint64_t rev = 0;
    if (!net_client_call(c, &req, &r) && !r->err)
        rev = r->revision;
    net_client_response_free(r);
    raftfs__command__free_unpacked(m, NULL);
    return rev;
}

/* Starts a watch of prefix; the stream's id. */
static uint64_t start_watch(struct net_client *c, const char *prefix, uint64_t *start)
{
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__WatchRequest w = RAFTFS__WATCH_REQUEST__INIT;
    w.prefix.data = (uint8_t *)prefix;
    w.prefix.len = strlen(prefix);
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WATCH;
    req.watch = &w;
    Raftfs__ClientResponse *r = NULL;
    if (net_client_call(c, &req, &r) || r->err) {
        fprintf(stderr, "watchbench: cannot watch: %s\n", r ? strerror(r->err) : "no answer");
        exit(1);
    }
    *start = r->revision;
    net_client_response_free(r);
    return req.id;
}

struct watcher {
    struct net_client *c;
    uint64_t id;
    _Atomic uint64_t events, last_rev;
    _Atomic bool stop;
    /* latency: arrival time of each revision (index rev - base) */
    uint64_t base;
    uint64_t *arrival;
    size_t cap;
};

static void *watch_main(void *arg)
{
    struct watcher *w = arg;
    while (!atomic_load(&w->stop)) {
        Raftfs__ClientResponse *r = NULL;
        int rc = net_client_next(w->c, w->id, 200, &r);
        if (rc == ETIMEDOUT)
            continue;
        if (rc) {
            fprintf(stderr, "watchbench: the watch broke: %s\n", strerror(rc));
            exit(1);
        }
        uint64_t t = now_ns();
        for (size_t i = 0; i < r->n_events; i++) {
            uint64_t rev = r->events[i]->revision;
            if (w->arrival && rev > w->base && rev - w->base < w->cap && !w->arrival[rev - w->base])
                w->arrival[rev - w->base] = t;
            atomic_store(&w->last_rev, rev);
        }
        atomic_fetch_add(&w->events, r->n_events);
        net_client_response_free(r);
    }
    return NULL;
}

static void print_hist(const char *what, const struct bench_hist *h)
{
    printf("%-28s n %llu  p50 %.3f ms  p99 %.3f ms  max %.3f ms  mean %.3f ms\n", what,
           (unsigned long long)h->n, bench_hist_quantile(h, 0.5) / 1e6,
           bench_hist_quantile(h, 0.99) / 1e6, h->max / 1e6, bench_hist_mean(h) / 1e6);
}

static int latency(const char *wep, const char *vep, int count, int pause_ms)
{
    struct net_client *wc = open_client(wep), *vc = open_client(vep);
    struct watcher w = {.c = vc};
    uint64_t start;
    w.id = start_watch(vc, "/watchbench", &start);
    w.base = start;
    w.cap = (size_t)count * 4 + 16;
    w.arrival = calloc(w.cap, sizeof(*w.arrival));
    uint64_t *sent = calloc(w.cap, sizeof(*sent)), *acked = calloc(w.cap, sizeof(*acked));
    pthread_t th;
    pthread_create(&th, NULL, watch_main, &w);
    struct store_cmd mk = {.op = STORE_OP_MKDIR, .path = "/watchbench", .path_len = 11,
                           .mode = 0755};
    write_cmd(wc, &mk); /* may exist */
    for (int i = 0; i < count; i++) {
        char v[32];
        int vl = snprintf(v, sizeof(v), "%d", i);
        struct store_cmd p = {.op = STORE_OP_PUT, .path = "/watchbench/k", .path_len = 13,
                              .value = v, .value_len = (size_t)vl, .mode = 0644};
        uint64_t t0 = now_ns();
        uint64_t rev = write_cmd(wc, &p);
        uint64_t t1 = now_ns();
        if (rev > w.base && rev - w.base < w.cap) {
            sent[rev - w.base] = t0;
            acked[rev - w.base] = t1;
        }
        if (pause_ms)
            usleep((useconds_t)pause_ms * 1000);
    }
    usleep(500000); /* the last events arrive */
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    struct bench_hist from_send, from_ack;
    bench_hist_init(&from_send);
    bench_hist_init(&from_ack);
    size_t early = 0, missing = 0;
    for (size_t i = 0; i < w.cap; i++) {
        if (!sent[i])
            continue;
        if (!w.arrival[i]) {
            missing++;
            continue;
        }
        bench_hist_add(&from_send, w.arrival[i] - sent[i]);
        if (w.arrival[i] >= acked[i])
            bench_hist_add(&from_ack, w.arrival[i] - acked[i]);
        else
            early++, bench_hist_add(&from_ack, 0);
    }
    printf("latency: %d puts at %s, watched at %s, %d ms apart\n", count, wep, vep, pause_ms);
    print_hist("send -> event delivered", &from_send);
    print_hist("commit ack -> event delivered", &from_ack);
    printf("events before the ack reached the writer: %zu; missing: %zu\n", early, missing);
    net_client_close(wc);
    net_client_close(vc);
    return missing ? 1 : 0;
}

struct writer {
    const char *ep;
    int id, batch;
    double seconds;
    uint64_t events, last_rev;
};

static void *writer_main(void *arg)
{
    struct writer *wr = arg;
    struct net_client *c = open_client(wr->ep);
    struct store_cmd *ops = calloc((size_t)wr->batch, sizeof(*ops));
    char (*paths)[48] = calloc((size_t)wr->batch, sizeof(*paths));
    for (int i = 0; i < wr->batch; i++) {
        snprintf(paths[i], sizeof(paths[i]), "/watchbench/w%d-%d", wr->id, i);
        ops[i] = (struct store_cmd){.op = STORE_OP_PUT, .path = paths[i],
                                    .path_len = strlen(paths[i]), .value = "v", .value_len = 1,
                                    .mode = 0644};
    }
    uint64_t end = now_ns() + (uint64_t)(wr->seconds * 1e9);
    while (now_ns() < end) {
        struct store_cmd t = {.op = STORE_OP_TXN, .then_ops = ops, .n_then = (size_t)wr->batch};
        uint64_t rev = wr->batch == 1 ? write_cmd(c, &ops[0]) : write_cmd(c, &t);
        if (rev) {
            wr->events += (uint64_t)wr->batch;
            if (rev > wr->last_rev)
                wr->last_rev = rev;
        }
    }
    free(ops);
    free(paths);
    net_client_close(c);
    return NULL;
}

static int rate(const char *wep, const char *vep, double seconds, int batch, int writers)
{
    struct net_client *vc = open_client(vep), *mc = open_client(wep);
    struct store_cmd mk = {.op = STORE_OP_MKDIR, .path = "/watchbench", .path_len = 11,
                           .mode = 0755};
    write_cmd(mc, &mk);
    net_client_close(mc);
    struct watcher w = {.c = vc};
    uint64_t start;
    w.id = start_watch(vc, "/watchbench", &start);
    pthread_t th, wt[64];
    pthread_create(&th, NULL, watch_main, &w);
    struct writer wr[64];
    uint64_t t0 = now_ns();
    for (int i = 0; i < writers; i++) {
        wr[i] = (struct writer){.ep = wep, .id = i, .batch = batch, .seconds = seconds};
        pthread_create(&wt[i], NULL, writer_main, &wr[i]);
    }
    uint64_t written = 0, last = 0;
    for (int i = 0; i < writers; i++) {
        pthread_join(wt[i], NULL);
        written += wr[i].events;
        if (wr[i].last_rev > last)
            last = wr[i].last_rev;
    }
    uint64_t t_end = now_ns(), seen_at = 0;
    uint64_t got_at_end = atomic_load(&w.events);
    while (now_ns() < t_end + 30000000000ULL) {
        if (atomic_load(&w.last_rev) >= last) {
            seen_at = now_ns();
            break;
        }
        usleep(1000);
    }
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    double dur = (t_end - t0) / 1e9;
    uint64_t got = atomic_load(&w.events);
    printf("rate: %d writers, txns of %d puts, %.1f s, at %s, watched at %s\n", writers, batch,
           dur, wep, vep);
    printf("written   %llu events, %.0f events/s\n", (unsigned long long)written, written / dur);
    printf("watcher   %llu events by the end of the writes (%.0f events/s), %llu in all\n",
           (unsigned long long)got_at_end, got_at_end / dur, (unsigned long long)got);
    if (seen_at)
        printf("watcher had every event %.3f s after the last write\n", (seen_at - t_end) / 1e9);
    else
        printf("watcher had not caught up 30 s after the last write\n");
    net_client_close(vc);
    return got >= written && seen_at ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"write", required_argument, NULL, 'w'},   {"watch", required_argument, NULL, 'v'},
        {"count", required_argument, NULL, 'n'},   {"pause-ms", required_argument, NULL, 'p'},
        {"seconds", required_argument, NULL, 's'}, {"batch", required_argument, NULL, 'b'},
        {"writers", required_argument, NULL, 'W'}, {NULL, 0, NULL, 0},
    };
    const char *wep = NULL, *vep = NULL;
    int count = 1000, pause_ms = 5, batch = 1, writers = 4, o;
    double seconds = 10;
    if (argc < 2 || (strcmp(argv[1], "latency") && strcmp(argv[1], "rate"))) {
        fprintf(stderr, "usage: watchbench latency|rate --write HOST:PORT --watch HOST:PORT ...\n");
        return 2;
    }
    optind = 2;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'w':
            wep = optarg;
            break;
        case 'v':
            vep = optarg;
            break;
        case 'n':
            count = atoi(optarg);
            break;
        case 'p':
            pause_ms = atoi(optarg);
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case 'b':
            batch = atoi(optarg);
            break;
        case 'W':
            writers = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    if (!wep || !vep || count < 1 || pause_ms < 0 || seconds <= 0 || batch < 1 ||
        batch > STORE_MAX_TXN_OPS || writers < 1 || writers > 64) {
        fprintf(stderr, "watchbench: --write and --watch are needed; bad numbers refused\n");
        return 2;
    }
    return !strcmp(argv[1], "latency") ? latency(wep, vep, count, pause_ms)
                                       : rate(wep, vep, seconds, batch, writers);
}
