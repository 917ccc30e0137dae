/* test_net.c - net/: frames, the event loop (timers, wake-ups, deferral,
 * stale events) and framed connections over loopback: echo of small and
 * maximal frames, oversized and truncated frames closing only their
 * connection, the bounded output queue, closing from a callback. */
#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "net_conn.h"
#include "net_frame.h"
#include "net_loop.h"

static void test_frame_parse(void)
{
    uint8_t buf[64];
    const uint8_t *p;
    size_t plen, used;
    net_frame_header(buf, 3);
    memcpy(buf + 4, "abcXYZ", 6);
    for (size_t n = 0; n < 7; n++)
        CHECK_EQ(net_frame_parse(buf, n, 100, &p, &plen, &used), EAGAIN);
    CHECK_EQ(net_frame_parse(buf, 10, 100, &p, &plen, &used), 0);
    CHECK_EQ(plen, 3);
    CHECK_EQ(used, 7);
    CHECK(!memcmp(p, "abc", 3));
    net_frame_header(buf, 101);
    CHECK_EQ(net_frame_parse(buf, 4, 100, &p, &plen, &used), EMSGSIZE);
    net_frame_header(buf, 0xffffffffu);
    CHECK_EQ(net_frame_parse(buf, 4, 100, &p, &plen, &used), EMSGSIZE);
    net_frame_header(buf, 0);
    CHECK_EQ(net_frame_parse(buf, 4, 100, &p, &plen, &used), 0);
    CHECK_EQ(plen, 0);
    CHECK_EQ(used, 4);
}

struct counter {
    int ticks, wakes, turns, deferred;
    int defer_turn;      /* turns completed when the last deferral was made */
    int same_turn, late; /* deferred callbacks run right after that turn's hook, or not */
    struct net_loop *l;
    int timer;
};

static void on_tick(struct net_loop *l, void *ctx)
{
    struct counter *c = ctx;
    if (++c->ticks == 3) {
        net_loop_timer_cancel(l, c->timer);
        net_loop_wake(l);
    }
}

static void on_deferred(struct net_loop *l, void *ctx)
{
    struct counter *c = ctx;
    (void)l;
    /* The hook of the turn that deferred this has run, and no other. */
    if (c->turns == c->defer_turn + 1)
        c->same_turn++;
    else
        c->late++;
    c->deferred++;
}

static void on_turn(struct net_loop *l, void *ctx)
{
    struct counter *c = ctx;
    (void)l;
    c->turns++;
}

static void on_wake(struct net_loop *l, void *ctx)
{
    struct counter *c = ctx;
    c->wakes++;
    c->defer_turn = c->turns;
    net_loop_defer(l, on_deferred, c); /* runs after this turn's hook */
    if (c->ticks >= 3)
        net_loop_stop(l);
}

static void *waker(void *arg)
{
    struct net_loop *l = arg;
    for (int i = 0; i < 100; i++)
        net_loop_wake(l);
    return NULL;
}

static void test_loop_timer_wake_defer(void)
{
    struct net_loop *l;
    CHECK_EQ(net_loop_new(&l), 0);
    struct counter c = {.l = l};
    net_loop_on_turn(l, on_turn, &c);
    net_loop_on_wake(l, on_wake, &c);
    CHECK_EQ(net_loop_every(l, 5, on_tick, &c, &c.timer), 0);
    pthread_t th;
    pthread_create(&th, NULL, waker, l);
    CHECK_EQ(net_loop_run(l), 0);
    pthread_join(th, NULL);
    CHECK_EQ(c.ticks, 3); /* cancelled from its own callback */
    CHECK(c.wakes >= 1);
    CHECK(c.wakes <= 101); /* merged */
    CHECK(c.deferred >= 1);
    CHECK_EQ(c.deferred, c.wakes);
    CHECK_EQ(c.late, 0);
    CHECK_EQ(c.same_turn, c.deferred);
    CHECK_EQ(net_loop_every(l, 0, on_tick, &c, &c.timer), EINVAL);
    net_loop_free(l);
}

/* Two socketpairs ready at once; the first callback unwatches and closes
 * the second: its queued event must not be delivered. */
struct stale {
    int fds[2][2];
    int calls[2];
};

