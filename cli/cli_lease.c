/* cli_lease.c - `raftfs lease grant|revoke|keep-alive|ttl|list`: expiring
 * keys. A lease is granted with a time to live; files attached to it
 * (raftfs put --lease, or the user.raftfs.lease xattr through a mount) are
 * deleted together when it is revoked, or when the leader has heard no
 * keep-alive for its ttl. Ids are 16 hex digits. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "net_client.h"
#include "store.h"

const char cli_lease_usage[] =
    "usage: raftfs lease grant TTL [--id ID]   grant a lease; prints its id\n"
    "       raftfs lease keep-alive ID [--once] keep it alive (every ttl/3) until\n"
    "                                          interrupted; exits 1 once it is gone\n"
    "       raftfs lease revoke ID             end it now: its keys are deleted\n"
    "       raftfs lease ttl ID                its ttl, time left and keys\n"
    "       raftfs lease list                  every lease\n"
    "\n"
    "TTL: 500ms, 10s, 2m, 1h (a number alone is seconds), at most 1000000s.\n"
    "ID: 1 to 16 hex digits. Attach keys with raftfs put --lease ID, or through\n"
    "a mount: setfattr -n user.raftfs.lease -v ID FILE.\n"
    "options: --endpoints HOST:PORT[,...] --timeout SECONDS (default 5)\n"
    "TLS options (for members that use TLS):\n" CLI_TLS_HELP;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int cli_parse_lease_id(const char *s, uint64_t *out)
{
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    size_t n = strlen(s);
    if (!n || n > 16 || strspn(s, "0123456789abcdefABCDEF") != n)
        return EINVAL;
    *out = strtoull(s, NULL, 16);
    return *out ? 0 : EINVAL;
}

/* "500ms", "10s", "2m", "1h", "7" (seconds) into milliseconds. */
static int parse_ttl(const char *s, uint64_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v <= 0 || s[0] == '-')
        return EINVAL;
    double mult = !strcmp(end, "ms")           ? 1
                  : !strcmp(end, "s") || !*end ? 1000
                  : !strcmp(end, "m")          ? 60000
                  : !strcmp(end, "h")          ? 3600000
                                               : 0;
    if (!mult || v * mult < 1 || v * mult > (double)STORE_LEASE_TTL_MAX_MS)
        return EINVAL;
    *ms = (uint64_t)(v * mult);
    return 0;
}

struct largs {
    const char *endpoints;
    double timeout_s;
    uint64_t id;
    bool once;
    int npos;
    char **pos;
};

static int lusage(const char *msg)
{
    fprintf(stderr, "raftfs lease: %s\nRun 'raftfs help lease' for usage.\n", msg);
    return 2;
}

static struct net_client *lconnect(const struct largs *a)
{
    return cli_connect("lease", a->endpoints, a->timeout_s);
}

/* A LeaseRequest: 0 with *resp, or the errno (reported unless quiet). */
static int lease_call(struct net_client *c, Raftfs__LeaseRequest__Op op, uint64_t id,
                      Raftfs__ClientResponse **resp, bool quiet)
{
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__LeaseRequest lr = RAFTFS__LEASE_REQUEST__INIT;
    lr.op = op;
    lr.has_id = id != 0;
    lr.id = id;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_LEASE;
    req.lease = &lr;
    *resp = NULL;
    if (net_client_call(c, &req, resp)) {
        if (!quiet)
            fprintf(stderr, "raftfs lease: %s\n", net_client_error(c));
        return EIO;
    }
    int rc = (*resp)->err;
    if (rc) {
        if (!quiet)
            fprintf(stderr, "raftfs lease: %016" PRIx64 ": %s\n", id,
                    rc == ENOKEY ? "no such lease (expired, revoked or never granted)"
                                 : strerror(rc));
        net_client_response_free(*resp);
        *resp = NULL;
    }
    return rc;
}

static void print_status(const Raftfs__LeaseStatus *l)
{
    printf("%016" PRIx64 " ttl %.3fs left %.3fs keys %" PRIu64 "\n", l->id, l->ttl_ms / 1000.0,
           l->has_remaining_ms ? l->remaining_ms / 1000.0 : -1.0, l->has_keys ? l->keys : 0);
}

static int cmd_grant(struct largs *a)
{
    uint64_t ttl;
    if (a->npos != 1 || parse_ttl(a->pos[0], &ttl))
        return lusage("grant takes a TTL such as 10s (1 ms to 1000000 s)");
    uint64_t id = a->id;
    while (!id && getrandom(&id, sizeof(id), 0) != sizeof(id))
        ;
    struct net_client *c = lconnect(a);
    if (!c)
        return 2;
    struct store_cmd cmd = {.op = STORE_OP_LEASE_GRANT, .lease = id, .ttl_ms = ttl};
    Raftfs__ClientResponse *r = NULL;
    int rc = cli_write_cmd(c, &cmd, &r);
    int status = 1;
    if (rc)
        fprintf(stderr, "raftfs lease: %s\n", net_client_error(c));
    else if (r->err)
        fprintf(stderr, "raftfs lease: grant %016" PRIx64 ": %s\n", id,
                r->err == EEXIST ? "that id is taken" : strerror(r->err));
    else {
        printf("%016" PRIx64 "\n", id);
        status = 0;
    }
    net_client_response_free(r);
    net_client_close(c);
    return status;
}

