/* net_wire.h - Envelopes (net/raftfs.proto) on framed connections: the
 * version of the wire protocol, packing, sending, unpacking. */
#ifndef RAFTFS_NET_WIRE_H
#define RAFTFS_NET_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "net_conn.h"
#include "raftfs.pb-c.h"

/* The protocol version every Hello carries; a member refuses others. */
#define NET_WIRE_VERSION 1

/* Sends env as one frame on c. Errors of net_conn_send, ENOMEM. */
int net_wire_send(struct net_conn *c, const Raftfs__Envelope *env);

/* Packs env into a malloc'd buffer (caller frees). ENOMEM. */
int net_wire_pack(const Raftfs__Envelope *env, void **out, size_t *len);

/* Unpacks a frame's payload: NULL if it is not a well-formed Envelope with
 * a body (or out of memory). Free with net_wire_free. */
Raftfs__Envelope *net_wire_unpack(const uint8_t *payload, size_t len);
void net_wire_free(Raftfs__Envelope *env);

#endif
