/* test_fs_table.c - the table of open files (fs/fs_table.c) and the life of
 * a writer's handle that a truncate(2) found by its process: RELEASE may
 * come while the truncate holds it, and then neither frees it under the
 * other nor loses the size (fs_op_setattr). Run under the sanitizer build,
 * a handle freed too early is a use-after-free report, one never freed a
 * leak. */
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_internal.h"

#define INO   42
#define TID   1000
#define OTHER 2000 /* a thread of another process: never matches TID */

/* A writable handle as an open by thread `tid` makes it (fs_file.c). */
static struct fs_handle *writer(uint64_t ino, pid_t tid)
{
    struct fs_handle *h = calloc(1, sizeof(*h));
    CHECK(h != NULL);
    h->kind = FS_HANDLE_FILE;
    h->ino = ino;
    h->writable = true;
    h->opener = tid;
    h->opener_tgid = tid; /* no /proc look-up: the test's ids are not live */
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->idle, NULL);
    return h;
}

static struct fs *new_fs(void)
{
    struct fs *fs = calloc(1, sizeof(*fs));
    CHECK(fs != NULL);
    CHECK_EQ(fs_table_init(fs), 0);
    fs->limits.max_value_bytes = 1 << 20;
    return fs;
}

static void free_fs(struct fs *fs)
{
    fs_table_fini(fs);
    free(fs);
}

/* Found by its process, released, then given back: the truncate after the
 * release is refused (EBADF: the caller proposes the size), and the handle
 * is freed by the give-back, not by the release. */
static void test_release_while_borrowed(void)
{
    struct fs *fs = new_fs();
    struct fs_handle *h = writer(INO, TID);
    CHECK_EQ(fs_table_open(fs, h), 0);
    CHECK(fs_table_writer_of(fs, INO, OTHER) == NULL);
    struct fs_handle *b = fs_table_writer_of(fs, INO, TID);
    CHECK(b == h);
    CHECK_EQ(fs_handle_truncate(fs, b, 3), 0); /* still open: its buffer */
    CHECK_EQ(b->len, 3);
    CHECK(b->dirty);
    fs_handle_drop(fs, h); /* RELEASE: must not free what b holds */
    CHECK(b->closed);
    CHECK(fs_table_writer_of(fs, INO, TID) == NULL); /* unregistered */
    CHECK_EQ(fs_handle_truncate(fs, b, 5), EBADF);
    CHECK_EQ(b->len, 3);  /* nothing changed in a buffer nobody commits */
    fs_handle_put(fs, b); /* the last user: frees it (a leak otherwise) */
    CHECK_EQ(fs->count, 0);
    free_fs(fs);
}

/* A closed handle is not found any more, for a size or to borrow, although
 * its RELEASE has not unregistered it yet; a poisoned one refuses a
 * truncate with its write error. */
static void test_closed_and_poisoned(void)
{
    struct fs *fs = new_fs();
    struct fs_handle *h = writer(INO, TID);
    CHECK_EQ(fs_table_open(fs, h), 0);
    uint64_t size = 99;
    atomic_store(&h->stat_size, 10);
    CHECK(fs_table_writer_size(fs, INO, 0, TID, &size));
    CHECK_EQ(size, 10);
    h->write_err = EFBIG;
    CHECK_EQ(fs_handle_truncate(fs, h, 1), EFBIG);
    CHECK_EQ(h->len, 0);
    atomic_store(&h->closed, true); /* as fs_op_release, before it unregisters */
    CHECK(!fs_table_writer_size(fs, INO, 0, TID, &size));
    CHECK(fs_table_writer_of(fs, INO, TID) == NULL);
    fs_handle_drop(fs, h);
    CHECK_EQ(fs->count, 0);
    free_fs(fs);
}

/* Two borrowers: only the last give-back after the release frees. And a
 * give-back before the release leaves the release to free. */
static void test_borrowers_counted(void)
{
    struct fs *fs = new_fs();
    struct fs_handle *h = writer(INO, TID);
    CHECK_EQ(fs_table_open(fs, h), 0);
    struct fs_handle *b1 = fs_table_writer_of(fs, INO, TID);
    struct fs_handle *b2 = fs_table_writer_of(fs, INO, TID);
    CHECK(b1 == h && b2 == h);
    CHECK_EQ(h->borrows, 2);
    fs_handle_drop(fs, h);
    CHECK(!fs_table_writer_unborrow(fs, b1)); /* one left: not freed */
    CHECK(h->is == NULL);                     /* released */
    fs_handle_put(fs, b2);

    h = writer(INO, TID);
    CHECK_EQ(fs_table_open(fs, h), 0);
    b1 = fs_table_writer_of(fs, INO, TID);
    fs_handle_put(fs, b1); /* not released: nothing freed */
    CHECK_EQ(h->borrows, 0);
    CHECK(h->is != NULL);  /* not released */
    fs_handle_drop(fs, h); /* frees */
    CHECK_EQ(fs->count, 0);
    free_fs(fs);
}

/* Opens and releases on one thread, look-ups and truncates on another, as
 * a process's close and its truncate(2) race on two FUSE threads. */
struct race {
    struct fs *fs;
    atomic_bool stop;
    atomic_long found, refused;
};

static void *truncater(void *arg)
{
    struct race *r = arg;
    while (!atomic_load(&r->stop)) {
        struct fs_handle *b = fs_table_writer_of(r->fs, INO, TID);
        if (!b)
            continue;
        atomic_fetch_add(&r->found, 1);
        int rc = fs_handle_truncate(r->fs, b, 7);
        CHECK(rc == 0 || rc == EBADF);
        if (rc == EBADF)
            atomic_fetch_add(&r->refused, 1);
        fs_handle_put(r->fs, b);
    }
    return NULL;
}

static void test_race(void)
{
    struct race r = {.fs = new_fs()};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, truncater, &r), 0);
    /* Until the other thread has met the handle often enough, for up to
     * 10 s: on a loaded machine it may not run at all for a while (a
     * bound of 200,000 rounds once ended with it never met, in CI). */
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; atomic_load(&r.found) < 20000; i++) {
        if (i % 1024 == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - t0.tv_sec >= 10)
                break;
        }
        struct fs_handle *h = writer(INO, TID);
        CHECK_EQ(fs_table_open(r.fs, h), 0);
        fs_handle_drop(r.fs, h);
    }
    atomic_store(&r.stop, true);
    pthread_join(t, NULL);
    CHECK(atomic_load(&r.found) > 0);
    CHECK_EQ(r.fs->count, 0);
    free_fs(r.fs);
}

int main(void)
{
    test_release_while_borrowed();
    test_borrowers_counted();
    test_closed_and_poisoned();
    test_race();
    CHECK_DONE();
}
