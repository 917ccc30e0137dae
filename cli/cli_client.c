/* cli_client.c - `raftfs put|get|del|mkdir|ls|status`: the client protocol
 * from the shell, against any member (--endpoints, or $RAFTFS_ENDPOINTS). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "net_client.h"
#include "node.h"
#include "store.h"

const char cli_client_usage[] =
    "usage: raftfs put PATH [VALUE]     write VALUE (or standard input) to the key PATH\n"
    "       raftfs get PATH             print the value of PATH\n"
    "       raftfs del PATH             remove a key or an empty directory\n"
    "       raftfs mkdir PATH           make a directory\n"
    "       raftfs ls [PATH]            list a directory (directories end with /)\n"
    "       raftfs status               the member's state\n"
    "\n"
    "options:\n"
    "  --endpoints HOST:PORT[,...]  members to talk to (default $RAFTFS_ENDPOINTS, or\n"
    "                               " CLI_DEFAULT_ENDPOINTS ")\n"
    "  --timeout SECONDS            give up after this long (default 5)\n"
    "  --serializable               get/ls: read the member's local state without\n"
    "                               asking the leader (may be behind)\n"
    "  --mode MODE                  put/mkdir: octal mode of a new entry (0644/0755)\n"
    "  --lease ID                   put: attach the key to this lease (raftfs lease),\n"
    "                               0 to none; without it a key keeps its own\n"
    "  --user NAME[:PASSWORD]       log in (access control; default $RAFTFS_USER)\n"
    "  --password-file FILE         the password, its first line ($RAFTFS_PASSWORD)\n" CLI_TLS_HELP;

struct client_args {
    const char *endpoints;
    double timeout_s;
    bool serializable;
    unsigned mode;
    bool mode_set;
    bool lease_set;
    uint64_t lease;
    const char *path;
    const char *value;
};

static struct {
    const char *cacert, *cert, *key;
} tls_files;

void cli_tls_option(int opt, const char *file)
{
    if (opt == CLI_OPT_CACERT)
        tls_files.cacert = file;
    else if (opt == CLI_OPT_CERT)
        tls_files.cert = file;
    else if (opt == CLI_OPT_KEY)
        tls_files.key = file;
}

void cli_tls_set(const char *cacert, const char *cert, const char *key)
{
    tls_files.cacert = cacert;
    tls_files.cert = cert;
    tls_files.key = key;
}

static const char *env_or(const char *given, const char *name)
{
    const char *e = getenv(name);
    return given ? given : e && *e ? e : NULL;
}

void cli_tls_config(struct net_client_config *cfg)
{
    cfg->tls.ca_file = env_or(tls_files.cacert, "RAFTFS_CACERT");
    cfg->tls.cert_file = env_or(tls_files.cert, "RAFTFS_CERT");
    cfg->tls.key_file = env_or(tls_files.key, "RAFTFS_KEY");
}

const char *cli_endpoints(void)
{
    const char *e = getenv("RAFTFS_ENDPOINTS");
    return e && *e ? e : CLI_DEFAULT_ENDPOINTS;
}

int cli_parse_timeout(const char *s, double *out)
{
    char *end;
    double t = strtod(s, &end);
    if (end == s || *end || !(t > 0) || t > 3600)
        return EINVAL;
    *out = t;
    return 0;
}

static int client_usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "raftfs %s: %s\nRun 'raftfs help client' for usage.\n", cmd, msg);
    return 2;
}

/* Parses options and up to max_pos positional arguments. */
static int parse(int argc, char **argv, struct client_args *a, int min_pos, int max_pos)
{
    static const struct option longopts[] = {
        {"endpoints", required_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 't'},
        {"serializable", no_argument, NULL, 's'},
        {"mode", required_argument, NULL, 'm'},
        {"lease", required_argument, NULL, 'l'},
        {"cacert", required_argument, NULL, CLI_OPT_CACERT},
        {"cert", required_argument, NULL, CLI_OPT_CERT},
        {"key", required_argument, NULL, CLI_OPT_KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    a->endpoints = cli_endpoints();
    a->timeout_s = 5;
    optind = 1;
    opterr = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            a->endpoints = optarg;
            break;
        case 't':
            if (cli_parse_timeout(optarg, &a->timeout_s))
                return client_usage_error(cmd, "bad --timeout (seconds, up to 3600)");
            break;
        case 's':
            a->serializable = true;
            break;
        case 'm': {
            unsigned long m = strtoul(optarg, &end, 8);
            if (*end || !*optarg || m > 07777)
                return client_usage_error(cmd, "bad --mode (octal, e.g. 0644)");
            a->mode = (unsigned)m;
            a->mode_set = true;
            break;
        }
        case 'l':
            if (strcmp(cmd, "put"))
                return client_usage_error(cmd, "--lease is put's");
            if (strcmp(optarg, "0") && cli_parse_lease_id(optarg, &a->lease))
                return client_usage_error(cmd, "bad --lease (a lease id: hex, or 0 for none)");
            a->lease_set = true;
            break;
        case CLI_OPT_CACERT:
        case CLI_OPT_CERT:
        case CLI_OPT_KEY:
            cli_tls_option(c, optarg);
            break;
        case 'h':
            fputs(cli_client_usage, stdout);
            exit(0);
        default:
            return client_usage_error(cmd, "unknown or incomplete option");
        }
    }
    int npos = argc - optind;
    if (npos < min_pos)
        return client_usage_error(cmd, "missing PATH");
    if (npos > max_pos)
        return client_usage_error(cmd, "too many arguments");
    a->path = npos > 0 ? argv[optind] : "/";
    a->value = npos > 1 ? argv[optind + 1] : NULL;
    if (a->path[0] != '/')
        return client_usage_error(cmd, "PATH must be absolute (start with /)");
    return 0;
}

