/* check.h - the unit tests' assertions: each failure prints file:line and
 * the values, then the test continues (the process exits non-zero at the end
 * via CHECK_DONE). */
#ifndef RAFTFS_CHECK_H
#define RAFTFS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        check_count++;                                                                             \
        if (check_a_ != check_b_) {                                                                \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", __FILE__,         \
                    __LINE__, #a, #b, check_a_, check_b_);                                         \
        }                                                                                          \
    } while (0)

#define CHECK_MEM(p, len, s)                                                                       \
    do {                                                                                           \
        size_t check_l_ = (size_t)(len);                                                           \
        check_count++;                                                                             \
        if (check_l_ != strlen(s) || memcmp((p), (s), check_l_)) {                                 \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK_MEM failed: %.*s != %s\n", __FILE__, __LINE__,           \
                    (int)check_l_, (const char *)(p), (s));                                        \
        }                                                                                          \
    } while (0)

/* Runs one test function, naming it in the output. */
#define RUN(fn)                                                                                    \
    do {                                                                                           \
        int check_before_ = check_failures;                                                        \
        fn();                                                                                      \
        printf("%s %s\n", check_failures == check_before_ ? "ok  " : "FAIL", #fn);                 \
    } while (0)

#define CHECK_DONE()                                                                               \
    do {                                                                                           \
        printf("%d checks, %d failed\n", check_count, check_failures);                             \
        return check_failures ? 1 : 0;                                                             \
    } while (0)

#endif
