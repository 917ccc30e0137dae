/* raft/confchange.h: pure configuration transitions (simple, enter joint, leave joint). */
#ifndef RAFT_CONFCHANGE_H
#define RAFT_CONFCHANGE_H

#include "raft.h"

/*
 * Applies n changes to cur, which must not be joint. When the voter set changes the result is
 * the joint configuration C_old,new (voters = new set, voters_old = cur's voters; §4.3), else
 * a simple configuration. Errors: RAFT_EINVAL when a change names id 0, an id twice, adds a
 * member to the role it already has, removes a non-member, or the result has no voter or too
 * many members; RAFT_ECONFPENDING when cur is joint.
 */
int raft_confchange_apply(const struct raft_conf *cur, const struct raft_change *changes, size_t n,
                          struct raft_conf *out);

/* The configuration that follows the joint cur: C_new, learners kept. */
void raft_confchange_leave_joint(const struct raft_conf *cur, struct raft_conf *out);

#endif
