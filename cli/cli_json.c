/* cli_json.c - JSON strings, base64 and a small strict parser for the
 * CLI's export format (cli_json.h). */
#include "cli_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

bool cli_utf8_valid(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len;) {
        uint8_t c = p[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (i + n > len)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

void cli_json_put_string(FILE *f, const uint8_t *p, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void cli_json_put_base64(FILE *f, const uint8_t *p, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        fputc(b64[(v >> 18) & 63], f);
        fputc(b64[(v >> 12) & 63], f);
        fputc(i + 1 < len ? b64[(v >> 6) & 63] : '=', f);
        fputc(i + 2 < len ? b64[v & 63] : '=', f);
    }
    fputc('"', f);
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

int cli_base64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len)
{
    if (len % 4)
        return EINVAL;
    uint8_t *buf = malloc(len / 4 * 3 + 1);
    if (!buf)
        return ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = b64val(s[i + k]);
        bool pad2 = last && s[i + 2] == '=' && s[i + 3] == '=';
        bool pad1 = last && !pad2 && s[i + 3] == '=';
        if (v[0] < 0 || v[1] < 0 || (v[2] < 0 && !pad2) || (v[3] < 0 && !pad1 && !pad2)) {
            free(buf);
            return EINVAL;
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12;
        if (!pad2)
            x |= (uint32_t)v[2] << 6;
        if (!pad1 && !pad2)
            x |= (uint32_t)v[3];
        buf[n++] = (uint8_t)(x >> 16);
        if (!pad2)
            buf[n++] = (uint8_t)(x >> 8);
        if (!pad1 && !pad2)
            buf[n++] = (uint8_t)x;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

/* ---- the parser ---- */

struct parser {
    const char *p, *end, *start;
    char *err;
    size_t err_len;
    int rc;
};

static int fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parser *ps, const char *fmt, ...)
{
    if (ps->rc)
        return ps->rc;
    size_t line = 1;
    for (const char *q = ps->start; q < ps->p && q < ps->end; q++)
        line += *q == '\n';
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->err_len, "line %zu: %s", line, what);
    return ps->rc = EINVAL;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int hex4(struct parser *ps, uint32_t *out)
{
    if (ps->end - ps->p < 4)
        return fail(ps, "a short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = ps->p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return fail(ps, "a bad \\u escape");
        v = v << 4 | (uint32_t)d;
    }
    ps->p += 4;
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int parse_string(struct parser *ps, char **out, size_t *out_len)
{
    ps->p++; /* the quote */
    const char *q = ps->p;
    while (q < ps->end && *q != '"')
        q += *q == '\\' ? 2 : 1;
    if (q >= ps->end)
        return fail(ps, "a string without its closing quote");
    char *buf = malloc((size_t)(q - ps->p) + 1); /* escapes only shrink */
    if (!buf)
        return ps->rc = ENOMEM;
    size_t n = 0;
    while (*ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p++;
        if (c < 0x20) {
            free(buf);
            return fail(ps, "a control character in a string");
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            continue;
        }
        char e = *ps->p++;
        uint32_t cp, lo;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            buf[n++] = e;
            break;
        case 'b':
            buf[n++] = '\b';
            break;
        case 'f':
            buf[n++] = '\f';
            break;
        case 'n':
            buf[n++] = '\n';
            break;
        case 'r':
            buf[n++] = '\r';
            break;
        case 't':
            buf[n++] = '\t';
            break;
        case 'u':
            if (hex4(ps, &cp))
                break;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') {
                    fail(ps, "a lone surrogate in a \\u escape");
                    break;
                }
                ps->p += 2;
                if (hex4(ps, &lo))
                    break;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    fail(ps, "a lone surrogate in a \\u escape");
                    break;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                fail(ps, "a lone surrogate in a \\u escape");
                break;
            }
            n += put_utf8(buf + n, cp);
            break;
        default:
            fail(ps, "an unknown escape \\%c", e);
        }
        if (ps->rc) {
            free(buf);
            return ps->rc;
        }
    }
    ps->p++;
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return 0;
}

static int parse_value(struct parser *ps, struct cli_json *v, int depth);

static int add_item(struct parser *ps, struct cli_json *v, size_t *cap)
{
    if (v->n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 8;
    struct cli_json *items = realloc(v->items, c * sizeof(*items));
    if (!items)
        return ps->rc = ENOMEM;
    v->items = items;
    if (v->type == CLI_JSON_OBJECT) {
        char **keys = realloc(v->keys, c * sizeof(*keys));
        if (!keys)
            return ps->rc = ENOMEM;
        v->keys = keys;
        size_t *kl = realloc(v->key_lens, c * sizeof(*kl));
        if (!kl)
            return ps->rc = ENOMEM;
        v->key_lens = kl;
    }
    *cap = c;
    return 0;
}

static int parse_container(struct parser *ps, struct cli_json *v, int depth)
{
    bool obj = *ps->p == '{';
    char close = obj ? '}' : ']';
    v->type = obj ? CLI_JSON_OBJECT : CLI_JSON_ARRAY;
    ps->p++;
    size_t cap = 0;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    for (;;) {
        skip_ws(ps);
        if (add_item(ps, v, &cap))
            return ps->rc;
        if (obj) {
            if (ps->p >= ps->end || *ps->p != '"')
                return fail(ps, "expected a member name");
            if (parse_string(ps, &v->keys[v->n], &v->key_lens[v->n]))
                return ps->rc;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(v->keys[v->n]);
                return fail(ps, "expected ':'");
            }
            ps->p++;
        }
        memset(&v->items[v->n], 0, sizeof(v->items[0]));
        if (parse_value(ps, &v->items[v->n], depth + 1)) {
            if (obj)
                free(v->keys[v->n]);
            cli_json_free(&v->items[v->n]);
            return ps->rc;
        }
        v->n++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return 0;
        }
        return fail(ps, "expected ',' or '%c'", close);
    }
}

