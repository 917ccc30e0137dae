/* test_store_full.c - a full disk is a lack of room, never a disk error.
 * LMDB's map is a sparse file: a commit whose new pages find too few free
 * blocks has its write cut short, which LMDB reports as EIO. The store
 * answers ENOSPC (the node then waits for room instead of failing closed),
 * the commit changed nothing, and once room is back the same command
 * commits. Found by tests/chaos (diskfull): members failed closed.
 *
 * Needs a filesystem of its own to fill: a 4 MiB tmpfs, mounted here (as
 * root, like the bats and chaos suites). */
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "store_util.h"

#define PAGE 4096

static int apply_put(struct store *s, uint64_t index, const char *path, const char *value,
                     size_t len, struct store_result *res)
{
    struct store_cmd c = {.op = STORE_OP_PUT,
                          .path = path,
                          .path_len = strlen(path),
                          .value = value,
                          .value_len = len,
                          .mode = 0644,
                          .time_ns = 1};
    void *buf;
    size_t blen;
    CHECK_EQ(store_cmd_encode(&c, &buf, &blen), 0);
    int rc = store_apply(s, index, buf, blen, res);
    free(buf);
    return rc;
}

/* Fills the filesystem with one file, then frees `pages` pages of it. */
static int fill(const char *dir, size_t pages)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/filler", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    static char zeros[PAGE];
    off_t size = 0;
    while (pwrite(fd, zeros, PAGE, size) == PAGE)
        size += PAGE;
    CHECK_EQ(errno, ENOSPC);
    CHECK(size > (off_t)(pages * PAGE));
    CHECK_EQ(ftruncate(fd, size - (off_t)(pages * PAGE)), 0);
    return fd;
}

/* A store on a 4 MiB tmpfs of its own (*dir, the mountpoint), with a
 * 64 MiB map; NULL (skipped) if a tmpfs cannot be mounted. */
static struct store *open_on_small_fs(char **dir)
{
    *dir = tmpdir_make();
    if (mount("tmpfs", *dir, "tmpfs", 0, "size=4m")) {
        printf("# skipped: cannot mount a tmpfs (%s); run as root\n", strerror(errno));
        rmdir(*dir);
        free(*dir);
        return NULL;
    }
    char data[600];
    snprintf(data, sizeof(data), "%s/data", *dir);
    struct store_config cfg = {.map_bytes = 64u << 20};
    return open_store_cfg(data, &cfg);
}

static void test_short_write_is_enospc(void)
{
    char *dir;
    struct store *s = open_on_small_fs(&dir);
    if (!s)
        return;
    struct store_result r;
    CHECK_EQ(apply_put(s, 1, "/small", "x", 1, &r), 0);

    /* A value of 64 pages: new pages at the map's end, written in one go,
     * with room for 2 of them. */
    size_t len = 64 * PAGE;
    char *big = malloc(len);
    memset(big, 'b', len);
    int fd = fill(dir, 2);
    int rc = apply_put(s, 2, "/big", big, len, &r);
    CHECK_EQ(rc, ENOSPC);

    /* Nothing of it was applied, and the store still works. */
    struct store_stats st;
    CHECK_EQ(store_get_stats(s, &st), 0);
    CHECK_EQ(st.applied_index, 1);
    close(fd);
    char filler[600];
    snprintf(filler, sizeof(filler), "%s/filler", dir);
    CHECK_EQ(unlink(filler), 0);
    CHECK_EQ(apply_put(s, 2, "/big", big, len, &r), 0);
    CHECK_EQ(r.err, 0);
    struct store_txn *t;
    struct store_attr a;
    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(store_resolve(t, "/big", 4, &a), 0);
    CHECK_EQ(a.size, len);
    store_txn_end(t);
    store_close(s);
    free(big);
    CHECK_EQ(umount(dir), 0);
    rmdir(dir);
    free(dir);
}

static bool defer_it(void *ctx)
{
    (void)ctx;
    return false;
}

/* Deferred applies whose commit finds the disk full: ENOSPC, none of them
 * applied, the store usable; applied again once there is room, the same
 * results. */
static void test_deferred_commit_enospc(void)
{
    char *dir;
    struct store *s = open_on_small_fs(&dir);
    if (!s)
        return;
    store_set_lazy_apply(s, true);
    struct store_result r;
    CHECK_EQ(apply_put(s, 1, "/small", "x", 1, &r), 0);
    size_t len = 64 * PAGE;
    char *big = malloc(len);
    memset(big, 'b', len);
    struct store_cmd c = {
        .op = STORE_OP_PUT, .path = "/big", .path_len = 4, .value = big, .value_len = len};
    void *buf;
    size_t blen;
    CHECK_EQ(store_cmd_encode(&c, &buf, &blen), 0);
    struct store_entry e[2] = {{.index = 2, .data = buf, .len = blen},
                               {.index = 3, .data = buf, .len = blen}};
    int fd = fill(dir, 2);
    CHECK_EQ(store_apply_batch_decided(s, &e[0], 1, &r, defer_it, NULL), 0);
    CHECK_EQ(r.err, 0);
    CHECK_EQ(store_apply_batch_decided(s, &e[1], 1, &r, defer_it, NULL), 0);
    CHECK(store_apply_deferred(s));
    CHECK_EQ(store_apply_flush(s), ENOSPC);
    CHECK(!store_apply_deferred(s));
    CHECK_EQ(store_applied_visible(s), 1);
    CHECK_EQ(store_apply_flush_error(s), 0); /* returned, not kept */
    struct store_stats st;
    CHECK_EQ(store_get_stats(s, &st), 0);
    CHECK_EQ(st.applied_index, 1);
    close(fd);
    char filler[600];
    snprintf(filler, sizeof(filler), "%s/filler", dir);
    CHECK_EQ(unlink(filler), 0);
    struct store_result rr[2];
    CHECK_EQ(store_apply_batch_decided(s, e, 2, rr, NULL, NULL), 0);
    CHECK_EQ(rr[0].err, 0);
    CHECK_EQ(rr[1].err, 0);
    CHECK_EQ(store_applied_visible(s), 3);
    /* A read on the applying thread commits deferred applies first; a
     * failure of that commit is kept for store_apply_flush_error, once. */
    struct store_entry e4 = {.index = 4, .data = buf, .len = blen};
    CHECK_EQ(store_apply_batch_decided(s, &e4, 1, &r, defer_it, NULL), 0);
    fd = fill(dir, 2);
    CHECK_EQ(store_get_stats(s, &st), 0);
    CHECK_EQ(st.applied_index, 3);
    CHECK(!store_apply_deferred(s));
    CHECK_EQ(store_apply_flush_error(s), ENOSPC);
    CHECK_EQ(store_apply_flush_error(s), 0);
    close(fd);
    CHECK_EQ(unlink(filler), 0);
    free(buf);
    store_close(s);
    free(big);
    CHECK_EQ(umount(dir), 0);
    rmdir(dir);
    free(dir);
}

int main(void)
{
    /* The tmpfs mounts live in a mount namespace of this process alone:
     * if a test aborts (a sanitizer report, a crash), they go with it
     * instead of staying mounted. Without the right to, the tests skip. */
    if (unshare(CLONE_NEWNS) == 0)
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    RUN(test_short_write_is_enospc);
    RUN(test_deferred_commit_enospc);
    CHECK_DONE();
}
