/* test_net_http.c - net/net_http.c over loopback: GET and HEAD reach the
 * handler with its status, type and body; other methods are 405 with an
 * Allow header; a busy or malformed address is refused at open; closing
 * an opened server that never started, and a started one, frees the
 * port. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "net_conn.h"
#include "net_http.h"

static int calls;

static void handler(void *ctx, const char *path, struct net_http_reply *out)
{
    (void)ctx;
    calls++;
    if (!strcmp(path, "/hello")) {
        out->status = 200;
        out->content_type = "text/plain; version=0.0.4";
        out->body = strdup("hello 1\n");
        out->len = strlen(out->body);
    } else if (!strcmp(path, "/down")) {
        out->status = 503;
        out->content_type = "application/json";
        out->body = strdup("{\"health\":\"false\"}");
        out->len = strlen(out->body);
    } else if (!strcmp(path, "/zero")) {
        /* status 0: the server answers 500 */
    } else {
        out->status = 404;
    }
}

static void free_port(char *addr, size_t len)
{
    char err[256];
    struct net_addr a;
    int fd;
    CHECK_EQ(net_addr_parse("127.0.0.1:0", &a, err, sizeof(err)), 0);
    CHECK_EQ(net_listen(&a, 1, &fd), 0);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    close(fd);
    snprintf(addr, len, "127.0.0.1:%u", ntohs(sin.sin_port));
}

/* Sends req whole to addr and reads the answer until the server closes
 * (every request says "Connection: close") into buf. */
static void exchange(const char *addr, const char *req, char *buf, size_t cap)
{
    char err[256];
    struct net_addr a;
    CHECK_EQ(net_addr_parse(addr, &a, err, sizeof(err)), 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    CHECK_EQ(connect(fd, (struct sockaddr *)&a.sa, a.len), 0);
    CHECK_EQ(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    size_t len = 0;
    ssize_t k;
    while (len < cap - 1 && (k = recv(fd, buf + len, cap - 1 - len, 0)) > 0)
        len += (size_t)k;
    buf[len] = 0;
    close(fd);
}

static void test_requests(void)
{
    char addr[64], err[256], buf[4096];
    free_port(addr, sizeof(addr));
    struct net_http *h;
    CHECK_EQ(net_http_open(&h, addr, err, sizeof(err)), 0);
    CHECK_EQ(net_http_start(h, handler, NULL), 0);

    exchange(addr, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf, sizeof(buf));
    CHECK(!strncmp(buf, "HTTP/1.1 200", 12));
    CHECK(strstr(buf, "Content-Type: text/plain; version=0.0.4\r\n"));
    CHECK(strstr(buf, "\r\n\r\nhello 1\n"));

    exchange(addr, "GET /hello?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf,
             sizeof(buf));
    CHECK(!strncmp(buf, "HTTP/1.1 200", 12));

    exchange(addr, "HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf,
             sizeof(buf));
    CHECK(!strncmp(buf, "HTTP/1.1 200", 12));
    CHECK(!strstr(buf, "hello 1"));

    exchange(addr, "GET /down HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf, sizeof(buf));
    CHECK(!strncmp(buf, "HTTP/1.1 503", 12));
    CHECK(strstr(buf, "Content-Type: application/json\r\n"));

    exchange(addr, "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf,
             sizeof(buf));
    CHECK(!strncmp(buf, "HTTP/1.1 404", 12));
    exchange(addr, "GET /zero HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf, sizeof(buf));
    CHECK(!strncmp(buf, "HTTP/1.1 500", 12));

    int before = calls;
    exchange(addr,
             "POST /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc",
             buf, sizeof(buf));
    CHECK(!strncmp(buf, "HTTP/1.1 405", 12));
    CHECK(strstr(buf, "Allow: GET, HEAD\r\n"));
    exchange(addr, "DELETE /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf,
             sizeof(buf));
    CHECK(!strncmp(buf, "HTTP/1.1 405", 12));
    CHECK_EQ(calls, before); /* the handler never saw them */

    /* busy while it serves */
    struct net_http *h2;
    CHECK_EQ(net_http_open(&h2, addr, err, sizeof(err)), EADDRINUSE);
    CHECK(strstr(err, addr));
    net_http_close(h);
    /* and free once closed */
    CHECK_EQ(net_http_open(&h2, addr, err, sizeof(err)), 0);
    net_http_close(h2);
}

static void test_bad_addresses(void)
{
    char err[256];
    struct net_http *h;
    CHECK_EQ(net_http_open(&h, "nonsense", err, sizeof(err)), EINVAL);
    CHECK(err[0]);
    CHECK_EQ(net_http_open(&h, "127.0.0.1:99999", err, sizeof(err)), EINVAL);
    net_http_close(NULL);
}

int main(void)
{
    RUN(test_requests);
    RUN(test_bad_addresses);
    CHECK_DONE();
}
