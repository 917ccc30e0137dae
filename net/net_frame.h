/* net_frame.h - length-prefixed frames (pure): a u32 big-endian payload
 * length, then the payload. Every frame on a raftfs connection is one. */
#ifndef RAFTFS_NET_FRAME_H
#define RAFTFS_NET_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define NET_FRAME_HEADER_BYTES 4
#define NET_FRAME_DEFAULT_MAX  (16U << 20)

/* Writes the header of a frame of len payload bytes. */
void net_frame_header(uint8_t hdr[NET_FRAME_HEADER_BYTES], uint32_t len);

/* Looks at the start of buf (len bytes). Returns:
 *   0        a whole frame: *payload (into buf) and *payload_len; the frame
 *            took *consumed bytes of buf
 *   EAGAIN   not a whole frame yet (read more)
 *   EMSGSIZE the frame declares more than max payload bytes: the peer is
 *            broken or hostile, close the connection */
int net_frame_parse(const uint8_t *buf, size_t len, size_t max, const uint8_t **payload,
                    size_t *payload_len, size_t *consumed);

#endif
