/* cli_mount.c - `raftfs mount`: open the data directory, mount, serve; in
 * the background unless --foreground, returning once the mount is ready. */
#include <ctype.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "cli.h"
#include "cli_backup.h"
#include "fs.h"
#include "net_conn.h"
#include "net_http.h"
#include "net_tls.h"
#include "node.h"
#include "store.h"
#include "store_format.h"
#include "store_log.h"

const char cli_mount_usage[] =
    "usage: raftfs mount MOUNTPOINT --data DIR [OPTIONS]\n"
    "\n"
    "Serves the tree stored in DIR as a directory at MOUNTPOINT. DIR is\n"
    "created if missing; a DIR holding anything else is refused. Without\n"
    "--foreground the command returns once the mount is ready and the server\n"
    "keeps running in the background. Stop it with 'fusermount3 -u MOUNTPOINT'\n"
    "or SIGTERM.\n"
    "\n"
    "options:\n"
    "  -d, --data DIR            data directory (required)\n"
    "  -f, --foreground          stay in the foreground, log to stderr\n"
    "  -o OPT[,OPT...]           mount options (repeatable): FUSE options such as\n"
    "                            allow_other, ro; and raftfs's own:\n"
    "                            entry_timeout=SECONDS, attr_timeout=SECONDS (1),\n"
    "                            max_threads=N (64), consistency=linearizable\n"
    "                            (default) or serializable (local reads that keep\n"
    "                            working in a minority, maybe behind)\n"
    "      --id N                this member's id (default 1)\n"
    "      --peers ID=HOST:PORT,...  the founding members, this one included; each\n"
    "                            serves peers and clients on its HOST:PORT. Without\n"
    "                            it the member is a cluster of one.\n"
    "      --cluster-token STR   mixed into the cluster id (keeps clusters with the same\n"
    "                            member list apart)\n"
    "      --join HOST:PORT,...  join a running cluster through these members: the\n"
    "                            member adds itself as a learner, catches up, then\n"
    "                            becomes a voter (needs --listen; first start only)\n"
    "      --learner             with --join: stay a learner (reads, never votes)\n"
    "      --listen HOST:PORT    serve peers and the client protocol here (default: own\n"
    "                            --peers address; alone: none unless given)\n"
    "      --timeout SECONDS     a write or read without quorum fails after this (5)\n"
    "      --snapshot-entries N  snapshot the tree and compact the log every N\n"
    "                            entries (100000)\n"
    "      --log-file FILE       log here in the background (default DIR/raftfs.log)\n"
    "      --log-level LEVEL     error, warn, info (default) or debug\n"
    "      --log-syslog          log to syslog (daemon facility) instead of stderr or\n"
    "                            the log file\n"
    "      --metrics-addr HOST:PORT  serve GET /metrics (Prometheus text) and\n"
    "                            GET /health over HTTP here\n"
    "      --db-size SIZE        LMDB map size, the most the store can hold (4G)\n"
    "      --no-value-check      start without reading every value against its\n"
    "                            checksum (a start reads the whole tree by default)\n"
    "      --history-revisions N revisions of change history kept for watches (100000)\n"
    "      --sync-tree          fsync the tree at every apply (slower; by default only\n"
    "                           the Raft log is, and after a system crash the tree is\n"
    "                           rebuilt from the snapshot image and the log)\n"
    "\n"
    "TLS (for peers and clients, on the one port; docs/operations.md, \"TLS\"):\n"
    "      --cert-file FILE      this member's certificate (PEM), served to peers and\n"
    "                            clients and shown when dialing a peer\n"
    "      --key-file FILE       its private key (PEM; readable by its owner only)\n"
    "      --trusted-ca-file FILE  the CA that signs members' (and clients')\n"
    "                            certificates; peers must show one (mutual TLS)\n"
    "      --client-cert-auth    clients must show a certificate of that CA too\n"
    "      --allow-plaintext     serve without TLS on an address that is not loopback\n"
    "                            (refused otherwise)\n"
    "\n"
    "limits, fixed when DIR is created (given again later, they must match):\n"
    "      --max-value-size SIZE   largest value (1M; at most 64M)\n"
    "      --max-name-length N     longest name in bytes (255; at most 255)\n"
    "      --max-path-length N     longest path in bytes (4096; at most 65536)\n"
    "\n"
    "SIZE takes a K, M, G or T suffix (powers of 1024).\n";

