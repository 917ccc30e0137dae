/* raft/quorum.c: pure majority and joint-majority maths (no Raft state). */
#include "quorum.h"

#include <assert.h>

#include "conf.h"

uint64_t raft_quorum_majority_index(const uint64_t *values, uint32_t n)
{
    if (n == 0) {
        return UINT64_MAX;
    }
    assert(n <= 3 * RAFT_CONF_MAX);
    uint64_t sorted[3 * RAFT_CONF_MAX];
    /* Insertion sort, descending: n is tiny. */
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v = values[i];
        uint32_t j = i;
        while (j > 0 && sorted[j - 1] < v) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = v;
    }
    /* A majority is n/2+1 voters; the (n/2+1)-th largest value is reached by all of them. */
    return sorted[n / 2];
}

uint64_t raft_quorum_joint_index(const uint64_t *values, uint32_t n, const uint64_t *values_old,
                                 uint32_t n_old)
{
    uint64_t a = raft_quorum_majority_index(values, n);
    uint64_t b = raft_quorum_majority_index(values_old, n_old);
    return a < b ? a : b;
}

enum quorum_result raft_quorum_majority_vote(uint32_t n, uint32_t yes, uint32_t no)
{
    assert(yes + no <= n);
    if (n == 0) {
        return QUORUM_WON;
    }
    uint32_t need = n / 2 + 1;
    if (yes >= need) {
        return QUORUM_WON;
    }
    if (n - no < need) {
        return QUORUM_LOST;
    }
    return QUORUM_PENDING;
}

enum quorum_result raft_quorum_joint_vote(enum quorum_result a, enum quorum_result b)
{
    if (a == QUORUM_LOST || b == QUORUM_LOST) {
        return QUORUM_LOST;
    }
    if (a == QUORUM_WON && b == QUORUM_WON) {
        return QUORUM_WON;
    }
    return QUORUM_PENDING;
}
