/* fuzz_json.c - the export format's JSON (cli/cli_json.c, cli_xformat.c)
 * against any bytes: the parser never crashes or leaks, and an export it
 * reads is written and read back to the same entries. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_export.h"
#include "cli_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct cli_json v;
    if (!cli_json_parse((const char *)data, size, &v, err, sizeof(err)))
        cli_json_free(&v);
    struct xset x, y;
    if (cli_xset_read_json((const char *)data, size, &x, err, sizeof(err)))
        return 0;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (cli_xset_write_json(&x, f))
        abort();
    fclose(f);
    if (cli_xset_read_json(text, len, &y, err, sizeof(err)))
        abort(); /* what it wrote it must read */
    if (x.n != y.n || x.revision != y.revision || x.prefix_len != y.prefix_len ||
        memcmp(x.prefix, y.prefix, x.prefix_len))
        abort();
    for (size_t i = 0; i < x.n; i++)
        if (x.e[i].path_len != y.e[i].path_len ||
            memcmp(x.e[i].path, y.e[i].path, x.e[i].path_len) || x.e[i].dir != y.e[i].dir ||
            x.e[i].value_len != y.e[i].value_len ||
            (x.e[i].value_len && memcmp(x.e[i].value, y.e[i].value, x.e[i].value_len)))
            abort();
    cli_xset_free(&x);
    cli_xset_free(&y);
    free(text);
    return 0;
}