void cli_version(void)
{
    printf("raftfs %s (store format %u, log format %u, command version %u, backup format %u)\n",
           RAFTFS_VERSION, STORE_FORMAT_VERSION, STORE_WAL_FORMAT, STORE_CMD_VERSION,
           CLI_BACKUP_VERSION);
}

int cli_parse_size(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return EINVAL;
    unsigned shift = 0;
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'K':
            shift = 10;
            break;
        case 'M':
            shift = 20;
            break;
        case 'G':
            shift = 30;
            break;
        case 'T':
            shift = 40;
            break;
        default:
            return EINVAL;
        }
        if (end[1])
            return EINVAL;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return EINVAL;
    v <<= shift;
    if (v > max)
        return EINVAL;
    *out = v;
    return 0;
}

struct mount_args {
    const char *mountpoint;
    const char *data;
    const char *log_file;
    const char *listen;
    const char *peers;
    const char *token;
    const char *join;
    const char *metrics_addr;
    bool log_syslog;
    bool learner;
    char *options; /* joined -o values, malloc'd */
    int foreground;
    enum node_log_level log_level;
    struct store_config store;
    struct node_config node;
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "raftfs mount: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nRun 'raftfs help mount' for usage.\n");
    va_end(ap);
    return 2;
}

static int append_option(char **opts, const char *o)
{
    size_t old = *opts ? strlen(*opts) : 0;
    char *p = realloc(*opts, old + strlen(o) + 2);
    if (!p)
        return ENOMEM;
    if (old)
        p[old++] = ',';
    strcpy(p + old, o);
    *opts = p;
    return 0;
}

/* --peers ID=HOST:PORT,... into the node's members; the cluster id; the
 * consistency mount option. */
static int parse_cluster(struct mount_args *a)
{
    struct node_config *nc = &a->node;
    if (a->peers) {
        char why[256];
        if (cli_parse_peers(a->peers, nc->members, &nc->n_members, why, sizeof(why)))
            return usage_error("%s", why);
        bool self = false;
        for (size_t i = 0; i < nc->n_members; i++)
            self |= nc->members[i].id == nc->id;
        if (!self)
            return usage_error("--peers does not name this member (--id %llu)",
                               (unsigned long long)nc->id);
    }
    nc->cluster_id = cli_cluster_id(nc->members, nc->n_members, a->token);
    /* Restarted without --peers or --join: the directory's own cluster. */
    nc->cluster_id_loose = !a->peers && !a->join;
    nc->listen = a->listen;
    /* -o consistency=linearizable|serializable is the node's, not FUSE's. */
    if (a->options) {
        char *out = calloc(1, strlen(a->options) + 1), *save = NULL;
        char *copy = strdup(a->options);
        if (!out || !copy) {
            free(out);
            free(copy);
            return 1;
        }
        for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
            if (!strcmp(o, "consistency=serializable")) {
                nc->serializable = true;
            } else if (!strcmp(o, "consistency=linearizable")) {
                nc->serializable = false;
            } else if (!strncmp(o, "consistency=", 12)) {
                free(out);
                free(copy);
                return usage_error("bad -o %s (linearizable or serializable)", o);
            } else {
                if (*out)
                    strcat(out, ",");
                strcat(out, o);
            }
        }
        free(copy);
        free(a->options);
        a->options = *out ? out : NULL;
        if (!a->options)
            free(out);
    }
    return 0;
}

enum {
    OPT_LOG_FILE = 256,
    OPT_LISTEN,
    OPT_ID,
    OPT_PEERS,
    OPT_TOKEN,
    OPT_TIMEOUT,
    OPT_SNAP,
    OPT_JOIN,
    OPT_LEARNER,
    OPT_LOG_LEVEL,
    OPT_DB_SIZE,
    OPT_HISTORY,
    OPT_SYNC_TREE,
    OPT_MAX_VALUE,
    OPT_MAX_NAME,
    OPT_MAX_PATH,
    OPT_METRICS_ADDR,
    OPT_LOG_SYSLOG,
    OPT_NO_VALUE_CHECK,
    OPT_CERT_FILE,
    OPT_KEY_FILE,
    OPT_CA_FILE,
    OPT_CLIENT_CERT_AUTH,
    OPT_ALLOW_PLAINTEXT,
};

