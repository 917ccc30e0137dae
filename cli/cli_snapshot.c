/* cli_snapshot.c - `raftfs snapshot save|status|restore`: online backups
 * of the replicated state, checking them, and seeding a new cluster from
 * one (etcd's snapshot save/status/restore).
 *
 * Backup file (version 1, little endian): a header, then a snapshot image
 * exactly as a member keeps and sends it (store/store_snapshot.c, which
 * ends with its own record count and CRC-32C), and nothing after it:
 *   0   "raftfs-backup" and three NULs (16)
 *   16  u32 version (1)
 *   20  u32 header bytes (64)
 *   24  u64 index      the image is the state after this log entry
 *   32  u64 term       of that entry
 *   40  u64 revision
 *   48  u64 image bytes (the file is 64 + this long)
 *   56  u32 zero
 *   60  u32 CRC-32C of bytes 0..59
 * The image carries no term (a member's image is named snap-INDEX-TERM):
 * the header adds it, with its own CRC. A file is good only if the header
 * passes its CRC, the size is exact, the image passes
 * store_snapshot_check (its CRC, its order, every record decodes) and
 * agrees with the header on index, revision and size.
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
 * 3. restore makes a new data directory: the image installed, then the
 *    member directory replaced by --peers (MEMBER_DEL of every old member,
 *    MEMBER_SET of every new one in id order, applied as the entries after
 *    the image's index: every member restored from one file with the same
 *    --peers holds the same state at the same index), a new image of that
 *    state as the one the log starts after (snap-INDEX-TERM, the term the
 *    backup's), the log's snapshot record with the new voters as its
 *    configuration, a hard state of that term, and the identity (the
 *    cluster id derived from --peers and --cluster-token as by `raftfs
 *    mount`, a new incarnation). Its first start is then an ordinary
 *    restart of a member whose log starts after a snapshot.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "net_client.h"
#include "node.h"
#include "raft.h"
#include "store.h"
#include "store_crc.h"
#include "store_log.h"

#define BACKUP_MAGIC     "raftfs-backup"
#define BACKUP_MAGIC_LEN 16
#define BACKUP_VERSION   1U
#define BACKUP_HDR_LEN   64
#define SAVE_ATTEMPTS    3
#define SAVE_CHUNK_BYTES (1U << 20)

const char cli_snapshot_usage[] =
    "usage: raftfs snapshot save FILE [--endpoints HOST:PORT,...] [--timeout S]\n"
    "       raftfs snapshot status FILE [--json]\n"
    "       raftfs snapshot restore FILE --data DIR --id N --peers ID=HOST:PORT,...\n"
    "                               [--cluster-token T]\n"
    "\n"
    "save writes a backup of a running cluster: an image of one member's\n"
    "applied state (the tree, sessions, member directory, leases) as of one\n"
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

/* snprintf into an error buffer, where a long path may cut the message. */
static void seterr(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

struct backup {
    uint64_t index, term, revision, image_bytes;
};

static int susage(const char *msg)
{
    fprintf(stderr, "raftfs snapshot: %s\nRun 'raftfs help snapshot' for usage.\n", msg);
    return 2;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void header_encode(const struct backup *b, unsigned char h[BACKUP_HDR_LEN])
{
    memset(h, 0, BACKUP_HDR_LEN);
    memcpy(h, BACKUP_MAGIC, sizeof(BACKUP_MAGIC));
    put32(h + 16, BACKUP_VERSION);
    put32(h + 20, BACKUP_HDR_LEN);
    put64(h + 24, b->index);
    put64(h + 32, b->term);
    put64(h + 40, b->revision);
    put64(h + 48, b->image_bytes);
    put32(h + 60, store_crc32c(0, h, 60));
}

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t k = pread(fd, (char *)buf + got, len - got, off + (off_t)got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno;
        if (k == 0)
            return EPROTO; /* short */
        got += (size_t)k;
    }
    return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t k = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno;
        done += (size_t)k;
    }
    return 0;
}

/* An unnamed file in dir, open for reading and writing. */
static int tmpfile_in(const char *dir, int *fd, char *err, size_t err_len)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/.raftfs-image-XXXXXX", dir);
    int f = mkostemp(path, O_CLOEXEC);
    if (f < 0) {
        int e = errno;
        seterr(err, err_len, "cannot make a temporary file in %s: %s", dir, strerror(e));
        return e;
    }
    unlink(path);
    *fd = f;
    return 0;
}