struct net_client *cli_connect(const char *what, const char *endpoints, double timeout_s)
{
    struct net_client_config cfg = {.endpoints = endpoints, .timeout_ms = (int)(timeout_s * 1000)};
    cli_auth_config(&cfg);
    cli_tls_config(&cfg);
    struct net_client *c;
    char err[512];
    if (net_client_open(&c, &cfg, err, sizeof(err))) {
        fprintf(stderr, "raftfs %s: %s\n", what, err);
        return NULL;
    }
    return c;
}

static struct net_client *connect_or_die(const char *cmd, const struct client_args *a)
{
    struct net_client *c = cli_connect(cmd, a->endpoints, a->timeout_s);
    if (!c)
        exit(2);
    return c;
}

/* Runs one request; prints the failure and returns the exit status, or 0
 * with *resp for the caller. */
static int call(const char *cmd, struct net_client *c, Raftfs__ClientRequest *req, const char *path,
                Raftfs__ClientResponse **resp)
{
    *resp = NULL;
    int rc = net_client_call(c, req, resp);
    if (rc) {
        fprintf(stderr, "raftfs %s: %s\n", cmd, net_client_error(c));
        return 1;
    }
    if ((*resp)->err == ENOKEY) {
        fprintf(stderr, "raftfs %s: %s: no such lease (expired, revoked or never granted)\n", cmd,
                path);
        net_client_response_free(*resp);
        *resp = NULL;
        return 1;
    }
    if ((*resp)->err) {
        if ((*resp)->message)
            fprintf(stderr, "raftfs %s: %s: %s (%s)\n", cmd, path, strerror((*resp)->err),
                    (*resp)->message);
        else
            fprintf(stderr, "raftfs %s: %s: %s\n", cmd, path, strerror((*resp)->err));
        net_client_response_free(*resp);
        *resp = NULL;
        return 1;
    }
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Reads all of standard input (at most max bytes). */
static int read_stdin(size_t max, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return ENOMEM;
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                free(buf);
                return EFBIG;
            }
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                return ENOMEM;
            }
            buf = p;
            cap *= 2;
        }
        ssize_t k = read(STDIN_FILENO, buf + n, cap - n);
        if (k == 0)
            break;
        if (k < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            return e;
        }
        n += (size_t)k;
    }
    *out = buf;
    *len = n;
    return 0;
}

static Raftfs__Command *new_command(Raftfs__Command *cmd)
{
    raftfs__command__init(cmd);
    cmd->version = STORE_CMD_VERSION_PLAIN;
    cmd->time_ns = now_ns();
    return cmd;
}