static int parse_args(int argc, char **argv, struct mount_args *a)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"foreground", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {"log-file", required_argument, NULL, OPT_LOG_FILE},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"id", required_argument, NULL, OPT_ID},
        {"peers", required_argument, NULL, OPT_PEERS},
        {"cluster-token", required_argument, NULL, OPT_TOKEN},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"snapshot-entries", required_argument, NULL, OPT_SNAP},
        {"join", required_argument, NULL, OPT_JOIN},
        {"learner", no_argument, NULL, OPT_LEARNER},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"db-size", required_argument, NULL, OPT_DB_SIZE},
        {"history-revisions", required_argument, NULL, OPT_HISTORY},
        {"sync-tree", no_argument, NULL, OPT_SYNC_TREE},
        {"max-value-size", required_argument, NULL, OPT_MAX_VALUE},
        {"max-name-length", required_argument, NULL, OPT_MAX_NAME},
        {"max-path-length", required_argument, NULL, OPT_MAX_PATH},
        {"metrics-addr", required_argument, NULL, OPT_METRICS_ADDR},
        {"log-syslog", no_argument, NULL, OPT_LOG_SYSLOG},
        {"no-value-check", no_argument, NULL, OPT_NO_VALUE_CHECK},
        {"cert-file", required_argument, NULL, OPT_CERT_FILE},
        {"key-file", required_argument, NULL, OPT_KEY_FILE},
        {"trusted-ca-file", required_argument, NULL, OPT_CA_FILE},
        {"client-cert-auth", no_argument, NULL, OPT_CLIENT_CERT_AUTH},
        {"allow-plaintext", no_argument, NULL, OPT_ALLOW_PLAINTEXT},
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int c;
    a->log_level = NODE_LOG_INFO;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:fho:", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            a->data = optarg;
            break;
        case 'f':
            a->foreground = 1;
            break;
        case 'h':
            fputs(cli_mount_usage, stdout);
            exit(0);
        case 'o':
            if (!*optarg)
                return usage_error("empty -o");
            if (append_option(&a->options, optarg))
                return 1;
            break;
        case OPT_LOG_FILE:
            a->log_file = optarg;
            break;
        case OPT_LISTEN:
            a->listen = optarg;
            break;
        case OPT_ID:
            if (cli_parse_size(optarg, NODE_MAX_MEMBERS * 1000ULL, &v) || v == 0)
                return usage_error("bad --id '%s' (a member number, 1 or more)", optarg);
            a->node.id = v;
            break;
        case OPT_PEERS:
            a->peers = optarg;
            break;
        case OPT_TOKEN:
            a->token = optarg;
            break;
        case OPT_JOIN:
            a->join = optarg;
            break;
        case OPT_LEARNER:
            a->learner = true;
            break;
        case OPT_SNAP:
            if (cli_parse_size(optarg, 1ULL << 40, &v) || v < 10)
                return usage_error("bad --snapshot-entries '%s' (10 or more)", optarg);
            a->node.snapshot_entries = v;
            break;
        case OPT_TIMEOUT: {
            char *end;
            double t = strtod(optarg, &end);
            if (*end || t < 0.1 || t > 3600)
                return usage_error("bad --timeout '%s' (seconds, 0.1 to 3600)", optarg);
            a->node.timeout_ms = (uint32_t)(t * 1000);
            break;
        }
        case OPT_LOG_LEVEL:
            if (!strcmp(optarg, "error"))
                a->log_level = NODE_LOG_ERROR;
            else if (!strcmp(optarg, "warn"))
                a->log_level = NODE_LOG_WARN;
            else if (!strcmp(optarg, "info"))
                a->log_level = NODE_LOG_INFO;
            else if (!strcmp(optarg, "debug"))
                a->log_level = NODE_LOG_DEBUG;
            else
                return usage_error("bad --log-level '%s' (error, warn, info, debug)", optarg);
            break;
        case OPT_METRICS_ADDR: {
            struct net_addr na;
            char why[256];
            if (net_addr_parse(optarg, &na, why, sizeof(why)))
                return usage_error("bad --metrics-addr '%s': %s", optarg, why);
            a->metrics_addr = optarg;
            break;
        }
        case OPT_LOG_SYSLOG:
            a->log_syslog = true;
            break;
        case OPT_NO_VALUE_CHECK:
            a->store.no_value_check = true;
            break;
        case OPT_SYNC_TREE:
            a->node.sync_tree = true;
            break;
        case OPT_CERT_FILE:
            a->node.tls_cert_file = optarg;
            break;
        case OPT_KEY_FILE:
            a->node.tls_key_file = optarg;
            break;
        case OPT_CA_FILE:
            a->node.tls_ca_file = optarg;
            break;
        case OPT_CLIENT_CERT_AUTH:
            a->node.tls_client_cert_auth = true;
            break;
        case OPT_ALLOW_PLAINTEXT:
            a->node.allow_plaintext = true;
            break;
        case OPT_HISTORY:
            if (cli_parse_size(optarg, 1ULL << 40, &v) || v == 0)
                return usage_error("bad --history-revisions '%s' (1 or more)", optarg);
            a->store.history_revisions = v;
            break;
        case OPT_DB_SIZE:
            if (cli_parse_size(optarg, 1ULL << 44, &v) || v < (1ULL << 20))
                return usage_error("bad --db-size '%s' (1M to 16T)", optarg);
            a->store.map_bytes = v;
            break;
        case OPT_MAX_VALUE:
            if (cli_parse_size(optarg, STORE_MAX_VALUE_BYTES_BOUND, &v) || v == 0)
                return usage_error("bad --max-value-size '%s' (1 to 64M)", optarg);
            a->store.limits.max_value_bytes = (uint32_t)v;
            break;
        case OPT_MAX_NAME:
            if (cli_parse_size(optarg, STORE_MAX_NAME_BYTES_BOUND, &v) || v == 0)
                return usage_error("bad --max-name-length '%s' (1 to 255)", optarg);
            a->store.limits.max_name_bytes = (uint32_t)v;
            break;
        case OPT_MAX_PATH:
            if (cli_parse_size(optarg, STORE_MAX_PATH_BYTES_BOUND, &v) || v < 2)
                return usage_error("bad --max-path-length '%s' (2 to 65536)", optarg);
            a->store.limits.max_path_bytes = (uint32_t)v;
            break;
        case '?':
        default:
            if (optopt)
                return usage_error("bad or incomplete option -%c", optopt);
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("missing MOUNTPOINT");
    a->mountpoint = argv[optind++];
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!a->data)
        return usage_error("missing --data DIR");
    if (!a->node.id)
        a->node.id = 1;
    if (a->join && a->peers)
        return usage_error("--join and --peers exclude each other");
    if (a->join && !a->listen)
        return usage_error("--join needs --listen HOST:PORT (where the others reach this one)");
    if (a->learner && !a->join)
        return usage_error("--learner goes with --join");
    if (a->log_syslog && a->log_file)
        return usage_error("--log-syslog and --log-file exclude each other");
    const struct node_config *nc = &a->node;
    bool tls = nc->tls_cert_file || nc->tls_key_file || nc->tls_ca_file;
    if (tls && !(nc->tls_cert_file && nc->tls_key_file && nc->tls_ca_file))
        return usage_error("TLS needs --cert-file, --key-file and --trusted-ca-file, all three");
    if (nc->tls_client_cert_auth && !tls)
        return usage_error("--client-cert-auth needs TLS (--cert-file, --key-file, "
                           "--trusted-ca-file)");
    return parse_cluster(a);
}

