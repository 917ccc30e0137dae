/* test_cli_format.c - the export formats (cli/cli_json.c,
 * cli/cli_xformat.c): the JSON parser's refusals and escapes, base64,
 * UTF-8 checks, and exports written and read back as JSON and as tar,
 * with damaged archives refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli_export.h"
#include "cli_json.h"

static int parse(const char *text, struct cli_json *v, char *err)
{
    return cli_json_parse(text, strlen(text), v, err, 128);
}

static void test_json_parser(void)
{
    struct cli_json v;
    char err[128];
    CHECK_EQ(parse(" {\"a\": [1, 18446744073709551615, 18446744073709551616, -2, 1.5e3, true, "
                   "null, \"x\\u00e9\\ud83d\\ude00\\n\"]} ",
                   &v, err),
             0);
    const struct cli_json *a = cli_json_get(&v, "a");
    CHECK(a && a->type == CLI_JSON_ARRAY && a->n == 8);
    if (a && a->n == 8) {
        CHECK(a->items[0].is_uint && a->items[0].u == 1);
        CHECK(a->items[1].is_uint && a->items[1].u == UINT64_MAX);
        CHECK(!a->items[2].is_uint); /* too large: a number, not a u64 */
        CHECK(!a->items[3].is_uint && !a->items[4].is_uint);
        CHECK(a->items[5].type == CLI_JSON_BOOL && a->items[5].b);
        CHECK(a->items[6].type == CLI_JSON_NULL);
        CHECK_MEM(a->items[7].s, a->items[7].len, "x\xc3\xa9\xf0\x9f\x98\x80\n");
    }
    cli_json_free(&v);
    const char *bad[] = {
        "",        "{",           "{\"a\" 1}",    "[1,]",        "[1 2]",       "\"abc",
        "\"\\q\"", "\"\\ud800\"", "\"\\udc00x\"", "\"a\tb\"",    "01",          "1.",
        "-",       "nul",         "{} x",         "{\"a\": 1,}", "[\"\\u12\"]", "tru",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        int rc = parse(bad[i], &v, err);
        if (rc != EINVAL)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK_EQ(rc, EINVAL);
        CHECK(!strncmp(err, "line 1: ", 8));
    }
    /* Deep nesting is refused, not a stack overflow. */
    char deep[300];
    memset(deep, '[', 200);
    deep[200] = 0;
    CHECK_EQ(parse(deep, &v, err), EINVAL);
    CHECK(strstr(err, "deeper") != NULL);
}

static void test_base64_and_utf8(void)
{
    const uint8_t bytes[] = {0, 1, 2, 0xfe, 0xff, 'a', 'b'};
    for (size_t n = 0; n <= sizeof(bytes); n++) {
        char *text;
        size_t tl;
        FILE *f = open_memstream(&text, &tl);
        cli_json_put_base64(f, bytes, n);
        fclose(f);
        uint8_t *back;
        size_t bl;
        CHECK(tl >= 2);
        CHECK_EQ(cli_base64_decode(text + 1, tl - 2, &back, &bl), 0);
        CHECK_EQ(bl, n);
        CHECK(!memcmp(back, bytes, n));
        free(back);
        free(text);
    }
    uint8_t *out;
    size_t ol;
    CHECK_EQ(cli_base64_decode("abc", 3, &out, &ol), EINVAL);
    CHECK_EQ(cli_base64_decode("a=bc", 4, &out, &ol), EINVAL);
    CHECK_EQ(cli_base64_decode("ab=c", 4, &out, &ol), EINVAL);
    CHECK_EQ(cli_base64_decode("ab!c", 4, &out, &ol), EINVAL);
    CHECK(cli_utf8_valid((const uint8_t *)"caf\xc3\xa9", 5));
    CHECK(!cli_utf8_valid((const uint8_t *)"\xc3", 1));         /* cut */
    CHECK(!cli_utf8_valid((const uint8_t *)"\xc0\xaf", 2));     /* overlong */
    CHECK(!cli_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3)); /* a surrogate */
    CHECK(!cli_utf8_valid((const uint8_t *)"a\0b", 3));
}

