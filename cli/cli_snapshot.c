/* cli_snapshot.c - `raftfs snapshot save|status|restore`: online backups
 * of the replicated state and checking them (etcd's snapshot save and
 * status); restore is cli_restore.c, the file format cli_backup.c.
 *
 * Design notes
 * 1. save asks one member (SnapshotRequest, node/node_client.c) for an
 *    image of its applied state, written from one LMDB read transaction
 *    while writes go on, and copies it in chunks into FILE.part behind a
 *    zeroed header; the header is written last, the file fsync'ed, checked
 *    whole as status would, renamed to FILE and the directory fsync'ed. An
 *    interrupted save leaves at most FILE.part, whose header is zero or
 *    whose image is short: never a good file. A member lost mid-way makes
 *    it start again at the next endpoint (3 attempts).
 * 2. status and restore check the image in a copy (an unnamed temporary
 *    file: store_snapshot_check reads a whole file). status also installs
 *    it into a temporary data directory in $TMPDIR and runs store_check
 *    there: the tree's structure is checked, and the digest printed is the
 *    one `raftfs check` prints for a member that applied the same state.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_backup.h"
#include "cli_json.h"
#include "net_client.h"
#include "store.h"

#define BACKUP_HDR_LEN   CLI_BACKUP_HDR_LEN
#define SAVE_ATTEMPTS    3
#define SAVE_CHUNK_BYTES (1U << 20)

const char cli_snapshot_usage[] =
    "usage: raftfs snapshot save FILE [--endpoints HOST:PORT,...] [--timeout S]\n"
    "                               [--cacert F --cert F --key F] [--user NAME ...]\n"
    "       raftfs snapshot status FILE [--json]\n"
    "       raftfs snapshot restore FILE --data DIR --id N --peers ID=HOST:PORT,...\n"
    "                               [--cluster-token T]\n"
    "\n"
    "save writes a backup of a running cluster: an image of one member's\n"
    "applied state (the tree, sessions, member directory, leases, access\n"
    "control: with it enabled, save needs the role root) as of one\n"
    "log index, taken while writes go on. It is written to FILE.part, checked,\n"
    "fsync'ed and renamed to FILE: FILE exists only when it is whole and good.\n"
    "\n"
    "status checks FILE (its checksums, every record, the tree's structure)\n"
    "and prints its index, term, revision, entries (files and directories),\n"
    "size and the digest that 'raftfs check --data DIR' prints for a member\n"
    "holding the same state. A damaged or truncated file: exit status 1.\n"
    "\n"
    "restore makes a NEW data directory DIR (missing or empty) for member N of\n"
    "a new cluster whose members are --peers: the image's state with the\n"
    "member directory replaced by --peers. Restore every member of the new\n"
    "cluster from the same FILE with the same --peers (and --cluster-token),\n"
    "then start each with 'raftfs mount MNT --data DIR --id N --peers ...'.\n"
    "\n"
    "Exit status: 0 success, 1 failure (the reason is printed), 2 usage.\n";

static int susage(const char *msg)
{
    fprintf(stderr, "raftfs snapshot: %s\nRun 'raftfs help snapshot' for usage.\n", msg);
    return 2;
}

static void first_problem(void *ctx, const char *msg)
{
    char *out = ctx;
    if (!*out)
        snprintf(out, 256, "%s", msg);
}

/* Installs the image into a scratch data directory under $TMPDIR and
 * checks it there (design note 2). */