/* An absolute path for p, which may not exist yet (its parent must). */
static char *absolute(const char *p)
{
    char *r = realpath(p, NULL);
    if (r || errno != ENOENT)
        return r;
    char *d = strdup(p), *b = strdup(p);
    char *out = NULL;
    if (d && b) {
        char *parent = realpath(dirname(d), NULL);
        if (parent) {
            const char *base = basename(b);
            if (asprintf(&out, "%s/%s", strcmp(parent, "/") ? parent : "", base) < 0)
                out = NULL;
            free(parent);
        }
    }
    free(d);
    free(b);
    if (!out)
        errno = ENOENT;
    return out;
}

/* The TLS files, made absolute (the server in the background runs in /),
 * read once here so that a bad one (missing, not matching, a key others
 * may read) is refused before anything starts. Also what --join and the
 * promotion use as a client. 0, or the exit status. */
static int check_tls(struct node_config *nc, char *paths[3])
{
    if (!nc->tls_cert_file)
        return 0;
    const char **files[3] = {&nc->tls_cert_file, &nc->tls_key_file, &nc->tls_ca_file};
    for (int i = 0; i < 3; i++) {
        paths[i] = absolute(*files[i]);
        if (!paths[i]) {
            fprintf(stderr, "raftfs mount: cannot use %s: %s\n", *files[i], strerror(errno));
            return 1;
        }
        *files[i] = paths[i];
    }
    struct net_tls_config tc = {
        .cert_file = nc->tls_cert_file, .key_file = nc->tls_key_file, .ca_file = nc->tls_ca_file};
    struct net_tls *t;
    char err[512];
    if (net_tls_new(&tc, &t, err, sizeof(err))) {
        fprintf(stderr, "raftfs mount: %s\n", err);
        return 1;
    }
    net_tls_free(t);
    cli_tls_set(nc->tls_ca_file, nc->tls_cert_file, nc->tls_key_file);
    return 0;
}