static const char *tmp_dir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

/* Checks the backup file at path whole (file comment) and, if image_fd,
 * copies its image into an unnamed file of tmp (returned in *image_fd).
 * EPROTO (damaged, truncated, not a backup) or an errno of the OS, with a
 * reason in err. */
static int backup_read(const char *path, const char *tmp, struct backup *b, int *image_fd,
                       char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        seterr(err, err_len, "cannot open: %s", strerror(e));
        return e;
    }
    int rc, out = -1;
    unsigned char h[BACKUP_HDR_LEN];
    struct stat st;
    if (fstat(fd, &st)) {
        rc = errno;
        seterr(err, err_len, "cannot stat: %s", strerror(rc));
        goto close_fd;
    }
    if ((rc = pread_all(fd, h, sizeof(h), 0)) || memcmp(h, BACKUP_MAGIC, sizeof(BACKUP_MAGIC))) {
        seterr(err, err_len, "not a raftfs backup (no backup header%s)",
               rc == EPROTO ? ": file too short" : "");
        rc = rc && rc != EPROTO ? rc : EPROTO;
        goto close_fd;
    }
    if (get32(h + 60) != store_crc32c(0, h, 60)) {
        seterr(err, err_len, "damaged: the backup header fails its checksum");
        rc = EPROTO;
        goto close_fd;
    }
    if (get32(h + 16) != BACKUP_VERSION || get32(h + 20) != BACKUP_HDR_LEN) {
        seterr(err, err_len, "backup format version %u, this build reads %u", get32(h + 16),
               BACKUP_VERSION);
        rc = EPROTO;
        goto close_fd;
    }
    b->index = get64(h + 24);
    b->term = get64(h + 32);
    b->revision = get64(h + 40);
    b->image_bytes = get64(h + 48);
    if ((uint64_t)st.st_size != BACKUP_HDR_LEN + b->image_bytes) {
        seterr(err, err_len, "%s: %llu bytes, the header says %llu",
               (uint64_t)st.st_size < BACKUP_HDR_LEN + b->image_bytes ? "truncated"
                                                                      : "damaged (too long)",
               (unsigned long long)st.st_size,
               (unsigned long long)(BACKUP_HDR_LEN + b->image_bytes));
        rc = EPROTO;
        goto close_fd;
    }
    if ((rc = tmpfile_in(tmp, &out, err, err_len)))
        goto close_fd;
    char *buf = malloc(SAVE_CHUNK_BYTES);
    if (!buf) {
        rc = ENOMEM;
        seterr(err, err_len, "out of memory");
        goto close_out;
    }
    for (uint64_t off = 0; off < b->image_bytes && !rc;) {
        size_t n = b->image_bytes - off < SAVE_CHUNK_BYTES ? (size_t)(b->image_bytes - off)
                                                           : SAVE_CHUNK_BYTES;
        if ((rc = pread_all(fd, buf, n, (off_t)(BACKUP_HDR_LEN + off))) ||
            (rc = pwrite_all(out, buf, n, (off_t)off)))
            seterr(err, err_len, "cannot copy the image: %s", strerror(rc));
        off += n;
    }
    free(buf);
    if (rc)
        goto close_out;
    struct store_snapshot_info info;
    char why[256] = "";
    if ((rc = store_snapshot_check(out, &info, why, sizeof(why)))) {
        seterr(err, err_len, "damaged: %s", why);
        goto close_out;
    }
    if (info.applied_index != b->index || info.revision != b->revision ||
        info.bytes != b->image_bytes) {
        seterr(err, err_len,
               "damaged: the image (index %llu, revision %llu) is not the one the "
               "header names (index %llu, revision %llu)",
               (unsigned long long)info.applied_index, (unsigned long long)info.revision,
               (unsigned long long)b->index, (unsigned long long)b->revision);
        rc = EPROTO;
        goto close_out;
    }
    if (image_fd) {
        *image_fd = out;
        out = -1;
    }
close_out:
    if (out >= 0)
        close(out);
close_fd:
    close(fd);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Removes dir and everything in it. */
