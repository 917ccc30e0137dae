/* cli_export.c - `raftfs export` (every key under a prefix as of one
 * revision, as JSON or tar) and `raftfs import` (such a file back, as one
 * txn or in batches).
 *
 * Export reads pages (ExportRequest, node/node_export.c) that each check
 * that nothing at, under or above the prefix changed after the first
 * page's revision; if something did, it starts again at the latest
 * revision (without --revision), so the output is always one revision.
 * The whole export is held in memory and written only when complete. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_export.h"
#include "net_client.h"
#include "store.h"

#define EXPORT_ATTEMPTS 10

const char cli_export_usage[] =
    "usage: raftfs export PREFIX [--revision R] [--format json|tar] [--output FILE]\n"
    "                            [--serializable] [--page-bytes B] [--endpoints ...]\n"
    "                            [--timeout S]\n"
    "       raftfs import [FILE] [--format json|tar] [--to PATH] [--batch N]\n"
    "                            [--endpoints ...] [--timeout S]\n"
    "\n"
    "export writes every key under PREFIX (PREFIX included) as of one revision:\n"
    "the latest, or R if nothing at, under or above PREFIX changed after R (a\n"
    "member keeps the latest values and the history of changes, not old\n"
    "values). Every member gives the same bytes for the same revision. JSON\n"
    "(the default) or a tar archive, to standard output or FILE (written whole,\n"
    "then renamed into place). It is read in pages of about --page-bytes\n"
    "(default 1 MiB, at most 8 MiB), each in its own read on the member; if the\n"
    "prefix changes meanwhile, it starts again at the latest revision (10 times\n"
    "at most).\n"
    "\n"
    "import reads such a file (or any tar of files and directories; default\n"
    "standard input, the format found from its first bytes) and creates its\n"
    "entries, at their paths or moved from the export's prefix to --to PATH,\n"
    "keeping mode, uid and gid (not times). By default as one txn: all or\n"
    "nothing, and only if the target does not exist yet (at most 4096 entries,\n"
    "and one command's size, about the largest value). --batch N: txns of N\n"
    "entries, NOT atomic: a failure leaves the entries before it in place.\n"
    "TLS options (for members that use TLS):\n" CLI_TLS_HELP;

struct xargs {
    const char *endpoints;
    double timeout_s;
    const char *format, *output, *to;
    uint64_t revision;
    bool serializable;
    size_t batch;
    uint32_t page_bytes;
    const char *pos;
};

static int xusage(const char *cmd, const char *msg)
{
    fprintf(stderr, "raftfs %s: %s\nRun 'raftfs help export' for usage.\n", cmd, msg);
    return 2;
}

static int xparse(int argc, char **argv, struct xargs *a, bool import)
{
    static const struct option longopts[] = {
        {"endpoints", required_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 't'},
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"revision", required_argument, NULL, 'r'},
        {"serializable", no_argument, NULL, 's'},
        {"to", required_argument, NULL, 'T'},
        {"batch", required_argument, NULL, 'b'},
        {"page-bytes", required_argument, NULL, 'p'},
        {"cacert", required_argument, NULL, CLI_OPT_CACERT},
        {"cert", required_argument, NULL, CLI_OPT_CERT},
        {"key", required_argument, NULL, CLI_OPT_KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    a->endpoints = cli_endpoints();
    a->timeout_s = 10;
    optind = 1;
    opterr = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        unsigned long long v;
        switch (c) {
        case 'e':
            a->endpoints = optarg;
            break;
        case 't':
            if (cli_parse_timeout(optarg, &a->timeout_s))
                return xusage(cmd, "bad --timeout (seconds, up to 3600)");
            break;
        case 'f':
            if (strcmp(optarg, "json") && strcmp(optarg, "tar"))
                return xusage(cmd, "--format is json or tar");
            a->format = optarg;
            break;
        case 'o':
            if (import)
                return xusage(cmd, "--output is export's");
            a->output = optarg;
            break;
        case 'r':
            errno = 0;
            v = strtoull(optarg, &end, 10);
            if (import || errno || *end || !v || optarg[0] == '-')
                return xusage(cmd, import ? "--revision is export's"
                                          : "bad --revision (a revision number, 1 or more)");
            a->revision = v;
            break;
        case 's':
            a->serializable = true;
            break;
        case 'T':
            if (!import)
                return xusage(cmd, "--to is import's");
            a->to = optarg;
            break;
        case 'b':
            errno = 0;
            v = strtoull(optarg, &end, 10);
            if (!import || errno || *end || !v || v > STORE_MAX_TXN_OPS - 1)
                return xusage(cmd, "bad --batch (entries per txn, 1 to 4095)");
            a->batch = (size_t)v;
            break;
        case 'p':
            errno = 0;
            v = strtoull(optarg, &end, 10);
            if (import || errno || *end || !v || v > (8u << 20))
                return xusage(cmd, "bad --page-bytes (1 to 8388608)");
            a->page_bytes = (uint32_t)v;
            break;
        case CLI_OPT_CACERT:
        case CLI_OPT_CERT:
        case CLI_OPT_KEY:
            cli_tls_option(c, optarg);
            break;
        case 'h':
            fputs(cli_export_usage, stdout);
            exit(0);
        default:
            return xusage(cmd, "unknown or incomplete option");
        }
    }
    int npos = argc - optind;
    if (npos > 1)
        return xusage(cmd, "too many arguments");
    if (!import && npos < 1)
        return xusage(cmd, "missing PREFIX");
    a->pos = npos ? argv[optind] : NULL;
    if (!import && a->pos[0] != '/')
        return xusage(cmd, "PREFIX must be absolute (start with /)");
    if (import && a->to && a->to[0] != '/')
        return xusage(cmd, "--to must be absolute (start with /)");
    return 0;
}

static struct net_client *xconnect(const char *cmd, const struct xargs *a)
{
    return cli_connect(cmd, a->endpoints, a->timeout_s);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One whole export at *rev (0: the latest). Returns 0, ESTALE (something
 * changed after *rev; *rev is where), or another error, reported. */
