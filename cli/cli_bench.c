/* cli_bench.c - `raftfs bench`: a closed-loop load generator over the
 * client protocol. N clients (a thread and a connection each) send one
 * request, wait for its answer, and send the next, for a duration; it
 * prints the throughput and the latency quantiles of the requests that
 * succeeded (bench/bench_hist.h: at most 1.6% above the true value).
 *
 * put writes values of --value-size bytes to --keys keys under /bench
 * (a proposal each, committed by a majority); get reads them with
 * ReadIndex (linearizable), sget from the member's own state
 * (serializable). Before get and sget it writes the keys once. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_hist.h"
#include "cli.h"
#include "net_client.h"
#include "store.h"

const char cli_bench_usage[] =
    "usage: raftfs bench [OPTIONS]\n"
    "\n"
    "A closed-loop load generator: each client sends a request, waits for the\n"
    "answer, sends the next. Prints ops/s and latency quantiles.\n"
    "\n"
    "options:\n"
    "  --endpoints HOST:PORT[,...]  members to talk to (default $RAFTFS_ENDPOINTS, or\n"
    "                               " CLI_DEFAULT_ENDPOINTS ")\n"
    "  --op put|get|sget            put: replicated writes; get: linearizable reads;\n"
    "                               sget: serializable reads (default put)\n"
    "  --clients N                  concurrent clients, 1..1024 (default 1)\n"
    "  --value-size BYTES           size of each value, e.g. 256 or 4K (default 256)\n"
    "  --keys N                     distinct keys, under /bench (default 1000)\n"
    "  --duration SECONDS           how long to run (default 10)\n"
    "  --requests N                 stop after N requests in all (or at --duration)\n"
    "  --timeout SECONDS            give up on one request after this long (default 5)\n"
    "  --json                       print the result as one JSON object\n"
    "\n"
    "Exit status: 0 if every request succeeded, 1 if any failed (the result is\n"
    "still printed, with the failures by errno), 2 on a usage error.\n";

enum bench_op { OP_PUT, OP_GET, OP_SGET };
static const char *const op_names[] = {"put", "get", "sget"};

#define MAX_CLIENTS 1024
#define MAX_ERRNO   256

struct bench {
    const char *endpoints;
    enum bench_op op;
    unsigned clients;
    uint64_t value_size;
    unsigned keys;
    double duration_s, timeout_s;
    uint64_t requests; /* 0: no limit */
    uint64_t issued;   /* requests started, by all clients (atomic) */
    bool json;
    char *value;
    /* the start gate: clients connect, then wait for go */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool go;
    uint64_t deadline_ns; /* set before go; 0: stop at once */
};

