/* cli_watch.c - `raftfs watch PREFIX`: the changes under PREFIX as they
 * commit, printed one per line, or a command run once per burst of them.
 *
 * Design notes
 * 1. The stream (WatchRequest) is read from one member; when that member
 *    fails, the watch is made again at the next endpoint, from the last
 *    revision this process has seen + 1. Events are keyed by revision on
 *    every member, so nothing is missed or printed twice.
 * 2. --exec CMD: after an event, CMD runs (`sh -c CMD`) once no other event
 *    came for --debounce milliseconds; never two at once: events that come
 *    while it runs make it run once more after it ends. Its environment
 *    has RAFTFS_REVISION (the last revision of the burst), RAFTFS_EVENTS
 *    (how many) and RAFTFS_PATHS (the paths changed, each once, one per line, at most
 *    WATCH_PATHS_MAX bytes; RAFTFS_PATHS_TRUNCATED=1 if more).
 *    A member sends something at least every second; one silent for
 *    WATCH_SILENT_MS (paused, or gone without closing) is left for the
 *    next endpoint the same way.
 * 3. A start in the compacted history: without --exec, an error (exit 3):
 *    list again, then watch from the listing's revision + 1. With --exec,
 *    CMD is run (RAFTFS_COMPACTED=1: it re-reads everything anyway) and
 *    the watch goes on from the current revision.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_json.h"
#include "net_client.h"
#include "store.h"

#define WATCH_PATHS_MAX (64u << 10)
/* Members send a response at least every second (node_watch.c): a stream
 * silent this long is from a member that stopped answering. */
#define WATCH_SILENT_MS 5000

const char cli_watch_usage[] =
    "usage: raftfs watch PREFIX [OPTIONS]\n"
    "  Prints the changes under PREFIX (a path, or / for all) as they commit, one line\n"
    "  each: REVISION OP PATH [TARGET] (op: put append delete mkdir rmdir rename setattr).\n"
    "  Goes on at another member if one fails, missing and repeating nothing.\n"
    "\n"
    "options:\n"
    "  --from-revision R   start at revision R (default: the next change)\n"
    "  --json              one JSON object per line (with --values: value_base64)\n"
    "  --values            with the value of put/append events still current\n"
    "  --exec CMD          run `sh -c CMD` once per burst of changes instead of printing;\n"
    "                      environment: RAFTFS_REVISION, RAFTFS_EVENTS, RAFTFS_PATHS\n"
    "  --debounce MS       quiet time that ends a burst (default 200)\n"
    "  --endpoints HOST:PORT[,...]  members to talk to (default $RAFTFS_ENDPOINTS, or\n"
    "                      " CLI_DEFAULT_ENDPOINTS ")\n" CLI_TLS_HELP;

struct watch_args {
    const char *endpoints, *prefix, *exec;
    uint64_t from;
    bool json, values;
    int debounce_ms;
};

struct burst {
    uint64_t revision;
    uint64_t events;
    char *paths;
    size_t len;
    bool truncated, compacted;
    int64_t due_ms; /* run when the clock passes it (0: nothing pending) */
    pid_t child;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "raftfs watch: %s\nRun 'raftfs help watch' for usage.\n", msg);
    return 2;
}

static void put_json_bytes(const uint8_t *p, size_t len)
{
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = p[i];
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            printf("\\u%04x", ch); /* a byte, not a code point: paths are bytes */
        else
            putchar(ch);
    }
    putchar('"');
}

static void print_event(const struct watch_args *a, const Raftfs__Event *e)
{
    const char *op = store_event_op_name(e->op);
    if (!a->json) {
        printf("%llu %s %.*s", (unsigned long long)e->revision, op, (int)e->path.len,
               (const char *)e->path.data);
        if (e->has_path2)
            printf(" %.*s", (int)e->path2.len, (const char *)e->path2.data);
        putchar('\n');
        return;
    }
    printf("{\"revision\": %llu, \"op\": \"%s\", \"path\": ", (unsigned long long)e->revision, op);
    put_json_bytes(e->path.data, e->path.len);
    if (e->has_path2) {
        printf(", \"target\": ");
        put_json_bytes(e->path2.data, e->path2.len);
    }
    if (e->has_dir)
        printf(", \"type\": \"%s\", \"mode\": \"%04o\", \"size\": %llu", e->dir ? "dir" : "file",
               e->mode & 07777, (unsigned long long)e->size);
    if (e->has_value) {
        printf(", \"value_base64\": ");
        cli_json_put_base64(stdout, e->value.data, e->value.len);
    }
    printf("}\n");
}

/* Is p one of the lines of buf (each ends with a newline)? */
static bool has_line(const char *buf, size_t len, const uint8_t *p, size_t plen)
{
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(buf + at, '\n', len - at);
        size_t l = (size_t)(nl - (buf + at));
        if (l == plen && !memcmp(buf + at, p, plen))
            return true;
        at += l + 1;
    }
    return false;
}

