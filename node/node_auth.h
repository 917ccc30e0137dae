/* node_auth.h - password work off the loop thread (node_auth.c). */
#ifndef RAFTFS_NODE_AUTH_H
#define RAFTFS_NODE_AUTH_H

#include <pthread.h>
#include <stdbool.h>

#include "net_loop.h"
#include "store.h"

struct node_auth;

enum node_auth_kind {
    NODE_AUTH_VERIFY, /* password against hash: result 0 or EPERM */
    NODE_AUTH_HASH,   /* hash := crypt(3) of password with a new salt: 0, EIO, ENOMEM */
};

struct node_auth_job {
    enum node_auth_kind kind;
    char *password; /* malloc'd; zeroed and freed by the thread */
    char hash[STORE_AUTH_HASH_MAX + 1];
    int result;
    /* Called on the loop thread with the result; owns the job from then. */
    void (*done)(struct node_auth_job *j);
    /* Called instead of done for a job left when the worker closes. */
    void (*drop)(struct node_auth_job *j);
    void *ctx;
    struct node_auth_job *next;
};

/* Starts the thread and watches its results on loop. errno. */
int node_auth_open(struct net_loop *loop, struct node_auth **out);
/* Stops the thread (after its current job); jobs not handed back are
 * dropped (drop). Loop thread, or after the loop stopped. */
void node_auth_close(struct node_auth *a);
/* Queues j (loop thread); done(j) follows on the loop thread. */
void node_auth_submit(struct node_auth *a, struct node_auth_job *j);

#endif