static void stale_cb(struct net_loop *l, int fd, uint32_t events, void *ctx)
{
    struct stale *s = ctx;
    (void)events;
    int me = fd == s->fds[0][0] ? 0 : 1;
    s->calls[me]++;
    int other = s->fds[1 - me][0];
    net_loop_unwatch(l, other);
    net_loop_unwatch(l, fd);
    net_loop_stop(l);
}

static void test_loop_stale_event(void)
{
    struct net_loop *l;
    struct stale s = {0};
    CHECK_EQ(net_loop_new(&l), 0);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s.fds[i]), 0);
        CHECK_EQ(write(s.fds[i][1], "x", 1), 1);
        CHECK_EQ(net_loop_watch(l, s.fds[i][0], EPOLLIN, stale_cb, &s), 0);
    }
    CHECK_EQ(net_loop_run(l), 0);
    CHECK_EQ(s.calls[0] + s.calls[1], 1);
    CHECK_EQ(net_loop_set_events(l, s.fds[0][0], EPOLLIN), ENOENT);
    for (int i = 0; i < 2; i++)
        close(s.fds[i][0]), close(s.fds[i][1]);
    net_loop_free(l);
}

/* Idle work: asked for in a turn, it runs only once no event is waiting
 * (events that arrive first are handled first), once per asking. */
struct idle {
    int sp[2];
    char order[16];
    int n;
    int rounds;
    uint64_t asked_ms, waited_ms;
};

static void idle_read(struct net_loop *l, int fd, uint32_t events, void *ctx)
{
    struct idle *d = ctx;
    char b[8];
    (void)l, (void)events;
    if (read(fd, b, sizeof(b)) > 0 && d->n < 15)
        d->order[d->n++] = 'e';
}

static void idle_turn(struct net_loop *l, void *ctx)
{
    struct idle *d = ctx;
    if (d->rounds == 0) { /* the first turn: ask, and make an event wait */
        d->rounds++;
        net_loop_want_idle(l, 0);
        CHECK_EQ(write(d->sp[1], "x", 1), 1);
    }
}

static void idle_cb(struct net_loop *l, void *ctx)
{
    struct idle *d = ctx;
    if (d->n < 15)
        d->order[d->n++] = 'i';
    if (d->rounds++ == 1) {
        /* asked again from the idle work itself, not before 30 ms */
        d->asked_ms = net_now_ms();
        net_loop_want_idle(l, d->asked_ms + 30);
        return;
    }
    d->waited_ms = net_now_ms() - d->asked_ms;
    net_loop_stop(l);
}

static void test_loop_idle(void)
{
    struct net_loop *l;
    struct idle d = {0};
    CHECK_EQ(net_loop_new(&l), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, d.sp), 0);
    CHECK_EQ(net_loop_watch(l, d.sp[0], EPOLLIN, idle_read, &d), 0);
    net_loop_on_turn(l, idle_turn, &d);
    net_loop_on_idle(l, idle_cb, &d);
    net_loop_wake(l); /* a first turn */
    CHECK_EQ(net_loop_run(l), 0);
    CHECK_MEM(d.order, (size_t)d.n, "eii");
    CHECK(d.waited_ms >= 30);
    net_loop_unwatch(l, d.sp[0]);
    close(d.sp[0]);
    close(d.sp[1]);
    net_loop_free(l);
}

/* A wake asked for from an event callback runs the wake callback in the
 * same turn, before the turn hook, and once: no eventfd write is left to
 * wake the loop again (the idle callback would see it first). */
struct inwake {
    int sp[2];
    int turns, wakes, wake_turn, idles;
};

static void inwake_read(struct net_loop *l, int fd, uint32_t events, void *ctx)
{
    char b[8];
    (void)events, (void)ctx;
    if (read(fd, b, sizeof(b)) > 0)
        net_loop_wake(l);
}

static void inwake_wake(struct net_loop *l, void *ctx)
{
    struct inwake *w = ctx;
    (void)l;
    w->wakes++;
    w->wake_turn = w->turns;
}

static void inwake_turn(struct net_loop *l, void *ctx)
{
    struct inwake *w = ctx;
    w->turns++;
    if (w->wakes)
        net_loop_want_idle(l, 0);
}

static void inwake_idle(struct net_loop *l, void *ctx)
{
    struct inwake *w = ctx;
    w->idles++;
    net_loop_stop(l);
}