static int parse_number(struct parser *ps, struct cli_json *v)
{
    const char *s = ps->p;
    if (ps->p < ps->end && *ps->p == '-')
        ps->p++;
    const char *digits = ps->p;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
        ps->p++;
    if (ps->p == digits || (*digits == '0' && ps->p - digits > 1))
        return fail(ps, "a malformed number");
    bool integer = true;
    if (ps->p < ps->end && *ps->p == '.') {
        integer = false;
        const char *f = ++ps->p;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
        if (ps->p == f)
            return fail(ps, "a malformed number");
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        integer = false;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        const char *x = ps->p;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
        if (ps->p == x)
            return fail(ps, "a malformed number");
    }
    v->type = CLI_JSON_NUMBER;
    v->len = (size_t)(ps->p - s);
    if (!(v->s = strndup(s, v->len)))
        return ps->rc = ENOMEM;
    if (integer && *s != '-') {
        uint64_t u = 0;
        bool fits = true;
        for (const char *q = s; q < ps->p; q++) {
            if (u > (UINT64_MAX - (uint64_t)(*q - '0')) / 10)
                fits = false;
            u = u * 10 + (uint64_t)(*q - '0');
        }
        v->is_uint = fits;
        v->u = fits ? u : 0;
    }
    return 0;
}

static int parse_value(struct parser *ps, struct cli_json *v, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return fail(ps, "nested deeper than %d", JSON_MAX_DEPTH);
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, "a value is missing");
    char c = *ps->p;
    if (c == '{' || c == '[')
        return parse_container(ps, v, depth);
    if (c == '"') {
        v->type = CLI_JSON_STRING;
        return parse_string(ps, &v->s, &v->len);
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(ps, v);
    static const struct {
        const char *word;
        enum cli_json_type type;
        bool b;
    } words[] = {{"null", CLI_JSON_NULL, false},
                 {"true", CLI_JSON_BOOL, true},
                 {"false", CLI_JSON_BOOL, false}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i].word);
        if ((size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, words[i].word, n)) {
            ps->p += n;
            v->type = words[i].type;
            v->b = words[i].b;
            return 0;
        }
    }
    return fail(ps, "unexpected '%c'", c);
}

int cli_json_parse(const char *text, size_t len, struct cli_json *out, char *err, size_t err_len)
{
    struct parser ps = {
        .p = text, .end = text + len, .start = text, .err = err, .err_len = err_len};
    memset(out, 0, sizeof(*out));
    if (!parse_value(&ps, out, 0)) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            fail(&ps, "text after the value");
    }
    if (ps.rc) {
        if (ps.rc == ENOMEM)
            snprintf(err, err_len, "out of memory");
        cli_json_free(out);
    }
    return ps.rc;
}

void cli_json_free(struct cli_json *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        cli_json_free(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->key_lens);
    free(v->s);
    memset(v, 0, sizeof(*v));
}

const struct cli_json *cli_json_get(const struct cli_json *obj, const char *key)
{
    if (!obj || obj->type != CLI_JSON_OBJECT)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < obj->n; i++)
        if (obj->key_lens[i] == kl && !memcmp(obj->keys[i], key, kl))
            return &obj->items[i];
    return NULL;
}