static void burst_add(struct burst *b, const struct watch_args *a, const Raftfs__Event *e)
{
    b->revision = e->revision;
    b->events++;
    for (int k = 0; k < 2; k++) {
        const ProtobufCBinaryData *p = k ? &e->path2 : &e->path;
        if (k && !e->has_path2)
            break;
        if (has_line(b->paths, b->len, p->data, p->len))
            continue; /* each path once */
        if (b->len + p->len + 1 > WATCH_PATHS_MAX) {
            b->truncated = true;
            continue;
        }
        memcpy(b->paths + b->len, p->data, p->len);
        b->len += p->len;
        b->paths[b->len++] = '\n';
    }
    b->due_ms = mono_ms() + a->debounce_ms;
}

/* Starts CMD for the burst gathered so far (none may be running). */
static void burst_run(struct burst *b, const struct watch_args *a)
{
    char rev[32], n[32];
    snprintf(rev, sizeof(rev), "%llu", (unsigned long long)b->revision);
    snprintf(n, sizeof(n), "%llu", (unsigned long long)b->events);
    b->paths[b->len] = 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "raftfs watch: cannot run the command: %s (tried again later)\n",
                strerror(errno));
        b->due_ms = mono_ms() + 1000;
        return;
    }
    if (pid == 0) {
        setenv("RAFTFS_REVISION", rev, 1);
        setenv("RAFTFS_EVENTS", n, 1);
        setenv("RAFTFS_PATHS", b->paths, 1);
        if (b->truncated)
            setenv("RAFTFS_PATHS_TRUNCATED", "1", 1);
        if (b->compacted)
            setenv("RAFTFS_COMPACTED", "1", 1);
        execl("/bin/sh", "sh", "-c", a->exec, (char *)NULL);
        _exit(127);
    }
    b->child = pid;
    b->events = 0;
    b->len = 0;
    b->truncated = b->compacted = false;
    b->due_ms = 0;
}

/* Reaps a finished command; runs the next burst when it is due. */
static void burst_tick(struct burst *b, const struct watch_args *a)
{
    if (b->child) {
        int st;
        pid_t r = waitpid(b->child, &st, WNOHANG);
        if (r == b->child) {
            if (WIFEXITED(st) && WEXITSTATUS(st))
                fprintf(stderr, "raftfs watch: the command exited with status %d\n",
                        WEXITSTATUS(st));
            else if (WIFSIGNALED(st))
                fprintf(stderr, "raftfs watch: the command was killed by signal %d\n",
                        WTERMSIG(st));
            b->child = 0;
        }
    }
    if (!b->child && b->due_ms && mono_ms() >= b->due_ms)
        burst_run(b, a);
}

static int parse(int argc, char **argv, struct watch_args *a)
{
    static const struct option longopts[] = {
        {"endpoints", required_argument, NULL, 'e'},
        {"from-revision", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"values", no_argument, NULL, 'v'},
        {"exec", required_argument, NULL, 'x'},
        {"debounce", required_argument, NULL, 'd'},
        {"cacert", required_argument, NULL, CLI_OPT_CACERT},
        {"cert", required_argument, NULL, CLI_OPT_CERT},
        {"key", required_argument, NULL, CLI_OPT_KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    a->endpoints = cli_endpoints();
    a->debounce_ms = 200;
    optind = 1;
    opterr = 0;
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            a->endpoints = optarg;
            break;
        case 'r':
            if (cli_parse_size(optarg, UINT64_MAX / 2, &v) || !v)
                return usage_error("bad --from-revision (1 or more)");
            a->from = v;
            break;
        case 'j':
            a->json = true;
            break;
        case 'v':
            a->values = true;
            break;
        case 'x':
            if (!*optarg)
                return usage_error("empty --exec");
            a->exec = optarg;
            break;
        case 'd':
            if (cli_parse_size(optarg, 3600000, &v))
                return usage_error("bad --debounce (milliseconds, up to 3600000)");
            a->debounce_ms = (int)v;
            break;
        case CLI_OPT_CACERT:
        case CLI_OPT_CERT:
        case CLI_OPT_KEY:
            cli_tls_option(c, optarg);
            break;
        case 'h':
            fputs(cli_watch_usage, stdout);
            exit(0);
        default:
            return usage_error("unknown or incomplete option");
        }
    }
    if (argc - optind != 1)
        return usage_error(argc - optind ? "one PREFIX only" : "missing PREFIX");
    a->prefix = argv[optind];
    size_t len = strlen(a->prefix);
    if (a->prefix[0] != '/' || (len > 1 && a->prefix[len - 1] == '/'))
        return usage_error("PREFIX must be an absolute path without a trailing / (or /)");
    return 0;
}

/* Starts the watch from `from` (0: the next change); its id into *id and
 * the revision it starts after into *start. 0, ERANGE (compacted, with
 * *compacted), or 1 after printing why. */