static void fill(struct xset *x)
{
    memset(x, 0, sizeof(*x));
    x->prefix = strdup("/app");
    x->prefix_len = 4;
    x->revision = 42;
    char longname[300];
    memset(longname, 'n', sizeof(longname));
    memcpy(longname, "/app/d/", 7);
    longname[250] = 0;
    struct xentry es[] = {
        {.path = "/app", .path_len = 4, .dir = true, .mode = 0755, .version = 1},
        {.path = "/app/d", .path_len = 6, .dir = true, .mode = 0700, .uid = 5000000, .gid = 7},
        {.path = longname, .path_len = 250, .mode = 0600, .value = (uint8_t *)"v", .value_len = 1},
        {.path = "/app/\xff",
         .path_len = 6,
         .mode = 0644,
         .value = (uint8_t *)"\0\x01",
         .value_len = 2},
        {.path = "/app/text",
         .path_len = 9,
         .mode = 0644,
         .mtime_ns = 1700000000123456789LL,
         .mod_revision = 9,
         .value = (uint8_t *)"a \"quoted\"\n\tline\\",
         .value_len = 17},
    };
    for (size_t i = 0; i < sizeof(es) / sizeof(es[0]); i++)
        CHECK_EQ(cli_xset_add(x, &es[i]), 0);
}

static void same(const struct xset *a, const struct xset *b, bool tar)
{
    CHECK_EQ(a->n, b->n);
    CHECK_EQ(a->prefix_len, b->prefix_len);
    CHECK(!memcmp(a->prefix, b->prefix, a->prefix_len));
    CHECK_EQ(a->revision, b->revision);
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        const struct xentry *x = &a->e[i], *y = &b->e[i];
        CHECK_EQ(x->path_len, y->path_len);
        CHECK(!memcmp(x->path, y->path, x->path_len));
        CHECK_EQ(x->dir, y->dir);
        CHECK_EQ(x->mode, y->mode);
        CHECK_EQ(x->uid, y->uid);
        CHECK_EQ(x->gid, y->gid);
        CHECK_EQ(x->value_len, y->value_len);
        CHECK(!x->value_len || !memcmp(x->value, y->value, x->value_len));
        CHECK_EQ(tar ? x->mtime_ns / 1000000000 : x->mtime_ns,
                 tar ? y->mtime_ns / 1000000000 : y->mtime_ns);
        if (!tar)
            CHECK_EQ(x->mod_revision, y->mod_revision);
    }
}

static void test_json_roundtrip(void)
{
    struct xset x, y;
    fill(&x);
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    CHECK_EQ(cli_xset_write_json(&x, f), 0);
    fclose(f);
    CHECK(strstr(text, "\"path_base64\": ") != NULL);
    CHECK(strstr(text, "\"value\": \"a \\\"quoted\\\"\\n\\tline\\\\\"") != NULL);
    char err[256];
    CHECK_EQ(cli_xset_read_json(text, len, &y, err, sizeof(err)), 0);
    same(&x, &y, false);
    cli_xset_free(&y);
    free(text);
    cli_xset_free(&x);
}

static void test_tar_roundtrip_and_damage(void)
{
    struct xset x, y;
    fill(&x);
    char *data;
    size_t len;
    FILE *f = open_memstream(&data, &len);
    CHECK_EQ(cli_xset_write_tar(&x, f), 0);
    fclose(f);
    CHECK_EQ(len % 512, 0);
    char err[256];
    CHECK_EQ(cli_xset_read_tar((uint8_t *)data, len, &y, err, sizeof(err)), 0);
    same(&x, &y, true);
    cli_xset_free(&y);
    /* Damage: a checksum, a truncation, no end blocks. */
    data[1024 + 10] ^= 1; /* in the first entry's header (after the global one and its data) */
    CHECK_EQ(cli_xset_read_tar((uint8_t *)data, len, &y, err, sizeof(err)), EINVAL);
    CHECK(strstr(err, "checksum") != NULL);
    data[1024 + 10] ^= 1;
    CHECK_EQ(cli_xset_read_tar((uint8_t *)data, 1000, &y, err, sizeof(err)), EINVAL);
    CHECK_EQ(cli_xset_read_tar((uint8_t *)data, len - 1024, &y, err, sizeof(err)), EINVAL);
    CHECK(strstr(err, "end") != NULL);
    free(data);
    /* ".." is refused. */
    struct xset z = {.prefix = strdup("/"), .prefix_len = 1};
    struct xentry up = {
        .path = "/a/../b", .path_len = 7, .mode = 0644, .value = (uint8_t *)"", .value_len = 0};
    CHECK_EQ(cli_xset_add(&z, &up), 0);
    f = open_memstream(&data, &len);
    CHECK_EQ(cli_xset_write_tar(&z, f), 0);
    fclose(f);
    CHECK_EQ(cli_xset_read_tar((uint8_t *)data, len, &y, err, sizeof(err)), EINVAL);
    CHECK(strstr(err, "..") != NULL);
    free(data);
    cli_xset_free(&z);
    cli_xset_free(&x);
}

int main(void)
{
    RUN(test_json_parser);
    RUN(test_base64_and_utf8);
    RUN(test_json_roundtrip);
    RUN(test_tar_roundtrip_and_damage);
    CHECK_DONE();
}