static int export_once(struct net_client *c, const struct xargs *a, uint64_t *rev, struct xset *x,
                       double deadline)
{
    char *after = NULL;
    size_t after_len = 0;
    int rc = 0;
    for (;;) {
        Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
        Raftfs__ExportRequest xr = RAFTFS__EXPORT_REQUEST__INIT;
        xr.prefix.data = (uint8_t *)a->pos;
        xr.prefix.len = strlen(a->pos);
        xr.has_revision = *rev != 0;
        xr.revision = *rev;
        xr.has_after = after != NULL;
        xr.after.data = (uint8_t *)after;
        xr.after.len = after_len;
        xr.has_limit_bytes = a->page_bytes != 0;
        xr.limit_bytes = a->page_bytes;
        xr.has_consistency = true;
        xr.consistency =
            a->serializable ? RAFTFS__CONSISTENCY__SERIALIZABLE : RAFTFS__CONSISTENCY__LINEARIZABLE;
        req.op_case = RAFTFS__CLIENT_REQUEST__OP_EXPORT;
        req.export = &xr;
        Raftfs__ClientResponse *r = NULL;
        if (net_client_call(c, &req, &r)) {
            fprintf(stderr, "raftfs export: %s\n", net_client_error(c));
            rc = EIO;
            break;
        }
        if (r->err == EAGAIN && now_s() < deadline) {
            /* A member behind the revision: it catches up. */
            net_client_response_free(r);
            usleep(100000);
            continue;
        }
        if (r->err) {
            rc = r->err;
            if (rc == ESTALE) {
                *rev = r->revision;
            } else if (rc == ERANGE) {
                fprintf(stderr,
                        "raftfs export: revision %llu: the member's history starts after %llu: "
                        "export the latest revision\n",
                        (unsigned long long)*rev, (unsigned long long)r->compact_revision);
            } else if (rc == EAGAIN) {
                fprintf(stderr, "raftfs export: revision %llu is not reached yet\n",
                        (unsigned long long)*rev);
            } else {
                fprintf(stderr, "raftfs export: %s: %s%s%s\n", a->pos, strerror(rc),
                        r->message ? " (" : "", r->message ? r->message : "");
                if (r->message)
                    fputs(")\n", stderr);
            }
            net_client_response_free(r);
            break;
        }
        *rev = r->revision;
        for (size_t i = 0; i < r->n_export_entries && !rc; i++) {
            const Raftfs__ExportEntry *w = r->export_entries[i];
            const Raftfs__Attr *at = w->attr;
            struct xentry e = {.path = (char *)w->path.data,
                               .path_len = w->path.len,
                               .dir = at->dir,
                               .mode = at->mode & 07777,
                               .uid = at->uid,
                               .gid = at->gid,
                               .mtime_ns = at->mtime_ns,
                               .create_revision = at->create_revision,
                               .mod_revision = at->mod_revision,
                               .version = at->version,
                               .value = w->value.data,
                               .value_len = w->has_value ? w->value.len : 0};
            if (!w->path.len || (!at->dir && !w->has_value))
                rc = EPROTO;
            else
                rc = cli_xset_add(x, &e);
        }
        bool more = r->has_more && r->more && r->n_export_entries;
        if (!rc && more) {
            const Raftfs__ExportEntry *last = r->export_entries[r->n_export_entries - 1];
            char *p = realloc(after, last->path.len);
            if (!p) {
                rc = ENOMEM;
            } else {
                after = p;
                memcpy(after, last->path.data, last->path.len);
                after_len = last->path.len;
            }
        }
        net_client_response_free(r);
        if (rc) {
            fprintf(stderr, "raftfs export: %s\n",
                    rc == EPROTO ? "a malformed answer" : strerror(rc));
            break;
        }
        if (!more)
            break;
    }
    free(after);
    return rc;
}