static int start_watch(struct net_client *c, const struct watch_args *a, uint64_t from,
                       uint64_t *id, uint64_t *start, uint64_t *compacted)
{
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__WatchRequest w = RAFTFS__WATCH_REQUEST__INIT;
    w.prefix.data = (uint8_t *)a->prefix;
    w.prefix.len = strlen(a->prefix);
    w.has_from_revision = from != 0;
    w.from_revision = from;
    w.has_values = true;
    w.values = a->values;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WATCH;
    req.watch = &w;
    Raftfs__ClientResponse *resp = NULL;
    int rc = net_client_call(c, &req, &resp);
    if (rc)
        return rc;
    if (resp->err) {
        fprintf(stderr, "raftfs watch: %s: %s%s%s\n", a->prefix, strerror(resp->err),
                resp->message ? ": " : "", resp->message ? resp->message : "");
        net_client_response_free(resp);
        return 1;
    }
    *id = req.id;
    *start = resp->revision;
    net_client_response_free(resp);
    (void)compacted;
    return 0;
}

int cli_watch(int argc, char **argv)
{
    struct watch_args a = {0};
    int rc = parse(argc, argv, &a);
    if (rc)
        return rc;
    struct net_client *c = cli_connect("watch", a.endpoints, 5);
    if (!c)
        return 2;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct burst b = {0};
    if (a.exec && !(b.paths = malloc(WATCH_PATHS_MAX + 1))) {
        fprintf(stderr, "raftfs watch: out of memory\n");
        net_client_close(c);
        return 1;
    }
    uint64_t next = a.from; /* 0 until the first start says where it is */
    uint64_t id = 0, start = 0, compacted = 0;
    int64_t heard_ms = 0;
    bool live = false;
    int status = 0;
    while (!stop_signal) {
        if (!live) {
            rc = start_watch(c, &a, next, &id, &start, &compacted);
            if (rc == 1) {
                status = 1;
                break;
            }
            if (rc) {
                fprintf(stderr, "raftfs watch: %s; trying again\n", net_client_error(c));
                struct timespec ts = {0, 200 * 1000000};
                nanosleep(&ts, NULL);
                if (b.paths)
                    burst_tick(&b, &a);
                continue;
            }
            live = true;
            heard_ms = mono_ms();
            if (!next)
                next = start + 1;
        }
        Raftfs__ClientResponse *r = NULL;
        rc = net_client_next(c, id, a.exec ? 50 : 500, &r);
        if (b.paths)
            burst_tick(&b, &a);
        if (rc == ETIMEDOUT) {
            if (mono_ms() - heard_ms > WATCH_SILENT_MS) {
                fprintf(stderr,
                        "raftfs watch: no word from the member for %d s; going on at the next "
                        "one from revision %llu\n",
                        WATCH_SILENT_MS / 1000, (unsigned long long)next);
                net_client_next_endpoint(c);
                live = false;
            }
            continue;
        }
        heard_ms = mono_ms();
        if (rc) {
            fprintf(stderr, "raftfs watch: %s; going on from revision %llu\n", net_client_error(c),
                    (unsigned long long)next);
            live = false;
            continue;
        }
        if (r->err == ERANGE) {
            uint64_t at = r->has_compact_revision ? r->compact_revision : 0;
            net_client_response_free(r);
            if (!a.exec) {
                fprintf(stderr,
                        "raftfs watch: revision %llu is compacted (up to %llu is gone): list "
                        "again, then watch from that listing's revision + 1\n",
                        (unsigned long long)next, (unsigned long long)at);
                status = 3;
                break;
            }
            fprintf(stderr,
                    "raftfs watch: revision %llu is compacted (up to %llu): running the "
                    "command and going on from now\n",
                    (unsigned long long)next, (unsigned long long)at);
            b.compacted = true;
            b.due_ms = mono_ms();
            next = 0;
            live = false;
            continue;
        }
        if (r->err) {
            fprintf(stderr, "raftfs watch: %s%s%s\n", strerror(r->err), r->message ? ": " : "",
                    r->message ? r->message : "");
            net_client_response_free(r);
            status = 1;
            break;
        }
        for (size_t i = 0; i < r->n_events; i++) {
            const Raftfs__Event *e = r->events[i];
            if (e->revision < next)
                continue; /* already seen (a resumed stream never sends it) */
            if (a.exec)
                burst_add(&b, &a, e);
            else
                print_event(&a, e);
        }
        if (r->has_revision && r->revision + 1 > next)
            next = r->revision + 1;
        net_client_response_free(r);
        if (!a.exec && fflush(stdout)) {
            status = 1; /* the reader went away */
            break;
        }
    }
    if (b.child)
        waitpid(b.child, NULL, 0);
    free(b.paths);
    net_client_close(c);
    return stop_signal ? 0 : status;
}
