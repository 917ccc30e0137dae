/* fuzz_cmd.c - the store's command decoder (store/store_cmd.c), which
 * every member runs on every log entry, against any bytes: no crash, no
 * leak, and a command it accepts encodes and decodes again to the same
 * op and fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const struct store_cmd *a, const struct store_cmd *b)
{
    if (a->op != b->op || a->path_len != b->path_len ||
        (a->path_len && memcmp(a->path, b->path, a->path_len)) || a->value_len != b->value_len ||
        (a->value_len && memcmp(a->value, b->value, a->value_len)) || a->lease != b->lease ||
        a->has_lease != b->has_lease || a->n_compares != b->n_compares || a->n_then != b->n_then ||
        a->n_else != b->n_else)
        abort();
    for (size_t i = 0; i < a->n_then; i++)
        same(&a->then_ops[i], &b->then_ops[i]);
    for (size_t i = 0; i < a->n_else; i++)
        same(&a->else_ops[i], &b->else_ops[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store_cmd_decoded d, d2;
    if (store_cmd_decode(data, size, &d))
        return 0;
    void *buf;
    size_t len;
    int rc = store_cmd_encode(&d.cmd, &buf, &len);
    if (rc == 0) {
        if (store_cmd_decode(buf, len, &d2))
            abort(); /* what it encodes it must decode */
        same(&d.cmd, &d2.cmd);
        store_cmd_decoded_free(&d2);
        free(buf);
    } else if (rc != EINVAL && rc != E2BIG) {
        abort();
    }
    store_cmd_decoded_free(&d);
    return 0;
}