static int cmd_revoke(struct largs *a)
{
    uint64_t id;
    if (a->npos != 1 || cli_parse_lease_id(a->pos[0], &id))
        return lusage("revoke takes a lease ID (hex)");
    struct net_client *c = lconnect(a);
    if (!c)
        return 2;
    struct store_cmd cmd = {.op = STORE_OP_LEASE_REVOKE, .lease = id};
    Raftfs__ClientResponse *r = NULL;
    int rc = cli_write_cmd(c, &cmd, &r), status = 1;
    if (rc)
        fprintf(stderr, "raftfs lease: %s\n", net_client_error(c));
    else if (r->err)
        fprintf(stderr, "raftfs lease: %016" PRIx64 ": %s\n", id,
                r->err == ENOKEY ? "no such lease (expired, revoked or never granted)"
                                 : strerror(r->err));
    else
        status = 0;
    net_client_response_free(r);
    net_client_close(c);
    return status;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmd_keep_alive(struct largs *a)
{
    uint64_t id;
    if (a->npos != 1 || cli_parse_lease_id(a->pos[0], &id))
        return lusage("keep-alive takes a lease ID (hex)");
    struct net_client *c = lconnect(a);
    if (!c)
        return 2;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    double ok_at = mono_s(), ttl_s = 0;
    int status = 0;
    while (!stop) {
        Raftfs__ClientResponse *r = NULL;
        int rc = lease_call(c, RAFTFS__LEASE_REQUEST__OP__KEEP_ALIVE, id, &r, !a->once);
        if (!rc) {
            ok_at = mono_s();
            ttl_s = r->n_leases ? r->leases[0]->ttl_ms / 1000.0 : 1;
            if (a->once && r->n_leases)
                print_status(r->leases[0]);
            net_client_response_free(r);
            if (a->once)
                break;
        } else if (rc == ENOKEY || a->once) {
            if (!a->once)
                fprintf(stderr, "raftfs lease: %016" PRIx64 " is gone (expired or revoked)\n", id);
            status = 1;
            break;
        } else if (ttl_s && mono_s() - ok_at > ttl_s) {
            fprintf(stderr,
                    "raftfs lease: no member kept %016" PRIx64 " alive for its ttl: it may "
                    "have expired (%s)\n",
                    id, net_client_error(c));
            status = 1;
            break;
        }
        /* Three keep-alives a ttl; sooner again after a failure. */
        double wait = rc ? 0.1 : ttl_s / 3;
        if (wait < 0.05)
            wait = 0.05;
        struct timespec ts = {.tv_sec = (time_t)wait,
                              .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL); /* a signal cuts it short */
    }
    net_client_close(c);
    return status;
}

static int cmd_ttl(struct largs *a, bool list)
{
    uint64_t id = 0;
    if (list ? a->npos != 0 : a->npos != 1 || cli_parse_lease_id(a->pos[0], &id))
        return lusage(list ? "list takes no arguments" : "ttl takes a lease ID (hex)");
    struct net_client *c = lconnect(a);
    if (!c)
        return 2;
    Raftfs__ClientResponse *r = NULL;
    int rc = lease_call(
        c, list ? RAFTFS__LEASE_REQUEST__OP__LIST : RAFTFS__LEASE_REQUEST__OP__TIME_TO_LIVE, id, &r,
        false);
    if (!rc)
        for (size_t i = 0; i < r->n_leases; i++)
            print_status(r->leases[i]);
    net_client_response_free(r);
    net_client_close(c);
    return rc ? 1 : 0;
}

int cli_lease(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"endpoints", required_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 't'},
        {"id", required_argument, NULL, 'i'},
        {"once", no_argument, NULL, 'o'},
        {"cacert", required_argument, NULL, CLI_OPT_CACERT},
        {"cert", required_argument, NULL, CLI_OPT_CERT},
        {"key", required_argument, NULL, CLI_OPT_KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct largs a = {.endpoints = cli_endpoints(), .timeout_s = 5};
    optind = 1;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (o) {
        case 'e':
            a.endpoints = optarg;
            break;
        case 't':
            if (cli_parse_timeout(optarg, &a.timeout_s))
                return lusage("bad --timeout (seconds, up to 3600)");
            break;
        case 'i':
            if (cli_parse_lease_id(optarg, &a.id))
                return lusage("bad --id (1 to 16 hex digits, not 0)");
            break;
        case 'o':
            a.once = true;
            break;
        case CLI_OPT_CACERT:
        case CLI_OPT_CERT:
        case CLI_OPT_KEY:
            cli_tls_option(o, optarg);
            break;
        case 'h':
            fputs(cli_lease_usage, stdout);
            return 0;
        default:
            return lusage("unknown or incomplete option");
        }
    }
    if (optind >= argc)
        return lusage("missing grant, keep-alive, revoke, ttl or list");
    const char *sub = argv[optind];
    a.pos = argv + optind + 1;
    a.npos = argc - optind - 1;
    if (!strcmp(sub, "grant"))
        return cmd_grant(&a);
    if (!strcmp(sub, "revoke"))
        return cmd_revoke(&a);
    if (!strcmp(sub, "keep-alive"))
        return cmd_keep_alive(&a);
    if (!strcmp(sub, "ttl"))
        return cmd_ttl(&a, false);
    if (!strcmp(sub, "list"))
        return cmd_ttl(&a, true);
    return lusage("unknown lease command");
}
