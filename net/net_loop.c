/* net_loop.c - the epoll backend of net_loop.h.
 *
 * Each watched descriptor has a slot indexed by fd with a generation
 * number; the epoll event carries (fd, generation), so an event queued for
 * a descriptor that was unwatched (and maybe reused) earlier in the same
 * turn is recognised as stale and dropped.
 */
#include "net_loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NET_LOOP_MAX_EVENTS 128

struct slot {
    net_fd_cb cb;
    void *ctx;
    uint32_t gen;
    bool used;
    bool timer; /* a timerfd this loop owns */
    net_loop_cb timer_cb;
};

struct deferred {
    net_loop_cb cb;
    void *ctx;
};

struct net_loop {
    int epfd;
    struct deferred *defer;
    size_t n_defer, cap_defer;
    int wakefd;
    struct slot *slots;
    size_t n_slots;
    net_loop_cb turn_cb, wake_cb, idle_cb;
    void *turn_ctx, *wake_ctx, *idle_ctx;
    bool want_idle;
    bool wake_pending; /* asked for while dispatching: owner thread only */
    uint64_t idle_not_before_ms;
    atomic_bool stop;
};

uint64_t net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t pack(int fd, uint32_t gen)
{
    return ((uint64_t)gen << 32) | (uint32_t)fd;
}

static int grow(struct net_loop *l, int fd)
{
    if ((size_t)fd < l->n_slots)
        return 0;
    size_t n = l->n_slots ? l->n_slots : 64;
    while (n <= (size_t)fd)
        n *= 2;
    struct slot *s = realloc(l->slots, n * sizeof(*s));
    if (!s)
        return ENOMEM;
    memset(s + l->n_slots, 0, (n - l->n_slots) * sizeof(*s));
    l->slots = s;
    l->n_slots = n;
    return 0;
}

static void on_wakefd(struct net_loop *l, int fd, uint32_t events, void *ctx)
{
    uint64_t v;
    (void)events, (void)ctx;
    while (read(fd, &v, sizeof(v)) == sizeof(v))
        ;
    if (l->wake_cb)
        l->wake_cb(l, l->wake_ctx);
}

