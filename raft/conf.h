/* raft/conf.h: pure helpers on struct raft_conf (membership sets, validation, encoding). */
#ifndef RAFT_CONF_H
#define RAFT_CONF_H

#include "raft.h"

bool raft_conf_set_has(const uint64_t *ids, uint32_t n, uint64_t id);
/* True if the two id sets hold the same ids (in any order). */
bool raft_conf_set_equal(const uint64_t *a, uint32_t na, const uint64_t *b, uint32_t nb);
/* True if id is a voter in either half of a (possibly joint) configuration. */
bool raft_conf_is_member(const struct raft_conf *c, uint64_t id);
/* Checks the structural rules of a configuration; allow_empty accepts zero voters (a member
 * that joins and has not heard of any configuration yet). */
bool raft_conf_valid(const struct raft_conf *c, bool allow_empty);
bool raft_conf_equal(const struct raft_conf *a, const struct raft_conf *b);
/* Every distinct id of c (voters, voters_old, learners) into ids (capacity 3*RAFT_CONF_MAX). */
uint32_t raft_conf_all_ids(const struct raft_conf *c, uint64_t *ids);
/* Formats "v=[1,2,3] old=[..] l=[..]" into buf (tracing). */
void raft_conf_format(const struct raft_conf *c, char *buf, size_t len);

#endif