static int write_out(const struct xargs *a, const struct xset *x)
{
    bool tar = a->format && !strcmp(a->format, "tar");
    if (!a->output) {
        int rc = tar ? cli_xset_write_tar(x, stdout) : cli_xset_write_json(x, stdout);
        if (!rc && fflush(stdout))
            rc = errno;
        if (rc)
            fprintf(stderr, "raftfs export: writing: %s\n", strerror(rc));
        return rc ? 1 : 0;
    }
    size_t n = strlen(a->output) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return 1;
    snprintf(tmp, n, "%s.tmp%d", a->output, (int)getpid());
    FILE *f = fopen(tmp, "wbx");
    int rc = f ? 0 : errno;
    if (!rc)
        rc = tar ? cli_xset_write_tar(x, f) : cli_xset_write_json(x, f);
    if (f) {
        if (!rc && (fflush(f) || fsync(fileno(f))))
            rc = errno;
        if (fclose(f) && !rc)
            rc = errno;
    }
    if (!rc && rename(tmp, a->output))
        rc = errno;
    if (rc) {
        fprintf(stderr, "raftfs export: writing %s: %s\n", a->output, strerror(rc));
        unlink(tmp);
    }
    free(tmp);
    return rc ? 1 : 0;
}

static int cmd_export(int argc, char **argv)
{
    struct xargs a = {0};
    int rc = xparse(argc, argv, &a, false);
    if (rc)
        return rc;
    struct net_client *c = xconnect("export", &a);
    if (!c)
        return 2;
    double deadline = now_s() + a.timeout_s;
    struct xset x = {0};
    uint64_t rev = a.revision;
    for (int attempt = 1;; attempt++) {
        rc = export_once(c, &a, &rev, &x, deadline);
        if (rc != ESTALE)
            break;
        if (a.revision) {
            fprintf(stderr,
                    "raftfs export: %s changed at revision %llu, after %llu: a member keeps only "
                    "the latest values; export at %llu or later\n",
                    a.pos, (unsigned long long)rev, (unsigned long long)a.revision,
                    (unsigned long long)rev);
            break;
        }
        cli_xset_free(&x);
        if (attempt == EXPORT_ATTEMPTS) {
            fprintf(stderr, "raftfs export: %s changed during %d attempts: try again later\n",
                    a.pos, attempt);
            break;
        }
        rev = 0; /* again, at the latest revision */
    }
    net_client_close(c);
    if (rc) {
        cli_xset_free(&x);
        return 1;
    }
    x.prefix = strdup(a.pos);
    x.prefix_len = strlen(a.pos);
    x.revision = rev;
    rc = x.prefix ? write_out(&a, &x) : 1;
    cli_xset_free(&x);
    return rc;
}

/* ---- import ---- */

