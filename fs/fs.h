/* fs.h - the FUSE front end: serves a node's tree as a mounted directory.
 *
 * Writes become node proposals (one command per close, see fs_file.c);
 * reads are read-barrier-checked LMDB lookups. Every errno the mount
 * returns is listed in README.md ("Errors").
 */
#ifndef RAFTFS_FS_H
#define RAFTFS_FS_H

#include <stdbool.h>
#include "node.h"

struct net_http;

struct fs_config {
    const char *mountpoint;
    struct node *node;
    /* FUSE options (-o ...), comma-separated, may be NULL. raftfs's own
     * options are taken out first: entry_timeout=S, attr_timeout=S,
     * max_threads=N. */
    const char *options;
    /* Called once the mount exists and requests are being served (the
     * background parent waits for this). May be NULL. */
    void (*on_ready)(void *ctx);
    void *ready_ctx;
    /* The log file once ready (the guard, fs_guard.c, appends to it); NULL:
     * the server logs to stderr. */
    const char *log_path;
    /* -o consistency=serializable: names may be cached (entry_timeout 1 s
     * by default); linearizable mounts cache none (0) unless told to. */
    bool serializable;
    /* --metrics-addr: a server opened (bound) by the caller, or NULL.
     * fs_serve takes it over: it serves /metrics and /health from when the
     * node runs until the unmount, and is closed whatever happens. */
    struct net_http *http;
};

/* Starts cfg->node (which must not be started yet), mounts
 * cfg->mountpoint and serves it until unmounted (fusermount3 -u, umount) or
 * SIGTERM/SIGINT/SIGHUP; then unmounts and stops the node. Returns 0 after
 * a clean stop; otherwise an errno with a one-line reason in err (EINVAL:
 * bad options; EIO: the mount failed). The node is not closed. */
int fs_serve(const struct fs_config *cfg, char *err, size_t err_len);

#endif