/* Plaintext off loopback (--listen, --peers, --join) is refused before
 * anything is made or sent; node_open checks again on every start (a
 * restart may take its address from the member directory). 0, or the
 * exit status. */
static int check_plaintext(const struct mount_args *a)
{
    const struct node_config *nc = &a->node;
    if (nc->tls_cert_file || nc->allow_plaintext)
        return 0;
    const char *lists[2] = {a->listen, a->join};
    for (size_t i = 0; i < nc->n_members + 2; i++) {
        const char *addrs = i < 2 ? lists[i] : nc->members[i - 2].addr;
        char *copy = addrs ? strdup(addrs) : NULL, *save = NULL;
        for (char *e = copy ? strtok_r(copy, ",", &save) : NULL; e;
             e = strtok_r(NULL, ",", &save)) {
            struct net_addr addr;
            char why[256];
            if (net_addr_parse(e, &addr, why, sizeof(why)) || net_addr_is_loopback(&addr))
                continue;
            fprintf(stderr,
                    "raftfs mount: refusing to %s %s in plaintext: it is not a loopback address, "
                    "and anyone who can reach it could read the tree and speak as a member. Give "
                    "--cert-file, --key-file and --trusted-ca-file for TLS (docs/operations.md, "
                    "\"TLS\"), or --allow-plaintext to accept that\n",
                    i == 0   ? "serve"
                    : i == 1 ? "join through"
                             : "talk to a peer at",
                    e);
            free(copy);
            return 1;
        }
        free(copy);
    }
    return 0;
}

/* Refuses mountpoints that cannot work, with a message that says why. */
static int check_mountpoint(const char *mnt)
{
    struct stat sb, parent;
    if (stat(mnt, &sb)) {
        if (errno == ENOTCONN)
            fprintf(stderr,
                    "raftfs mount: %s is a dead mount (Transport endpoint is not connected); "
                    "run 'fusermount3 -u %s' first\n",
                    mnt, mnt);
        else
            fprintf(stderr, "raftfs mount: cannot use mountpoint %s: %s\n", mnt, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "raftfs mount: mountpoint %s is not a directory\n", mnt);
        return 1;
    }
    char *up;
    if (asprintf(&up, "%s/..", mnt) < 0)
        return 1;
    int rc = stat(up, &parent);
    free(up);
    if (!rc && parent.st_dev != sb.st_dev && strcmp(mnt, "/")) {
        fprintf(stderr,
                "raftfs mount: %s is already a mount point; unmount it first "
                "(fusermount3 -u %s)\n",
                mnt, mnt);
        return 1;
    }
    return 0;
}

struct ready {
    int fd;          /* background: pipe to the waiting parent; -1 otherwise */
    const char *log; /* background: where stderr goes once ready */
    const char *mnt;
    const char *data;
    /* --join without --learner: ask to become a voter once serving (no
     * thread may run before the mount: fs_session.c) */
    const char *promote_via;
    uint64_t promote_id;
    char promote_addr[256];
    char promote_mark[4200]; /* DATA/promote-pending, removed once a voter */
};

static void start_promoter(const char *listen, uint64_t id, const char *mark);

