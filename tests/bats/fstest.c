/* fstest.c - syscall-level checks the shell cannot express, for the bats
 * suites. Each subcommand prints what it saw and exits 0 when the property
 * holds, 1 when it does not, 2 on bad usage. Errors print as errno names. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e)
{
    switch (e) {
    case 0:
        return "OK";
    case ENOENT:
        return "ENOENT";
    case EEXIST:
        return "EEXIST";
    case EINVAL:
        return "EINVAL";
    case ESTALE:
        return "ESTALE";
    case EFBIG:
        return "EFBIG";
    case ENAMETOOLONG:
        return "ENAMETOOLONG";
    case ENOTEMPTY:
        return "ENOTEMPTY";
    case ENOTDIR:
        return "ENOTDIR";
    case EISDIR:
        return "EISDIR";
    case EPERM:
        return "EPERM";
    case ENOTSUP:
        return "ENOTSUP";
    case ENODATA:
        return "ENODATA";
    case ERANGE:
        return "ERANGE";
    case EBUSY:
        return "EBUSY";
    case ENOSPC:
        return "ENOSPC";
    case EIO:
        return "EIO";
    case EXDEV:
        return "EXDEV";
    case EACCES:
        return "EACCES";
    default:
        return strerror(e);
    }
}

static int result(int rc)
{
    printf("%s\n", ename(rc ? errno : 0));
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* rename2 FROM TO noreplace|exchange|whiteout|none: prints the errno name. */
static int cmd_rename2(char **argv)
{
    unsigned flags = 0;
    if (!strcmp(argv[2], "noreplace"))
        flags = RENAME_NOREPLACE;
    else if (!strcmp(argv[2], "exchange"))
        flags = RENAME_EXCHANGE;
    else if (!strcmp(argv[2], "whiteout"))
        flags = RENAME_WHITEOUT;
    return result(renameat2(AT_FDCWD, argv[0], AT_FDCWD, argv[1], flags));
}

/* write-fstat FILE DATA N: open O_WRONLY|O_TRUNC, write DATA, ftruncate to N,
 * print fstat's size, then stat's size from a child process, then close. */