static int image_check_tree(int image_fd, uint64_t image_bytes, struct store_check_report *r,
                            char *err, size_t err_len)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/raftfs-snapshot-XXXXXX", cli_tmp_dir());
    if (!mkdtemp(dir)) {
        int e = errno;
        cli_seterr(err, err_len, "cannot make a scratch directory in %s: %s", cli_tmp_dir(),
                   strerror(e));
        return e;
    }
    struct store_config cfg = {0};
    /* The map must hold the tree: a few times the image (LMDB pages are
     * at most half full after inserts in key order, plus its own). */
    cfg.map_bytes = image_bytes * 4 + (64U << 20);
    if (cfg.map_bytes < STORE_DEFAULT_MAP_BYTES)
        cfg.map_bytes = STORE_DEFAULT_MAP_BYTES;
    struct store *s;
    int rc = store_open(&s, dir, &cfg, err, err_len);
    if (rc)
        goto remove;
    char why[256] = "";
    rc = store_snapshot_install(s, image_fd, NULL, why, sizeof(why));
    store_close(s);
    if (rc) {
        cli_seterr(err, err_len, "cannot install the image: %s", why);
        goto remove;
    }
    char problem[256] = "";
    if ((rc = store_check(dir, r, first_problem, problem, err, err_len)))
        goto remove;
    if (r->problems) {
        cli_seterr(err, err_len, "damaged: the image's tree has %llu problems, the first: %s",
                   (unsigned long long)r->problems, problem);
        rc = EPROTO;
    }
remove:
    cli_rm_tree(dir);
    return rc;
}

/* ---- save ---- */

struct save_args {
    const char *file, *endpoints;
    double timeout_s;
};

/* One attempt: the whole image through c into fd after the header. */
static int save_once(struct net_client *c, int fd, struct cli_backup *b, char *err, size_t err_len)
{
    uint64_t off = 0;
    bool more = true;
    while (more) {
        Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
        Raftfs__SnapshotRequest sr = RAFTFS__SNAPSHOT_REQUEST__INIT;
        req.op_case = RAFTFS__CLIENT_REQUEST__OP_SNAPSHOT;
        req.snapshot = &sr;
        sr.has_offset = true;
        sr.offset = off;
        sr.has_limit_bytes = true;
        sr.limit_bytes = SAVE_CHUNK_BYTES;
        Raftfs__ClientResponse *r;
        int rc = net_client_call(c, &req, &r);
        if (rc) {
            cli_seterr(err, err_len, "%s", net_client_error(c));
            return rc;
        }
        if (r->err) {
            cli_seterr(err, err_len, "the member refused: %s%s%s", strerror(r->err),
                       r->message ? ": " : "", r->message ? r->message : "");
            rc = r->err == EOPNOTSUPP ? EPROTONOSUPPORT : r->err;
            net_client_response_free(r);
            return rc;
        }
        if (off == 0) {
            if (!r->snapshot) {
                net_client_response_free(r);
                cli_seterr(err, err_len, "the member sent no image description");
                return EPROTO;
            }
            b->index = r->snapshot->index;
            b->term = r->snapshot->term;
            b->revision = r->snapshot->revision;
            b->image_bytes = r->snapshot->size;
        }
        if (!r->has_value || off + r->value.len > b->image_bytes ||
            (r->value.len == 0 && r->has_more && r->more)) {
            net_client_response_free(r);
            cli_seterr(err, err_len, "the member sent a chunk that does not fit the image");
            return EPROTO;
        }
        rc = cli_pwrite_all(fd, r->value.data, r->value.len, (off_t)(BACKUP_HDR_LEN + off));
        off += r->value.len;
        more = r->has_more && r->more;
        net_client_response_free(r);
        if (rc) {
            cli_seterr(err, err_len, "cannot write: %s", strerror(rc));
            return rc;
        }
    }
    if (off != b->image_bytes) {
        cli_seterr(err, err_len, "the image ended at %llu of %llu bytes", (unsigned long long)off,
                   (unsigned long long)b->image_bytes);
        return EPROTO;
    }
    return 0;
}

static int fsync_parent(const char *file)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) ? errno : 0;
    close(fd);
    return rc;
}