static void on_ready(void *ctx)
{
    struct ready *r = ctx;
    if (r->promote_via)
        start_promoter(r->promote_via, r->promote_id, r->promote_mark);
    if (r->fd < 0) {
        fprintf(stderr, "raftfs: serving %s at %s; stop with 'fusermount3 -u %s' or Ctrl-C\n",
                r->data, r->mnt, r->mnt);
        /* Under systemd (Type=notify, examples/systemd): started once the
         * mount serves. Nothing without $NOTIFY_SOCKET. */
        sd_notifyf(0, "READY=1\nSTATUS=serving %s at %s", r->data, r->mnt);
        return;
    }
    int log = open(r->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log >= 0) {
        dup2(log, STDERR_FILENO);
        close(log);
    }
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        if (log < 0)
            dup2(null, STDERR_FILENO);
        close(null);
    }
    if (write(r->fd, "ok\n", 3) != 3) {
        /* the parent is gone: nothing to tell */
    }
    close(r->fd);
    r->fd = -1;
}

/* Tells the waiting parent (or the terminal) why we could not start. */
static void report(struct ready *r, const char *msg)
{
    if (r->fd >= 0) {
        dprintf(r->fd, "error: %s\n", msg);
        close(r->fd);
        r->fd = -1;
    } else {
        fprintf(stderr, "raftfs mount: %s\n", msg);
    }
}

struct promoter {
    char endpoints[256];
    uint64_t id;
    char mark[4200];
};

static void *promoter_main(void *arg)
{
    struct promoter *p = arg;
    pthread_setname_np(pthread_self(), "raftfs-promote");
    /* Until it is a voter: the leader refuses while it has not caught up. */
    if (cli_member_promote(p->endpoints, p->id, 3000) == 0) {
        node_log(NODE_LOG_INFO, "member %llu is a voter", (unsigned long long)p->id);
        if (unlink(p->mark) && errno != ENOENT)
            node_log(NODE_LOG_WARN, "cannot remove %s: %s", p->mark, strerror(errno));
    } else
        node_log(NODE_LOG_WARN,
                 "member %llu could not become a voter: try 'raftfs member "
                 "promote %llu'",
                 (unsigned long long)p->id, (unsigned long long)p->id);
    free(p);
    return NULL;
}

/* A joining member asks to become a voter in the background, through its
 * own port. That port does not forward: unless it leads, it answers EAGAIN
 * with the leader's address (when it knows it), and the client library
 * (net_client) reconnects there; cli_member_promote retries the rest. */
static void start_promoter(const char *listen, uint64_t id, const char *mark)
{
    struct promoter *p = calloc(1, sizeof(*p));
    pthread_t th;
    if (!p)
        return;
    snprintf(p->endpoints, sizeof(p->endpoints), "%s", listen);
    p->id = id;
    snprintf(p->mark, sizeof(p->mark), "%s", mark);
    if (pthread_create(&th, NULL, promoter_main, p)) {
        free(p);
        return;
    }
    pthread_detach(th);
}

/* Creates path holding text (may be "") durably. An errno. */
static int write_mark(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    size_t len = strlen(text);
    int rc = write(fd, text, len) == (ssize_t)len ? 0 : (errno ? errno : EIO);
    if (!rc && fsync(fd))
        rc = errno;
    close(fd);
    if (rc)
        return rc;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return errno;
    rc = fsync(dfd) ? errno : 0;
    close(dfd);
    return rc;
}

