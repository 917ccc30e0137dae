/* test_fs_known.c - the mount's count of the inodes the kernel holds
 * (fs/fs_known.h), against a plain array as the model. */
#include <stdbool.h>
#include <stdint.h>

#include "check.h"
#include "fs_known.h"

#define ROOT 1

static void test_counts(void)
{
    struct fs_known k;
    fs_known_init(&k, ROOT);
    CHECK(fs_known_changed(&k, ROOT)); /* the root is always held */
    CHECK(!fs_known_changed(&k, 7));   /* never handed out */
    uint64_t g = fs_known_gen(&k);
    CHECK(fs_known_ref(&k, 7, g));
    CHECK(fs_known_ref(&k, 7, g));
    CHECK(fs_known_changed(&k, 7));
    fs_known_forget(&k, 7, 1);
    CHECK(fs_known_changed(&k, 7)); /* one reference left */
    fs_known_forget(&k, 7, 1);
    CHECK(!fs_known_changed(&k, 7));
    fs_known_forget(&k, 7, 5); /* more than held, or never held: nothing breaks */
    fs_known_forget(&k, 99, 1);
    CHECK(!fs_known_changed(&k, 7));
    fs_known_ref(&k, 8, fs_known_gen(&k));
    fs_known_forget(&k, 8, 3); /* a FORGET of several references at once */
    CHECK(!fs_known_changed(&k, 8));
    size_t held;
    uint64_t told, skipped;
    fs_known_stats(&k, &held, &told, &skipped);
    CHECK_EQ(held, 0);
    CHECK_EQ(told, 3);
    CHECK_EQ(skipped, 4);
    fs_known_fini(&k);
}

/* A change skipped between a handler's store read and its count makes the
 * handler hand the entry out uncached; one told (the inode was counted
 * already) does not. */
static void test_generation(void)
{
    struct fs_known k;
    fs_known_init(&k, ROOT);
    uint64_t g = fs_known_gen(&k);
    CHECK(!fs_known_changed(&k, 42)); /* the handler read 42, has not counted it */
    CHECK(!fs_known_ref(&k, 42, g));  /* so its entry may be stale */
    g = fs_known_gen(&k);
    CHECK(fs_known_changed(&k, 42)); /* counted now: the kernel is told */
    CHECK(fs_known_ref(&k, 42, g));
    CHECK(!fs_known_changed(&k, 43)); /* another inode skipped: conservative */
    CHECK(!fs_known_ref(&k, 42, g));
    fs_known_fini(&k);
}

/* Random references and forgets over a small inode range (long probe
 * runs, deletions inside them, growth) against an array of counts. */
static void test_model(void)
{
    enum { N = 3000, OPS = 400000 };
    static uint64_t model[N];
    struct fs_known k;
    fs_known_init(&k, ROOT);
    uint64_t x = 88172645463325252ull;
    for (int op = 0; op < OPS; op++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t ino = 2 + x % (N - 2);
        unsigned what = (unsigned)(x >> 40) % 3;
        if (what == 0) {
            fs_known_ref(&k, ino, 0);
            model[ino]++;
        } else if (what == 1) {
            uint64_t n = 1 + (x >> 50) % 2;
            fs_known_forget(&k, ino, n);
            model[ino] = model[ino] > n ? model[ino] - n : 0;
        } else {
            bool held = fs_known_changed(&k, ino);
            if (held != (model[ino] > 0)) {
                CHECK(held == (model[ino] > 0));
                break;
            }
        }
    }
    size_t held, want = 0;
    uint64_t told, skipped;
    for (int i = 0; i < N; i++)
        want += model[i] > 0;
    fs_known_stats(&k, &held, &told, &skipped);
    CHECK_EQ(held, want);
    for (uint64_t i = 2; i < N; i++)
        CHECK_EQ(fs_known_changed(&k, i), model[i] > 0);
    /* everything forgotten: an empty table */
    for (uint64_t i = 2; i < N; i++)
        fs_known_forget(&k, i, UINT64_MAX);
    fs_known_stats(&k, &held, &told, &skipped);
    CHECK_EQ(held, 0);
    fs_known_fini(&k);
}

int main(void)
{
    test_counts();
    test_generation();
    test_model();
    CHECK_DONE();
}
