/* net_loop.h - a small epoll event loop: file descriptors, periodic timers,
 * a thread-safe wake-up, and an end-of-turn hook that batches work (one
 * flush of every connection's output, one fsync) once per loop turn.
 *
 * Threads: a loop is run by one thread; only net_loop_wake and
 * net_loop_stop may be called from others. Callbacks run on the loop's
 * thread and may add or remove watches (including their own) freely: an
 * event of a descriptor removed earlier in the same turn is never
 * delivered.
 */
#ifndef RAFTFS_NET_LOOP_H
#define RAFTFS_NET_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct net_loop;

/* events: EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP as epoll reports them. */
typedef void (*net_fd_cb)(struct net_loop *l, int fd, uint32_t events, void *ctx);
typedef void (*net_loop_cb)(struct net_loop *l, void *ctx);

/* ENOMEM, or the errno of epoll_create1/eventfd. */
int net_loop_new(struct net_loop **out);
/* Runs what is still deferred, then frees the loop (not the descriptors it
 * watched). NULL is accepted. */
void net_loop_free(struct net_loop *l);

/* Watches fd for events (EPOLLIN and/or EPOLLOUT), replacing any earlier
 * watch of fd. Errors: EINVAL (fd < 0), ENOMEM, errnos of epoll_ctl. */
int net_loop_watch(struct net_loop *l, int fd, uint32_t events, net_fd_cb cb, void *ctx);
/* Changes the events of a watched fd. ENOENT if not watched. */
int net_loop_set_events(struct net_loop *l, int fd, uint32_t events);
/* Stops watching fd (before the caller closes it). Unknown fds are ignored. */
void net_loop_unwatch(struct net_loop *l, int fd);

/* Calls cb every period_ms milliseconds (a timerfd; missed periods are
 * reported as one call each). Returns the timer's fd in *id for
 * net_loop_timer_cancel. */
int net_loop_every(struct net_loop *l, uint32_t period_ms, net_loop_cb cb, void *ctx, int *id);
void net_loop_timer_cancel(struct net_loop *l, int id);

/* Sets the hook run at the end of every turn, after all events of the turn
 * and before the loop sleeps again. One hook per loop; NULL removes it. */
void net_loop_on_turn(struct net_loop *l, net_loop_cb cb, void *ctx);
/* Runs cb once at the end of the current turn, after the turn hook (and
 * after callbacks deferred before it). For batching per turn: a
 * connection defers one flush of its output however many frames it got.
 * ENOMEM. */
int net_loop_defer(struct net_loop *l, net_loop_cb cb, void *ctx);

/* Sets the idle hook: after net_loop_want_idle (loop thread), it runs once
 * the loop finds no event waiting at or after not_before_ms (net_now_ms),
 * instead of sleeping; events that arrive first are handled first (their
 * turns may ask again; the earliest time asked for counts). For work worth
 * doing when nothing else is: the node commits deferred applies there. */
void net_loop_on_idle(struct net_loop *l, net_loop_cb cb, void *ctx);
void net_loop_want_idle(struct net_loop *l, uint64_t not_before_ms);

/* Sets what runs on the loop thread after net_loop_wake. */
void net_loop_on_wake(struct net_loop *l, net_loop_cb cb, void *ctx);

/* Thread-safe: makes the loop run its wake callback soon (wake-ups that
 * arrive together are merged). Called from the loop's own event callbacks,
 * it costs no system call: the wake callback runs after them, before the
 * turn callback. */
void net_loop_wake(struct net_loop *l);

/* Runs until net_loop_stop. Returns 0, or the errno of epoll_wait. */
int net_loop_run(struct net_loop *l);
/* Thread-safe: ends net_loop_run after the current turn. */
void net_loop_stop(struct net_loop *l);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t net_now_ms(void);

#endif