int net_loop_new(struct net_loop **out)
{
    struct net_loop *l = calloc(1, sizeof(*l));
    if (!l)
        return ENOMEM;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = l->epfd < 0 || l->wakefd < 0 ? errno : 0;
    if (!rc)
        rc = net_loop_watch(l, l->wakefd, EPOLLIN, on_wakefd, NULL);
    if (rc) {
        net_loop_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

static void run_deferred(struct net_loop *l);

void net_loop_free(struct net_loop *l)
{
    if (!l)
        return;
    run_deferred(l); /* e.g. frees of connections closed last */
    for (size_t i = 0; i < l->n_slots; i++)
        if (l->slots[i].used && l->slots[i].timer)
            close((int)i);
    if (l->wakefd >= 0)
        close(l->wakefd);
    if (l->epfd >= 0)
        close(l->epfd);
    free(l->slots);
    free(l->defer);
    free(l);
}

int net_loop_defer(struct net_loop *l, net_loop_cb cb, void *ctx)
{
    if (l->n_defer == l->cap_defer) {
        size_t cap = l->cap_defer ? l->cap_defer * 2 : 32;
        struct deferred *d = realloc(l->defer, cap * sizeof(*d));
        if (!d)
            return ENOMEM;
        l->defer = d;
        l->cap_defer = cap;
    }
    l->defer[l->n_defer++] = (struct deferred){.cb = cb, .ctx = ctx};
    return 0;
}

/* Runs the deferred callbacks in order, including those they defer. */
static void run_deferred(struct net_loop *l)
{
    for (size_t i = 0; i < l->n_defer; i++) {
        struct deferred d = l->defer[i];
        d.cb(l, d.ctx);
    }
    l->n_defer = 0;
}

int net_loop_watch(struct net_loop *l, int fd, uint32_t events, net_fd_cb cb, void *ctx)
{
    if (fd < 0 || !cb)
        return EINVAL;
    int rc = grow(l, fd);
    if (rc)
        return rc;
    struct slot *s = &l->slots[fd];
    bool existed = s->used;
    if (!existed)
        s->gen++;
    struct epoll_event ev = {.events = events, .data.u64 = pack(fd, s->gen)};
    if (epoll_ctl(l->epfd, existed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev))
        return errno;
    s->cb = cb;
    s->ctx = ctx;
    s->used = true;
    return 0;
}

int net_loop_set_events(struct net_loop *l, int fd, uint32_t events)
{
    if (fd < 0 || (size_t)fd >= l->n_slots || !l->slots[fd].used)
        return ENOENT;
    struct epoll_event ev = {.events = events, .data.u64 = pack(fd, l->slots[fd].gen)};
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) ? errno : 0;
}

void net_loop_unwatch(struct net_loop *l, int fd)
{
    if (fd < 0 || (size_t)fd >= l->n_slots || !l->slots[fd].used)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    struct slot *s = &l->slots[fd];
    s->used = false;
    s->timer = false;
    s->gen++; /* events already queued for it are now stale */
}

static void on_timer(struct net_loop *l, int fd, uint32_t events, void *ctx)
{
    uint64_t expirations = 0;
    (void)events;
    if (read(fd, &expirations, sizeof(expirations)) != sizeof(expirations))
        return;
    uint32_t gen = l->slots[fd].gen;
    for (uint64_t i = 0; i < expirations; i++) {
        /* The callback may cancel its own timer. */
        if (!l->slots[fd].used || l->slots[fd].gen != gen)
            break;
        l->slots[fd].timer_cb(l, ctx);
    }
}

int net_loop_every(struct net_loop *l, uint32_t period_ms, net_loop_cb cb, void *ctx, int *id)
{
    if (!period_ms || !cb)
        return EINVAL;
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (fd < 0)
        return errno;
    struct itimerspec it = {
        .it_interval = {.tv_sec = period_ms / 1000, .tv_nsec = (long)(period_ms % 1000) * 1000000},
    };
    it.it_value = it.it_interval;
    int rc = timerfd_settime(fd, 0, &it, NULL) ? errno : 0;
    if (!rc)
        rc = net_loop_watch(l, fd, EPOLLIN, on_timer, ctx);
    if (rc) {
        close(fd);
        return rc;
    }
    l->slots[fd].timer = true;
    l->slots[fd].timer_cb = cb;
    *id = fd;
    return 0;
}

void net_loop_timer_cancel(struct net_loop *l, int id)
{
    if (id < 0 || (size_t)id >= l->n_slots || !l->slots[id].used || !l->slots[id].timer)
        return;
    net_loop_unwatch(l, id);
    close(id);
}

void net_loop_on_idle(struct net_loop *l, net_loop_cb cb, void *ctx)
{
    l->idle_cb = cb;
    l->idle_ctx = ctx;
}

void net_loop_want_idle(struct net_loop *l, uint64_t not_before_ms)
{
    if (!l->want_idle || not_before_ms < l->idle_not_before_ms)
        l->idle_not_before_ms = not_before_ms;
    l->want_idle = true;
}

void net_loop_on_turn(struct net_loop *l, net_loop_cb cb, void *ctx)
{
    l->turn_cb = cb;
    l->turn_ctx = ctx;
}

void net_loop_on_wake(struct net_loop *l, net_loop_cb cb, void *ctx)
{
    l->wake_cb = cb;
    l->wake_ctx = ctx;
}

/* The loop this thread is dispatching events of, if any: its turn callback
 * runs once they are done, so a wake-up asked for meanwhile (a client's
 * request submitted from its connection's callback) needs no eventfd write
 * and no extra epoll round: the wake callback runs before the turn's. */
static __thread struct net_loop *dispatching;

void net_loop_wake(struct net_loop *l)
{
    if (dispatching == l) {
        l->wake_pending = true;
        return;
    }
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: a wake-up is pending. */
    if (write(l->wakefd, &one, sizeof(one)) < 0) {
    }
}

void net_loop_stop(struct net_loop *l)
{
    atomic_store(&l->stop, true);
    net_loop_wake(l);
}

int net_loop_run(struct net_loop *l)
{
    struct epoll_event evs[NET_LOOP_MAX_EVENTS];
    /* A stop asked before the run began ends it at once: the flag is
     * cleared when a run ends, not when one begins (a node stopped right
     * after it started hung here, its stop overwritten). */
    while (!atomic_load(&l->stop)) {
        /* With idle work asked for, look without sleeping first: the work
         * runs only when no event is waiting. */
        int timeout = -1;
        if (l->want_idle) {
            uint64_t now = net_now_ms();
            timeout = l->idle_not_before_ms > now ? (int)(l->idle_not_before_ms - now) : 0;
        }
        int n = epoll_wait(l->epfd, evs, NET_LOOP_MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0 && l->want_idle && net_now_ms() >= l->idle_not_before_ms) {
            l->want_idle = false;
            if (l->idle_cb)
                l->idle_cb(l, l->idle_ctx);
            run_deferred(l);
            continue;
        }
        dispatching = l;
        for (int i = 0; i < n; i++) {
            int fd = (int)(uint32_t)evs[i].data.u64;
            uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
            if ((size_t)fd >= l->n_slots)
                continue;
            struct slot *s = &l->slots[fd];
            if (!s->used || s->gen != gen)
                continue; /* unwatched earlier in this turn */
            s->cb(l, fd, evs[i].events, s->ctx);
        }
        dispatching = NULL;
        if (l->wake_pending) {
            l->wake_pending = false;
            if (l->wake_cb)
                l->wake_cb(l, l->wake_ctx);
        }
        if (l->turn_cb)
            l->turn_cb(l, l->turn_ctx);
        run_deferred(l);
    }
    atomic_store(&l->stop, false); /* for a later run */
    run_deferred(l);               /* frees deferred by the last turn */
    return 0;
}
