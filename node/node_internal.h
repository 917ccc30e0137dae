/* node_internal.h - struct node and what node/'s files share. */
#ifndef RAFTFS_NODE_INTERNAL_H
#define RAFTFS_NODE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "net_loop.h"
#include "node.h"

struct node_req {
    void *data; /* encoded command, owned */
    size_t len;
    enum node_origin origin;
    node_done_fn done;
    void *ctx;
    struct node_req *next;
};

struct node_client_server; /* node_client.c */

struct node {
    struct store *store;
    struct net_loop *loop;
    size_t max_batch;
    pthread_t thread;

    /* loop thread only */
    uint64_t next_index;
    struct store_entry *entries;
    struct store_result *results;
    struct node_client_server *clients;

    pthread_mutex_t mu; /* guards the fields below */
    struct node_req *inbox, *inbox_tail;
    bool started, stopping;
    int failed; /* 0, or the errno the node failed closed with */
    struct node_stats stats;
};

/* node_client.c: stops the listener and closes every client connection.
 * Called with the loop stopped. */
void node_client_stop(struct node *n);

#endif