static void test_loop_wake_in_callback(void)
{
    struct net_loop *l;
    struct inwake w = {0};
    CHECK_EQ(net_loop_new(&l), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, w.sp), 0);
    CHECK_EQ(net_loop_watch(l, w.sp[0], EPOLLIN, inwake_read, &w), 0);
    net_loop_on_turn(l, inwake_turn, &w);
    net_loop_on_wake(l, inwake_wake, &w);
    net_loop_on_idle(l, inwake_idle, &w);
    CHECK_EQ(write(w.sp[1], "x", 1), 1);
    CHECK_EQ(net_loop_run(l), 0);
    CHECK_EQ(w.wakes, 1);     /* not again from a written eventfd */
    CHECK_EQ(w.wake_turn, 0); /* before the first turn's hook */
    CHECK_EQ(w.turns, 1);
    CHECK_EQ(w.idles, 1);
    net_loop_unwatch(l, w.sp[0]);
    close(w.sp[0]);
    close(w.sp[1]);
    net_loop_free(l);
}

/* ---- connections over loopback ---- */

struct side {
    struct net_conn *conn;
    int frames;
    size_t bytes;
    int closed;
    int close_err;
    int connected;
    bool echo;
    bool close_on_frame;
};

struct world {
    struct net_loop *l;
    int lfd;
    struct side server, client;
    int stop_after_closes;
    int closes;
};

static struct world *world_of_loop;

static void stop_cb(struct net_loop *l, void *ctx)
{
    (void)ctx;
    net_loop_stop(l);
}

static int side_frame(struct net_conn *c, const uint8_t *p, size_t len, void *ctx)
{
    struct side *s = ctx;
    s->frames++;
    s->bytes += len;
    if (s->close_on_frame) {
        net_conn_close(c, 0, false);
        return 0;
    }
    if (s->echo)
        return net_conn_send(c, p, len) == 0 ? 0 : EIO;
    return 0;
}

static void side_close(struct net_conn *c, int err, void *ctx)
{
    struct side *s = ctx;
    (void)c;
    s->conn = NULL; /* freed at the end of the turn */
    s->closed++;
    s->close_err = err;
    if (++world_of_loop->closes >= world_of_loop->stop_after_closes)
        net_loop_stop(world_of_loop->l);
}

static void side_connect(struct net_conn *c, void *ctx)
{
    struct side *s = ctx;
    (void)c;
    s->connected++;
}

static const struct net_conn_ops side_ops = {
    .on_connect = side_connect, .on_frame = side_frame, .on_close = side_close};

static struct net_conn_limits small_limits = {.max_frame = 1 << 20, .max_queued = 4 << 20};

static void on_accept(struct net_loop *l, int fd, uint32_t events, void *ctx)
{
    struct world *w = ctx;
    int cfd;
    (void)fd, (void)events;
    if (net_accept(w->lfd, &cfd, NULL) == 0)
        net_conn_new(l, cfd, false, &small_limits, &side_ops, &w->server, &w->server.conn);
}

static void world_init_server(struct world *w)
{
    memset(w, 0, sizeof(*w));
    world_of_loop = w;
    CHECK_EQ(net_loop_new(&w->l), 0);
    struct net_addr a;
    char err[128];
    CHECK_EQ(net_addr_parse("127.0.0.1:0", &a, err, sizeof(err)), 0);
    CHECK_EQ(net_listen(&a, 16, &w->lfd), 0);
    struct net_addr bound = {.len = sizeof(bound.sa)};
    getsockname(w->lfd, (struct sockaddr *)&bound.sa, &bound.len);
    CHECK_EQ(net_loop_watch(w->l, w->lfd, EPOLLIN, on_accept, w), 0);
}

static void world_init(struct world *w)
{
    world_init_server(w);
    struct net_addr bound = {.len = sizeof(bound.sa)};
    getsockname(w->lfd, (struct sockaddr *)&bound.sa, &bound.len);
    int fd;
    CHECK_EQ(net_dial(&bound, &fd), 0);
    CHECK_EQ(net_conn_new(w->l, fd, true, &small_limits, &side_ops, &w->client, &w->client.conn),
             0);
}

