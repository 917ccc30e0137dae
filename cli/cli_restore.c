/* cli_restore.c - `raftfs snapshot restore`: a new data directory for a
 * member of a new cluster, seeded with a backup (etcd's snapshot restore).
 *
 * Design notes
 * 1. Restore makes a new data directory: the image installed, then the
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
 * 2. DIR must be missing or empty, and any failure empties it again:
 *    restore never overwrites a member, nor leaves half a directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_backup.h"
#include "node.h"
#include "raft.h"
#include "store.h"
#include "store_log.h"

/* Removes everything in dir, not dir. */
static void empty_dir(const char *dir)
{
    cli_rm_tree(dir);
    mkdir(dir, 0700);
}

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
        cli_seterr(err, err_len, "cannot read the image's member directory: %s", strerror(rc));
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
            cli_seterr(err, err_len, "cannot encode a member command: %s", strerror(rc));
            break;
        }
        struct store_entry e = {.index = *index + 1, .data = buf, .len = len};
        struct store_result res;
        rc = store_apply_batch(s, &e, 1, &res);
        free(buf);
        if (!rc && res.err)
            rc = res.err;
        if (rc)
            cli_seterr(err, err_len, "cannot replace the member directory: %s", strerror(rc));
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
        cli_seterr(err, err_len, "cannot create %s: %s", dir, strerror(e));
        return e;
    }
    struct store_stats st;
    int rc = store_get_stats(s, &st);
    if (rc) {
        cli_seterr(err, err_len, "cannot read the store: %s", strerror(rc));
        return rc;
    }
    snprintf(final, sizeof(final), "%s/snap-%llu-%llu", dir, (unsigned long long)st.applied_index,
             (unsigned long long)term);
    snprintf(tmp, sizeof(tmp), "%s.tmp", final);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        cli_seterr(err, err_len, "cannot create %s: %s", tmp, strerror(e));
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
        cli_seterr(err, err_len, "cannot write the image %s: %s", final, strerror(rc));
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
        cli_seterr(err, err_len, "cannot create it: %s", strerror(e));
        return e;
    }
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        cli_seterr(err, err_len, "%s", e == ENOTDIR ? "not a directory" : strerror(e));
        return e;
    }
    bool any = false;
    struct dirent *e;
    while ((e = readdir(d)))
        any |= strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    if (any) {
        cli_seterr(err, err_len,
                   "not empty: restore makes a new data directory, it never overwrites one");
        return EEXIST;
    }
    return 0;
}

static int rusage(const char *msg)
{
    fprintf(stderr, "raftfs snapshot restore: %s\nRun 'raftfs help snapshot' for usage.\n", msg);
    return 2;
}

int cli_snapshot_restore(const struct cli_restore_args *a)
{
    struct node_member m[NODE_MAX_MEMBERS];
    size_t n;
    char err[600];
    if (cli_parse_peers(a->peers, m, &n, err, sizeof(err)))
        return rusage(err);
    bool self = false;
    for (size_t i = 0; i < n; i++)
        self |= m[i].id == a->id;
    if (!self)
        return rusage("--peers does not name this member (--id)");
    qsort(m, n, sizeof(m[0]), by_id);

    struct cli_backup b;
    int image = -1;
    int rc = data_dir_new(a->data, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "raftfs snapshot restore: %s: %s\n", a->data, err);
        return 1;
    }
    /* From here on DIR was missing or empty: a failure empties it again. */
    if ((rc = cli_backup_read(a->file, a->data, &b, &image, err, sizeof(err)))) {
        fprintf(stderr, "raftfs snapshot restore: %s: %s\n", a->file, err);
        empty_dir(a->data);
        return 1;
    }
    struct store_config cfg = {0};
    /* Room for the tree the image holds, whatever its size (LMDB's pages
     * may be half empty); a later mount's smaller --db-size is raised by
     * LMDB to the pages the tree uses. */
    cfg.map_bytes = b.image_bytes * 4 + (64U << 20);
    if (cfg.map_bytes < STORE_DEFAULT_MAP_BYTES)
        cfg.map_bytes = STORE_DEFAULT_MAP_BYTES;
    struct store *s = NULL;
    char why[256] = "";
    uint64_t index = b.index, term = b.term ? b.term : 1;
    uint64_t cluster = cli_cluster_id(m, n, a->token), incarnation = 0;
    struct store_snapshot_info info;
    if ((rc = store_open(&s, a->data, &cfg, err, sizeof(err))))
        goto fail;
    if ((rc = store_snapshot_install(s, image, NULL, why, sizeof(why)))) {
        cli_seterr(err, sizeof(err), "cannot install the image: %s", why);
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
        cli_seterr(err, sizeof(err), "cannot write the log's start: %s", strerror(rc));
        goto fail;
    }
    do {
        if (getrandom(&incarnation, sizeof(incarnation), 0) != sizeof(incarnation)) {
            rc = errno;
            cli_seterr(err, sizeof(err), "cannot draw an incarnation: %s", strerror(rc));
            goto fail;
        }
    } while (!incarnation);
    if ((rc = store_identity_set(s, cluster, a->id, incarnation))) {
        cli_seterr(err, sizeof(err), "cannot record the identity: %s", strerror(rc));
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
