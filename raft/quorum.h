/* raft/quorum.h: pure majority and joint-majority maths (no Raft state). */
#ifndef RAFT_QUORUM_H
#define RAFT_QUORUM_H

#include <stdint.h>

enum quorum_result {
    QUORUM_PENDING = 0,
    QUORUM_WON = 1,
    QUORUM_LOST = 2,
};

/* The largest index that at least a majority of values reach. An empty voter set imposes no
 * constraint and yields UINT64_MAX, so that the joint rule below is a plain minimum. */
uint64_t raft_quorum_majority_index(const uint64_t *values, uint32_t n);
/* Joint rule (§4.3): the index is committed in both halves. n_old == 0 means not joint. */
uint64_t raft_quorum_joint_index(const uint64_t *values, uint32_t n, const uint64_t *values_old,
                                 uint32_t n_old);

/* Outcome of a vote in one voter set: granted[i]/rejected[i] say whether voters[i] answered
 * yes/no. Won with a majority of yes, lost once a majority can no longer be reached. An empty
 * set is won. */
enum quorum_result raft_quorum_majority_vote(uint32_t n, uint32_t yes, uint32_t no);
/* Joint: won only if won in both, lost if lost in either. */
enum quorum_result raft_quorum_joint_vote(enum quorum_result a, enum quorum_result b);

#endif