static void world_fini(struct world *w)
{
    net_loop_unwatch(w->l, w->lfd);
    close(w->lfd);
    struct side *sides[2] = {&w->server, &w->client};
    for (int i = 0; i < 2; i++)
        if (sides[i]->conn)
            net_conn_close(sides[i]->conn, 0, false);
    net_loop_free(w->l); /* runs the deferred frees */
}

struct sender {
    struct world *w;
    int sent;
};

static void test_conn_echo(void)
{
    struct world w;
    world_init(&w);
    w.server.echo = true;
    w.stop_after_closes = 2;
    static uint8_t big[1 << 20];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    struct net_counters k = {0};
    net_conn_set_counters(w.client.conn, &k);
    /* Queued before the connection is up: sent once it is. */
    for (int i = 0; i < 100; i++)
        CHECK_EQ(net_conn_send(w.client.conn, "hello", 5), 0);
    CHECK_EQ(net_conn_send(w.client.conn, big, sizeof(big)), 0); /* exactly max_frame */
    CHECK_EQ(net_conn_send(w.client.conn, "", 0), 0);
    CHECK_EQ(net_conn_send(w.client.conn, big, sizeof(big) + 1), EMSGSIZE);
    /* Stop when everything came back: close the client from its callback. */
    struct side *cl = &w.client;
    cl->close_on_frame = false;
    /* run until 102 echoes: poll by closing after the loop sees them */
    for (int turns = 0; turns < 2000 && cl->frames < 102; turns++) {
        net_loop_defer(w.l, stop_cb, NULL);
        net_loop_run(w.l);
    }
    CHECK_EQ(cl->connected, 1);
    CHECK_EQ(cl->frames, 102);
    CHECK_EQ(cl->bytes, 500 + sizeof(big));
    CHECK_EQ(w.server.frames, 102);
    /* The counters saw every socket byte, each way: payloads and headers
     * (the failed EMSGSIZE send is not counted). */
    uint64_t in, out;
    net_counters_load(&k, &in, &out);
    CHECK_EQ(out, 500 + sizeof(big) + 102 * 4);
    CHECK_EQ(in, out);
    net_conn_close(w.client.conn, 0, true);
    net_loop_run(w.l); /* until the server sees the end of stream too */
    CHECK_EQ(w.client.closed, 1);
    CHECK_EQ(w.server.closed, 1);
    CHECK_EQ(w.server.close_err, 0);
    world_fini(&w);
}

/* Raw bytes from a plain socket: an oversized frame, or a frame cut off by
 * the end of stream, closes that connection with a clear error. */
static void raw_case(const uint8_t *bytes, size_t len, int want_err)
{
    struct world w;
    world_init_server(&w);
    w.stop_after_closes = 1;
    struct net_addr bound = {.len = sizeof(bound.sa)};
    getsockname(w.lfd, (struct sockaddr *)&bound.sa, &bound.len);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(connect(fd, (struct sockaddr *)&bound.sa, bound.len), 0);
    CHECK_EQ(write(fd, bytes, len), (ssize_t)len);
    shutdown(fd, SHUT_WR);
    net_loop_run(w.l);
    CHECK_EQ(w.server.closed, 1);
    CHECK_EQ(w.server.close_err, want_err);
    close(fd);
    world_fini(&w);
}

static void test_conn_bad_frames(void)
{
    uint8_t b[16];
    net_frame_header(b, (1 << 20) + 1);
    raw_case(b, 4, EMSGSIZE);
    net_frame_header(b, 10);
    memcpy(b + 4, "abc", 3);
    raw_case(b, 7, EPROTO); /* truncated by the end of stream */
    raw_case(b, 2, EPROTO); /* half a header */
    net_frame_header(b, 2);
    memcpy(b + 4, "ok", 2);
    raw_case(b, 6, 0); /* a whole frame then a clean end */
}

static void test_conn_queue_bound(void)
{
    struct world w;
    world_init(&w);
    static uint8_t chunk[1 << 20];
    /* The client never gets to write (we do not run the loop): the queue
     * fills to its bound and further sends are refused, not blocked. */
    int ok = 0, rc = 0;
    while ((rc = net_conn_send(w.client.conn, chunk, sizeof(chunk))) == 0)
        ok++;
    CHECK_EQ(rc, ENOBUFS);
    CHECK_EQ(ok, 3); /* 4 MiB bound, 1 MiB + 4 per frame */
    CHECK(net_conn_queued(w.client.conn) <= small_limits.max_queued);
    struct net_conn *c = w.client.conn;
    net_conn_close(c, 0, false);
    CHECK_EQ(net_conn_send(c, "x", 1), EPIPE); /* still allocated until the turn ends */
    CHECK(!net_conn_is_open(c));
    w.stop_after_closes = 1;
    net_loop_defer(w.l, stop_cb, NULL);
    net_loop_run(w.l);
    world_fini(&w);
}