static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Removes everything in dir, not dir. */
static void empty_dir(const char *dir)
{
    rm_tree(dir);
    mkdir(dir, 0700);
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
    snprintf(dir, sizeof(dir), "%s/raftfs-snapshot-XXXXXX", tmp_dir());
    if (!mkdtemp(dir)) {
        int e = errno;
        seterr(err, err_len, "cannot make a scratch directory in %s: %s", tmp_dir(), strerror(e));
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
        seterr(err, err_len, "cannot install the image: %s", why);
        goto remove;
    }
    char problem[256] = "";
    if ((rc = store_check(dir, r, first_problem, problem, err, err_len)))
        goto remove;
    if (r->problems) {
        seterr(err, err_len, "damaged: the image's tree has %llu problems, the first: %s",
               (unsigned long long)r->problems, problem);
        rc = EPROTO;
    }
remove:
    rm_tree(dir);
    return rc;
}

/* ---- save ---- */

struct save_args {
    const char *file, *endpoints;
    double timeout_s;
};

/* One attempt: the whole image through c into fd after the header. */
static int save_once(struct net_client *c, int fd, struct backup *b, char *err, size_t err_len)
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
            seterr(err, err_len, "%s", net_client_error(c));
            return rc;
        }
        if (r->err) {
            seterr(err, err_len, "the member refused: %s%s%s", strerror(r->err),
                   r->message ? ": " : "", r->message ? r->message : "");
            rc = r->err == EOPNOTSUPP ? EPROTONOSUPPORT : r->err;
            net_client_response_free(r);
            return rc;
        }
        if (off == 0) {
            if (!r->snapshot) {
                net_client_response_free(r);
                seterr(err, err_len, "the member sent no image description");
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
            seterr(err, err_len, "the member sent a chunk that does not fit the image");
            return EPROTO;
        }
        rc = pwrite_all(fd, r->value.data, r->value.len, (off_t)(BACKUP_HDR_LEN + off));
        off += r->value.len;
        more = r->has_more && r->more;
        net_client_response_free(r);
        if (rc) {
            seterr(err, err_len, "cannot write: %s", strerror(rc));
            return rc;
        }
    }
    if (off != b->image_bytes) {
        seterr(err, err_len, "the image ended at %llu of %llu bytes", (unsigned long long)off,
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
    struct net_client_config cfg = {.endpoints = a->endpoints,
                                    .timeout_ms = (int)(a->timeout_s * 1000)};
    struct net_client *c;
    if (net_client_open(&c, &cfg, err, sizeof(err))) {
        fprintf(stderr, "raftfs snapshot save: %s\n", err);
        return 2;
    }
    int fd = open(part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "raftfs snapshot save: cannot create %s: %s\n", part, strerror(errno));
        net_client_close(c);
        return 1;
    }
    struct backup b = {0};
    int rc = 0;
    for (int attempt = 1; attempt <= SAVE_ATTEMPTS; attempt++) {
        /* The header stays zero until the image is whole. */
        unsigned char zero[BACKUP_HDR_LEN] = {0};
        if ((rc = ftruncate(fd, 0) ? errno : 0) || (rc = pwrite_all(fd, zero, sizeof(zero), 0))) {
            seterr(err, sizeof(err), "cannot write %s: %s", part, strerror(rc));
            break;
        }
        rc = save_once(c, fd, &b, err, sizeof(err));
        /* A member lost mid-way, or an image that went with its
         * connection: again, from the next endpoint. */
        if (!rc || (rc != ESTALE && rc != ETIMEDOUT && rc != ECONNRESET && rc != ECONNREFUSED &&
                    rc != EPIPE && rc != ENOTCONN))
            break;
        if (attempt < SAVE_ATTEMPTS) {
            fprintf(stderr, "raftfs snapshot save: %s: starting again\n", err);
            net_client_next_endpoint(c);
        }
    }
    net_client_close(c);
    unsigned char h[BACKUP_HDR_LEN];
    if (!rc) {
        header_encode(&b, h);
        if ((rc = pwrite_all(fd, h, sizeof(h), 0)) || (rc = fsync(fd) ? errno : 0))
            seterr(err, sizeof(err), "cannot write %s: %s", part, strerror(rc));
    }
    close(fd);
    struct backup check;
    if (!rc && (rc = backup_read(part, tmp, &check, NULL, err, sizeof(err)))) {
        char why[600];
        snprintf(why, sizeof(why), "the file written does not check: %s", err);
        seterr(err, sizeof(err), "%s", why);
    }
    if (!rc && rename(part, a->file)) {
        rc = errno;
        seterr(err, sizeof(err), "cannot rename %s to %s: %s", part, a->file, strerror(rc));
    }
    if (!rc && (rc = fsync_parent(a->file)))
        seterr(err, sizeof(err), "cannot sync the directory of %s: %s", a->file, strerror(rc));
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

static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            printf("\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            printf("\\u%04x", *c);
        else
            putchar(*c);
    }
    putchar('"');
}