static int read_all(const char *file, uint8_t **out, size_t *len)
{
    int fd = file ? open(file, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
    if (fd < 0)
        return errno;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap + 1);
    int rc = buf ? 0 : ENOMEM;
    while (!rc) {
        if (n == cap) {
            uint8_t *p = cap >= (1ULL << 32) ? NULL : realloc(buf, cap * 2 + 1);
            if (!p) {
                rc = cap >= (1ULL << 32) ? EFBIG : ENOMEM;
                break;
            }
            buf = p;
            cap *= 2;
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            rc = errno;
        else if (k == 0)
            break;
        else
            n += (size_t)k;
    }
    if (file)
        close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

/* path relative to the export's prefix, moved under to. NULL if path is
 * not at or under prefix. */
static char *move_path(const struct xset *x, const struct xentry *e, const char *to, size_t *len)
{
    size_t pl = x->prefix_len;
    bool under = pl == 1 || (e->path_len >= pl && !memcmp(e->path, x->prefix, pl) &&
                             (e->path_len == pl || e->path[pl] == '/'));
    if (!under)
        return NULL;
    const char *rest = e->path + (pl == 1 ? 0 : pl); /* "" or "/..." */
    size_t rl = e->path_len - (pl == 1 ? 0 : pl);
    if (pl == 1 && rl == 1)
        rl = 0, rest = ""; /* the root itself */
    size_t tl = strlen(to);
    if (tl == 1 && rl)
        tl = 0; /* "/" + "/x" */
    char *p = malloc(tl + rl + 1);
    if (!p)
        return NULL;
    memcpy(p, to, tl);
    memcpy(p + tl, rest, rl);
    p[tl + rl] = 0;
    *len = tl + rl;
    return p;
}

/* Bytewise, but '/' before every other byte: parents before children. */
static int path_cmp(const void *a, const void *b)
{
    const struct xentry *x = a, *y = b;
    size_t n = x->path_len < y->path_len ? x->path_len : y->path_len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)x->path[i], d = (unsigned char)y->path[i];
        if (c != d) {
            if (c == '/')
                return -1;
            if (d == '/')
                return 1;
            return c < d ? -1 : 1;
        }
    }
    return x->path_len < y->path_len ? -1 : x->path_len > y->path_len;
}

/* Moves every entry to its target path, adds missing directories at or
 * under `to`, sorts parents first, refuses a path twice. */