static int cmd_put(int argc, char **argv)
{
    struct client_args a = {0};
    int rc = parse(argc, argv, &a, 1, 2);
    if (rc)
        return rc;
    char *value = NULL;
    size_t len = 0;
    if (a.value) {
        len = strlen(a.value);
    } else if ((rc = read_stdin(STORE_MAX_VALUE_BYTES_BOUND, &value, &len))) {
        fprintf(stderr, "raftfs put: reading standard input: %s\n", strerror(rc));
        return 1;
    }
    struct net_client *c = connect_or_die("put", &a);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__Command cmd;
    Raftfs__Put put = RAFTFS__PUT__INIT;
    new_command(&cmd);
    put.path.data = (uint8_t *)a.path;
    put.path.len = strlen(a.path);
    put.value.data = (uint8_t *)(a.value ? a.value : value);
    put.value.len = len;
    put.mode = a.mode_set ? a.mode : 0644;
    put.has_uid = put.has_gid = true;
    put.uid = getuid();
    put.gid = getgid();
    if (a.lease_set) {
        put.has_lease = true;
        put.lease = a.lease;
        cmd.version = STORE_CMD_VERSION_TXN; /* older builds would drop the lease */
    }
    cmd.op_case = RAFTFS__COMMAND__OP_PUT;
    cmd.put = &put;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
    req.write = &cmd;
    Raftfs__ClientResponse *resp;
    rc = call("put", c, &req, a.path, &resp);
    net_client_response_free(resp);
    net_client_close(c);
    free(value);
    return rc;
}

static int simple_write(const char *name, int argc, char **argv, int op)
{
    struct client_args a = {0};
    int rc = parse(argc, argv, &a, 1, 1);
    if (rc)
        return rc;
    struct net_client *c = connect_or_die(name, &a);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__Command cmd;
    Raftfs__Delete del = RAFTFS__DELETE__INIT;
    Raftfs__Rmdir rm = RAFTFS__RMDIR__INIT;
    Raftfs__Mkdir mk = RAFTFS__MKDIR__INIT;
    ProtobufCBinaryData path = {.data = (uint8_t *)a.path, .len = strlen(a.path)};
    new_command(&cmd);
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
    req.write = &cmd;
    Raftfs__ClientResponse *resp = NULL;
    if (op == STORE_OP_MKDIR) {
        mk.path = path;
        mk.mode = a.mode_set ? a.mode : 0755;
        mk.has_uid = mk.has_gid = true;
        mk.uid = getuid();
        mk.gid = getgid();
        cmd.op_case = RAFTFS__COMMAND__OP_MKDIR;
        cmd.mkdir = &mk;
        rc = call(name, c, &req, a.path, &resp);
    } else {
        /* del: a key, or else an empty directory (like rm -d). */
        del.path = path;
        cmd.op_case = RAFTFS__COMMAND__OP_DELETE;
        cmd.delete_ = &del;
        rc = net_client_call(c, &req, &resp);
        if (!rc && resp->err == EISDIR) {
            net_client_response_free(resp);
            resp = NULL;
            rm.path = path;
            cmd.op_case = RAFTFS__COMMAND__OP_RMDIR;
            cmd.rmdir = &rm;
            cmd.time_ns = now_ns();
            req.has_client_id = req.has_seq = false; /* a new write */
            rc = call(name, c, &req, a.path, &resp);
        } else if (!rc && resp->err) {
            fprintf(stderr, "raftfs %s: %s: %s\n", name, a.path, strerror(resp->err));
            rc = 1;
        } else if (rc) {
            fprintf(stderr, "raftfs %s: %s\n", name, net_client_error(c));
            rc = 1;
        }
    }
    net_client_response_free(resp);
    net_client_close(c);
    return rc;
}

static int cmd_get(int argc, char **argv)
{
    struct client_args a = {0};
    int rc = parse(argc, argv, &a, 1, 1);
    if (rc)
        return rc;
    struct net_client *c = connect_or_die("get", &a);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__GetRequest get = RAFTFS__GET_REQUEST__INIT;
    get.path.data = (uint8_t *)a.path;
    get.path.len = strlen(a.path);
    get.has_consistency = true;
    get.consistency =
        a.serializable ? RAFTFS__CONSISTENCY__SERIALIZABLE : RAFTFS__CONSISTENCY__LINEARIZABLE;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_GET;
    req.get = &get;
    Raftfs__ClientResponse *resp;
    rc = call("get", c, &req, a.path, &resp);
    if (!rc) {
        if (resp->attr && resp->attr->dir) {
            fprintf(stderr, "raftfs get: %s: %s\n", a.path, strerror(EISDIR));
            rc = 1;
        } else if (resp->has_value &&
                   fwrite(resp->value.data, 1, resp->value.len, stdout) != resp->value.len) {
            rc = 1;
        }
        net_client_response_free(resp);
    }
    net_client_close(c);
    return fflush(stdout) ? 1 : rc;
}