static int cmd_write_fstat(char **argv)
{
    int fd = open(argv[0], O_WRONLY | O_TRUNC);
    if (fd < 0)
        return result(-1);
    if (write(fd, argv[1], strlen(argv[1])) != (ssize_t)strlen(argv[1]))
        return result(-1);
    struct stat st;
    fstat(fd, &st);
    printf("after write: %lld\n", (long long)st.st_size);
    if (ftruncate(fd, atoll(argv[2])))
        return result(-1);
    fstat(fd, &st);
    printf("after ftruncate: %lld\n", (long long)st.st_size);
    pid_t pid = fork();
    if (pid == 0) {
        struct stat cst;
        stat(argv[0], &cst);
        printf("other process: %lld\n", (long long)cst.st_size);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    int rc = close(fd);
    printf("close: %s\n", ename(rc ? errno : 0));
    stat(argv[0], &st);
    printf("after close: %lld\n", (long long)st.st_size);
    return 0;
}

/* mmap-rw FILE: open O_RDWR, write "hello world", mmap it shared, read it
 * back through the mapping, change a byte through it, close; prints what
 * the mapping saw. */
static int cmd_mmap_rw(char **argv)
{
    int fd = open(argv[0], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return result(-1);
    if (write(fd, "hello world", 11) != 11)
        return result(-1);
    struct stat st;
    fstat(fd, &st);
    char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return result(-1);
    printf("mapped: %.*s\n", (int)st.st_size, m);
    m[0] = 'H';
    msync(m, (size_t)st.st_size, MS_SYNC);
    munmap(m, (size_t)st.st_size);
    int rc = close(fd);
    printf("close: %s\n", ename(rc ? errno : 0));
    return 0;
}

/* conflict FILE: opens FILE read-write without O_TRUNC, changes it through
 * another descriptor (O_TRUNC write, committed), then writes through the
 * first and closes it: prints close's result (ESTALE expected). */
static int cmd_conflict(char **argv)
{
    int a = open(argv[0], O_RDWR);
    if (a < 0)
        return result(-1);
    int b = open(argv[0], O_WRONLY | O_TRUNC);
    if (b < 0 || write(b, "other\n", 6) != 6 || close(b))
        return result(-1);
    if (pwrite(a, "mine\n", 5, 0) != 5)
        return result(-1);
    int rc = close(a);
    printf("close: %s\n", ename(rc ? errno : 0));
    return 0;
}

/* no-conflict-after-chmod FILE: opens FILE read-write, fchmods it, writes,
 * closes: a metadata change of one's own is not a conflict. */
static int cmd_chmod_write(char **argv)
{
    int a = open(argv[0], O_RDWR);
    if (a < 0)
        return result(-1);
    if (fchmod(a, 0600) || pwrite(a, "after chmod\n", 12, 0) != 12)
        return result(-1);
    int rc = close(a);
    printf("close: %s\n", ename(rc ? errno : 0));
    return 0;
}

/* unlink-read FILE: opens FILE, unlinks it, then reads it through the open
 * descriptor: prints what it read. */
static int cmd_unlink_read(char **argv)
{
    int fd = open(argv[0], O_RDONLY);
    if (fd < 0)
        return result(-1);
    if (unlink(argv[0]))
        return result(-1);
    char buf[256];
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    if (n < 0)
        return result(-1);
    printf("read after unlink: %.*s", (int)n, buf);
    close(fd);
    return 0;
}

/* read-split FILE: reads FILE two bytes first, then has it rewritten with a
 * longer value through another descriptor, then reads on to EOF: the
 * descriptor must read the first version whole, never a mix. */
static int cmd_read_split(char **argv)
{
    int fd = open(argv[0], O_RDONLY);
    if (fd < 0)
        return result(-1);
    char got[512];
    ssize_t n = read(fd, got, 2);
    if (n != 2)
        return result(n < 0 ? -1 : 0);
    int w = open(argv[0], O_WRONLY | O_TRUNC);
    const char *next = "a newer and longer value\n";
    if (w < 0 || write(w, next, strlen(next)) != (ssize_t)strlen(next) || close(w))
        return result(-1);
    size_t len = 2;
    while (len < sizeof(got)) {
        ssize_t k = read(fd, got + len, sizeof(got) - len);
        if (k < 0)
            return result(-1);
        if (k == 0)
            break;
        len += (size_t)k;
    }
    close(fd);
    printf("read: %.*s", (int)len, got);
    return 0;
}

/* reader FILE SECONDS: open+read+close in a loop; every read must be a
 * whole value written by `writer` or the shell loop: "v<digits>-<pad>\n"
 * where pad is x repeated to the digits' value modulo 50 (so a torn
 * read of two lengths cannot pass). Prints counts; exits 1 on a bad read. */
static int check_value(const char *buf, ssize_t n)
{
    if (n < 4 || buf[0] != 'v' || buf[n - 1] != '\n')
        return 0;
    char *end;
    long v = strtol(buf + 1, &end, 10);
    if (end == buf + 1 || *end != '-')
        return 0;
    long pad = v % 50;
    if ((end + 1 + pad + 1) != buf + n)
        return 0;
    for (long i = 0; i < pad; i++)
        if (end[1 + i] != 'x')
            return 0;
    return 1;
}

static int cmd_reader(char **argv)
{
    double until = now_s() + atof(argv[1]);
    long reads = 0, bad = 0, empty = 0, missing = 0;
    char buf[4096];
    while (now_s() < until) {
        int fd = open(argv[0], O_RDONLY);
        if (fd < 0) {
            missing++;
            continue;
        }
        ssize_t n = read(fd, buf, sizeof(buf));
        close(fd);
        reads++;
        if (n == 0) {
            empty++;
        } else if (n < 0 || !check_value(buf, n)) {
            if (bad < 5)
                fprintf(stderr, "bad read (%zd bytes): %.*s\n", n, n > 0 ? (int)n : 0, buf);
            bad++;
        }
    }
    printf("reads %ld bad %ld empty %ld missing %ld\n", reads, bad, empty, missing);
    return reads > 0 && bad == 0 && empty == 0 && missing == 0 ? 0 : 1;
}

/* writer FILE COUNT: rewrites FILE COUNT times with open(O_TRUNC)+write+close
 * of values in the reader's format. */
static int cmd_writer(char **argv)
{
    long count = atol(argv[1]);
    char buf[128];
    for (long i = 0; i < count; i++) {
        long pad = i % 50;
        int n = snprintf(buf, sizeof(buf), "v%ld-", i);
        memset(buf + n, 'x', (size_t)pad);
        buf[n + pad] = '\n';
        int len = n + (int)pad + 1;
        int fd = open(argv[0], O_WRONLY | O_TRUNC | O_CREAT, 0644);
        if (fd < 0 || write(fd, buf, (size_t)len) != len || close(fd)) {
            perror("writer");
            return 1;
        }
    }
    return 0;
}

/* create-excl FILE: open(O_CREAT|O_EXCL) result. */
static int cmd_create_excl(char **argv)
{
    int fd = open(argv[0], O_WRONLY | O_CREAT | O_EXCL, 0644);
    int rc = result(fd < 0 ? -1 : 0);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* write-at FILE OFFSET DATA: pwrite at OFFSET (no O_TRUNC); prints the
 * results of pwrite and close. */
static int cmd_write_at(char **argv)
{
    int fd = open(argv[0], O_WRONLY);
    if (fd < 0)
        return result(-1);
    ssize_t n = pwrite(fd, argv[2], strlen(argv[2]), atoll(argv[1]));
    printf("pwrite: %s\n", ename(n < 0 ? errno : 0));
    int rc = close(fd);
    printf("close: %s\n", ename(rc ? errno : 0));
    return 0;
}

/* poisoned FILE: a write past the size limit poisons the descriptor; then
 * ftruncate of it, truncate(FILE, 3) by path, and the close; prints each
 * result. */
static int cmd_poisoned(char **argv)
{
    int fd = open(argv[0], O_WRONLY);
    if (fd < 0)
        return result(-1);
    ssize_t n = pwrite(fd, "x", 1, 1 << 30);
    printf("pwrite: %s\n", ename(n < 0 ? errno : 0));
    printf("ftruncate: %s\n", ename(ftruncate(fd, 2) ? errno : 0));
    printf("truncate: %s\n", ename(truncate(argv[0], 3) ? errno : 0));
    printf("close: %s\n", ename(close(fd) ? errno : 0));
    return 0;
}

/* mknod-fifo FILE, symlink TARGET LINK, link OLD NEW: print the errno. */
static int cmd_mkfifo(char **argv)
{
    return result(mknod(argv[0], S_IFIFO | 0644, 0));
}

static int cmd_symlink(char **argv)
{
    return result(symlink(argv[0], argv[1]));
}

static int cmd_link(char **argv)
{
    return result(link(argv[0], argv[1]));
}

static int touch_value(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, value, strlen(value));
    return close(fd) || n < 0 ? -1 : 0;
}

/* Another process than this one, made before this one opens anything
 * (a child that inherits a descriptor flushes it when it exits): it reads
 * commands from a pipe, 'r' (print the value of path) or 'w' (replace it
 * with "bbb"), and answers each on another pipe once done. */
struct other {
    pid_t pid;
    int cmd, done;
};

static int other_start(struct other *o, const char *path)
{
    int c[2], d[2];
    if (pipe(c) || pipe(d))
        return -1;
    fflush(stdout);
    o->pid = fork();
    if (o->pid < 0)
        return -1;
    if (o->pid == 0) {
        close(c[1]);
        close(d[0]);
        char op;
        while (read(c[0], &op, 1) == 1) {
            if (op == 'w') {
                printf("other writes: %s\n", ename(touch_value(path, "bbb") ? errno : 0));
            } else {
                char buf[64];
                int fd = open(path, O_RDONLY);
                ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
                if (fd >= 0)
                    close(fd);
                if (n < 0)
                    printf("other reads: %s\n", ename(errno));
                else
                    printf("other reads: %.*s\n", (int)n, buf);
            }
            fflush(stdout);
            if (write(d[1], "", 1) != 1)
                break;
        }
        _exit(0);
    }
    close(c[0]);
    close(d[1]);
    o->cmd = c[1];
    o->done = d[0];
    return 0;
}

static void other_do(struct other *o, char op)
{
    char x;
    fflush(stdout);
    if (write(o->cmd, &op, 1) != 1 || read(o->done, &x, 1) != 1)
        printf("other: gone\n");
}

/* The start of truncate-dup and truncate-dup-write: the other process
 * started (o), "aaaa" written through a descriptor opened O_WRONLY|flags, a
 * dup of it kept, the first closed (committing "aaaa"), FILE truncated by
 * path to 1 byte and read by the other process. Returns the dup, or -1. */
static int written_dup_truncated(const char *path, int flags, struct other *o)
{
    if (other_start(o, path))
        return -1;
    int fd = open(path, O_WRONLY | flags);
    if (fd < 0 || write(fd, "aaaa", 4) != 4)
        return -1;
    int d = dup(fd);
    if (d < 0)
        return -1;
    printf("close: %s\n", ename(close(fd) ? errno : 0));
    printf("truncate: %s\n", ename(truncate(path, 1) ? errno : 0));
    other_do(o, 'r');
    return d;
}

/* truncate-dup FILE: writes "aaaa" through an O_TRUNC descriptor, keeps a
 * dup of it open and closes the first (the close commits "aaaa"), then
 * truncates FILE by path to 1 byte; another process reads FILE and writes
 * "bbb" to it; then the dup is closed and the other process reads again.
 * Prints each step: truncate(2) has returned, so the other process must
 * read "a"; and the last close, with nothing written since the first,
 * must not bring back anything of this descriptor over "bbb". */
static int cmd_truncate_dup(char **argv)
{
    struct other o;
    int d = written_dup_truncated(argv[0], O_TRUNC, &o);
    if (d < 0)
        return result(-1);
    other_do(&o, 'w');
    printf("close dup: %s\n", ename(close(d) ? errno : 0));
    other_do(&o, 'r');
    close(o.cmd);
    waitpid(o.pid, NULL, 0);
    return 0;
}

/* truncate-dup-write FILE: as truncate-dup, through a descriptor opened
 * without O_TRUNC (its commits expect the revision it last saw): "aaaa"
 * written and committed by closing the first of two, FILE truncated by
 * path to 1 byte, read by another process, then "Z" written at the dup's
 * offset (4) and the dup closed. As on a local file system the value is
 * then "a", three zero bytes and "Z", and the close commits it without a
 * conflict: the truncate was this process's own. */
static int cmd_truncate_dup_write(char **argv)
{
    struct other o;
    int d = written_dup_truncated(argv[0], 0, &o);
    if (d < 0)
        return result(-1);
    printf("write: %s\n", ename(write(d, "Z", 1) == 1 ? 0 : errno));
    printf("close dup: %s\n", ename(close(d) ? errno : 0));
    close(o.cmd);
    waitpid(o.pid, NULL, 0);
    return 0;
}

/* poll-events EVENTS TRIGGER: on the events file, poll finds nothing to
 * read while nothing changes; after a write of TRIGGER, select finds it
 * readable, and a read returns its line; after another write, poll does.
 * Prints what it saw. */
static int cmd_poll_events(char **argv)
{
    alarm(30); /* a read that blocks for good fails the test, not the suite */
    int fd = open(argv[0], O_RDONLY);
    if (fd < 0)
        return result(-1);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, 300);
    printf("poll before: %d\n", n);
    if (touch_value(argv[1], "1"))
        return result(-1);
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    struct timeval tv = {.tv_sec = 5};
    int s = select(fd + 1, &set, NULL, NULL, &tv);
    char buf[4096];
    ssize_t got = read(fd, buf, sizeof(buf) - 1);
    buf[got > 0 ? got : 0] = 0;
    printf("select after: %d\nread: %s", s, buf);
    if (touch_value(argv[1], "2"))
        return result(-1);
    p.revents = 0;
    int n2 = poll(&p, 1, 5000);
    printf("poll after: %d revents %s\n", n2, p.revents & POLLIN ? "POLLIN" : "-");
    close(fd);
    const char *base = strrchr(argv[1], '/');
    return n == 0 && s == 1 && got > 0 && strstr(buf, base ? base : argv[1]) && n2 == 1 ? 0 : 1;
}

static int cmd_mknod_reg(char **argv)
{
    return result(mknod(argv[0], S_IFREG | 0640, 0));
}

/* truncate-close-race FILE N: N times, write "0123456789" through a fresh
 * O_TRUNC descriptor and close it while another thread of this process
 * truncates the file by path to 4 bytes. Both return before the size is
 * read, so it must be 4 every time, whichever came first: the truncate
 * lands in the writer's uncommitted value, or waits for its commit, or
 * comes after the close and is proposed (fs_op_setattr). The value is read
 * by another process (this one's size would be the writer's while its
 * RELEASE, which close does not wait for, is pending), which waits up to
 * 2 s for 4 bytes:
 * a truncate that landed between the FLUSH and the RELEASE is committed by
 * the RELEASE. Prints how many rounds ended with another size, and the
 * first error. */
static int committed_len_is(const char *path, ssize_t want)
{
    fflush(stdout); /* or the child prints what is buffered again */
    pid_t pid = fork();
    if (pid == 0) {
        /* The value read, not stat: the kernel may answer a stat from
         * the attributes the truncate's reply gave it. */
        char buf[64];
        ssize_t n = -1;
        for (int i = 0; i < 200; i++) {
            int fd = open(path, O_RDONLY);
            n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
            if (fd >= 0)
                close(fd);
            if (n == want)
                _exit(0);
            usleep(10000);
        }
        printf("read %zd bytes\n", n);
        fflush(stdout);
        _exit(1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct trunc_arg {
    const char *path;
    int rc;
};

static void *trunc_thread(void *p)
{
    struct trunc_arg *a = p;
    a->rc = truncate(a->path, 4) ? errno : 0;
    return NULL;
}

static int cmd_truncate_close_race(char **argv)
{
    const char *path = argv[0];
    int n = atoi(argv[1]), wrong = 0;
    for (int i = 0; i < n; i++) {
        int fd = open(path, O_WRONLY | O_TRUNC);
        if (fd < 0 || write(fd, "0123456789", 10) != 10)
            return result(-1);
        struct trunc_arg a = {.path = path};
        pthread_t t;
        if (pthread_create(&t, NULL, trunc_thread, &a))
            return result(-1);
        int crc = close(fd) ? errno : 0;
        pthread_join(t, NULL);
        if (crc || a.rc) {
            printf("round %d: close %s, truncate %s\n", i, ename(crc), ename(a.rc));
            return 1;
        }
        if (!committed_len_is(path, 4) && wrong++ == 0)
            printf("round %d: not 4 after 2 s\n", i);
    }
    printf("rounds %d, wrong size %d\n", n, wrong);
    return wrong ? 1 : 0;
}

/* write-at-go FILE VALUE GO: opens FILE (O_WRONLY|O_TRUNC), prints "open",
 * waits until the file GO exists, writes VALUE, closes, and prints close's
 * result: for a close that has to wait for the cluster. */
static int cmd_write_at_go(char **argv)
{
    int fd = open(argv[0], O_WRONLY | O_TRUNC);
    if (fd < 0)
        return result(-1);
    printf("open\n");
    fflush(stdout);
    while (access(argv[2], F_OK))
        usleep(20000);
    size_t len = strlen(argv[1]);
    if (write(fd, argv[1], len) != (ssize_t)len)
        return result(-1);
    int rc = close(fd);
    printf("close: %s\n", ename(rc ? errno : 0));
    return 0;
}

/* write-many-at-go DIR N GO: opens DIR/k1 .. DIR/kN (O_WRONLY|O_TRUNC),
 * prints "open N", waits until the file GO exists, then writes "newI" to
 * kI and closes it, each on a thread of its own, all at once; prints
 * "closes OK: M" and a line for each close that failed. One process for
 * many closes that have to wait for the cluster (a process each costs
 * much more under the sanitizers). */
struct closer {
    int fd, i, rc;
};

static void *close_thread(void *p)
{
    struct closer *c = p;
    char v[32];
    int n = snprintf(v, sizeof(v), "new%d", c->i);
    c->rc = write(c->fd, v, (size_t)n) == n ? 0 : errno;
    if (close(c->fd) && !c->rc)
        c->rc = errno;
    return NULL;
}

static int cmd_write_many_at_go(char **argv)
{
    int n = atoi(argv[1]);
    if (n <= 0 || n > 4096)
        return 2;
    struct closer *c = calloc((size_t)n, sizeof(*c));
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    if (!c || !t)
        return result(-1);
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/k%d", argv[0], i + 1);
        c[i].i = i + 1;
        if ((c[i].fd = open(path, O_WRONLY | O_TRUNC)) < 0)
            return result(-1);
    }
    printf("open %d\n", n);
    fflush(stdout);
    while (access(argv[2], F_OK))
        usleep(20000);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], &attr, close_thread, &c[i]))
            return result(-1);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        if (c[i].rc)
            printf("k%d: %s\n", c[i].i, ename(c[i].rc));
        else
            ok++;
    }
    printf("closes OK: %d\n", ok);
    free(c);
    free(t);
    return 0;
}

