/* test_fs_walk.c - the per-thread record of a path walk's names
 * (fs/fs_walk.h): which steps the request that ends a walk checks, when
 * they are dropped, and that none is dropped unchecked when room runs out. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fs_walk.h"

#define ROOT 1

/* The model of "now": a set of (parent, name) -> ino that hold. */
struct now {
    struct {
        uint64_t parent, ino;
        const char *name;
    } e[16];
    int n;
    int asked; /* steps checked */
};

static bool holds(void *ctx, const struct fs_walk_step *s)
{
    struct now *now = ctx;
    now->asked++;
    for (int i = 0; i < now->n; i++)
        if (now->e[i].parent == s->parent && now->e[i].ino == s->ino &&
            strlen(now->e[i].name) == s->len && !memcmp(now->e[i].name, s->name, s->len))
            return true;
    return false;
}

static int add(struct fs_walks *w, uint32_t tid, uint64_t parent, const char *name, uint64_t ino)
{
    return fs_walk_add(w, tid, parent, name, strlen(name), ino);
}

/* a/b/c walked while a was renamed away: the check at the end finds it. */
static void test_renamed_dir(void)
{
    struct fs_walks w;
    CHECK_EQ(fs_walks_init(&w, 8), 0);
    CHECK_EQ(add(&w, 100, ROOT, "a", 10), 0);
    CHECK_EQ(add(&w, 100, 10, "b", 11), 0);
    CHECK_EQ(add(&w, 100, 11, "c", 12), 0);
    CHECK(fs_walk_pending(&w, 100, 12));
    CHECK(!fs_walk_pending(&w, 100, 11)); /* the walk led to 12 */
    CHECK(!fs_walk_pending(&w, 101, 12)); /* another thread's */
    /* now: 10 is "z", a new "a" is 20 */
    struct now now = {.e = {{ROOT, 10, "z"}, {10, 11, "b"}, {11, 12, "c"}, {ROOT, 20, "a"}},
                      .n = 4};
    CHECK_EQ(fs_walk_check(&w, 100, 12, holds, &now), ESTALE);
    /* the steps are gone once checked: the walk again passes */
    CHECK(!fs_walk_pending(&w, 100, 12));
    CHECK_EQ(fs_walk_check(&w, 100, 12, holds, &now), 0);
    CHECK_EQ(add(&w, 100, ROOT, "z", 10), 0);
    CHECK_EQ(add(&w, 100, 10, "b", 11), 0);
    CHECK_EQ(add(&w, 100, 11, "c", 12), 0);
    now.asked = 0;
    CHECK_EQ(fs_walk_check(&w, 100, 12, holds, &now), 0);
    CHECK_EQ(now.asked, 3);
    fs_walks_free(&w);
}

/* A lookup under another parent starts a new walk; ".." goes on from an
 * earlier step, keeping the steps that led to it. */
static void test_new_walk_and_dotdot(void)
{
    struct fs_walks w;
    CHECK_EQ(fs_walks_init(&w, 8), 0);
    CHECK_EQ(add(&w, 7, ROOT, "old", 30), 0); /* a stat's walk: never ended */
    CHECK_EQ(add(&w, 7, ROOT, "a", 10), 0);   /* a new walk from the root */
    CHECK_EQ(add(&w, 7, 10, "b", 11), 0);
    CHECK_EQ(add(&w, 7, 10, "c", 12), 0); /* a/b/../c */
    struct now now = {.e = {{ROOT, 10, "a"}, {10, 12, "c"}}, .n = 2};
    /* "old" (dropped) and "b" (left by "..") are not asked; a and c are */
    CHECK_EQ(fs_walk_check(&w, 7, 12, holds, &now), 0);
    CHECK_EQ(now.asked, 2);
    /* a stale a under the "..": found */
    CHECK_EQ(add(&w, 7, ROOT, "a", 10), 0);
    CHECK_EQ(add(&w, 7, 10, "b", 11), 0);
    CHECK_EQ(add(&w, 7, 10, "c", 12), 0);
    now.e[0].ino = 40; /* "a" is another directory now */
    CHECK_EQ(fs_walk_check(&w, 7, 12, holds, &now), ESTALE);
    fs_walks_free(&w);
}

