/* net_frame.c - length-prefixed frames. */
#include "net_frame.h"

#include <errno.h>

void net_frame_header(uint8_t hdr[NET_FRAME_HEADER_BYTES], uint32_t len)
{
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
}

int net_frame_parse(const uint8_t *buf, size_t len, size_t max, const uint8_t **payload,
                    size_t *payload_len, size_t *consumed)
{
    if (len < NET_FRAME_HEADER_BYTES)
        return EAGAIN;
    uint32_t n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    if (n > max)
        return EMSGSIZE;
    if (len - NET_FRAME_HEADER_BYTES < n)
        return EAGAIN;
    *payload = buf + NET_FRAME_HEADER_BYTES;
    *payload_len = n;
    *consumed = NET_FRAME_HEADER_BYTES + (size_t)n;
    return 0;
}