static int serve(struct mount_args *a, struct ready *r)
{
    struct node_config ncfg = a->node;
    ncfg.data_dir = a->data;
    ncfg.store = a->store;
    struct node *n;
    char err[1024];
    int rc;
    /* Bound first, so that a busy address refuses the mount before anything
     * else is done; its thread starts once the mount serves (fs_serve). */
    struct net_http *http = NULL;
    if (a->metrics_addr && (rc = net_http_open(&http, a->metrics_addr, err, sizeof(err)))) {
        char msg[1200];
        snprintf(msg, sizeof(msg), "--metrics-addr: %s", err);
        report(r, msg);
        return 1;
    }
    /* --join on a first start: become a learner through a member, learn
     * the cluster's id and members. A restart has all that on disk. */
    char store_dir[4200];
    struct stat sb;
    snprintf(store_dir, sizeof(store_dir), "%s/store", a->data);
    bool joined_before = a->join && stat(store_dir, &sb) == 0;
    char joined_mark[4200];
    snprintf(joined_mark, sizeof(joined_mark), "%s/" STORE_JOINED_FILE, a->data);
    if (joined_before)
        ncfg.cluster_id_loose = true;
    else if (a->join &&
             (rc = cli_member_join(a->join, ncfg.id, a->listen, &ncfg, err, sizeof(err)))) {
        report(r, err);
        net_http_close(http);
        return 1;
    }
    /* A member that joined must never found a cluster of its own: killed
     * before its configuration arrived (its log still empty), it would
     * otherwise restart as the only voter of a new one. The mark is made
     * before the store, and read at every start. */
    if (a->join && !joined_before) {
        /* the address, the cluster's id, then the members the join named,
         * one "ID ADDRESS" a line: restarted before the leader's snapshot
         * (or before its store was made), the member is still of that
         * cluster and knows whom to let in (peers it does not know are
         * refused) */
        char mark[NODE_MAX_MEMBERS * 160 + 300];
        size_t off =
            (size_t)snprintf(mark, sizeof(mark), "%s\ncluster %016llx\n",
                             a->listen ? a->listen : "", (unsigned long long)ncfg.cluster_id);
        for (size_t i = 0; i < ncfg.n_members && off < sizeof(mark); i++)
            off += (size_t)snprintf(mark + off, sizeof(mark) - off, "%llu %s\n",
                                    (unsigned long long)ncfg.members[i].id, ncfg.members[i].addr);
        if ((mkdir(a->data, 0700) && errno != EEXIST) || (rc = write_mark(joined_mark, mark))) {
            rc = rc ? rc : errno;
            snprintf(err, sizeof(err), "cannot write %.900s: %s", joined_mark, strerror(rc));
            report(r, err);
            net_http_close(http);
            return 1;
        }
    }
    /* The mark holds the address given with --join's --listen: restarted
     * before the leader's snapshot brought the member directory, with no
     * --listen, the member still listens where the leader reaches it. */
    static char joined_listen[256];
    FILE *jf = fopen(joined_mark, "re");
    if (jf) {
        ncfg.joining = true;
        if (fgets(joined_listen, sizeof(joined_listen), jf)) {
            joined_listen[strcspn(joined_listen, "\n")] = 0;
            if (!ncfg.listen && joined_listen[0])
                ncfg.listen = joined_listen;
        }
        /* and the members the join named, unless given (--peers) */
        bool given = ncfg.n_members > 0;
        char line[300];
        while (fgets(line, sizeof(line), jf)) {
            unsigned long long id;
            if (sscanf(line, "cluster %llx", &id) == 1) {
                if (!a->peers)
                    ncfg.cluster_id = id;
                continue;
            }
            char addr[128];
            if (sscanf(line, "%llu %127s", &id, addr) != 2 || !id ||
                ncfg.n_members >= NODE_MAX_MEMBERS || given)
                continue;
            struct node_member *m = &ncfg.members[ncfg.n_members++];
            memset(m, 0, sizeof(*m));
            m->id = id;
            snprintf(m->addr, sizeof(m->addr), "%s", addr);
        }
        fclose(jf);
    }
    rc = node_open(&n, &ncfg, err, sizeof(err));
    if (rc) {
        report(r, err);
        net_http_close(http);
        return 1;
    }
    FILE *log = NULL;
    if (r->fd >= 0 && (log = fopen(r->log, "ae")))
        node_log_set_file(log); /* start-up problems still reach the caller via r->fd */
    node_log(NODE_LOG_INFO, "data directory %s opened (member %llu, incarnation %016llx)", a->data,
             (unsigned long long)ncfg.id, (unsigned long long)node_incarnation(n));
    /* A member that joined to be a voter asks for it until it is one, also
     * after a restart (with or without --join): the wish is kept in the
     * data directory until the promotion is done, so a member killed while
     * still a learner does not stay one. */
    snprintf(r->promote_mark, sizeof(r->promote_mark), "%s/" STORE_PROMOTE_FILE, a->data);
    bool promote = access(r->promote_mark, F_OK) == 0;
    if (a->join && !a->learner && !joined_before) {
        if ((rc = write_mark(r->promote_mark, ""))) {
            snprintf(err, sizeof(err), "cannot write %.900s: %s", r->promote_mark, strerror(rc));
            report(r, err);
            node_close(n);
            net_http_close(http);
            return 1;
        }
        promote = true;
    }
    if (promote) {
        const char *addr =
            ncfg.listen ? ncfg.listen
                        : node_member_addr(n, ncfg.id, r->promote_addr, sizeof(r->promote_addr));
        if (addr) {
            if (addr != r->promote_addr)
                snprintf(r->promote_addr, sizeof(r->promote_addr), "%s", addr);
            r->promote_via = r->promote_addr;
            r->promote_id = ncfg.id;
        }
    }
    struct fs_config fcfg = {.mountpoint = a->mountpoint,
                             .node = n,
                             .options = a->options,
                             .on_ready = on_ready,
                             .ready_ctx = r,
                             .log_path = r->fd >= 0 ? r->log : NULL,
                             .serializable = ncfg.serializable,
                             .http = http};
    err[0] = 0;
    rc = fs_serve(&fcfg, err, sizeof(err));
    if (r->fd < 0)
        sd_notify(0, "STOPPING=1");
    if (rc) {
        if (r->fd >= 0)
            report(r, err);
        else
            node_log(NODE_LOG_ERROR, "%s", err);
    }
    node_close(n);
    node_log(NODE_LOG_INFO, "stopped");
    if (log) {
        node_log_set_file(NULL);
        fclose(log);
    }
    return rc ? 1 : 0;
}

