/* fs_guard.c - a server that dies must not leave its mount hung.
 *
 * The hazard (found by tests/chaos): the invalidation thread (fs_inval.c)
 * calls fuse_lowlevel_notify_inval_entry, and the kernel takes the parent
 * directory's lock for it. A process making a change in that directory
 * holds the same lock while it waits for this server's answer. If the
 * server is killed (kill -9, a crash) at that moment, every other thread
 * exits, but the notifying thread waits, uninterruptibly, for a lock that
 * will only be released when the request is answered or the connection is
 * aborted; and the connection is aborted only when the last thread holding
 * /dev/fuse exits. The server stays a zombie, the mount never goes away
 * (auto_unmount waits for the same exit), and everything that touches the
 * mount hangs until someone aborts the connection by hand.
 *
 * The guard is a small process forked right after the mount, while the
 * server has one thread. It holds nothing but one end of a pipe (it must not
 * hold /dev/fuse, or it would keep the connection alive itself). It polls:
 *   - EOF on the pipe: the server's descriptors are gone (a clean exit, or
 *     a death the kernel cleaned up): nothing to do, exit.
 *   - the server's main thread has exited (state Z) but the pipe is still
 *     open: some thread of it is stuck. After a grace period it aborts the
 *     connection (fusectl's abort file, mounting fusectl for the moment if
 *     it is not; or
 *     umount2 MNT_FORCE, which aborts too). The stuck thread then returns,
 *     the process exits, and auto_unmount removes the mount.
 *
 * It also finishes auto_unmount's job. fusermount3 (3.14) waits for the
 * server's socket to close, then opens the mountpoint and unmounts only if
 * that open fails with ENOTCONN. The socket and /dev/fuse close in the same
 * exit, in no fixed order: when the open reaches the kernel before the
 * connection is aborted it fails with ECONNABORTED instead, and fusermount3
 * leaves the dead mount (about 1 kill -9 in 20 here, more with requests in
 * flight). So once the pipe reports EOF, the guard waits a moment for
 * fusermount3 and then detaches the mount itself, if the topmost mount at
 * the path is still this server's connection.
 *
 * It ignores the terminal's signals (SIGINT, SIGTERM, SIGHUP): it lives
 * exactly as long as the server's descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs_internal.h"

#define GUARD_POLL_MS         100
#define GUARD_GRACE_MS        1000 /* the main thread gone this long, descriptors still open */
#define FUSECTL_DIR           "/sys/fs/fuse/connections"
#define GUARD_AUTO_UNMOUNT_MS 300 /* fusermount3's chance to unmount first */

static int newest_connection(const char *mountpoint, unsigned *conn);

/* Appends one line to the log (the file, or the inherited stderr). */
static void guard_log(const struct fs_guard_cfg *g, const char *msg)
{
    if (node_log_is_syslog()) {
        node_log(NODE_LOG_WARN, "guard: %s: %s", g->mountpoint, msg);
        return;
    }
    int fd = g->log_path ? open(g->log_path, O_WRONLY | O_APPEND | O_CLOEXEC) : g->log_fd;
    if (fd < 0)
        return;
    char text[900], line[1024];
    snprintf(text, sizeof(text), "guard: %s: %s", g->mountpoint, msg);
    size_t n = node_log_format(line, sizeof(line) - 1, NODE_LOG_WARN, text);
    if (n >= sizeof(line) - 1)
        n = strlen(line);
    line[n++] = '\n';
    if (write(fd, line, n) < 0) {
        /* nowhere else to say it */
    }
    if (g->log_path)
        close(fd);
}

/* The state letter of the process's main thread ('?' if it cannot be read). */
static char main_thread_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return '?';
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return '?';
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the name may hold spaces and ')' */
    return p && p[1] == ' ' ? p[2] : '?';
}

static int write_abort(unsigned conn)
{
    char path[96];
    snprintf(path, sizeof(path), FUSECTL_DIR "/%u/abort", conn);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = write(fd, "1", 1) == 1 ? 0 : errno;
    close(fd);
    return rc;
}

static void abort_connection(const struct fs_guard_cfg *g)
{
    int rc = write_abort(g->conn);
    if (rc == ENOENT && mount("fusectl", FUSECTL_DIR, "fusectl", 0, NULL) == 0) {
        rc = write_abort(g->conn);
        umount2(FUSECTL_DIR, MNT_DETACH); /* leave the system as it was */
    }
    if (rc == 0) {
        guard_log(g, "the server died with a request in flight; aborted its FUSE connection "
                     "so that the mount does not hang");
        return;
    }
    if (umount2(g->mountpoint, MNT_FORCE) == 0) {
        guard_log(g, "the server died with a request in flight; forced the unmount so that "
                     "the mount does not hang");
        return;
    }
    char msg[256];
    snprintf(msg, sizeof(msg),
             "the server died with a request in flight and its FUSE connection %u could not "
             "be aborted (%s): run 'umount -f' on the mountpoint",
             g->conn, strerror(rc));
    guard_log(g, msg);
}

