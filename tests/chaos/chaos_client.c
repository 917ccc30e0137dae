/* chaos_client.c - one client of the chaos harness (tests/chaos/run): a
 * single logical process that runs one workload against one member, through
 * its mount or through the client protocol, and records every operation.
 *
 * usage: chaos-client --history FILE --process P --workload W --duration S
 *                     [--mount DIR] [--endpoints HOST:PORT,...] [--seed N]
 *                     [--keys K] [--timeout S] [--pause-ms MS]
 *
 * Workloads:
 *   reg-mount     read or write one of K registers (/reg/kI): open(O_WRONLY|
 *                 O_TRUNC) + write + close, or open + read + close
 *   reg-proto     the same through the client protocol (put, linearizable
 *                 get, and now and then a delete)
 *   set-mount     mkdir /set/P-N (one unique element per operation)
 *   set-proto     put /set/P-N with the value P-N
 *   append-mount  open(/append/log, O_WRONLY|O_APPEND) + write "P-N\n" + close
 *   append-proto  an APPEND of "P-N\n" to /append/log
 *                 When a file is full (EFBIG: the store's largest value), the
 *                 client goes on with the next one, /append/log.1, .2 ...,
 *                 which the harness made empty beforehand.
 *
 * History: JSON lines, two per operation. An "invoke" line is written and
 * flushed before the operation starts, a "complete" line after it ends, so an
 * operation cut short by a kill of this process still shows as invoked (its
 * outcome is then unknown). Times are CLOCK_MONOTONIC ns, comparable between
 * the processes of one machine.
 *
 * Outcomes: "ok"; "fail" only when the error proves the operation was never
 * proposed or was refused for good (ENOENT, ENOSPC, EFBIG ...); "unknown"
 * otherwise (ETIMEDOUT, a lost connection, a member that died during the
 * commit, any error not known to be final). Reads that fail are "fail".
 *
 * The mount is used through a directory descriptor of its root, checked to be
 * a FUSE mount: when the member dies, its mountpoint becomes a plain
 * directory, and an operation there must not succeed on the local disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "net_client.h"
#include "store.h"

#define FUSE_SUPER_MAGIC 0x65735546
#define MAX_VALUE        4096

enum workload { REG_MOUNT, REG_PROTO, SET_MOUNT, SET_PROTO, APPEND_MOUNT, APPEND_PROTO };
static const char *const workload_names[] = {"reg-mount", "reg-proto",    "set-mount",
                                             "set-proto", "append-mount", "append-proto"};

struct client {
    FILE *history;
    unsigned process;
    enum workload w;
    const char *mount;
    int root; /* descriptor of the mount's root, -1 when not (yet) a live mount */
    struct net_client *nc;
    uint64_t rng;
    unsigned keys;
    uint64_t seq;
    bool failed;      /* the last operation did not succeed */
    int last_err;     /* its errno, 0 for none */
    unsigned app_gen; /* which /append/log file appends go to */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t next_rand(struct client *c)
{
    /* splitmix64: a different stream per (seed, process) */
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Writes s as a JSON string (the values here are short and printable, but
 * anything read back is escaped byte by byte). */
static void json_str(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void record_invoke(struct client *c, const char *op, const char *key, const char *value)
{
    fprintf(c->history, "{\"type\":\"invoke\",\"process\":%u,\"id\":%" PRIu64 ",\"op\":\"%s\",",
            c->process, c->seq, op);
    fprintf(c->history, "\"key\":");
    json_str(c->history, key, strlen(key));
    fprintf(c->history, ",\"value\":");
    if (value)
        json_str(c->history, value, strlen(value));
    else
        fprintf(c->history, "null");
    fprintf(c->history, ",\"via\":\"%s\",\"invoke\":%" PRId64 "}\n", workload_names[c->w],
            mono_ns());
    fflush(c->history);
}

/* outcome: "ok", "fail" or "unknown"; read_value only for reads that
 * succeeded (NULL with has_value: the key was absent). */
static void record_complete(struct client *c, const char *outcome, int err, bool has_value,
                            const char *read_value, size_t read_len)
{
    fprintf(c->history,
            "{\"type\":\"complete\",\"process\":%u,\"id\":%" PRIu64 ",\"complete\":%" PRId64
            ",\"outcome\":\"%s\"",
            c->process, c->seq, mono_ns(), outcome);
    if (err)
        fprintf(c->history, ",\"errno\":\"%s\"", strerrorname_np(err) ? strerrorname_np(err) : "?");
    if (has_value) {
        fprintf(c->history, ",\"value\":");
        if (read_value)
            json_str(c->history, read_value, read_len);
        else
            fprintf(c->history, "null");
    }
    fprintf(c->history, "}\n");
    fflush(c->history);
    c->failed = strcmp(outcome, "ok") != 0;
    c->last_err = err;
}

/* Errors that prove a write was refused for good, never applied. */
static bool write_refused(int err)
{
    switch (err) {
    case ENOENT:
    case EEXIST:
    case ENOTDIR:
    case EISDIR:
    case ENOTEMPTY:
    case EINVAL:
    case ENAMETOOLONG:
    case EFBIG:
    case ENOSPC:
    case EPERM:
    case EROFS:
    case EACCES:
    case ESTALE: /* a compare failed at apply: the command changed nothing */
        return true;
    default:
        return false;
    }
}

/* ---- through the mount ---- */

/* A descriptor of the live mount's root, or -1 (the member is down). */
static int mount_root(struct client *c)
{
    if (c->root >= 0) {
        struct statfs fs;
        if (fstatfs(c->root, &fs) == 0)
            return c->root;
        close(c->root); /* ENOTCONN: that mount is gone */
        c->root = -1;
    }
    int fd = open(c->mount, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    struct statfs fs;
    if (fstatfs(fd, &fs) || fs.f_type != FUSE_SUPER_MAGIC) {
        close(fd); /* the plain directory under a dead mount */
        return -1;
    }
    c->root = fd;
    return fd;
}

/* A failed call on a dead mount: forget its root. */
static void mount_failed(struct client *c, int err)
{
    if ((err == ENOTCONN || err == ECONNABORTED) && c->root >= 0) {
        close(c->root);
        c->root = -1;
    }
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t k = write(fd, buf, len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        buf += k;
        len -= (size_t)k;
    }
    return 0;
}

/* open + write + close at path (relative to the root). Before open
 * succeeds nothing is proposed: a failure there is final. */
static void mount_write(struct client *c, const char *op, const char *key, const char *value,
                        int flags)
{
    record_invoke(c, op, key, value);
    int root = mount_root(c);
    if (root < 0) {
        record_complete(c, "fail", ENOTCONN, false, NULL, 0);
        return;
    }
    int fd = openat(root, key + 1, flags);
    if (fd < 0) {
        int e = errno;
        mount_failed(c, e);
        /* An open with O_TRUNC proposes nothing by itself (the value is
         * committed at close), so any failure here is final. */
        record_complete(c, "fail", e, false, NULL, 0);
        return;
    }
    int e = write_all(fd, value, strlen(value));
    int ce = close(fd) ? errno : 0;
    if (e) {
        /* A failed write poisons the file: the close commits nothing. */
        mount_failed(c, e);
        record_complete(c, write_refused(e) || e == ENOTCONN ? "fail" : "unknown", e, false, NULL,
                        0);
        return;
    }
    if (ce) {
        mount_failed(c, ce);
        record_complete(c, write_refused(ce) ? "fail" : "unknown", ce, false, NULL, 0);
        return;
    }
    record_complete(c, "ok", 0, false, NULL, 0);
}

static void mount_read(struct client *c, const char *key)
{
    record_invoke(c, "read", key, NULL);
    int root = mount_root(c);
    if (root < 0) {
        record_complete(c, "fail", ENOTCONN, false, NULL, 0);
        return;
    }
    int fd = openat(root, key + 1, O_RDONLY);
    if (fd < 0) {
        int e = errno;
        mount_failed(c, e);
        if (e == ENOENT)
            record_complete(c, "ok", 0, true, NULL, 0);
        else
            record_complete(c, "fail", e, false, NULL, 0);
        return;
    }
    char buf[MAX_VALUE];
    size_t n = 0;
    int e = 0;
    while (n < sizeof(buf)) {
        ssize_t k = read(fd, buf + n, sizeof(buf) - n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            e = errno;
            break;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    if (e) {
        mount_failed(c, e);
        record_complete(c, "fail", e, false, NULL, 0);
        return;
    }
    record_complete(c, "ok", 0, true, buf, n);
}

static void mount_mkdir(struct client *c, const char *key)
{
    record_invoke(c, "add", key, NULL);
    int root = mount_root(c);
    if (root < 0) {
        record_complete(c, "fail", ENOTCONN, false, NULL, 0);
        return;
    }
    if (mkdirat(root, key + 1, 0755)) {
        int e = errno;
        mount_failed(c, e);
        record_complete(c, write_refused(e) ? "fail" : "unknown", e, false, NULL, 0);
        return;
    }
    record_complete(c, "ok", 0, false, NULL, 0);
}

/* ---- through the client protocol ---- */

static void proto_write(struct client *c, const char *op, const char *key, const char *value)
{
    record_invoke(c, op, key, value);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__Command cmd = RAFTFS__COMMAND__INIT;
    Raftfs__Put put = RAFTFS__PUT__INIT;
    Raftfs__Append app = RAFTFS__APPEND__INIT;
    Raftfs__Delete del = RAFTFS__DELETE__INIT;
    cmd.version = STORE_CMD_VERSION_PLAIN;
    cmd.time_ns = real_ns();
    if (!strcmp(op, "delete")) {
        del.path.data = (uint8_t *)key;
        del.path.len = strlen(key);
        cmd.op_case = RAFTFS__COMMAND__OP_DELETE;
        cmd.delete_ = &del;
    } else if (!strcmp(op, "append")) {
        app.path.data = (uint8_t *)key;
        app.path.len = strlen(key);
        app.value.data = (uint8_t *)value;
        app.value.len = strlen(value);
        cmd.op_case = RAFTFS__COMMAND__OP_APPEND;
        cmd.append = &app;
    } else {
        put.path.data = (uint8_t *)key;
        put.path.len = strlen(key);
        put.value.data = (uint8_t *)value;
        put.value.len = strlen(value);
        put.mode = 0644;
        cmd.op_case = RAFTFS__COMMAND__OP_PUT;
        cmd.put = &put;
    }
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
    req.write = &cmd;
    Raftfs__ClientResponse *resp = NULL;
    int rc = net_client_call(c->nc, &req, &resp);
    if (rc) {
        /* No answer: it may have been proposed before the connection went. */
        record_complete(c, "unknown", rc, false, NULL, 0);
        return;
    }
    int e = resp->err;
    net_client_response_free(resp);
    if (e)
        record_complete(c, write_refused(e) ? "fail" : "unknown", e, false, NULL, 0);
    else
        record_complete(c, "ok", 0, false, NULL, 0);
}

static void proto_read(struct client *c, const char *key)
{
    record_invoke(c, "read", key, NULL);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__GetRequest get = RAFTFS__GET_REQUEST__INIT;
    get.path.data = (uint8_t *)key;
    get.path.len = strlen(key);
    get.has_consistency = true;
    get.consistency = RAFTFS__CONSISTENCY__LINEARIZABLE;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_GET;
    req.get = &get;
    Raftfs__ClientResponse *resp = NULL;
    int rc = net_client_call(c->nc, &req, &resp);
    if (rc) {
        record_complete(c, "fail", rc, false, NULL, 0);
        return;
    }
    if (resp->err == ENOENT)
        record_complete(c, "ok", 0, true, NULL, 0);
    else if (resp->err)
        record_complete(c, "fail", resp->err, false, NULL, 0);
    else
        record_complete(c, "ok", 0, true, (const char *)resp->value.data,
                        resp->has_value ? resp->value.len : 0);
    net_client_response_free(resp);
}

/* ---- one operation of the workload ---- */

static void step(struct client *c)
{
    char key[96], value[64];
    c->seq++;
    snprintf(value, sizeof(value), "%u-%" PRIu64, c->process, c->seq);
    uint64_t r = next_rand(c);
    switch (c->w) {
    case REG_MOUNT:
    case REG_PROTO:
        snprintf(key, sizeof(key), "/reg/k%u", (unsigned)(r % c->keys));
        r /= c->keys;
        if (r % 2 == 0) {
            if (c->w == REG_MOUNT)
                mount_read(c, key);
            else
                proto_read(c, key);
        } else if (c->w == REG_MOUNT) {
            /* No O_CREAT: a deleted register stays deleted (ENOENT) until a
             * put through the protocol makes it again, and a write through
             * a dead mount cannot create anything. */
            mount_write(c, "write", key, value, O_WRONLY | O_TRUNC);
        } else if (r % 20 == 1) {
            proto_write(c, "delete", key, NULL);
        } else {
            proto_write(c, "write", key, value);
        }
        break;
    case SET_MOUNT:
        snprintf(key, sizeof(key), "/set/%s", value);
        mount_mkdir(c, key);
        break;
    case SET_PROTO:
        snprintf(key, sizeof(key), "/set/%s", value);
        proto_write(c, "add", key, value);
        break;
    case APPEND_MOUNT:
    case APPEND_PROTO: {
        char line[80];
        snprintf(line, sizeof(line), "%s\n", value);
        if (c->app_gen)
            snprintf(key, sizeof(key), "/append/log.%u", c->app_gen);
        else
            snprintf(key, sizeof(key), "/append/log");
        if (c->w == APPEND_MOUNT)
            mount_write(c, "append", key, line, O_WRONLY | O_APPEND);
        else
            proto_write(c, "append", key, line);
        if (c->failed && c->last_err == EFBIG)
            c->app_gen++;
        break;
    }
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: chaos-client --history FILE --process P --workload W --duration S\n"
                    "                    [--mount DIR] [--endpoints HOST:PORT,...] [--seed N]\n"
                    "                    [--keys K] [--timeout S] [--pause-ms MS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"history", required_argument, NULL, 'H'},
                                         {"process", required_argument, NULL, 'p'},
                                         {"workload", required_argument, NULL, 'w'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"mount", required_argument, NULL, 'm'},
                                         {"endpoints", required_argument, NULL, 'e'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"keys", required_argument, NULL, 'k'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"pause-ms", required_argument, NULL, 'P'},
                                         {NULL, 0, NULL, 0}};
    const char *history = NULL, *workload = NULL, *endpoints = NULL;
    struct client c = {.root = -1, .keys = 4};
    double duration = -1, timeout = 3;
    long pause_ms = 0;
    uint64_t seed = 1;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        switch (o) {
        case 'H':
            history = optarg;
            break;
        case 'p':
            c.process = (unsigned)strtoul(optarg, &end, 10);
            break;
        case 'w':
            workload = optarg;
            break;
        case 'd':
            duration = strtod(optarg, &end);
            break;
        case 'm':
            c.mount = optarg;
            break;
        case 'e':
            endpoints = optarg;
            break;
        case 's':
            seed = strtoull(optarg, &end, 10);
            break;
        case 'k':
            c.keys = (unsigned)strtoul(optarg, &end, 10);
            break;
        case 't':
            timeout = strtod(optarg, &end);
            break;
        case 'P':
            pause_ms = strtol(optarg, &end, 10);
            break;
        default:
            usage();
        }
        if (end && *end) {
            fprintf(stderr, "chaos-client: bad number '%s'\n", optarg);
            return 2;
        }
    }
    if (!history || !workload || duration < 0 || !c.process || !c.keys || optind != argc)
        usage();
    bool known = false;
    for (size_t i = 0; i < sizeof(workload_names) / sizeof(workload_names[0]); i++)
        if (!strcmp(workload, workload_names[i])) {
            c.w = (enum workload)i;
            known = true;
        }
    if (!known) {
        fprintf(stderr, "chaos-client: unknown workload '%s'\n", workload);
        return 2;
    }
    bool via_mount = c.w == REG_MOUNT || c.w == SET_MOUNT || c.w == APPEND_MOUNT;
    if (via_mount ? !c.mount : !endpoints) {
        fprintf(stderr, "chaos-client: %s needs %s\n", workload,
                via_mount ? "--mount" : "--endpoints");
        return 2;
    }
    if (!via_mount) {
        char err[256];
        struct net_client_config cfg = {.endpoints = endpoints,
                                        .timeout_ms = (int)(timeout * 1000)};
        if (net_client_open(&c.nc, &cfg, err, sizeof(err))) {
            fprintf(stderr, "chaos-client: %s\n", err);
            return 2;
        }
    }
    c.history = fopen(history, "a");
    if (!c.history) {
        fprintf(stderr, "chaos-client: %s: %s\n", history, strerror(errno));
        return 1;
    }
    c.rng = seed * 1000003ULL + c.process;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    int64_t end = mono_ns() + (int64_t)(duration * 1e9);
    while (!stop && mono_ns() < end) {
        step(&c);
        if (c.failed) {
            /* A member down, full or refusing: try again in 20 ms, not in a
             * busy loop that would only inflate the history. */
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (pause_ms) {
            struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (c.nc)
        net_client_close(c.nc);
    if (c.root >= 0)
        close(c.root);
    return fclose(c.history) ? 1 : 0;
}