int cli_mount(int argc, char **argv)
{
    struct mount_args a = {0};
    char *tls_paths[3] = {NULL, NULL, NULL};
    int rc = parse_args(argc, argv, &a);
    if (rc)
        goto out;
    node_log_set_level(a.log_level);
    node_log_set_member(a.node.id);
    node_log_set_syslog(a.log_syslog);
    char *mnt = absolute(a.mountpoint), *data = absolute(a.data);
    if (!mnt || !data) {
        fprintf(stderr, "raftfs mount: cannot resolve %s: %s\n", !mnt ? a.mountpoint : a.data,
                strerror(errno));
        free(mnt);
        free(data);
        rc = 1;
        goto out;
    }
    a.mountpoint = mnt;
    a.data = data;
    if ((rc = check_mountpoint(mnt)) || (rc = check_tls(&a.node, tls_paths)) ||
        (rc = check_plaintext(&a)))
        goto out_paths;

    struct ready r = {.fd = -1, .mnt = mnt, .data = data};
    if (a.foreground) {
        rc = serve(&a, &r);
        goto out_paths;
    }

    char *log = NULL;
    if (a.log_file)
        log = absolute(a.log_file);
    else if (asprintf(&log, "%s/raftfs.log", data) < 0)
        log = NULL;
    if (!log) {
        fprintf(stderr, "raftfs mount: bad --log-file\n");
        rc = 1;
        goto out_paths;
    }
    r.log = log;
    int p[2];
    if (pipe2(p, O_CLOEXEC)) {
        perror("raftfs mount: pipe");
        rc = 1;
        goto out_log;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("raftfs mount: fork");
        rc = 1;
        goto out_log;
    }
    if (pid == 0) {
        /* The server: its own session, no terminal; its stderr stays the
         * caller's until the mount is ready, so start-up errors (ours and
         * libfuse's) reach the person who ran the command. */
        close(p[0]);
        setsid();
        if (chdir("/")) {
            /* paths are absolute already */
        }
        r.fd = p[1];
        _exit(serve(&a, &r));
    }
    close(p[1]);
    /* Wait for one line: "ok" or "error: ...". EOF means the server died. */
    char line[1200];
    size_t len = 0;
    while (len < sizeof(line) - 1) {
        ssize_t k = read(p[0], line + len, sizeof(line) - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
        if (memchr(line, '\n', len))
            break;
    }
    close(p[0]);
    line[len] = 0;
    if (!strncmp(line, "ok\n", 3)) {
        printf("raftfs: mounted %s at %s (pid %d, log %s)\n", data, mnt, (int)pid, log);
        rc = 0;
    } else {
        if (!strncmp(line, "error: ", 7))
            fprintf(stderr, "raftfs mount: %s", line + 7);
        else
            fprintf(stderr, "raftfs mount: the server exited during start-up\n");
        waitpid(pid, NULL, 0);
        rc = 1;
    }
out_log:
    free(log);
out_paths:
    free(mnt);
    free(data);
    for (int i = 0; i < 3; i++)
        free(tls_paths[i]);
out:
    free(a.options);
    return rc;
}