static void test_dial_refused(void)
{
    struct net_loop *l;
    struct world w = {0};
    world_of_loop = &w;
    CHECK_EQ(net_loop_new(&l), 0);
    w.l = l;
    w.stop_after_closes = 1;
    /* A port with no listener: bind one, note it, close it. */
    struct net_addr a;
    char err[128];
    int lfd;
    CHECK_EQ(net_addr_parse("127.0.0.1:0", &a, err, sizeof(err)), 0);
    CHECK_EQ(net_listen(&a, 1, &lfd), 0);
    struct net_addr bound = {.len = sizeof(bound.sa)};
    getsockname(lfd, (struct sockaddr *)&bound.sa, &bound.len);
    close(lfd);
    int fd;
    CHECK_EQ(net_dial(&bound, &fd), 0);
    CHECK_EQ(net_conn_new(l, fd, true, NULL, &side_ops, &w.client, &w.client.conn), 0);
    net_loop_run(l);
    CHECK_EQ(w.client.closed, 1);
    CHECK_EQ(w.client.close_err, ECONNREFUSED);
    CHECK_EQ(w.client.connected, 0);
    net_loop_free(l);
}

static void test_addr_parse(void)
{
    struct net_addr a;
    char err[128], buf[64];
    CHECK_EQ(net_addr_parse("127.0.0.1:7000", &a, err, sizeof(err)), 0);
    net_addr_format(&a, buf, sizeof(buf));
    CHECK(!strcmp(buf, "127.0.0.1:7000"));
    CHECK_EQ(net_addr_parse("[::1]:80", &a, err, sizeof(err)), 0);
    net_addr_format(&a, buf, sizeof(buf));
    CHECK(!strcmp(buf, "[::1]:80"));
    CHECK_EQ(net_addr_parse("localhost:1", &a, err, sizeof(err)), 0);
    CHECK_EQ(net_addr_parse("127.0.0.1", &a, err, sizeof(err)), EINVAL);
    CHECK_EQ(net_addr_parse("127.0.0.1:0", &a, err, sizeof(err)), 0); /* any port, to listen */
    CHECK_EQ(net_addr_parse("127.0.0.1:65536", &a, err, sizeof(err)), EINVAL);
    CHECK_EQ(net_addr_parse("127.0.0.1:x", &a, err, sizeof(err)), EINVAL);
    CHECK_EQ(net_addr_parse(":80", &a, err, sizeof(err)), EINVAL);
    CHECK_EQ(net_addr_parse("[::1:80", &a, err, sizeof(err)), EINVAL);
    CHECK(strstr(err, "bad address") != NULL);
}

/* A stop asked before the run begins ends that run at once (a thread
 * started and stopped at once must not wait for ever); the next run is a
 * run again. */
static void test_loop_stop_before_run(void)
{
    struct net_loop *l;
    CHECK_EQ(net_loop_new(&l), 0);
    net_loop_stop(l);
    CHECK_EQ(net_loop_run(l), 0); /* returns: the test would hang otherwise */
    struct counter c = {.l = l};
    net_loop_on_wake(l, on_wake, &c);
    CHECK_EQ(net_loop_every(l, 5, on_tick, &c, &c.timer), 0);
    CHECK_EQ(net_loop_run(l), 0); /* the third tick's wake stops it */
    CHECK_EQ(c.ticks, 3);
    net_loop_free(l);
}

int main(void)
{
    RUN(test_frame_parse);
    RUN(test_loop_timer_wake_defer);
    RUN(test_loop_stale_event);
    RUN(test_loop_idle);
    RUN(test_loop_wake_in_callback);
    RUN(test_loop_stop_before_run);
    RUN(test_conn_echo);
    RUN(test_conn_bad_frames);
    RUN(test_conn_queue_bound);
    RUN(test_dial_refused);
    RUN(test_addr_parse);
    CHECK_DONE();
}
