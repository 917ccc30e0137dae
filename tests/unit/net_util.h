/* net_util.h - loopback helpers shared by the unit tests that run members
 * with their ports (test_node_client, test_fault_net). */
#ifndef RAFTFS_TEST_NET_UTIL_H
#define RAFTFS_TEST_NET_UTIL_H

#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "net_conn.h"

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

#endif
