/* net_util.h - loopback helpers shared by the unit tests that run members
 * with their ports (test_node_client, test_fault_net). */
#ifndef RAFTFS_TEST_NET_UTIL_H
#define RAFTFS_TEST_NET_UTIL_H

#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "net_client.h"
#include "net_conn.h"
#include "store.h"

/* A free port on loopback: bound to 0, read, released. */
static inline void free_addr(char *addr, size_t addr_len)
{
    char err[256];
    struct net_addr a;
    int fd;
    CHECK_EQ(net_addr_parse("127.0.0.1:0", &a, err, sizeof(err)), 0);
    CHECK_EQ(net_listen(&a, 1, &fd), 0);
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd);
    snprintf(addr, addr_len, "127.0.0.1:%u", ntohs(sin.sin_port));
}

/* A plain put (mode 0640) through the client: net_client_call's errno, and
 * the response in *resp (the caller frees it) when that is 0. */
static inline int client_put(struct net_client *c, const char *path, const char *value,
                             Raftfs__ClientResponse **resp)
{
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__Command cmd = RAFTFS__COMMAND__INIT;
    Raftfs__Put p = RAFTFS__PUT__INIT;
    cmd.version = STORE_CMD_VERSION_PLAIN;
    p.path.data = (uint8_t *)path;
    p.path.len = strlen(path);
    p.value.data = (uint8_t *)value;
    p.value.len = strlen(value);
    p.mode = 0640;
    cmd.op_case = RAFTFS__COMMAND__OP_PUT;
    cmd.put = &p;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
    req.write = &cmd;
    *resp = NULL;
    return net_client_call(c, &req, resp);
}

/* A linearizable get of path through the client: net_client_call's errno,
 * and the response in *resp (the caller frees it) when that is 0. */
static inline int client_get(struct net_client *c, const char *path, Raftfs__ClientResponse **resp)
{
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__GetRequest g = RAFTFS__GET_REQUEST__INIT;
    g.path.data = (uint8_t *)path;
    g.path.len = strlen(path);
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_GET;
    req.get = &g;
    *resp = NULL;
    return net_client_call(c, &req, resp);
}

#endif
