/* fault.c - the fault-injection seam (fault.h). */
#include "fault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

_Atomic int fault_armed_site = FAULT_NONE;
static _Atomic uint64_t calls, nth;
static _Atomic int err_no;
static _Atomic bool short_write, fired, from_then;

void fault_arm(enum fault_site site, uint64_t n, int err, bool short_io, enum fault_mode mode)
{
    atomic_store(&fault_armed_site, FAULT_NONE);
    atomic_store(&calls, 0);
    atomic_store(&nth, n);
    atomic_store(&err_no, err);
    atomic_store(&short_write, short_io);
    atomic_store(&from_then, mode == FAULT_FROM_THEN);
    atomic_store(&fired, false);
    atomic_store(&fault_armed_site, (int)site);
}

void fault_disarm(void)
{
    atomic_store(&fault_armed_site, FAULT_NONE);
}

uint64_t fault_calls(void)
{
    return atomic_load(&calls);
}

bool fault_fired(void)
{
    return atomic_load(&fired);
}

const char *fault_site_name(enum fault_site site)
{
    static const char *const names[FAULT_N_SITES] = {
        [FAULT_NONE] = "none",
        [FAULT_LOG_WRITE] = "log-write",
        [FAULT_LOG_SYNC] = "log-sync",
        [FAULT_LOG_RENAME] = "log-rename",
        [FAULT_TREE_COMMIT] = "tree-commit",
        [FAULT_TREE_SYNC] = "tree-sync",
        [FAULT_SNAP_WRITE] = "snapshot-write",
        [FAULT_SNAP_SYNC] = "snapshot-sync",
        [FAULT_SNAP_RENAME] = "snapshot-rename",
        [FAULT_FILE_WRITE] = "file-write",
        [FAULT_ALLOC] = "alloc",
        [FAULT_NET_SEND] = "net-send",
        [FAULT_NET_RECV] = "net-recv",
        [FAULT_SPACE] = "space",
    };
    return (unsigned)site < FAULT_N_SITES ? names[site] : "?";
}

int fault_check(enum fault_site site)
{
    if (atomic_load(&fault_armed_site) != (int)site)
        return 0;
    uint64_t k = atomic_fetch_add(&calls, 1) + 1, n = atomic_load(&nth);
    if (k < n || (k > n && !atomic_load(&from_then)))
        return 0;
    atomic_store(&fired, true);
    return atomic_load(&short_write) ? -1 : atomic_load(&err_no);
}

ssize_t fault_pwrite(enum fault_site site, int fd, const void *buf, size_t len, off_t off)
{
    int f = fault_at(site);
    if (f == -1 && len > 1)
        return pwrite(fd, buf, len / 2, off);
    if (f > 0) {
        errno = f;
        return -1;
    }
    return pwrite(fd, buf, len, off);
}

ssize_t fault_write(enum fault_site site, int fd, const void *buf, size_t len)
{
    int f = fault_at(site);
    if (f == -1 && len > 1)
        return write(fd, buf, len / 2);
    if (f > 0) {
        errno = f;
        return -1;
    }
    return write(fd, buf, len);
}

ssize_t fault_send(enum fault_site site, int fd, const void *buf, size_t len, int flags)
{
    int f = fault_at(site);
    if (f == -1 && len > 1)
        return send(fd, buf, len / 2, flags);
    if (f > 0) {
        errno = f;
        return -1;
    }
    return send(fd, buf, len, flags);
}

ssize_t fault_read(enum fault_site site, int fd, void *buf, size_t len)
{
    int f = fault_at(site);
    if (f == -1 && len > 1)
        return read(fd, buf, len / 2);
    if (f > 0) {
        errno = f;
        return -1;
    }
    return read(fd, buf, len);
}

static int fail_with(int f)
{
    errno = f > 0 ? f : EIO;
    return -1;
}

int fault_fdatasync(enum fault_site site, int fd)
{
    int f = fault_at(site);
    return f ? fail_with(f) : fdatasync(fd);
}

int fault_fsync(enum fault_site site, int fd)
{
    int f = fault_at(site);
    return f ? fail_with(f) : fsync(fd);
}

int fault_rename(enum fault_site site, const char *from, const char *to)
{
    int f = fault_at(site);
    return f ? fail_with(f) : rename(from, to);
}

int fault_renameat(enum fault_site site, int from_dir, const char *from, int to_dir, const char *to)
{
    int f = fault_at(site);
    return f ? fail_with(f) : renameat(from_dir, from, to_dir, to);
}

void *fault_malloc(size_t size)
{
    return fault_at(FAULT_ALLOC) ? NULL : malloc(size);
}

void *fault_calloc(size_t n, size_t size)
{
    return fault_at(FAULT_ALLOC) ? NULL : calloc(n, size);
}

void *fault_realloc(void *p, size_t size)
{
    return fault_at(FAULT_ALLOC) ? NULL : realloc(p, size);
}
