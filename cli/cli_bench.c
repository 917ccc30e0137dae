/* cli_bench.c - `raftfs bench`: a closed-loop load generator over the
 * client protocol. N clients (a thread each) send one request, wait for
 * its answer, and send the next, for a duration after a warm-up; it prints
 * the throughput and the latency quantiles of the requests that succeeded
 * in the measured window (bench/bench_hist.h: at most 1.6% above the true
 * value).
 *
 * The clients share M connections (default: one each). A member answers
 * the requests of a connection by id, in any order, so several clients
 * have a request in flight on one connection at once: see struct sconn.
 *
 * put writes values of --value-size bytes to --keys keys under /bench
 * (a proposal each, committed by a majority); get reads them with
 * ReadIndex (linearizable), sget from the member's own state
 * (serializable). Before get and sget it writes the keys once. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_hist.h"
#include "cli.h"
#include "net_client.h"
#include "net_conn.h"
#include "net_frame.h"
#include "net_wire.h"
#include "store.h"

const char cli_bench_usage[] =
    "usage: raftfs bench [OPTIONS]\n"
    "\n"
    "A closed-loop load generator: each client sends a request, waits for the\n"
    "answer, sends the next. Prints ops/s and latency quantiles of the requests\n"
    "of the measured window (after the warm-up).\n"
    "\n"
    "options:\n"
    "  --endpoints HOST:PORT[,...]  members to talk to (default $RAFTFS_ENDPOINTS, or\n"
    "                               " CLI_DEFAULT_ENDPOINTS ");\n"
    "                               each connection uses the first that answers\n"
    "  --op put|get|sget            put: replicated writes; get: linearizable reads;\n"
    "                               sget: serializable reads (default put)\n"
    "  --clients N                  concurrent clients, 1..1024 (default 1)\n"
    "  --connections M              connections the clients share, 1..N (default N:\n"
    "                               one each); client i uses connection i mod M, and\n"
    "                               the clients of a connection have their requests\n"
    "                               in flight on it together\n"
    "  --value-size BYTES           size of each value, e.g. 256 or 4K (default 256)\n"
    "  --keys N                     distinct keys, under /bench, 1..1000000 (default 1000)\n"
    "  --key-size BYTES             length of each key's name in /bench: 'k' and the\n"
    "                               key's number, zero-padded; at least 1 + the digits\n"
    "                               of N-1, at most 255 (default 7: /bench/k000042)\n"
    "  --key-order walk|uniform     walk: each client goes through the keys in order\n"
    "                               from its own place (default); uniform: each request\n"
    "                               draws its key uniformly at random\n"
    "  --warmup SECONDS             run this long first without counting (default 0)\n"
    "  --duration SECONDS           how long to measure (default 10)\n"
    "  --requests N                 stop after N measured requests in all (or at\n"
    "                               --duration)\n"
    "  --timeout SECONDS            give up on one request after this long, retries\n"
    "                               included (default 5)\n"
    "  --json                       print the result as one JSON object\n"
    "\n"
    "Before get and sget it writes every key once (with 256 writers at least).\n"
    "\n"
    "Exit status: 0 if every measured request succeeded, 1 if any failed (the\n"
    "result is still printed, with the failures by errno), 2 on a usage error.\n"
    "TLS options (for members that use TLS):\n" CLI_TLS_HELP;

enum bench_op { OP_PUT, OP_GET, OP_SGET };
static const char *const op_names[] = {"put", "get", "sget"};

#define MAX_CLIENTS     1024
#define MAX_ERRNO       256
#define KEY_SIZE_MAX    STORE_MAX_NAME_BYTES_BOUND
#define MAX_FRAME       (80U << 20) /* the largest answer accepted, as net_client's */
#define PREPARE_WRITERS 256         /* writers of the keys before get and sget, at least */

struct sconn;

struct bench {
    const char *endpoints;
    struct net_addr eps[NET_CLIENT_MAX_ENDPOINTS];
    char ep_names[NET_CLIENT_MAX_ENDPOINTS][128];
    size_t n_eps;
    enum bench_op op;
    unsigned clients, connections;
    uint64_t value_size;
    unsigned keys, key_size;
    bool uniform;
    double duration_s, warmup_s, timeout_s;
    uint64_t requests; /* 0: no limit */
    uint64_t issued;   /* measured requests started, by all clients (atomic) */
    bool json;
    char *value;
    struct sconn *conns;
    struct worker *workers;
    /* the start gate: connections wait for go */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool go;
    uint64_t measure_ns;  /* set before go: the warm-up ends */
    uint64_t deadline_ns; /* set before go; 0: stop at once */
};