struct sub {
    const char *name;
    int argc;
    int (*fn)(char **argv);
};

static const struct sub subs[] = {
    {"rename2", 3, cmd_rename2},
    {"write-fstat", 3, cmd_write_fstat},
    {"mmap-rw", 1, cmd_mmap_rw},
    {"conflict", 1, cmd_conflict},
    {"chmod-write", 1, cmd_chmod_write},
    {"unlink-read", 1, cmd_unlink_read},
    {"reader", 2, cmd_reader},
    {"writer", 2, cmd_writer},
    {"create-excl", 1, cmd_create_excl},
    {"write-at", 3, cmd_write_at},
    {"mkfifo", 1, cmd_mkfifo},
    {"mknod-reg", 1, cmd_mknod_reg},
    {"symlink", 2, cmd_symlink},
    {"link", 2, cmd_link},
    {"read-split", 1, cmd_read_split},
    {"poll-events", 2, cmd_poll_events},
    {"truncate-close-race", 2, cmd_truncate_close_race},
    {"write-at-go", 3, cmd_write_at_go},
    {"write-many-at-go", 3, cmd_write_many_at_go},
    {"poisoned", 1, cmd_poisoned},
    {"truncate-dup", 1, cmd_truncate_dup},
    {"truncate-dup-write", 1, cmd_truncate_dup_write},
};

int main(int argc, char **argv)
{
    if (argc >= 2) {
        for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
            if (!strcmp(argv[1], subs[i].name)) {
                if (argc - 2 != subs[i].argc)
                    break;
                int rc = subs[i].fn(argv + 2);
                fflush(stdout);
                return rc;
            }
        }
    }
    fprintf(stderr, "usage: fstest SUBCOMMAND ARGS (see fstest.c)\n");
    return 2;
}