/* An open that followed no walk of ours (/proc/self/fd/N) checks nothing
 * and drops what the thread had. */
static void test_end_elsewhere(void)
{
    struct fs_walks w;
    CHECK_EQ(fs_walks_init(&w, 4), 0);
    CHECK_EQ(add(&w, 5, ROOT, "f", 10), 0);
    struct now now = {.n = 0}; /* nothing holds */
    CHECK_EQ(fs_walk_check(&w, 5, 99, holds, &now), 0);
    CHECK_EQ(now.asked, 0);
    CHECK(!fs_walk_pending(&w, 5, 10));
    /* ino 0: whatever the steps led to (a full walk's check) */
    CHECK_EQ(add(&w, 5, ROOT, "f", 10), 0);
    CHECK_EQ(fs_walk_check(&w, 5, 0, holds, &now), ESTALE);
    /* thread id 0 (no caller): never recorded, never checked */
    CHECK_EQ(add(&w, 0, ROOT, "f", 10), EINVAL);
    CHECK(!fs_walk_pending(&w, 0, 10));
    CHECK_EQ(fs_walk_check(&w, 0, 10, holds, &now), 0);
    char longname[FS_WALK_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    CHECK_EQ(add(&w, 5, ROOT, longname, 10), EINVAL);
    fs_walks_free(&w);
}

static uint32_t gone_tid;
static bool alive_but(uint32_t tid)
{
    return tid != gone_tid;
}

/* Room runs out: the caller is told (it reads at a barrier), and no step
 * of a thread that is still there is dropped to make room. */
static void test_full(void)
{
    struct fs_walks w;
    CHECK_EQ(fs_walks_init(&w, 2), 0);
    w.alive = alive_but;
    gone_tid = 0;
    CHECK_EQ(add(&w, 1, ROOT, "a", 10), 0);
    CHECK_EQ(add(&w, 2, ROOT, "b", 11), 0);
    CHECK_EQ(add(&w, 3, ROOT, "c", 12), ENOSPC);
    CHECK(fs_walk_pending(&w, 1, 10));
    CHECK(fs_walk_pending(&w, 2, 11));
    gone_tid = 1; /* thread 1 exited */
    /* the search for threads that are gone ran a moment ago: not again */
    CHECK_EQ(add(&w, 3, ROOT, "c", 12), ENOSPC);
    CHECK(fs_walk_pending(&w, 1, 10));
    w.scan_gap_ns = 0;
    CHECK_EQ(add(&w, 3, ROOT, "c", 12), 0);
    CHECK(!fs_walk_pending(&w, 1, 10));
    CHECK(fs_walk_pending(&w, 2, 11));
    CHECK(fs_walk_pending(&w, 3, 12));
    /* a walk deeper than the steps kept */
    uint64_t parent = 12;
    int rc = 0, depth = 1;
    while (!(rc = add(&w, 3, parent, "d", parent + 1))) {
        parent++;
        depth++;
    }
    CHECK_EQ(rc, ENOSPC);
    CHECK_EQ(depth, FS_WALK_STEPS);
    CHECK(fs_walk_pending(&w, 3, parent)); /* the steps kept are all there */
    fs_walks_free(&w);
}

/* The default check of whether a thread is still there: /proc. */
static void test_alive(void)
{
    struct fs_walks w;
    CHECK_EQ(fs_walks_init(&w, 1), 0);
    CHECK(w.alive((uint32_t)gettid()));
    CHECK(w.alive((uint32_t)getpid()));
    CHECK(!w.alive(0x7ffffff0u)); /* above any pid_max */
    fs_walks_free(&w);
}

int main(void)
{
    test_alive();
    test_renamed_dir();
    test_new_walk_and_dotdot();
    test_end_elsewhere();
    test_full();
    CHECK_DONE();
}