static int snapshot_save(const struct save_args *a)
{
    char part[4200], err[512], tmp[4200];
    if (strlen(a->file) + 6 > sizeof(part))
        return susage("FILE name too long");
    snprintf(part, sizeof(part), "%s.part", a->file);
    snprintf(tmp, sizeof(tmp), "%s", part);
    char *slash = strrchr(tmp, '/');
    if (!slash)
        snprintf(tmp, sizeof(tmp), ".");
    else if (slash == tmp)
        tmp[1] = 0;
    else
        *slash = 0;
    struct net_client *c = cli_connect("snapshot save", a->endpoints, a->timeout_s);
    if (!c)
        return 2;
    int fd = open(part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "raftfs snapshot save: cannot create %s: %s\n", part, strerror(errno));
        net_client_close(c);
        return 1;
    }
    struct cli_backup b = {0};
    int rc = 0;
    for (int attempt = 1; attempt <= SAVE_ATTEMPTS; attempt++) {
        /* The header stays zero until the image is whole. */
        unsigned char zero[BACKUP_HDR_LEN] = {0};
        if ((rc = ftruncate(fd, 0) ? errno : 0) ||
            (rc = cli_pwrite_all(fd, zero, sizeof(zero), 0))) {
            cli_seterr(err, sizeof(err), "cannot write %s: %s", part, strerror(rc));
            break;
        }
        rc = save_once(c, fd, &b, err, sizeof(err));
        /* A member lost mid-way, or an image that went with its
         * connection: again, from the next endpoint. */
        if (!rc || (rc != ESTALE && rc != EAGAIN && rc != ETIMEDOUT && rc != ECONNRESET &&
                    rc != ECONNREFUSED && rc != EPIPE && rc != ENOTCONN))
            break;
        if (attempt < SAVE_ATTEMPTS) {
            fprintf(stderr, "raftfs snapshot save: %s: starting again\n", err);
            net_client_next_endpoint(c);
        }
    }
    net_client_close(c);
    unsigned char h[BACKUP_HDR_LEN];
    if (!rc) {
        cli_backup_header(&b, h);
        if ((rc = cli_pwrite_all(fd, h, sizeof(h), 0)) || (rc = fsync(fd) ? errno : 0))
            cli_seterr(err, sizeof(err), "cannot write %s: %s", part, strerror(rc));
    }
    close(fd);
    struct cli_backup check;
    if (!rc && (rc = cli_backup_read(part, tmp, &check, NULL, err, sizeof(err)))) {
        char why[600];
        snprintf(why, sizeof(why), "the file written does not check: %s", err);
        cli_seterr(err, sizeof(err), "%s", why);
    }
    if (!rc && rename(part, a->file)) {
        rc = errno;
        cli_seterr(err, sizeof(err), "cannot rename %s to %s: %s", part, a->file, strerror(rc));
    }
    if (!rc && (rc = fsync_parent(a->file)))
        cli_seterr(err, sizeof(err), "cannot sync the directory of %s: %s", a->file, strerror(rc));
    if (rc) {
        unlink(part);
        fprintf(stderr, "raftfs snapshot save: %s\n", err);
        return 1;
    }
    printf("raftfs snapshot save: %s: index %llu, term %llu, revision %llu, %llu bytes\n", a->file,
           (unsigned long long)b.index, (unsigned long long)b.term, (unsigned long long)b.revision,
           (unsigned long long)(BACKUP_HDR_LEN + b.image_bytes));
    return 0;
}

/* ---- status ---- */

static void json_put(const char *s)
{
    cli_json_put_string(stdout, (const uint8_t *)s, strlen(s));
}

