/* fuzz_wire.c - what a member reads from its port (net/, node/): a byte
 * stream cut into frames (net_frame_parse), each an Envelope
 * (protobuf-c), whose Raft messages become raft/'s struct raft_message
 * (node_wire_raft_unpack, which checks what raft_step does not). No
 * crash, no leak, no read past a frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net_frame.h"
#include "node_wire.h"
#include "raftfs.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = 0;
    while (at < size) {
        const uint8_t *payload;
        size_t plen, used;
        int rc = net_frame_parse(data + at, size - at, 1 << 20, &payload, &plen, &used);
        if (rc)
            break; /* EAGAIN (cut short) or EMSGSIZE (the connection closes) */
        if (used == 0 || used > size - at || payload + plen > data + size)
            abort();
        at += used;
        /* An exactly sized copy: ASan sees a read past the frame. */
        uint8_t *copy = malloc(plen ? plen : 1);
        memcpy(copy, payload, plen);
        Raftfs__Envelope *env = raftfs__envelope__unpack(NULL, plen, copy);
        if (env) {
            if (env->body_case == RAFTFS__ENVELOPE__BODY_RAFT && env->raft) {
                struct raft_message m;
                if (!node_wire_raft_unpack(env->raft, &m)) {
                    void *out;
                    size_t olen;
                    if (!node_wire_raft_pack(&m, &out, &olen))
                        free(out);
                    node_wire_raft_release(&m);
                }
            }
            raftfs__envelope__free_unpacked(env, NULL);
        }
        free(copy);
    }
    return 0;
}
