/* cli_check_rebuild.c - the part of `raftfs check` that catches damage the
 * tree's structure does not show: the replicated state rebuilt from the
 * data directory's snapshot image and Raft log, compared by digest.
 *
 * LMDB pages carry no checksum, so a flipped byte in a value, a mode or a
 * revision leaves a tree that decodes and walks cleanly. But the state is
 * never the only copy: the image the log starts after and the log's
 * entries after it (each with a CRC) are kept until a later image covers
 * them. Installing that image in a scratch data directory and applying
 * the entries up to the applied index, as the node applies them, gives the
 * state the tree must hold; a different digest is damage.
 *
 * The scratch directory is under $TMPDIR: a store of its own (the tree
 * again, as large as the member's) and a copy of the log's segments
 * (store_open on the copy may repair a torn last batch there, never in
 * DIR). Nothing in DIR is written; the caller holds DIR's lock shared, so
 * no server starts meanwhile. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_backup.h"
#include "raft.h"
#include "store.h"
#include "store_log.h"

#define REBUILD_BATCH 256

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return errno;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return e;
    }
    static char buf[1 << 16];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? errno : 0;
            break;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t k = write(out, buf + done, (size_t)(n - done));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                rc = errno;
                break;
            }
            done += k;
        }
        if (rc)
            break;
    }
    close(in);
    if (close(out) && !rc)
        rc = errno;
    return rc;
}

/* Replaces scratch/wal/ by a copy of dir/wal/'s segments. */
static int copy_wal(const char *dir, const char *scratch, char *err, size_t err_len)
{
    char from[4300], to[4300], a[4600], b[4600];
    snprintf(from, sizeof(from), "%s/wal", dir);
    snprintf(to, sizeof(to), "%s/wal", scratch);
    nftw(to, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (mkdir(to, 0700)) {
        int e = errno;
        cli_seterr(err, err_len, "cannot make %s: %s", to, strerror(e));
        return e;
    }
    DIR *d = opendir(from);
    if (!d) {
        int e = errno;
        cli_seterr(err, err_len, "cannot read %s: %s", from, strerror(e));
        return e;
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".seg"))
            continue;
        snprintf(a, sizeof(a), "%s/%s", from, e->d_name);
        snprintf(b, sizeof(b), "%s/%s", to, e->d_name);
        if ((rc = copy_file(a, b)))
            cli_seterr(err, err_len, "cannot copy %s: %s", a, strerror(rc));
    }
    closedir(d);
    return rc;
}

/* The image, then the log's entries up to applied, into s. */
static int rebuild(struct store *s, const char *dir, uint64_t applied, char *err, size_t err_len)
{
    struct store_log_snapshot snap;
    int rc = store_log_snapshot(s, &snap);
    if (rc) {
        cli_seterr(err, err_len, "cannot read the log's snapshot: %s", strerror(rc));
        return rc;
    }
    if (snap.index && !snap.size) {
        cli_seterr(err, err_len, "the log starts after a state adopted without an image");
        return ENOENT;
    }
    if (snap.index) {
        char path[4300], why[256] = "";
        snprintf(path, sizeof(path), "%s/snapshots/snap-%llu-%llu", dir,
                 (unsigned long long)snap.index, (unsigned long long)snap.term);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = errno;
            cli_seterr(err, err_len, "cannot open %s: %s", path, strerror(rc));
            return rc;
        }
        rc = store_snapshot_install(s, fd, NULL, why, sizeof(why));
        close(fd);
        if (rc) {
            cli_seterr(err, err_len, "cannot install %s: %s", path, why);
            return rc;
        }
    }
    struct store_entry batch[REBUILD_BATCH];
    struct store_result res[REBUILD_BATCH];
    for (uint64_t i = snap.index + 1; i <= applied;) {
        uint64_t hi = applied + 1 - i > REBUILD_BATCH ? i + REBUILD_BATCH : applied + 1;
        struct store_log_entry *e;
        size_t k;
        if ((rc = store_log_entries(s, i, hi, 4U << 20, &e, &k))) {
            cli_seterr(err, err_len, "cannot read the log at %llu: %s", (unsigned long long)i,
                       strerror(rc));
            return rc;
        }
        for (size_t j = 0; j < k; j++)
            batch[j] = (struct store_entry){.index = e[j].index,
                                            .data = e[j].data,
                                            .len = e[j].len,
                                            .noop = e[j].type != RAFT_ENTRY_NORMAL};
        rc = store_apply_batch(s, batch, k, res);
        free(e);
        if (rc) {
            cli_seterr(err, err_len, "cannot apply the log at %llu: %s", (unsigned long long)i,
                       strerror(rc));
            return rc;
        }
        i += k;
    }
    return 0;
}

static void count_problem(void *ctx, const char *msg)
{
    (void)msg;
    (*(int *)ctx)++;
}

int cli_check_rebuild(const char *dir, const struct store_check_report *r, uint64_t *digest,
                      char *err, size_t err_len)
{
    const char *tmp = getenv("TMPDIR");
    char scratch[4200];
    snprintf(scratch, sizeof(scratch), "%s/raftfs-check-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch)) {
        int e = errno;
        cli_seterr(err, err_len, "cannot make a scratch directory in %s: %s",
                   tmp && *tmp ? tmp : "/tmp", strerror(e));
        return EAGAIN;
    }
    struct store_config cfg = {.limits = r->limits};
    struct stat st;
    char mdb[4300];
    snprintf(mdb, sizeof(mdb), "%s/store/data.mdb", dir);
    cfg.map_bytes = STORE_DEFAULT_MAP_BYTES;
    if (!stat(mdb, &st) && (uint64_t)st.st_size * 2 > cfg.map_bytes)
        cfg.map_bytes = (uint64_t)st.st_size * 2;
    struct store *s = NULL;
    /* Failures to set the scratch directory up are the machine's
     * (EAGAIN: not compared), not damage of dir. */
    int rc = store_open(&s, scratch, &cfg, err, err_len);
    if (!rc) {
        store_close(s);
        s = NULL;
        rc = copy_wal(dir, scratch, err, err_len);
    }
    if (rc)
        rc = EAGAIN;
    if (!rc)
        rc = store_open(&s, scratch, &cfg, err, err_len);
    if (!rc)
        rc = rebuild(s, dir, r->applied, err, err_len);
    store_close(s);
    if (!rc) {
        struct store_check_report got;
        int problems = 0;
        rc = store_check(scratch, &got, count_problem, &problems, err, err_len);
        if (!rc)
            *digest = got.digest;
    }
    nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc == ENOSPC || rc == EDQUOT || rc == ENOMEM ? EAGAIN : rc;
}