struct worker {
    struct bench *b;
    unsigned id;
    pthread_t thread;
    struct bench_hist hist;
    uint64_t errors[MAX_ERRNO + 1]; /* by errno; the last: above that */
    char first_error[512];
    unsigned first_key, n_keys; /* for preparing: this writer's share */
    uint64_t client_id, seq;    /* names each write, for exactly-once retries */
    uint64_t rng;
    unsigned walk; /* the next key of a walk */
    /* the request in flight, driven by its connection's thread */
    bool busy, measured, finished;
    unsigned key;
    uint64_t req_id, t0, deadline;
    uint8_t *frame; /* its bytes on the wire, to send again on a new connection */
    size_t frame_len, frame_cap;
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

static void key_name(const struct bench *b, char *buf, size_t len, unsigned k)
{
    snprintf(buf, len, "/bench/k%0*u", (int)b->key_size - 1, k);
}

/* ---- a connection shared by several clients ----
 *
 * One thread drives each connection and all of its clients: every client
 * has at most one request in flight (closed loop); the thread sends the
 * requests of the clients that are free in one write, reads whatever
 * answers have come, hands each to its client by request id, and goes
 * round again. No thread waits for another, so the load generator costs
 * little CPU next to the members it measures on the same machine. A failed
 * connection is made again (to the first endpoint that answers, like
 * net_client's) and the requests in flight are sent again, byte for byte
 * (a write keeps its client id and sequence number, so it is applied
 * once), until each one's deadline. */

struct sconn {
    struct bench *b;
    unsigned index;
    pthread_t thread;
    int fd;     /* connected and greeted, or -1 */
    size_t cur; /* endpoint in use or to try first */
    uint64_t next_id;
    uint8_t *in; /* bytes read, not yet a whole frame */
    size_t in_len, in_cap;
    uint8_t *out; /* requests to send */
    size_t out_len, out_cap;
    char err[256]; /* why the last connection failed */
};

/* Waits until fd is ready for events or deadline: 0, ETIMEDOUT, errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = mono_ns();
        if (now >= deadline)
            return ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)((deadline - now + 999999) / 1000000));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return errno;
    }
}

static int send_all(int fd, const uint8_t *p, size_t len, uint64_t deadline)
{
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc)
                return rc;
            continue;
        }
        return n < 0 ? errno : EPIPE;
    }
    return 0;
}

static int send_env(int fd, const Raftfs__Envelope *env, uint64_t deadline)
{
    size_t n = raftfs__envelope__get_packed_size(env);
    uint8_t stack[1024];
    uint8_t *buf =
        n + NET_FRAME_HEADER_BYTES <= sizeof(stack) ? stack : malloc(n + NET_FRAME_HEADER_BYTES);
    if (!buf)
        return ENOMEM;
    net_frame_header(buf, (uint32_t)n);
    raftfs__envelope__pack(env, buf + NET_FRAME_HEADER_BYTES);
    int rc = send_all(fd, buf, n + NET_FRAME_HEADER_BYTES, deadline);
    if (buf != stack)
        free(buf);
    return rc;
}

/* Reads what fd has into s->in (growing it): 0 when bytes came, EAGAIN
 * when none are there now, ECONNRESET at the end, or another errno. */
static int in_recv(struct sconn *s, int fd)
{
    if (s->in_cap - s->in_len < 65536) {
        size_t cap = s->in_cap ? s->in_cap * 2 : 65536;
        uint8_t *p = realloc(s->in, cap);
        if (!p)
            return ENOMEM;
        s->in = p;
        s->in_cap = cap;
    }
    for (;;) {
        ssize_t n = recv(fd, s->in + s->in_len, s->in_cap - s->in_len, MSG_DONTWAIT);
        if (n > 0) {
            s->in_len += (size_t)n;
            return 0;
        }
        if (n == 0)
            return ECONNRESET;
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? EAGAIN : errno;
    }
}

/* Reads from fd into s->in until at least one whole frame is there, and
 * unpacks the whole frames (up to max) into out. The reader only. 0 with
 * *n_out >= 1, ETIMEDOUT at deadline, or the connection's failure. */
static int read_frames(struct sconn *s, int fd, uint64_t deadline, Raftfs__Envelope **out,
                       size_t max, size_t *n_out)
{
    *n_out = 0;
    for (;;) {
        size_t off = 0;
        int rc = 0;
        while (*n_out < max) {
            const uint8_t *payload;
            size_t plen, used;
            rc = net_frame_parse(s->in + off, s->in_len - off, MAX_FRAME, &payload, &plen, &used);
            if (rc)
                break;
            Raftfs__Envelope *env = net_wire_unpack(payload, plen);
            off += used;
            if (!env) {
                rc = EPROTO;
                break;
            }
            out[(*n_out)++] = env;
        }
        if (off && off < s->in_len) /* s->in may still be NULL: nothing to move */
            memmove(s->in, s->in + off, s->in_len - off);
        s->in_len -= off;
        if (rc && rc != EAGAIN) {
            for (size_t i = 0; i < *n_out; i++)
                net_wire_free(out[i]);
            *n_out = 0;
            return rc;
        }
        if (*n_out)
            return 0;
        rc = in_recv(s, fd);
        if (rc == EAGAIN)
            rc = wait_fd(fd, POLLIN, deadline);
        if (rc)
            return rc;
    }
}

/* Connects to endpoint i and says Hello: 0 with *out_fd, or an errno with
 * the reason in err. Called by the one connecting client, unlocked (while
 * there is no connection, nobody reads: s->in is free). */
static int connect_ep(struct sconn *s, size_t i, uint64_t deadline, int *out_fd, char *err,
                      size_t err_len)
{
    const struct bench *b = s->b;
    int fd, rc = net_dial(&b->eps[i], &fd);
    if (rc) {
        snprintf(err, err_len, "%s: %s", b->ep_names[i], strerror(rc));
        return rc;
    }
    if ((rc = wait_fd(fd, POLLOUT, deadline)))
        goto fail;
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if ((rc = soerr))
        goto fail;
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    Raftfs__Hello hello = RAFTFS__HELLO__INIT;
    hello.protocol_version = NET_WIRE_VERSION;
    struct net_client_config login = {0};
    cli_auth_config(&login);
    if (login.user) {
        hello.has_user = true;
        hello.user.data = (uint8_t *)login.user;
        hello.user.len = strlen(login.user);
        hello.has_password = login.password != NULL;
        hello.password.data = (uint8_t *)login.password;
        hello.password.len = login.password ? strlen(login.password) : 0;
    }
    env.body_case = RAFTFS__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    if ((rc = send_env(fd, &env, deadline)))
        goto fail;
    Raftfs__Envelope *reply = NULL;
    size_t n;
    s->in_len = 0;
    if ((rc = read_frames(s, fd, deadline, &reply, 1, &n)))
        goto fail;
    if (reply->body_case != RAFTFS__ENVELOPE__BODY_HELLO_REPLY || !reply->hello_reply->ok) {
        snprintf(err, err_len, "%s refused the connection: %s", b->ep_names[i],
                 reply->body_case == RAFTFS__ENVELOPE__BODY_HELLO_REPLY && reply->hello_reply->error
                     ? reply->hello_reply->error
                     : "unexpected answer");
        net_wire_free(reply);
        close(fd);
        return EPROTO;
    }
    net_wire_free(reply);
    *out_fd = fd;
    return 0;
fail:
    snprintf(err, err_len, "%s: %s", b->ep_names[i], strerror(rc));
    close(fd);
    return rc;
}

/* Tries the endpoints, endpoint first to begin with, until one answers
 * (*cur) or the deadline (a pause after each round that failed). Unlocked. */
static int sconn_connect(struct sconn *s, size_t first, uint64_t deadline, int *out_fd, size_t *cur,
                         char *err, size_t err_len)
{
    size_t n = s->b->n_eps;
    int rc = ETIMEDOUT;
    long backoff_ms = 10;
    snprintf(err, err_len, "no endpoint answered in time");
    for (size_t attempt = 0; mono_ns() < deadline; attempt++) {
        size_t i = (first + attempt) % n;
        if (!(rc = connect_ep(s, i, deadline, out_fd, err, err_len))) {
            *cur = i;
            return 0;
        }
        if ((attempt + 1) % n == 0) {
            uint64_t now = mono_ns(), left = deadline > now ? deadline - now : 0;
            uint64_t nap = (uint64_t)backoff_ms * 1000000ULL;
            struct timespec ts = {0, (long)(nap < left ? nap : left)};
            nanosleep(&ts, NULL);
            backoff_ms = backoff_ms < 500 ? backoff_ms * 2 : 500;
        }
    }
    return rc;
}

/* ---- requests ---- */

static uint64_t next_random(struct worker *w)
{
    /* xorshift64* */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 0x2545f4914f6cdd1dULL;
}

/* A request and its parts; key holds the path. */
struct request {
    Raftfs__ClientRequest req;
    Raftfs__Command cmd;
    Raftfs__Put put;
    Raftfs__Mkdir mk;
    Raftfs__GetRequest get;
    char key[8 + KEY_SIZE_MAX + 1];
};

/* Fills r for op on key k; k UINT32_MAX: make the /bench folder. */
static void build_request(struct worker *w, struct request *r, enum bench_op op, unsigned k)
{
    const struct bench *b = w->b;
    raftfs__client_request__init(&r->req);
    raftfs__command__init(&r->cmd);
    raftfs__put__init(&r->put);
    raftfs__mkdir__init(&r->mk);
    raftfs__get_request__init(&r->get);
    if (k == UINT32_MAX)
        snprintf(r->key, sizeof(r->key), "/bench");
    else
        key_name(b, r->key, sizeof(r->key), k);
    if (op == OP_PUT || k == UINT32_MAX) {
        r->cmd.version = STORE_CMD_VERSION_PLAIN;
        r->cmd.time_ns = real_ns();
        r->req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
        r->req.write = &r->cmd;
        if (k == UINT32_MAX) { /* the folder */
            r->mk.path.data = (uint8_t *)"/bench";
            r->mk.path.len = 6;
            r->mk.mode = 0755;
            r->cmd.op_case = RAFTFS__COMMAND__OP_MKDIR;
            r->cmd.mkdir = &r->mk;
        } else {
            r->put.path.data = (uint8_t *)r->key;
            r->put.path.len = strlen(r->key);
            r->put.value.data = (uint8_t *)b->value;
            r->put.value.len = b->value_size;
            r->put.mode = 0644;
            r->cmd.op_case = RAFTFS__COMMAND__OP_PUT;
            r->cmd.put = &r->put;
        }
    } else {
        r->get.path.data = (uint8_t *)r->key;
        r->get.path.len = strlen(r->key);
        r->get.has_consistency = true;
        r->get.consistency =
            op == OP_SGET ? RAFTFS__CONSISTENCY__SERIALIZABLE : RAFTFS__CONSISTENCY__LINEARIZABLE;
        r->req.op_case = RAFTFS__CLIENT_REQUEST__OP_GET;
        r->req.get = &r->get;
    }
}

/* The member's answer to a request: 0 or its errno (with why). */
static int check_response(const struct worker *w, enum bench_op op, unsigned k,
                          const Raftfs__ClientResponse *resp, const char **why)
{
    *why = resp->message;
    if (resp->err)
        return resp->err;
    /* a read must bring the whole value back */
    if (op != OP_PUT && k != UINT32_MAX &&
        (!resp->has_value || resp->value.len != w->b->value_size)) {
        *why = "a read answered without the value written";
        return EPROTO;
    }
    return 0;
}

static void note_error(struct worker *w, const char *key, int rc, const char *why)
{
    if (!w->first_error[0])
        snprintf(w->first_error, sizeof(w->first_error), "%.200s: %s%s%.200s", key, strerror(rc),
                 why && *why ? ": " : "", why && *why ? why : "");
}

/* One request through a client of its own (setting up): 0, the member's
 * errno, or the client's (no answer). */
static int one_request(struct worker *w, struct net_client *c, enum bench_op op, unsigned k)
{
    struct request r;
    build_request(w, &r, op, k);
    Raftfs__ClientResponse *resp = NULL;
    int rc = net_client_call(c, &r.req, &resp);
    const char *why = rc ? net_client_error(c) : NULL;
    if (!rc)
        rc = check_response(w, op, k, resp, &why);
    if (rc)
        note_error(w, r.key, rc, why);
    net_client_response_free(resp);
    return rc;
}

static int open_client(struct worker *w, struct net_client **c)
{
    struct net_client_config cfg = {.endpoints = w->b->endpoints,
                                    .timeout_ms = (int)(w->b->timeout_s * 1000)};
    cli_auth_config(&cfg);
    cli_tls_config(&cfg);
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

/* Encodes w's next request (key drawn, id given) into w->frame; 0 or
 * ENOMEM. */
static int start_request(struct worker *w, struct sconn *s, uint64_t now)
{
    struct bench *b = w->b;
    unsigned key = b->uniform ? (unsigned)(next_random(w) % b->keys) : w->walk;
    if (++w->walk == b->keys)
        w->walk = 0;
    struct request r;
    build_request(w, &r, b->op, key);
    if (r.req.op_case == RAFTFS__CLIENT_REQUEST__OP_WRITE) {
        r.req.has_client_id = r.req.has_seq = true;
        r.req.client_id = w->client_id;
        r.req.seq = ++w->seq;
    }
    r.req.id = ++s->next_id;
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    env.body_case = RAFTFS__ENVELOPE__BODY_REQUEST;
    env.request = &r.req;
    size_t n = raftfs__envelope__get_packed_size(&env) + NET_FRAME_HEADER_BYTES;
    if (n > w->frame_cap) {
        uint8_t *f = realloc(w->frame, n);
        if (!f)
            return ENOMEM;
        w->frame = f;
        w->frame_cap = n;
    }
    net_frame_header(w->frame, (uint32_t)(n - NET_FRAME_HEADER_BYTES));
    raftfs__envelope__pack(&env, w->frame + NET_FRAME_HEADER_BYTES);
    w->frame_len = n;
    w->key = key;
    w->req_id = r.req.id;
    w->t0 = now;
    w->deadline = now + (uint64_t)(b->timeout_s * 1e9);
    w->measured = now >= b->measure_ns;
    w->busy = true;
    return 0;
}

/* Ends w's request in flight: counted (measured) or not (warm-up). */
static void end_request(struct worker *w, int rc, const char *why, uint64_t now)
{
    w->busy = false;
    if (rc) {
        char key[sizeof(((struct request *)0)->key)];
        key_name(w->b, key, sizeof(key), w->key);
        note_error(w, key, rc, why);
    }
    if (!w->measured) /* warming up: not counted */
        w->first_error[0] = 0;
    else if (rc)
        count_error(w, rc);
    else
        bench_hist_add(&w->hist, now - w->t0);
}

static int queue_out(struct sconn *s, const uint8_t *p, size_t len)
{
    if (s->out_len + len > s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap : 4096;
        while (cap < s->out_len + len)
            cap *= 2;
        uint8_t *o = realloc(s->out, cap);
        if (!o)
            return ENOMEM;
        s->out = o;
        s->out_cap = cap;
    }
    memcpy(s->out + s->out_len, p, len);
    s->out_len += len;
    return 0;
}

static void conn_close(struct sconn *s, int rc)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->in_len = 0;
    s->out_len = 0;
    snprintf(s->err, sizeof(s->err), "%s: %s", s->b->ep_names[s->cur], strerror(rc));
}

/* Hands each whole answer in s->in to the client whose request it answers
 * (a late answer to a request given up on is dropped). 0, or EPROTO for
 * bytes that are no answer. */
static int conn_dispatch(struct sconn *s, struct worker **mine, unsigned n_mine, uint64_t now)
{
    size_t off = 0;
    int rc = 0;
    for (;;) {
        const uint8_t *payload;
        size_t plen, used;
        rc = net_frame_parse(s->in + off, s->in_len - off, MAX_FRAME, &payload, &plen, &used);
        if (rc)
            break;
        off += used;
        Raftfs__Envelope *env = net_wire_unpack(payload, plen);
        if (!env) {
            rc = EPROTO;
            break;
        }
        if (env->body_case == RAFTFS__ENVELOPE__BODY_RESPONSE) {
            for (unsigned i = 0; i < n_mine; i++) {
                struct worker *w = mine[i];
                if (!w->busy || w->req_id != env->response->id)
                    continue;
                const char *why = NULL;
                int err = check_response(w, w->b->op, w->key, env->response, &why);
                end_request(w, err, why, now);
                break;
            }
        }
        net_wire_free(env);
    }
    if (off && off < s->in_len)
        memmove(s->in, s->in + off, s->in_len - off);
    s->in_len -= off;
    return rc == EAGAIN ? 0 : rc;
}

/* Sends what is queued, and reads answers until at least one client is
 * free again or a deadline passes: 0, or the connection's failure. */
static int conn_turn(struct sconn *s, struct worker **mine, unsigned n_mine)
{
    size_t sent = 0;
    while (sent < s->out_len) {
        ssize_t n = send(s->fd, s->out + sent, s->out_len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* the member is not reading: read its answers meanwhile */
            struct pollfd p = {.fd = s->fd, .events = POLLOUT | POLLIN};
            if (poll(&p, 1, 100) < 0 && errno != EINTR)
                return errno;
            if (p.revents & POLLIN)
                break;
            continue;
        }
        return n < 0 ? errno : EPIPE;
    }
    if (sent && sent < s->out_len)
        memmove(s->out, s->out + sent, s->out_len - sent);
    s->out_len -= sent;
    for (;;) {
        uint64_t now = mono_ns(), first = UINT64_MAX;
        unsigned busy = 0;
        for (unsigned i = 0; i < n_mine; i++) {
            if (!mine[i]->busy)
                continue;
            busy++;
            if (mine[i]->deadline < first)
                first = mine[i]->deadline;
        }
        if (busy < n_mine && !s->out_len)
            return 0; /* a client can send again */
        if (!busy && !s->out_len)
            return 0;
        if (first <= now)
            return 0; /* the caller fails what is overdue */
        int rc = in_recv(s, s->fd);
        if (!rc && (rc = conn_dispatch(s, mine, n_mine, mono_ns())) == 0)
            continue;
        if (rc != EAGAIN)
            return rc;
        if (s->out_len)
            return 0; /* back to sending */
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        int ms = (int)((first - now + 999999) / 1000000);
        if (poll(&p, 1, ms) < 0 && errno != EINTR)
            return errno;
    }
}

static void *conn_main(void *arg)
{
    struct sconn *s = arg;
    struct bench *b = s->b;
    /* this connection's clients: those whose id is its index modulo the
     * connections */
    unsigned n_mine = 0;
    struct worker **mine = calloc(b->clients / b->connections + 1, sizeof(*mine));
    if (!mine)
        return NULL;
    for (unsigned i = s->index; i < b->clients; i += b->connections)
        mine[n_mine++] = &b->workers[i];
    pthread_mutex_lock(&b->mu);
    while (!b->go)
        pthread_cond_wait(&b->cond, &b->mu);
    pthread_mutex_unlock(&b->mu);
    for (;;) {
        uint64_t now = mono_ns();
        unsigned busy = 0;
        for (unsigned i = 0; i < n_mine; i++) {
            struct worker *w = mine[i];
            if (w->busy && now >= w->deadline)
                end_request(w, ETIMEDOUT,
                            s->fd >= 0 ? "no answer in time"
                                       : (s->err[0] ? s->err : "no endpoint answered in time"),
                            now);
            if (!w->busy && !w->finished) {
                bool stop = now >= b->deadline_ns ||
                            (now >= b->measure_ns && b->requests &&
                             __atomic_fetch_add(&b->issued, 1, __ATOMIC_RELAXED) >= b->requests);
                if (stop)
                    w->finished = true;
                else if (start_request(w, s, now) ||
                         (s->fd >= 0 && queue_out(s, w->frame, w->frame_len)))
                    end_request(w, ENOMEM, NULL, now);
            }
            busy += w->busy;
        }
        if (!busy)
            break; /* every client finished */
        if (s->fd < 0) {
            uint64_t until = 0;
            for (unsigned i = 0; i < n_mine; i++)
                if (mine[i]->busy && mine[i]->deadline > until)
                    until = mine[i]->deadline;
            int fd = -1;
            size_t cur = s->cur;
            char err[sizeof(s->err)];
            if (sconn_connect(s, s->cur, until, &fd, &cur, err, sizeof(err))) {
                snprintf(s->err, sizeof(s->err), "%s", err);
                continue; /* the requests are overdue now */
            }
            s->fd = fd;
            s->cur = cur;
            s->in_len = s->out_len = 0;
            /* the requests in flight, again, on the new connection */
            for (unsigned i = 0; i < n_mine; i++)
                if (mine[i]->busy && queue_out(s, mine[i]->frame, mine[i]->frame_len))
                    end_request(mine[i], ENOMEM, NULL, mono_ns());
        }
        int rc = conn_turn(s, mine, n_mine);
        if (rc)
            conn_close(s, rc);
    }
    free(mine);
    return NULL;
}

/* ---- options ---- */

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

static unsigned digits(unsigned v)
{
    unsigned d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* The endpoints, parsed (and resolved) once for the shared connections. */
static int parse_endpoints(struct bench *b)
{
    char *list = strdup(b->endpoints), *save = NULL;
    char err[200] = "";
    if (!list)
        return usage_error("out of memory");
    for (char *e = strtok_r(list, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
        if (b->n_eps == NET_CLIENT_MAX_ENDPOINTS) {
            snprintf(err, sizeof(err), "more than %d endpoints", NET_CLIENT_MAX_ENDPOINTS);
            break;
        }
        if (net_addr_parse(e, &b->eps[b->n_eps], err, sizeof(err)))
            break;
        snprintf(b->ep_names[b->n_eps++], sizeof(b->ep_names[0]), "%s", e);
        err[0] = 0;
    }
    free(list);
    if (!err[0] && !b->n_eps)
        snprintf(err, sizeof(err), "no endpoints given");
    if (err[0]) {
        char msg[300];
        snprintf(msg, sizeof(msg), "bad --endpoints: %s", err);
        return usage_error(msg);
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct bench *b)
{
    static const struct option longopts[] = {
        {"endpoints", required_argument, NULL, 'e'},
        {"op", required_argument, NULL, 'o'},
        {"clients", required_argument, NULL, 'c'},
        {"connections", required_argument, NULL, 'C'},
        {"value-size", required_argument, NULL, 'v'},
        {"keys", required_argument, NULL, 'k'},
        {"key-size", required_argument, NULL, 'K'},
        {"key-order", required_argument, NULL, 'O'},
        {"warmup", required_argument, NULL, 'w'},
        {"duration", required_argument, NULL, 'd'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"requests", required_argument, NULL, 'r'},
        {"cacert", required_argument, NULL, CLI_OPT_CACERT},
        {"cert", required_argument, NULL, CLI_OPT_CERT},
        {"key", required_argument, NULL, CLI_OPT_KEY},
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
    b->key_size = 7;
    b->duration_s = 10;
    b->timeout_s = 5;
    bool key_size_given = false;
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
        case 'C':
            if (parse_uint(optarg, 1, MAX_CLIENTS, &b->connections))
                return usage_error("bad --connections (1 to --clients)");
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
        case 'K':
            if (parse_uint(optarg, 2, KEY_SIZE_MAX, &b->key_size))
                return usage_error("bad --key-size (bytes of a key's name, 2 to 255)");
            key_size_given = true;
            break;
        case 'O':
            if (!strcmp(optarg, "walk"))
                b->uniform = false;
            else if (!strcmp(optarg, "uniform"))
                b->uniform = true;
            else
                return usage_error("bad --key-order (walk or uniform)");
            break;
        case 'w':
            if (parse_seconds(optarg, 0, 86400, &b->warmup_s))
                return usage_error("bad --warmup (seconds, 0 to 86400)");
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
        case CLI_OPT_CACERT:
        case CLI_OPT_CERT:
        case CLI_OPT_KEY:
            cli_tls_option(c, optarg);
            break;
        case 'h':
            fputs(cli_bench_usage, stdout);
            return -1;
        default:
            return usage_error(optopt ? "unknown or incomplete option" : "unknown option");
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument");
    if (!b->connections)
        b->connections = b->clients;
    if (b->connections > b->clients) {
        char msg[100];
        snprintf(msg, sizeof(msg), "bad --connections: %u is more than the %u client%s",
                 b->connections, b->clients, b->clients == 1 ? "" : "s");
        return usage_error(msg);
    }
    unsigned need = 1 + digits(b->keys - 1);
    if (b->key_size < need) {
        char msg[120];
        snprintf(msg, sizeof(msg), "bad --key-size: %u keys need names of at least %u bytes%s",
                 b->keys, need, key_size_given ? "" : " (give --key-size)");
        return usage_error(msg);
    }
    return parse_endpoints(b);
}

/* ---- results ---- */

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
        printf("{\"op\": \"%s\", \"clients\": %u, \"connections\": %u, \"value_size\": %llu, "
               "\"keys\": %u, \"key_size\": %u, \"key_order\": \"%s\", \"warmup_s\": %.3f, "
               "\"duration_s\": %.3f, \"ops\": %llu, \"errors\": %llu, \"ops_per_s\": %.1f, "
               "\"latency_ms\": {",
               op_names[b->op], b->clients, b->connections, (unsigned long long)b->value_size,
               b->keys, b->key_size, b->uniform ? "uniform" : "walk", b->warmup_s, elapsed_s,
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
    printf("op %s, %u client%s", op_names[b->op], b->clients, b->clients == 1 ? "" : "s");
    if (b->connections != b->clients)
        printf(" over %u connection%s", b->connections, b->connections == 1 ? "" : "s");
    printf(", values of %llu bytes on %u keys (names of %u bytes, %s), %.2f s",
           (unsigned long long)b->value_size, b->keys, b->key_size,
           b->uniform ? "uniform" : "walked", elapsed_s);
    if (b->warmup_s > 0)
        printf(" after %.2f s of warm-up", b->warmup_s);
    printf("\n");
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

static void conns_close(struct bench *b)
{
    for (unsigned i = 0; i < b->connections; i++) {
        struct sconn *s = &b->conns[i];
        if (s->fd >= 0)
            close(s->fd);
        free(s->in);
        free(s->out);
    }
}

int cli_bench(int argc, char **argv)
{
    struct bench b = {0};
    int rc = parse_args(argc, argv, &b);
    if (rc)
        return rc < 0 ? 0 : rc;
    b.value = malloc(b.value_size ? b.value_size : 1);
    struct worker *ws = calloc(b.clients, sizeof(*ws));
    b.conns = calloc(b.connections, sizeof(*b.conns));
    if (!b.value || !ws || !b.conns) {
        fprintf(stderr, "raftfs bench: out of memory\n");
        free(b.value);
        free(ws);
        free(b.conns);
        return 1;
    }
    for (uint64_t i = 0; i < b.value_size; i++)
        b.value[i] = (char)('a' + i % 26);
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
        seed = mono_ns() ^ ((uint64_t)getpid() << 32);
    for (unsigned i = 0; i < b.clients; i++) {
        ws[i].b = &b;
        ws[i].id = i;
        bench_hist_init(&ws[i].hist);
        /* a client id of its own per client: (client_id, seq) name writes */
        ws[i].client_id = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;
        ws[i].rng = ws[i].client_id | 1;
        /* walk: each client goes through the keys from its own place */
        ws[i].walk = (unsigned)(((uint64_t)i * b.keys) / b.clients);
    }
    b.workers = ws;
    for (unsigned i = 0; i < b.connections; i++)
        b.conns[i] = (struct sconn){.b = &b, .index = i, .fd = -1};
    const char *first = NULL;
    /* The folder, then (for reads) the keys, written once. */
    {
        struct net_client *c;
        if (open_client(&ws[0], &c)) {
            fprintf(stderr, "raftfs bench: %s\n", ws[0].first_error);
            rc = 1;
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
        /* PREPARE_WRITERS at least, to be quick also for few clients */
        unsigned n = b.clients > PREPARE_WRITERS ? b.clients : PREPARE_WRITERS;
        n = n < b.keys ? n : b.keys;
        struct worker *pw = calloc(n, sizeof(*pw));
        if (!pw) {
            fprintf(stderr, "raftfs bench: out of memory\n");
            rc = 1;
            goto out;
        }
        for (unsigned i = 0; i < n; i++) {
            pw[i].b = &b;
            pw[i].first_key = (unsigned)(((uint64_t)i * b.keys) / n);
            pw[i].n_keys = (unsigned)(((uint64_t)(i + 1) * b.keys) / n) - pw[i].first_key;
        }
        if (!b.json)
            fprintf(stderr, "raftfs bench: writing %u keys of %llu bytes to read\n", b.keys,
                    (unsigned long long)b.value_size);
        run_threads(pw, n, prepare_main);
        rc = error_total(pw, n, &first) ? 1 : 0;
        if (rc)
            fprintf(stderr, "raftfs bench: cannot write the keys to read: %s\n", first);
        free(pw);
        if (rc)
            goto out;
    }
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cond, NULL);
    unsigned started = 0;
    for (; started < b.connections; started++)
        if (pthread_create(&b.conns[started].thread, NULL, conn_main, &b.conns[started]))
            break;
    uint64_t t0 = mono_ns();
    pthread_mutex_lock(&b.mu);
    b.measure_ns = t0 + (uint64_t)(b.warmup_s * 1e9);
    b.deadline_ns = started < b.connections ? 0 : b.measure_ns + (uint64_t)(b.duration_s * 1e9);
    b.go = true;
    pthread_cond_broadcast(&b.cond);
    pthread_mutex_unlock(&b.mu);
    for (unsigned i = 0; i < started; i++)
        pthread_join(b.conns[i].thread, NULL);
    uint64_t t1 = mono_ns();
    double elapsed = t1 > b.measure_ns ? (double)(t1 - b.measure_ns) / 1e9 : 0;
    pthread_cond_destroy(&b.cond);
    pthread_mutex_destroy(&b.mu);
    if (started < b.connections) {
        fprintf(stderr, "raftfs bench: cannot start %u connections (started %u)\n", b.connections,
                started);
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
    conns_close(&b);
    free(b.conns);
    free(b.value);
    for (unsigned i = 0; i < b.clients; i++)
        free(ws[i].frame);
    free(ws);
    return rc;
}