struct worker {
    struct bench *b;
    unsigned id;
    pthread_t thread;
    struct bench_hist hist;
    uint64_t errors[MAX_ERRNO + 1]; /* by errno; the last: above that */
    char first_error[256];
    unsigned first_key, n_keys; /* for preparing: this worker's share */
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void key_name(char *buf, size_t len, unsigned k)
{
    snprintf(buf, len, "/bench/k%06u", k);
}

/* One request: 0, the member's errno, or the client's (no answer). */
static int one_request(struct worker *w, struct net_client *c, enum bench_op op, unsigned k)
{
    char key[32];
    if (k == UINT32_MAX)
        snprintf(key, sizeof(key), "/bench");
    else
        key_name(key, sizeof(key), k);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__Command cmd = RAFTFS__COMMAND__INIT;
    Raftfs__Put put = RAFTFS__PUT__INIT;
    Raftfs__Mkdir mk = RAFTFS__MKDIR__INIT;
    Raftfs__GetRequest get = RAFTFS__GET_REQUEST__INIT;
    if (op == OP_PUT || k == UINT32_MAX) {
        cmd.version = STORE_CMD_VERSION;
        cmd.time_ns = real_ns();
        req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
        req.write = &cmd;
        if (k == UINT32_MAX) { /* the folder */
            mk.path.data = (uint8_t *)"/bench";
            mk.path.len = 6;
            mk.mode = 0755;
            cmd.op_case = RAFTFS__COMMAND__OP_MKDIR;
            cmd.mkdir = &mk;
        } else {
            put.path.data = (uint8_t *)key;
            put.path.len = strlen(key);
            put.value.data = (uint8_t *)w->b->value;
            put.value.len = w->b->value_size;
            put.mode = 0644;
            cmd.op_case = RAFTFS__COMMAND__OP_PUT;
            cmd.put = &put;
        }
    } else {
        get.path.data = (uint8_t *)key;
        get.path.len = strlen(key);
        get.has_consistency = true;
        get.consistency =
            op == OP_SGET ? RAFTFS__CONSISTENCY__SERIALIZABLE : RAFTFS__CONSISTENCY__LINEARIZABLE;
        req.op_case = RAFTFS__CLIENT_REQUEST__OP_GET;
        req.get = &get;
    }
    Raftfs__ClientResponse *resp = NULL;
    int rc = net_client_call(c, &req, &resp);
    const char *why = rc ? net_client_error(c) : NULL;
    if (!rc) {
        rc = resp->err;
        why = resp->message;
        /* a read must bring the whole value back */
        if (!rc && op != OP_PUT && k != UINT32_MAX &&
            (!resp->has_value || resp->value.len != w->b->value_size)) {
            rc = EPROTO;
            why = "a read answered without the value written";
        }
    }
    if (rc && !w->first_error[0])
        snprintf(w->first_error, sizeof(w->first_error), "%s: %s%s%s", key, strerror(rc),
                 why && *why ? ": " : "", why && *why ? why : "");
    net_client_response_free(resp);
    return rc;
}

static int open_client(struct worker *w, struct net_client **c)
{
    struct net_client_config cfg = {.endpoints = w->b->endpoints,
                                    .timeout_ms = (int)(w->b->timeout_s * 1000)};
    char err[200];
    int rc = net_client_open(c, &cfg, err, sizeof(err));
    if (rc)
        snprintf(w->first_error, sizeof(w->first_error), "%s", err);
    return rc;
}

static void count_error(struct worker *w, int rc)
{
    w->errors[rc > 0 && rc < MAX_ERRNO ? rc : MAX_ERRNO]++;
}

/* Writes this worker's share of the keys (before get/sget). */
static void *prepare_main(void *arg)
{
    struct worker *w = arg;
    struct net_client *c;
    if (open_client(w, &c)) {
        count_error(w, EINVAL);
        return NULL;
    }
    for (unsigned k = w->first_key; k < w->first_key + w->n_keys; k++) {
        int rc = one_request(w, c, OP_PUT, k);
        if (rc)
            count_error(w, rc);
    }
    net_client_close(c);
    return NULL;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    struct net_client *c = NULL;
    int open_rc = open_client(w, &c);
    pthread_mutex_lock(&b->mu);
    while (!b->go)
        pthread_cond_wait(&b->cond, &b->mu);
    pthread_mutex_unlock(&b->mu);
    if (open_rc) {
        count_error(w, EINVAL);
        return NULL;
    }
    /* Each client walks the keys from its own place. */
    unsigned k = (unsigned)(((uint64_t)w->id * b->keys) / b->clients);
    for (;;) {
        uint64_t t0 = mono_ns();
        if (t0 >= b->deadline_ns)
            break;
        if (b->requests && __atomic_fetch_add(&b->issued, 1, __ATOMIC_RELAXED) >= b->requests)
            break;
        int rc = one_request(w, c, b->op, k);
        uint64_t t1 = mono_ns();
        if (rc)
            count_error(w, rc);
        else
            bench_hist_add(&w->hist, t1 - t0);
        if (++k == b->keys)
            k = 0;
    }
    net_client_close(c);
    return NULL;
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "raftfs bench: %s\nRun 'raftfs help bench' for usage.\n", msg);
    return 2;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
        return EINVAL;
    *out = (unsigned)v;
    return 0;
}