static int snapshot_status(const char *file, bool json)
{
    struct backup b;
    char err[600];
    int image = -1;
    struct store_check_report r;
    int rc = backup_read(file, tmp_dir(), &b, &image, err, sizeof(err));
    if (!rc) {
        rc = image_check_tree(image, b.image_bytes, &r, err, sizeof(err));
        close(image);
    }
    if (json) {
        printf("{\"file\": ");
        json_str(file);
        if (rc) {
            printf(", \"ok\": false, \"error\": ");
            json_str(err);
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

/* ---- restore ---- */

struct restore_args {
    const char *file, *data, *peers, *token;
    uint64_t id;
};

struct old_members {
    uint64_t ids[4096];
    size_t n;
};

static int old_member(void *ctx, const struct store_member *m)
{
    struct old_members *o = ctx;
    if (o->n == sizeof(o->ids) / sizeof(o->ids[0]))
        return E2BIG;
    o->ids[o->n++] = m->id;
    return 0;
}

static int by_id(const void *a, const void *b)
{
    const struct node_member *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Replaces the member directory (design note 3): the entries after the
 * image's index. *index becomes the last one applied. */
static int members_replace(struct store *s, const struct node_member *m, size_t n, uint64_t *index,
                           char *err, size_t err_len)
{
    static struct old_members old;
    old.n = 0;
    int rc = store_members(s, old_member, &old);
    if (rc) {
        seterr(err, err_len, "cannot read the image's member directory: %s", strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < old.n + n && !rc; i++) {
        struct store_cmd cmd = {.op = i < old.n ? STORE_OP_MEMBER_DEL : STORE_OP_MEMBER_SET};
        if (i < old.n) {
            cmd.member_id = old.ids[i];
        } else {
            cmd.member_id = m[i - old.n].id;
            cmd.path = m[i - old.n].addr;
            cmd.path_len = strlen(m[i - old.n].addr);
        }
        void *buf;
        size_t len;
        if ((rc = store_cmd_encode(&cmd, &buf, &len))) {
            seterr(err, err_len, "cannot encode a member command: %s", strerror(rc));
            break;
        }
        struct store_entry e = {.index = *index + 1, .data = buf, .len = len};
        struct store_result res;
        rc = store_apply_batch(s, &e, 1, &res);
        free(buf);
        if (!rc && res.err)
            rc = res.err;
        if (rc)
            seterr(err, err_len, "cannot replace the member directory: %s", strerror(rc));
        else
            (*index)++;
    }
    return rc;
}

/* The image the log starts after: DIR/snapshots/snap-INDEX-TERM. */
static int image_write(struct store *s, const char *data, uint64_t term,
                       struct store_snapshot_info *info, char *err, size_t err_len)
{
    char dir[4200], tmp[4400], final[4300];
    snprintf(dir, sizeof(dir), "%s/snapshots", data);
    if (mkdir(dir, 0700) && errno != EEXIST) {
        int e = errno;
        seterr(err, err_len, "cannot create %s: %s", dir, strerror(e));
        return e;
    }
    struct store_stats st;
    int rc = store_get_stats(s, &st);
    if (rc) {
        seterr(err, err_len, "cannot read the store: %s", strerror(rc));
        return rc;
    }
    snprintf(final, sizeof(final), "%s/snap-%llu-%llu", dir, (unsigned long long)st.applied_index,
             (unsigned long long)term);
    snprintf(tmp, sizeof(tmp), "%s.tmp", final);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        seterr(err, err_len, "cannot create %s: %s", tmp, strerror(e));
        return e;
    }
    rc = store_snapshot_write(s, fd, info);
    close(fd);
    if (!rc && rename(tmp, final))
        rc = errno;
    if (!rc) {
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = fd < 0 ? errno : fsync(fd) ? errno : 0;
        if (fd >= 0)
            close(fd);
    }
    if (rc)
        seterr(err, err_len, "cannot write the image %s: %s", final, strerror(rc));
    return rc;
}

/* Whether dir is missing (then made here) or an empty directory; else
 * EEXIST (restore never overwrites a member) or ENOTDIR, with a reason. */
static int data_dir_new(const char *dir, char *err, size_t err_len)
{
    if (!mkdir(dir, 0700))
        return 0;
    if (errno != EEXIST) {
        int e = errno;
        seterr(err, err_len, "cannot create it: %s", strerror(e));
        return e;
    }
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        seterr(err, err_len, "%s", e == ENOTDIR ? "not a directory" : strerror(e));
        return e;
    }
    bool any = false;
    struct dirent *e;
    while ((e = readdir(d)))
        any |= strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    if (any) {
        seterr(err, err_len,
               "not empty: restore makes a new data directory, it never overwrites one");
        return EEXIST;
    }
    return 0;
}

static int snapshot_restore(const struct restore_args *a)
{
    struct node_member m[NODE_MAX_MEMBERS];
    size_t n;
    char err[600];
    if (cli_parse_peers(a->peers, m, &n, err, sizeof(err)))
        return susage(err);
    bool self = false;
    for (size_t i = 0; i < n; i++)
        self |= m[i].id == a->id;
    if (!self)
        return susage("--peers does not name this member (--id)");
    qsort(m, n, sizeof(m[0]), by_id);

    struct backup b;
    int image = -1;
    int rc = data_dir_new(a->data, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "raftfs snapshot restore: %s: %s\n", a->data, err);
        return 1;
    }
    /* From here on DIR was missing or empty: a failure empties it again. */
    if ((rc = backup_read(a->file, a->data, &b, &image, err, sizeof(err)))) {
        fprintf(stderr, "raftfs snapshot restore: %s: %s\n", a->file, err);
        empty_dir(a->data);
        return 1;
    }
    struct store_config cfg = {0};
    struct store *s = NULL;
    char why[256] = "";
    uint64_t index = b.index, term = b.term ? b.term : 1;
    uint64_t cluster = cli_cluster_id(m, n, a->token), incarnation = 0;
    struct store_snapshot_info info;
    if ((rc = store_open(&s, a->data, &cfg, err, sizeof(err))))
        goto fail;
    if ((rc = store_snapshot_install(s, image, NULL, why, sizeof(why)))) {
        seterr(err, sizeof(err), "cannot install the image: %s", why);
        goto fail;
    }
    close(image);
    image = -1;
    if ((rc = members_replace(s, m, n, &index, err, sizeof(err))))
        goto fail;
    if ((rc = image_write(s, a->data, term, &info, err, sizeof(err))))
        goto fail;
    struct raft_conf conf;
    memset(&conf, 0, sizeof(conf));
    for (size_t i = 0; i < n; i++)
        conf.voters[conf.n_voters++] = m[i].id;
    struct store_log_snapshot snap = {.index = index, .term = term, .size = info.bytes};
    snap.conf_len = raft_conf_encoded_size(&conf);
    raft_conf_encode(&conf, snap.conf);
    struct store_hard_state hs = {.term = term, .vote = 0, .commit = index};
    if ((rc = store_log_compact(s, &snap, true)) ||
        (rc = store_log_persist(s, &hs, NULL, 0, true))) {
        seterr(err, sizeof(err), "cannot write the log's start: %s", strerror(rc));
        goto fail;
    }
    do {
        if (getrandom(&incarnation, sizeof(incarnation), 0) != sizeof(incarnation)) {
            rc = errno;
            seterr(err, sizeof(err), "cannot draw an incarnation: %s", strerror(rc));
            goto fail;
        }
    } while (!incarnation);
    if ((rc = store_identity_set(s, cluster, a->id, incarnation))) {
        seterr(err, sizeof(err), "cannot record the identity: %s", strerror(rc));
        goto fail;
    }
    store_close(s);
    printf("raftfs snapshot restore: %s: member %llu of cluster %016llx, the state of %s "
           "(index %llu, revision %llu) with %zu members, starting after index %llu\n",
           a->data, (unsigned long long)a->id, (unsigned long long)cluster, a->file,
           (unsigned long long)b.index, (unsigned long long)b.revision, n,
           (unsigned long long)index);
    return 0;
fail:
    if (image >= 0)
        close(image);
    store_close(s);
    empty_dir(a->data);
    fprintf(stderr, "raftfs snapshot restore: %s: %s (nothing kept)\n", a->data, err);
    return 1;
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
    struct restore_args ra = {0};
    bool json = false;
    optind = 1;
    opterr = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc - 1, argv + 1, "d:h", longopts, NULL)) != -1) {
        switch (c) {
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
    return snapshot_restore(&ra);
}
