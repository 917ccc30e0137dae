/* cli_json.h - the JSON the CLI writes and reads (raftfs export/import):
 * strings of bytes, base64, and a small strict parser. */
#ifndef RAFTFS_CLI_JSON_H
#define RAFTFS_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Is p[0..len) UTF-8 (no overlong forms, no surrogates) without NUL? */
bool cli_utf8_valid(const uint8_t *p, size_t len);

/* Writes p[0..len), valid UTF-8, as a JSON string (controls, " and \
 * escaped). */
void cli_json_put_string(FILE *f, const uint8_t *p, size_t len);

/* Writes p[0..len) as a JSON string of its base64 (RFC 4648). */
void cli_json_put_base64(FILE *f, const uint8_t *p, size_t len);

/* Decodes base64 (padded, no whitespace) into a malloc'd buffer. EINVAL
 * if malformed, ENOMEM. */
int cli_base64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len);

/* A parsed JSON value. Strings are decoded to bytes (with a NUL after
 * them, not counted); objects keep their members in order. */
enum cli_json_type {
    CLI_JSON_NULL,
    CLI_JSON_BOOL,
    CLI_JSON_NUMBER,
    CLI_JSON_STRING,
    CLI_JSON_ARRAY,
    CLI_JSON_OBJECT,
};

struct cli_json {
    enum cli_json_type type;
    bool b;
    /* NUMBER: the text as written; is_uint when it is an integer that
     * fits in a u64 (then u). */
    bool is_uint;
    uint64_t u;
    char *s; /* STRING (bytes), NUMBER (text) */
    size_t len;
    struct cli_json *items; /* ARRAY, OBJECT (values) */
    char **keys;            /* OBJECT */
    size_t *key_lens;
    size_t n;
};

/* Parses the whole text (one value, whitespace around it). On error
 * returns EINVAL with "line L: what" in err; ENOMEM. Nesting deeper than
 * 64 is refused. */
int cli_json_parse(const char *text, size_t len, struct cli_json *out, char *err, size_t err_len);
void cli_json_free(struct cli_json *v);

/* The member named key of an object, or NULL. */
const struct cli_json *cli_json_get(const struct cli_json *obj, const char *key);

#endif