static int parse_seconds(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < lo || v > hi)
        return EINVAL;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct bench *b)
{
    static const struct option longopts[] = {
        {"endpoints", required_argument, NULL, 'e'},
        {"op", required_argument, NULL, 'o'},
        {"clients", required_argument, NULL, 'c'},
        {"value-size", required_argument, NULL, 'v'},
        {"keys", required_argument, NULL, 'k'},
        {"duration", required_argument, NULL, 'd'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"requests", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    b->endpoints = getenv("RAFTFS_ENDPOINTS");
    if (!b->endpoints || !*b->endpoints)
        b->endpoints = CLI_DEFAULT_ENDPOINTS;
    b->op = OP_PUT;
    b->clients = 1;
    b->value_size = 256;
    b->keys = 1000;
    b->duration_s = 10;
    b->timeout_s = 5;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            b->endpoints = optarg;
            break;
        case 'o':
            if (!strcmp(optarg, "put"))
                b->op = OP_PUT;
            else if (!strcmp(optarg, "get"))
                b->op = OP_GET;
            else if (!strcmp(optarg, "sget"))
                b->op = OP_SGET;
            else
                return usage_error("bad --op (put, get or sget)");
            break;
        case 'c':
            if (parse_uint(optarg, 1, MAX_CLIENTS, &b->clients))
                return usage_error("bad --clients (1 to 1024)");
            break;
        case 'v':
            /* the store's bound; a member may be configured lower, and
             * then refuses each put with EFBIG */
            if (cli_parse_size(optarg, STORE_MAX_VALUE_BYTES_BOUND, &b->value_size))
                return usage_error("bad --value-size (bytes, e.g. 256 or 4K)");
            break;
        case 'k':
            if (parse_uint(optarg, 1, 1000000, &b->keys))
                return usage_error("bad --keys (1 to 1000000)");
            break;
        case 'd':
            if (parse_seconds(optarg, 0.1, 86400, &b->duration_s))
                return usage_error("bad --duration (seconds, 0.1 to 86400)");
            break;
        case 't':
            if (parse_seconds(optarg, 0.01, 3600, &b->timeout_s))
                return usage_error("bad --timeout (seconds, up to 3600)");
            break;
        case 'j':
            b->json = true;
            break;
        case 'r': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-' || !v)
                return usage_error("bad --requests (a count, at least 1)");
            b->requests = v;
            break;
        }
        case 'h':
            fputs(cli_bench_usage, stdout);
            return -1;
        default:
            return usage_error(optopt ? "unknown or incomplete option" : "unknown option");
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument");
    return 0;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void print_result(const struct bench *b, const struct worker *ws, double elapsed_s,
                         const struct bench_hist *h, uint64_t errors)
{
    static const double qs[] = {0.5, 0.9, 0.99, 0.999};
    static const char *const qnames[] = {"p50", "p90", "p99", "p99.9"};
    static const char *const qkeys[] = {"p50", "p90", "p99", "p999"};
    double rate = elapsed_s > 0 ? (double)h->n / elapsed_s : 0;
    if (b->json) {
        printf("{\"op\": \"%s\", \"clients\": %u, \"value_size\": %llu, \"keys\": %u, "
               "\"duration_s\": %.3f, \"ops\": %llu, \"errors\": %llu, \"ops_per_s\": %.1f, "
               "\"latency_ms\": {",
               op_names[b->op], b->clients, (unsigned long long)b->value_size, b->keys, elapsed_s,
               (unsigned long long)h->n, (unsigned long long)errors, rate);
        for (size_t i = 0; i < 4; i++)
            printf("\"%s\": %.3f, ", qkeys[i], ms(bench_hist_quantile(h, qs[i])));
        printf("\"max\": %.3f, \"mean\": %.3f}, \"errors_by_errno\": {", ms(h->n ? h->max : 0),
               bench_hist_mean(h) / 1e6);
        bool first = true;
        for (int e = 1; e <= MAX_ERRNO; e++) {
            uint64_t n = 0;
            for (unsigned i = 0; i < b->clients; i++)
                n += ws[i].errors[e];
            if (n) {
                printf("%s\"%s\": %llu", first ? "" : ", ",
                       e < MAX_ERRNO ? strerrorname_np(e) : "other", (unsigned long long)n);
                first = false;
            }
        }
        printf("}}\n");
        return;
    }
    printf("op %s, %u client%s, values of %llu bytes on %u keys, %.2f s\n", op_names[b->op],
           b->clients, b->clients == 1 ? "" : "s", (unsigned long long)b->value_size, b->keys,
           elapsed_s);
    printf("%llu ops, %llu errors, %.1f ops/s\n", (unsigned long long)h->n,
           (unsigned long long)errors, rate);
    printf("latency (ms):");
    for (size_t i = 0; i < 4; i++)
        printf(" %s %.3f", qnames[i], ms(bench_hist_quantile(h, qs[i])));
    printf(" max %.3f mean %.3f\n", ms(h->n ? h->max : 0), bench_hist_mean(h) / 1e6);
    for (int e = 1; e <= MAX_ERRNO; e++) {
        uint64_t n = 0;
        for (unsigned i = 0; i < b->clients; i++)
            n += ws[i].errors[e];
        if (n)
            printf("errors: %llu x %s\n", (unsigned long long)n,
                   e < MAX_ERRNO ? strerror(e) : "other");
    }
}

/* Runs fn on every worker in threads and waits for them. */
static int run_threads(struct worker *ws, unsigned n, void *(*fn)(void *))
{
    unsigned started = 0;
    int rc = 0;
    for (; started < n; started++)
        if ((rc = pthread_create(&ws[started].thread, NULL, fn, &ws[started])))
            break;
    for (unsigned i = 0; i < started; i++)
        pthread_join(ws[i].thread, NULL);
    return rc;
}

static uint64_t error_total(const struct worker *ws, unsigned n, const char **first)
{
    uint64_t total = 0;
    *first = NULL;
    for (unsigned i = 0; i < n; i++) {
        for (int e = 0; e <= MAX_ERRNO; e++)
            total += ws[i].errors[e];
        if (!*first && ws[i].first_error[0])
            *first = ws[i].first_error;
    }
    return total;
}

int cli_bench(int argc, char **argv)
{
    struct bench b = {0};
    int rc = parse_args(argc, argv, &b);
    if (rc)
        return rc < 0 ? 0 : rc;
    b.value = malloc(b.value_size ? b.value_size : 1);
    struct worker *ws = calloc(b.clients, sizeof(*ws));
    if (!b.value || !ws) {
        fprintf(stderr, "raftfs bench: out of memory\n");
        free(b.value);
        free(ws);
        return 1;
    }
    for (uint64_t i = 0; i < b.value_size; i++)
        b.value[i] = (char)('a' + i % 26);
    for (unsigned i = 0; i < b.clients; i++) {
        ws[i].b = &b;
        ws[i].id = i;
        bench_hist_init(&ws[i].hist);
    }
    const char *first = NULL;
    /* The folder, then (for reads) the keys, written once. */
    {
        struct net_client *c;
        if ((rc = open_client(&ws[0], &c))) {
            fprintf(stderr, "raftfs bench: %s\n", ws[0].first_error);
            goto out;
        }
        rc = one_request(&ws[0], c, OP_PUT, UINT32_MAX);
        net_client_close(c);
        if (rc && rc != EEXIST) {
            fprintf(stderr, "raftfs bench: cannot make /bench: %s\n", ws[0].first_error);
            rc = 1;
            goto out;
        }
        ws[0].first_error[0] = 0;
    }
    if (b.op != OP_PUT) {
        unsigned n = b.clients < b.keys ? b.clients : b.keys;
        for (unsigned i = 0; i < n; i++) {
            ws[i].first_key = (unsigned)(((uint64_t)i * b.keys) / n);
            ws[i].n_keys = (unsigned)(((uint64_t)(i + 1) * b.keys) / n) - ws[i].first_key;
        }
        if (!b.json)
            fprintf(stderr, "raftfs bench: writing %u keys of %llu bytes to read\n", b.keys,
                    (unsigned long long)b.value_size);
        run_threads(ws, n, prepare_main);
        if (error_total(ws, n, &first)) {
            fprintf(stderr, "raftfs bench: cannot write the keys to read: %s\n", first);
            rc = 1;
            goto out;
        }
    }
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cond, NULL);
    unsigned started = 0;
    for (; started < b.clients; started++)
        if (pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]))
            break;
    uint64_t t0 = mono_ns();
    pthread_mutex_lock(&b.mu);
    b.deadline_ns = started < b.clients ? 0 : t0 + (uint64_t)(b.duration_s * 1e9);
    b.go = true;
    pthread_cond_broadcast(&b.cond);
    pthread_mutex_unlock(&b.mu);
    for (unsigned i = 0; i < started; i++)
        pthread_join(ws[i].thread, NULL);
    double elapsed = (double)(mono_ns() - t0) / 1e9;
    pthread_cond_destroy(&b.cond);
    pthread_mutex_destroy(&b.mu);
    if (started < b.clients) {
        fprintf(stderr, "raftfs bench: cannot start %u clients (started %u)\n", b.clients, started);
        rc = 1;
        goto out;
    }
    struct bench_hist *all = malloc(sizeof(*all));
    if (!all) {
        rc = 1;
        goto out;
    }
    bench_hist_init(all);
    for (unsigned i = 0; i < b.clients; i++)
        bench_hist_merge(all, &ws[i].hist);
    uint64_t errors = error_total(ws, b.clients, &first);
    print_result(&b, ws, elapsed, all, errors);
    if (errors)
        fprintf(stderr, "raftfs bench: %llu requests failed; the first: %s\n",
                (unsigned long long)errors, first ? first : "?");
    rc = errors ? 1 : 0;
    free(all);
out:
    free(b.value);
    free(ws);
    return rc;
}
