/* fs_session.c - mounting and serving: FUSE options, the connection's
 * capabilities, the multi-threaded request loop, clean shutdown. */
#include "fs_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FS_DEFAULT_TIMEOUT_S   1.0
#define FS_DEFAULT_MAX_THREADS 64
/* Options every mount gets: the kernel checks permission bits
 * (default_permissions), a crashed daemon never leaves a dead mount
 * (auto_unmount), and mount(8) shows what it is. */
#define FS_BASE_OPTIONS "fsname=raftfs,subtype=raftfs,default_permissions,auto_unmount"

static void fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    /* O_TRUNC arrives with OPEN, so the truncation joins the handle's one
     * commit instead of being a separate SETATTR that readers could see. */
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    /* With a writeback cache the kernel keeps its own file sizes and remote
     * changes tear reads (FUSE-NOTES): never. */
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

/* fs_ctl_* answer what concerns .raftfs/ and pass the rest to fs_op_*. */
static const struct fuse_lowlevel_ops fs_ops = {
    .init = fs_op_init,
    .lookup = fs_ctl_lookup,
    .forget = fs_op_forget,
    .forget_multi = fs_op_forget_multi,
    .getattr = fs_ctl_getattr,
    .setattr = fs_ctl_setattr,
    .mknod = fs_ctl_mknod,
    .symlink = fs_ctl_symlink,
    .link = fs_ctl_link,
    .mkdir = fs_ctl_mkdir,
    .unlink = fs_ctl_unlink,
    .rmdir = fs_ctl_rmdir,
    .rename = fs_ctl_rename,
    .open = fs_ctl_open,
    .create = fs_ctl_create,
    .read = fs_ctl_read,
    .write = fs_ctl_write,
    .flush = fs_ctl_flush,
    .fsync = fs_ctl_fsync,
    .release = fs_ctl_release,
    .poll = fs_ctl_poll,
    .opendir = fs_ctl_opendir,
    .readdir = fs_ctl_readdir,
    .readdirplus = fs_ctl_readdirplus,
    .releasedir = fs_ctl_releasedir,
    .fsyncdir = NULL, /* ENOSYS: directory changes are durable when they return */
    .statfs = fs_op_statfs,
    .getxattr = fs_ctl_getxattr,
    .listxattr = fs_ctl_listxattr,
    .setxattr = fs_ctl_setxattr,
    .removexattr = fs_ctl_removexattr,
};

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0 || v > 3600)
        return EINVAL;
    *out = v;
    return 0;
}

/* Takes raftfs's own options out of a comma-separated list; the rest goes
 * to FUSE. */
static int split_options(struct fs *fs, const char *opts, char **fuse_opts, int *max_threads,
                         char *err, size_t err_len)
{
    size_t cap = strlen(FS_BASE_OPTIONS) + (opts ? strlen(opts) : 0) + 2;
    char *out = malloc(cap);
    char *copy = strdup(opts ? opts : "");
    if (!out || !copy) {
        free(out);
        free(copy);
        return ENOMEM;
    }
    strcpy(out, FS_BASE_OPTIONS);
    int rc = 0;
    char *save = NULL;
    for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        if (!strncmp(o, "entry_timeout=", 14)) {
            rc = parse_seconds(o + 14, &fs->entry_timeout);
        } else if (!strncmp(o, "attr_timeout=", 13)) {
            rc = parse_seconds(o + 13, &fs->attr_timeout);
        } else if (!strncmp(o, "max_threads=", 12)) {
            char *end;
            long v = strtol(o + 12, &end, 10);
            rc = (*end || v < 1 || v > 1024) ? EINVAL : 0;
            *max_threads = (int)v;
        } else if (!strcmp(o, "writeback_cache")) {
            rc = EINVAL; /* see fs_op_init */
        } else {
            strcat(out, ",");
            strcat(out, o);
            continue;
        }
        if (rc) {
            snprintf(err, err_len, "bad mount option '%s'", o);
            break;
        }
    }
    free(copy);
    if (rc) {
        free(out);
        return rc;
    }
    *fuse_opts = out;
    return 0;
}