static int cmd_ls(int argc, char **argv)
{
    struct client_args a = {0};
    int rc = parse(argc, argv, &a, 0, 1);
    if (rc)
        return rc;
    struct net_client *c = connect_or_die("ls", &a);
    char after[STORE_MAX_NAME_BYTES_BOUND];
    size_t after_len = 0;
    bool more = true;
    while (more && !rc) {
        Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
        Raftfs__ListRequest lr = RAFTFS__LIST_REQUEST__INIT;
        lr.path.data = (uint8_t *)a.path;
        lr.path.len = strlen(a.path);
        if (after_len) {
            lr.has_after = true;
            lr.after.data = (uint8_t *)after;
            lr.after.len = after_len;
        }
        lr.has_consistency = true;
        lr.consistency =
            a.serializable ? RAFTFS__CONSISTENCY__SERIALIZABLE : RAFTFS__CONSISTENCY__LINEARIZABLE;
        req.op_case = RAFTFS__CLIENT_REQUEST__OP_LIST;
        req.list = &lr;
        Raftfs__ClientResponse *resp;
        if ((rc = call("ls", c, &req, a.path, &resp)))
            break;
        for (size_t i = 0; i < resp->n_entries; i++) {
            const Raftfs__Dirent *d = resp->entries[i];
            printf("%.*s%s\n", (int)d->name.len, (const char *)d->name.data, d->dir ? "/" : "");
        }
        more = resp->more && resp->n_entries > 0;
        if (more) {
            const Raftfs__Dirent *last = resp->entries[resp->n_entries - 1];
            after_len = last->name.len < sizeof(after) ? last->name.len : sizeof(after);
            memcpy(after, last->name.data, after_len);
        }
        net_client_response_free(resp);
    }
    net_client_close(c);
    return fflush(stdout) ? 1 : rc;
}

static int cmd_status(int argc, char **argv)
{
    struct client_args a = {0};
    int rc = parse(argc, argv, &a, 0, 0);
    if (rc)
        return rc;
    struct net_client *c = connect_or_die("status", &a);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__StatusRequest sr = RAFTFS__STATUS_REQUEST__INIT;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_STATUS;
    req.status = &sr;
    Raftfs__ClientResponse *resp;
    rc = call("status", c, &req, "status", &resp);
    if (!rc && resp->status) {
        /* The member's own renderer (node_status_json), so that this and
         * .raftfs/status print the same thing. */
        const Raftfs__StatusReply *s = resp->status;
        struct node_status ns = {.id = s->id,
                                 .cluster_id = s->cluster_id,
                                 .role = s->role,
                                 .config = s->config, /* NULL from an older member */
                                 .term = s->term,
                                 .leader = s->leader,
                                 .commit = s->commit,
                                 .applied = s->applied,
                                 .revision = s->revision,
                                 .serializable = s->serializable,
                                 .leader_contact_s =
                                     s->has_leader_contact_s ? s->leader_contact_s : -1};
        for (size_t i = 0; i < s->n_members && ns.n_members < NODE_MAX_MEMBERS; i++) {
            const Raftfs__MemberStatus *m = s->members[i];
            struct node_member_status *o = &ns.members[ns.n_members++];
            o->id = m->id;
            snprintf(o->addr, sizeof(o->addr), "%s", m->address ? m->address : "");
            o->role = m->role ? m->role : "";
            o->match = m->match;
            o->last_contact_s = m->has_last_contact_s ? m->last_contact_s : -1;
            snprintf(o->build, sizeof(o->build), "%s", m->build ? m->build : "");
            o->command_version = m->command_version;
        }
        size_t need = node_status_json(&ns, NULL, 0);
        char *text = malloc(need + 1);
        if (!text) {
            rc = 1;
        } else {
            node_status_json(&ns, text, need + 1);
            fputs(text, stdout);
            free(text);
        }
    }
    net_client_response_free(resp);
    net_client_close(c);
    return rc;
}

bool cli_client_known(const char *cmd)
{
    static const char *const names[] = {"put", "get", "del", "mkdir", "ls", "status"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(cmd, names[i]))
            return true;
    return false;
}

int cli_client(int argc, char **argv)
{
    const char *cmd = argv[0];
    if (!strcmp(cmd, "put"))
        return cmd_put(argc, argv);
    if (!strcmp(cmd, "get"))
        return cmd_get(argc, argv);
    if (!strcmp(cmd, "del"))
        return simple_write("del", argc, argv, STORE_OP_DELETE);
    if (!strcmp(cmd, "mkdir"))
        return simple_write("mkdir", argc, argv, STORE_OP_MKDIR);
    if (!strcmp(cmd, "ls"))
        return cmd_ls(argc, argv);
    if (!strcmp(cmd, "status"))
        return cmd_status(argc, argv);
    return -1;
}
