/* fuzz_tar.c - the tar reader of raftfs import (cli/cli_xformat.c)
 * against any bytes: it never crashes, reads past the input or leaks, and
 * what it reads, written as tar, reads back the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct xset x, y;
    /* A copy of exactly size bytes: ASan catches a read past the end. */
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    int rc = cli_xset_read_tar(copy, size, &x, err, sizeof(err));
    free(copy);
    if (rc)
        return 0;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (cli_xset_write_tar(&x, f))
        abort();
    fclose(f);
    if (cli_xset_read_tar((uint8_t *)out, len, &y, err, sizeof(err)))
        abort();
    /* The root entry is not written; everything else comes back. */
    size_t xi = 0;
    for (size_t i = 0; i < x.n; i++) {
        if (x.e[i].path_len == 1)
            continue;
        if (xi >= y.n || x.e[i].path_len != y.e[xi].path_len ||
            memcmp(x.e[i].path, y.e[xi].path, x.e[i].path_len) || x.e[i].dir != y.e[xi].dir ||
            x.e[i].value_len != y.e[xi].value_len ||
            (x.e[i].value_len && memcmp(x.e[i].value, y.e[xi].value, x.e[i].value_len)))
            abort();
        xi++;
    }
    if (xi != y.n)
        abort();
    cli_xset_free(&x);
    cli_xset_free(&y);
    free(out);
    return 0;
}
