/* fuzz_snapshot.c - a snapshot image (store/store_snapshot.c), as a
 * member receives it from a leader or finds it on its disk, checked
 * whole before it could replace anything: store_snapshot_check on any
 * bytes never crashes and never accepts a damaged image silently. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("image", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    struct store_snapshot_info info;
    char err[256];
    if (!store_snapshot_check(fd, &info, err, sizeof(err)) && info.bytes != size)
        abort(); /* an image it accepts is all of the file */
    close(fd);
    return 0;
}
