/* net_wire.c - Envelopes on framed connections. */
#include "net_wire.h"

#include <errno.h>
#include <stdlib.h>

int net_wire_pack(const Raftfs__Envelope *env, void **out, size_t *len)
{
    size_t n = raftfs__envelope__get_packed_size(env);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return ENOMEM;
    raftfs__envelope__pack(env, buf);
    *out = buf;
    *len = n;
    return 0;
}

int net_wire_send(struct net_conn *c, const Raftfs__Envelope *env)
{
    uint8_t stack[4096];
    size_t n = raftfs__envelope__get_packed_size(env);
    if (n <= sizeof(stack)) {
        raftfs__envelope__pack(env, stack);
        return net_conn_send(c, stack, n);
    }
    void *buf;
    int rc = net_wire_pack(env, &buf, &n);
    if (rc)
        return rc;
    rc = net_conn_send(c, buf, n);
    free(buf);
    return rc;
}

Raftfs__Envelope *net_wire_unpack(const uint8_t *payload, size_t len)
{
    Raftfs__Envelope *env = raftfs__envelope__unpack(NULL, len, payload);
    if (env && env->body_case == RAFTFS__ENVELOPE__BODY__NOT_SET) {
        raftfs__envelope__free_unpacked(env, NULL);
        return NULL;
    }
    return env;
}

void net_wire_free(Raftfs__Envelope *env)
{
    if (env)
        raftfs__envelope__free_unpacked(env, NULL);
}
