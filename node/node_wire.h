/* node_wire.h - Raft messages (raft/raft.h) to and from the wire's
 * RaftMessage (net/raftfs.proto). Pure. */
#ifndef RAFTFS_NODE_WIRE_H
#define RAFTFS_NODE_WIRE_H

#include <stddef.h>

#include "raft.h"
#include "raftfs.pb-c.h"

/* Packs m as an Envelope into a malloc'd buffer (caller frees). ENOMEM. */
int node_wire_raft_pack(const struct raft_message *m, void **out, size_t *len);

/* Fills m from a decoded RaftMessage; m's pointers point into pm (which
 * must outlive m), except m->entries, an array freed by
 * node_wire_raft_release. Everything is checked: EPROTO for an unknown
 * type, a configuration over RAFT_CONF_MAX members, an entry over 4 GiB.
 * Peer input is never trusted further than that: raft_step checks the
 * rest. */
int node_wire_raft_unpack(const Raftfs__RaftMessage *pm, struct raft_message *m);
void node_wire_raft_release(struct raft_message *m);

#endif