int fs_serve(const struct fs_config *cfg, char *err, size_t err_len)
{
    struct fs fs = {.node = cfg->node,
                    .store = node_store(cfg->node),
                    /* Linearizable mounts let the kernel cache no name:
                     * a cached one skips the lookup that would find the
                     * newest entry, and the kernel can answer ENOENT for
                     * a key that was deleted and made again elsewhere
                     * (found by tests/chaos; docs/architecture.md). */
                    .entry_timeout = cfg->serializable ? FS_DEFAULT_TIMEOUT_S : 0,
                    .attr_timeout = FS_DEFAULT_TIMEOUT_S,
                    .serializable = cfg->serializable};
    int max_threads = FS_DEFAULT_MAX_THREADS;
    char *opts = NULL;
    struct net_http *http = cfg->http; /* ours: closed on every path */
    int rc;
    store_get_limits(fs.store, &fs.limits);
    if ((rc = split_options(&fs, cfg->options, &opts, &max_threads, err, err_len))) {
        net_http_close(http);
        return rc;
    }

    char *argv[] = {"raftfs", "-o", opts, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);
    if ((rc = fs_table_init(&fs))) {
        free(opts);
        net_http_close(http);
        return rc;
    }
    struct store_observer obs = {
        .ctx = &fs, .dropping = fs_table_dropping, .changed = fs_inval_changed};
    node_set_observer(fs.node, &obs);

    fs.se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs);
    fuse_opt_free_args(&args);
    free(opts);
    if (!fs.se) {
        snprintf(err, err_len, "FUSE refused the mount options (see the line above)");
        rc = EINVAL;
        goto out_table;
    }
    if (fuse_set_signal_handlers(fs.se)) {
        snprintf(err, err_len, "cannot install signal handlers");
        rc = EIO;
        goto out_session;
    }
    /* Mounted while this process has one thread: libfuse forks and execs
     * fusermount3, and a child forked from a busy multi-threaded process
     * can block forever on a lock another thread held at the fork (seen
     * with the sanitizers and debug logging). Nothing is served before
     * the loop below runs, so the node can start after. */
    if (fuse_session_mount(fs.se, cfg->mountpoint)) {
        snprintf(err, err_len, "cannot mount %s (see the line above)", cfg->mountpoint);
        rc = EIO;
        goto out_signals;
    }
    /* Still one thread: fork the guard that keeps a dying server from
     * leaving the mount hung (fs_guard.c). */
    int guard_fd = -1;
    struct fs_guard_cfg guard = {.mountpoint = cfg->mountpoint,
                                 .log_path = cfg->log_path,
                                 .log_fd = cfg->log_path ? -1 : STDERR_FILENO};
    int grc = fs_guard_connection(cfg->mountpoint, &guard.conn);
    if (!grc)
        grc = fs_guard_start(&guard, &guard_fd);
    if (grc)
        node_log(NODE_LOG_WARN,
                 "no guard for %s (%s): if this server is killed while a request "
                 "is in flight, the mount may hang until 'umount -f'",
                 cfg->mountpoint, strerror(grc));
    if ((rc = fs_inval_start(&fs))) {
        snprintf(err, err_len, "cannot start the invalidation thread: %s", strerror(rc));
        goto out_unmount;
    }
    if ((rc = fs_later_start(&fs))) {
        snprintf(err, err_len, "cannot start the barrier thread: %s", strerror(rc));
        goto out_inval;
    }
    if ((rc = node_start(fs.node))) {
        snprintf(err, err_len, "cannot start the node: %s", strerror(rc));
        goto out_later;
    }
    /* Its thread starts only now, with the node (see the mount above). */
    if (http && (rc = net_http_start(http, fs_http_handle, &fs))) {
        snprintf(err, err_len, "cannot start the metrics server: %s", strerror(rc));
        goto out_node;
    }
    node_log(NODE_LOG_INFO, "mounted at %s", cfg->mountpoint);
    if (cfg->on_ready)
        cfg->on_ready(cfg->ready_ctx);

    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    if (!lc) {
        rc = ENOMEM;
        snprintf(err, err_len, "out of memory");
        goto out_node;
    }
    fuse_loop_cfg_set_max_threads(lc, (unsigned)max_threads);
    /* Threads that go idle stay (up to max_threads): with fewer kept,
     * libfuse ends and starts a thread for nearly every request under a
     * steady load of more concurrent callers (issue 6, docs/profile.md). */
    fuse_loop_cfg_set_idle_threads(lc, (unsigned)max_threads);
    int lrc = fuse_session_loop_mt(fs.se, lc);
    fuse_loop_cfg_destroy(lc);
    /* The loop returns the signal number after SIGTERM/SIGINT/SIGHUP: a
     * clean stop like an unmount. */
    rc = lrc < 0 ? -lrc : 0;
    if (rc)
        snprintf(err, err_len, "FUSE loop failed: %s", strerror(rc));
    node_log(NODE_LOG_INFO, "unmounting %s", cfg->mountpoint);

out_node:
    /* before the node stops and fs goes: its handler reads both */
    net_http_close(http);
    http = NULL;
    /* Closes in flight end in their real outcome, not ESHUTDOWN: no new
     * request comes now, and each ends by --timeout at the latest. */
    fs_flushes_wait(&fs);
    node_stop(fs.node);
out_later:
    fs_later_stop(&fs); /* after node_stop: every barrier is finished */
out_inval:
    fs_inval_stop(&fs);
out_unmount:
    fuse_session_unmount(fs.se);
    if (guard_fd >= 0)
        close(guard_fd); /* the guard exits */
out_signals:
    fuse_remove_signal_handlers(fs.se);
out_session:
    fuse_session_destroy(fs.se);
out_table:
    fs_table_fini(&fs);
    net_http_close(http);
    return rc;
}