static int snapshot_status(const char *file, bool json)
{
    struct cli_backup b;
    char err[600];
    int image = -1;
    struct store_check_report r;
    int rc = cli_backup_read(file, cli_tmp_dir(), &b, &image, err, sizeof(err));
    if (!rc) {
        rc = image_check_tree(image, b.image_bytes, &r, err, sizeof(err));
        close(image);
    }
    if (json) {
        printf("{\"file\": ");
        json_put(file);
        if (rc) {
            printf(", \"ok\": false, \"error\": ");
            json_put(err);
        } else {
            printf(", \"ok\": true, \"index\": %llu, \"term\": %llu, \"revision\": %llu, "
                   "\"entries\": %llu, \"files\": %llu, \"dirs\": %llu, \"bytes\": %llu, "
                   "\"digest\": \"%016llx\"",
                   (unsigned long long)b.index, (unsigned long long)b.term,
                   (unsigned long long)b.revision, (unsigned long long)r.entries,
                   (unsigned long long)r.files, (unsigned long long)r.dirs,
                   (unsigned long long)(BACKUP_HDR_LEN + b.image_bytes),
                   (unsigned long long)r.digest);
        }
        printf("}\n");
    }
    if (rc) {
        fprintf(stderr, "raftfs snapshot status: %s: %s\n", file, err);
        return 1;
    }
    if (!json)
        printf("raftfs snapshot status: %s: ok: index %llu, term %llu, revision %llu, %llu "
               "entries (%llu files, %llu dirs), %llu bytes, digest %016llx\n",
               file, (unsigned long long)b.index, (unsigned long long)b.term,
               (unsigned long long)b.revision, (unsigned long long)r.entries,
               (unsigned long long)r.files, (unsigned long long)r.dirs,
               (unsigned long long)(BACKUP_HDR_LEN + b.image_bytes), (unsigned long long)r.digest);
    return 0;
}

int cli_snapshot(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"endpoints", required_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"data", required_argument, NULL, 'd'},
        {"id", required_argument, NULL, 'i'},
        {"peers", required_argument, NULL, 'p'},
        {"cluster-token", required_argument, NULL, 'T'},
        {"cacert", required_argument, NULL, CLI_OPT_CACERT},
        {"cert", required_argument, NULL, CLI_OPT_CERT},
        {"key", required_argument, NULL, CLI_OPT_KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "-h")) {
        fputs(cli_snapshot_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    bool save = !strcmp(sub, "save"), status = !strcmp(sub, "status"),
         restore = !strcmp(sub, "restore");
    if (!save && !status && !restore)
        return susage("unknown subcommand (save, status or restore)");
    struct save_args sa = {.endpoints = cli_endpoints(), .timeout_s = 30};
    struct cli_restore_args ra = {0};
    bool json = false;
    optind = 1;
    opterr = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc - 1, argv + 1, "d:h", longopts, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_CACERT:
        case CLI_OPT_CERT:
        case CLI_OPT_KEY:
            cli_tls_option(c, optarg);
            break;
        case 'e':
            if (!save)
                return susage("--endpoints is save's");
            sa.endpoints = optarg;
            break;
        case 't':
            if (!save || cli_parse_timeout(optarg, &sa.timeout_s))
                return susage("bad --timeout (save's: seconds, up to 3600)");
            break;
        case 'j':
            if (!status)
                return susage("--json is status's");
            json = true;
            break;
        case 'd':
            if (!restore)
                return susage("--data is restore's");
            ra.data = optarg;
            break;
        case 'i':
            errno = 0;
            ra.id = strtoull(optarg, &end, 10);
            if (!restore || errno || *end || !ra.id || optarg[0] == '-')
                return susage("bad --id (restore's: a member id, 1 or more)");
            break;
        case 'p':
            if (!restore)
                return susage("--peers is restore's");
            ra.peers = optarg;
            break;
        case 'T':
            if (!restore)
                return susage("--cluster-token is restore's");
            ra.token = optarg;
            break;
        case 'h':
            fputs(cli_snapshot_usage, stdout);
            return 0;
        default:
            return susage(optopt ? "unknown or incomplete option" : "unknown option");
        }
    }
    if (optind + 1 != argc - 1)
        return susage(optind + 1 > argc - 1 ? "missing FILE" : "unexpected argument");
    const char *file = argv[optind + 1];
    if (save) {
        sa.file = file;
        return snapshot_save(&sa);
    }
    if (status)
        return snapshot_status(file, json);
    ra.file = file;
    if (!ra.data || !*ra.data || !ra.id || !ra.peers)
        return susage("restore needs --data, --id and --peers");
    return cli_snapshot_restore(&ra);
}