static int plan(struct xset *x, const char *to, struct xset *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    int rc = 0;
    for (size_t i = 0; i < x->n && !rc; i++) {
        struct xentry e = x->e[i];
        size_t nl;
        char *np = move_path(x, &x->e[i], to, &nl);
        if (!np) {
            snprintf(err, err_len, "%s is not under the export's prefix %s", x->e[i].path,
                     x->prefix);
            return EINVAL;
        }
        e.path = np;
        e.path_len = nl;
        rc = nl ? cli_xset_add(out, &e) : 0; /* the root: not created */
        free(np);
    }
    /* Directories the archive left out, from `to` down: added for every
     * entry (marked implicit), then duplicates dropped after sorting. */
    size_t tl = strlen(to), n0 = out->n;
    for (size_t i = 0; i < n0 && !rc; i++) {
        for (size_t k = tl > 1 ? tl : 1; k < out->e[i].path_len && !rc; k++) {
            if (out->e[i].path[k] != '/')
                continue;
            struct xentry d = {.path = out->e[i].path,
                               .path_len = k,
                               .dir = true,
                               .implicit = true,
                               .mode = 0755,
                               .uid = getuid(),
                               .gid = getgid()};
            rc = cli_xset_add(out, &d);
        }
    }
    if (rc)
        return rc;
    qsort(out->e, out->n, sizeof(out->e[0]), path_cmp);
    /* Equal paths are now next to each other: two from the archive, or
     * one of them a file, is wrong; else keep one. */
    for (size_t i = 1; i < out->n; i++) {
        const struct xentry *a = &out->e[i - 1], *b = &out->e[i];
        if (path_cmp(a, b))
            continue;
        if (!a->implicit && !b->implicit) {
            snprintf(err, err_len, "%s is in the archive twice", b->path);
            return EINVAL;
        }
        if (!a->dir || !b->dir) {
            snprintf(err, err_len, "%s is a file with entries under it", b->path);
            return EINVAL;
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < out->n; i++) {
        struct xentry *e = &out->e[i];
        if (w && !path_cmp(&out->e[w - 1], e)) {
            if (!e->implicit) { /* the archive's own entry wins */
                struct xentry t = out->e[w - 1];
                out->e[w - 1] = *e;
                *e = t;
            }
            free(e->path);
            free(e->value);
            continue;
        }
        out->e[w++] = *e;
    }
    out->n = w;
    return 0;
}

static int cmd_import(int argc, char **argv)
{
    struct xargs a = {0};
    int rc = xparse(argc, argv, &a, true);
    if (rc)
        return rc;
    uint8_t *data = NULL;
    size_t len = 0;
    if ((rc = read_all(a.pos, &data, &len))) {
        fprintf(stderr, "raftfs import: cannot read %s: %s\n", a.pos ? a.pos : "standard input",
                strerror(rc));
        return 1;
    }
    size_t lead = 0;
    while (lead < len && (data[lead] == ' ' || data[lead] == '\n' || data[lead] == '\t'))
        lead++;
    bool json = a.format ? !strcmp(a.format, "json") : lead < len && data[lead] == '{';
    struct xset x, p;
    char err[512] = "";
    rc = json ? cli_xset_read_json((const char *)data, len, &x, err, sizeof(err))
              : cli_xset_read_tar(data, len, &x, err, sizeof(err));
    free(data);
    if (rc) {
        fprintf(stderr, "raftfs import: %s: cannot be read as %s: %s\n",
                a.pos ? a.pos : "standard input", json ? "a JSON export" : "tar", err);
        return 1;
    }
    const char *to = a.to ? a.to : x.prefix;
    rc = plan(&x, to, &p, err, sizeof(err));
    size_t total = p.n;
    if (rc) {
        fprintf(stderr, "raftfs import: %s\n", *err ? err : strerror(rc));
        cli_xset_free(&x);
        cli_xset_free(&p);
        return 1;
    }
    size_t per = a.batch ? a.batch : STORE_MAX_TXN_OPS - 1;
    if (!a.batch && total > per) {
        fprintf(stderr,
                "raftfs import: %zu entries are more than one txn holds (%d): use --batch N "
                "(not atomic)\n",
                total, STORE_MAX_TXN_OPS - 1);
        cli_xset_free(&x);
        cli_xset_free(&p);
        return 1;
    }
    struct net_client *c = xconnect("import", &a);
    if (!c) {
        cli_xset_free(&x);
        cli_xset_free(&p);
        return 2;
    }
    struct store_cmd *ops = calloc(per, sizeof(*ops));
    struct store_compare missing = {.path = to,
                                    .path_len = strlen(to),
                                    .target = STORE_CMP_VERSION,
                                    .result = STORE_CMP_EQUAL,
                                    .number = 0};
    int status = ops ? 0 : 1;
    uint64_t revision = 0;
    size_t done = 0;
    while (!status && done < total) {
        size_t n = total - done < per ? total - done : per;
        for (size_t i = 0; i < n; i++) {
            const struct xentry *e = &p.e[done + i];
            ops[i] = (struct store_cmd){.op = e->dir ? STORE_OP_MKDIR : STORE_OP_PUT,
                                        .path = e->path,
                                        .path_len = e->path_len,
                                        .value = e->dir ? "" : (const void *)e->value,
                                        .value_len = e->value_len,
                                        .mode = e->mode,
                                        .uid = e->uid,
                                        .gid = e->gid};
        }
        /* The target must not exist, checked by the first txn; "/" always
         * does (its entries then fail with EEXIST if they exist). */
        bool check = done == 0 && strcmp(to, "/");
        struct store_cmd cmd = {.op = STORE_OP_TXN,
                                .compares = check ? &missing : NULL,
                                .n_compares = check,
                                .then_ops = ops,
                                .n_then = n};
        Raftfs__ClientResponse *r = NULL;
        rc = cli_write_cmd(c, &cmd, &r);
        if (rc) {
            fprintf(stderr, "raftfs import: %s\n",
                    *net_client_error(c) ? net_client_error(c) : strerror(rc));
            status = 1;
        } else if (r->err == EFBIG || (r->err && !r->has_failed_op)) {
            fprintf(stderr, "raftfs import: %s%s\n", strerror(r->err),
                    r->err == EFBIG ? ": larger than one command: use a smaller --batch" : "");
            status = 1;
        } else if (r->err) {
            const struct xentry *e = &p.e[done + r->failed_op - 1];
            fprintf(stderr, "raftfs import: %s: %s; %s\n", e->path, strerror(r->err),
                    done ? "the entries before this batch are imported" : "nothing was imported");
            status = 1;
        } else if (!r->has_succeeded) {
            fprintf(stderr, "raftfs import: the member does not know txns (an older build?)\n");
            status = 1;
        } else if (!r->succeeded) {
            fprintf(stderr,
                    "raftfs import: %s exists: nothing was imported (import into a new path "
                    "with --to, then swap it in with raftfs txn)\n",
                    to);
            status = 1;
        } else {
            revision = r->revision;
            done += n;
        }
        net_client_response_free(r);
    }
    if (!status)
        printf("imported %zu entries at %s, revision %llu%s\n", total, to,
               (unsigned long long)revision, a.batch && total > per ? " (in batches)" : "");
    free(ops);
    net_client_close(c);
    cli_xset_free(&x);
    cli_xset_free(&p);
    return status;
}

int cli_export(int argc, char **argv)
{
    if (!strcmp(argv[0], "import"))
        return cmd_import(argc, argv);
    return cmd_export(argc, argv);
}
