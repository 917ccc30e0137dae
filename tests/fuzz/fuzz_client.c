/* fuzz_client.c - a live member's client port (node/node_client.c) fed
 * arbitrary requests. One member runs in this process (its data in a
 * tmpfs directory, made at the first input); each input is a connection:
 * a valid Hello, then frames cut from the input ([u16 length][payload],
 * each payload an Envelope as the member reads it), then the end of the
 * stream; every answer is read until the member has said all it will.
 * The member must not crash, leak or stop serving: after each input it
 * must answer a status request on a new connection.
 *
 * Left out: membership changes other than LIST (a REMOVE of the only
 * member, a legitimate request, stops it, and the next inputs would test
 * nothing); the request is dropped before it is sent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net_conn.h"
#include "net_frame.h"
#include "net_wire.h"
#include "node.h"
#include "raftfs.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CLUSTER 42

static struct node *member;
static struct sockaddr_in where;
static char data_dir[256];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void stop_member(void)
{
    node_close(member);
    nftw(data_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz_client: %s\n", what);
    abort();
}

static int connect_member(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&where, sizeof(where)))
        die("cannot connect to the member");
    return fd;
}

static void send_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len) {
        ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the member closed the connection: its right */
        b += n;
        len -= (size_t)n;
    }
}

static void send_env(int fd, const Raftfs__Envelope *env)
{
    size_t len = raftfs__envelope__get_packed_size(env);
    uint8_t *buf = malloc(NET_FRAME_HEADER_BYTES + len);
    net_frame_header(buf, (uint32_t)len);
    raftfs__envelope__pack(env, buf + NET_FRAME_HEADER_BYTES);
    send_all(fd, buf, NET_FRAME_HEADER_BYTES + len);
    free(buf);
}

static void hello(int fd)
{
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    Raftfs__Hello h = RAFTFS__HELLO__INIT;
    h.protocol_version = NET_WIRE_VERSION;
    h.cluster_id = CLUSTER;
    env.body_case = RAFTFS__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    send_env(fd, &env);
}

/* Reads until the member closes or says nothing for idle_ms; returns the
 * bytes read. */
static size_t drain(int fd, int idle_ms)
{
    uint8_t buf[65536];
    size_t total = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, idle_ms) <= 0)
            return total;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return total;
        total += (size_t)n;
    }
}

static void start_member(void)
{
    char tmpl[] = "/dev/shm/raftfs-fuzz-client-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir)
        die("mkdtemp");
    /* a free port on loopback */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &alen))
        die("no free port");
    close(fd);
    where = a;
    static char listen_addr[64];
    snprintf(listen_addr, sizeof(listen_addr), "127.0.0.1:%u", ntohs(a.sin_port));
    snprintf(data_dir, sizeof(data_dir), "%s", dir);
    struct node_config cfg = {.data_dir = data_dir,
                              .listen = listen_addr,
                              .cluster_id = CLUSTER,
                              .timeout_ms = 1000,
                              .snapshot_entries = 500};
    cfg.store.map_bytes = 64u << 20;
    char err[512];
    if (node_open(&member, &cfg, err, sizeof(err)) || node_start(member))
        die(err);
    /* a leader before the first input: a barrier answers once it leads */
    for (int i = 0; i < 100 && node_read_barrier(member); i++)
        ;
    node_log_set_level(NODE_LOG_ERROR);
    atexit(stop_member);
}

/* The member still serves: a status request on a new connection is
 * answered. */
static void still_serving(void)
{
    int fd = connect_member();
    hello(fd);
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__StatusRequest st = RAFTFS__STATUS_REQUEST__INIT;
    req.id = 7;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_STATUS;
    req.status = &st;
    env.body_case = RAFTFS__ENVELOPE__BODY_REQUEST;
    env.request = &req;
    send_env(fd, &env);
    shutdown(fd, SHUT_WR);
    if (!drain(fd, 5000))
        die("the member stopped answering");
    close(fd);
}

/* Whether a payload may be sent (see "Left out" above). */
static bool allowed(const uint8_t *p, size_t len)
{
    Raftfs__Envelope *env = raftfs__envelope__unpack(NULL, len, p);
    if (!env)
        return true; /* garbage: the member must refuse it */
    bool ok =
        !(env->body_case == RAFTFS__ENVELOPE__BODY_REQUEST && env->request &&
          env->request->op_case == RAFTFS__CLIENT_REQUEST__OP_MEMBER && env->request->member &&
          env->request->member->op != RAFTFS__MEMBER_REQUEST__OP__LIST);
    raftfs__envelope__free_unpacked(env, NULL);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!member)
        start_member();
    int fd = connect_member();
    hello(fd);
    size_t at = 0;
    while (at + 2 <= size) {
        size_t len = (size_t)data[at] << 8 | data[at + 1];
        at += 2;
        if (len > size - at)
            len = size - at;
        if (allowed(data + at, len)) {
            uint8_t hdr[NET_FRAME_HEADER_BYTES];
            net_frame_header(hdr, (uint32_t)len);
            send_all(fd, hdr, sizeof(hdr));
            send_all(fd, data + at, len);
        }
        at += len;
    }
    shutdown(fd, SHUT_WR);
    drain(fd, 300);
    close(fd);
    still_serving();
    return 0;
}