/* Is the topmost FUSE mount at the path still this server's connection? */
static bool still_mounted(const struct fs_guard_cfg *g)
{
    unsigned conn;
    return newest_connection(g->mountpoint, &conn) == 0 && conn == g->conn;
}

/* The server's descriptors are gone, and with them its connection. If its
 * mount is still there after fusermount3 had its chance, detach it. */
static void finish_auto_unmount(const struct fs_guard_cfg *g)
{
    for (int waited = 0; waited < GUARD_AUTO_UNMOUNT_MS; waited += 10) {
        if (!still_mounted(g))
            return;
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000L}, NULL);
    }
    if (!still_mounted(g))
        return;
    int rc = umount2(g->mountpoint, MNT_DETACH | UMOUNT_NOFOLLOW) == 0 ? 0 : errno;
    if (rc == EPERM) {
        /* Not root: the setuid helper may unmount a mount of this user. */
        pid_t pid = fork();
        if (pid == 0) {
            execlp("fusermount3", "fusermount3", "-u", "-z", "-q", "--", g->mountpoint,
                   (char *)NULL);
            _exit(127);
        }
        int st = 0;
        if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st))
            rc = 0;
    }
    if (!still_mounted(g)) {
        guard_log(g, "the server exited and auto_unmount left its dead mount behind; "
                     "unmounted it");
        return;
    }
    char msg[256];
    snprintf(msg, sizeof(msg),
             "the server exited and its dead mount could not be removed (%s): run "
             "'fusermount3 -u' on the mountpoint",
             strerror(rc ? rc : EBUSY));
    guard_log(g, msg);
}

static void guard_main(const struct fs_guard_cfg *g, int rd, pid_t server)
{
    int waited_ms = 0;
    bool aborted = false;
    for (;;) {
        struct pollfd pfd = {.fd = rd, .events = POLLIN};
        int n = poll(&pfd, 1, GUARD_POLL_MS);
        if (n < 0 && errno != EINTR)
            return;
        if (n > 0) {
            char c;
            ssize_t k = read(rd, &c, 1);
            if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) {
                finish_auto_unmount(g); /* the server's descriptors are closed */
                return;
            }
            continue;
        }
        if (aborted)
            continue; /* the stuck thread returns now; wait for the EOF */
        char st = main_thread_state(server);
        if (st == 'Z' || st == 'X' || st == '?') {
            waited_ms += GUARD_POLL_MS;
            if (waited_ms >= GUARD_GRACE_MS) {
                abort_connection(g);
                aborted = true;
            }
        } else {
            waited_ms = 0;
        }
    }
}

int fs_guard_start(const struct fs_guard_cfg *g, int *keep_fd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC))
        return errno;
    pid_t server = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return e;
    }
    if (pid == 0) {
        /* Keep the pipe's read end and, in the foreground, a copy of
         * stderr; everything else goes, /dev/fuse and the auto_unmount
         * socket first, and the caller's stdin/stdout/stderr too (a shell
         * that runs `raftfs mount` in $(...) waits for their last copy). */
        node_log_child();
        if (dup2(p[0], 3) < 0)
            _exit(1);
        int rd = 3, logfd = -1;
        if (!g->log_path && g->log_fd >= 0)
            logfd = dup2(g->log_fd, 4);
        close_range(logfd >= 0 ? 5 : 4, ~0U, 0);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            if (null > STDERR_FILENO && null != rd && null != logfd)
                close(null);
        }
        struct fs_guard_cfg mine = *g;
        mine.log_fd = logfd;
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        guard_main(&mine, rd, server);
        _exit(0);
    }
    close(p[0]);
    *keep_fd = p[1]; /* never written: its closing is the message */
    return 0;
}

/* Undoes mountinfo's octal escapes (\040 for a space ...) in place. */
static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

int fs_guard_connection(const char *mountpoint, unsigned *conn)
{
    return newest_connection(mountpoint, conn);
}

static int newest_connection(const char *mountpoint, unsigned *conn)
{
    /* Not stat(mountpoint): that would wait for this server, which is not
     * serving yet. The newest FUSE mount at the path is ours. */
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return errno;
    char line[8192];
    int found = ENOENT;
    while (fgets(line, sizeof(line), f)) {
        unsigned maj, min;
        char mp[4096], *dash = strstr(line, " - ");
        if (!dash || strncmp(dash + 3, "fuse", 4))
            continue;
        if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mp) != 3)
            continue;
        unescape(mp);
        if (strcmp(mp, mountpoint))
            continue;
        /* fusectl names a connection by the kernel's dev_t: major << 20 | minor. */
        *conn = (maj << 20) | min;
        found = 0;
    }
    fclose(f);
    return found;
}
