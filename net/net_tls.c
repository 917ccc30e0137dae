/* net_tls.c - TLS contexts and sessions (OpenSSL), the socket BIO under
 * them (through the fault seam), and OpenSSL's failures in words. */
#include "net_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fault.h"

struct net_tls {
    SSL_CTX *ctx;
    bool require_client_cert;
};

bool net_tls_wanted(const struct net_tls_config *cfg)
{
    return cfg && (cfg->ca_file || cfg->cert_file || cfg->key_file);
}

/* ---- the socket BIO ----
 *
 * OpenSSL's own socket BIO writes with write(2), which raises SIGPIPE on a
 * connection the other side closed; ours sends with MSG_NOSIGNAL, as
 * net_conn does, and goes through the same fault seam, so the fault tests
 * fail a TLS connection's reads and writes as they fail a plaintext one's.
 * The BIO's data is the descriptor (not owned). */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do
        n = fault_send(FAULT_NET_SEND, fd, buf, (size_t)len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(b);
    return (int)n;
}

static int bio_read(BIO *b, char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do
        n = fault_read(FAULT_NET_RECV, fd, buf, (size_t)len);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(b);
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* writes are never buffered here */
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void bio_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "raftfs socket");
    if (!m)
        return;
    if (!BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
        !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create)) {
        BIO_meth_free(m);
        return;
    }
    bio_method = m; /* lives as long as the process */
}

/* ---- failures in words ---- */

/* OpenSSL's first queued reason, and the certificate verification's when
 * that is what failed. Empties the queue. */
static void reason(SSL *s, char *why, size_t len)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    char code[64];
    if (!r && e) {
        ERR_error_string_n(e, code, sizeof(code));
        r = code;
    }
    long v = s ? SSL_get_verify_result(s) : X509_V_OK;
    if (e && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED && v != X509_V_OK)
        snprintf(why, len, "%s (%s)", r, X509_verify_cert_error_string(v));
    else
        snprintf(why, len, "%s", r ? r : "unknown TLS error");
    ERR_clear_error();
}

int net_tls_failure(SSL *s, int ret, int ssl_err, char *why, size_t why_len)
{
    int saved = errno;
    switch (ssl_err) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        snprintf(why, why_len, "closed");
        ERR_clear_error();
        return 0;
    case SSL_ERROR_SYSCALL:
        if (!ERR_peek_error()) {
            if (ret == 0 || saved == 0) {
                snprintf(why, why_len, "closed");
                return 0;
            }
            snprintf(why, why_len, "%s", strerror(saved));
            return saved;
        }
        reason(s, why, why_len);
        return EPROTO;
    default:
        reason(s, why, why_len);
        return EPROTO;
    }
}

/* ---- contexts ---- */

int net_tls_check_key_file(const char *path, char *err, size_t err_len)
{
    struct stat sb;
    if (stat(path, &sb)) {
        int e = errno;
        snprintf(err, err_len, "cannot use key file %s: %s", path, strerror(e));
        return e;
    }
    if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, err_len,
                 "key file %s is accessible by %s (mode %04o): a private key must be readable "
                 "by its owner only (chmod 600 %s)",
                 path, (sb.st_mode & S_IRWXO) ? "others" : "its group",
                 (unsigned)(sb.st_mode & 07777), path);
        return EACCES;
    }
    return 0;
}

/* A file that cannot be read: say so plainly rather than in OpenSSL's words. */
static int readable(const char *what, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, err_len, "cannot read %s %s: %s", what, path, strerror(errno));
        return EINVAL;
    }
    fclose(f);
    return 0;
}

static int load_failed(const char *what, const char *path, char *err, size_t err_len)
{
    char why[256];
    reason(NULL, why, sizeof(why));
    snprintf(err, err_len, "cannot load %s %s: %s", what, path, why);
    return EINVAL;
}

int net_tls_new(const struct net_tls_config *cfg, struct net_tls **out, char *err, size_t err_len)
{
    if (!cfg->cert_file != !cfg->key_file) {
        snprintf(err, err_len, "a certificate needs its key, and a key its certificate");
        return EINVAL;
    }
    int rc;
    if (cfg->key_file && (rc = net_tls_check_key_file(cfg->key_file, err, err_len)))
        return rc == EACCES ? EACCES : EINVAL;
    if ((cfg->cert_file && readable("certificate", cfg->cert_file, err, err_len)) ||
        (cfg->key_file && readable("key", cfg->key_file, err, err_len)) ||
        (cfg->ca_file && readable("CA file", cfg->ca_file, err, err_len)))
        return EINVAL;
    ERR_clear_error(); /* what is queued is not ours, and would fail the loads */
    pthread_once(&bio_once, bio_method_make);
    struct net_tls *t = calloc(1, sizeof(*t));
    if (!t || !bio_method) {
        free(t);
        snprintf(err, err_len, "out of memory");
        return ENOMEM;
    }
    t->require_client_cert = cfg->require_client_cert;
    t->ctx = SSL_CTX_new(TLS_method());
    if (!t->ctx) {
        free(t);
        snprintf(err, err_len, "out of memory");
        return ENOMEM;
    }
    SSL_CTX *ctx = t->ctx;
    rc = EINVAL;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        snprintf(err, err_len, "cannot require TLS 1.2");
        goto fail;
    }
    /* An end of stream without close_notify is an end of stream: frames
     * are length-prefixed, so a cut inside one is caught above TLS. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* net_conn writes from a buffer that may move between retries (it
     * grows and is compacted), and takes what a write got through. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (cfg->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
            rc = load_failed("certificate", cfg->cert_file, err, err_len);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1 &&
            ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
            rc = load_failed("key", cfg->key_file, err, err_len);
            goto fail;
        }
        if (ERR_peek_error() || SSL_CTX_check_private_key(ctx) != 1) {
            ERR_clear_error();
            snprintf(err, err_len, "key %s does not match certificate %s", cfg->key_file,
                     cfg->cert_file);
            goto fail;
        }
    }
    if (cfg->ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
            rc = load_failed("CA file", cfg->ca_file, err, err_len);
            goto fail;
        }
        /* Ask clients for certificates of this CA. */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        ERR_clear_error();
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        rc = load_failed("the system's CAs", "", err, err_len);
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    *out = t;
    return 0;
fail:
    SSL_CTX_free(ctx);
    free(t);
    return rc;
}

void net_tls_free(struct net_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

/* ---- sessions ---- */

int net_tls_host_of(const char *addr, char *buf, size_t len)
{
    const char *start = addr, *end;
    if (addr[0] == '[') {
        start = addr + 1;
        end = strchr(start, ']');
    } else {
        end = strrchr(addr, ':');
    }
    if (!end || end == start || (size_t)(end - start) >= len)
        return EINVAL;
    memcpy(buf, start, (size_t)(end - start));
    buf[end - start] = 0;
    return 0;
}

/* An IP address (checked against IP SANs), not a name (DNS SANs or CN). */
static bool is_ip_literal(const char *host)
{
    unsigned char ip[16];
    return inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
}

int net_tls_session_new(struct net_tls *t, int fd, const char *host, SSL **out, char *err,
                        size_t err_len)
{
    SSL *s = SSL_new(t->ctx);
    BIO *b = s ? BIO_new(bio_method) : NULL;
    if (!b) {
        SSL_free(s);
        ERR_clear_error();
        snprintf(err, err_len, "out of memory");
        return ENOMEM;
    }
    BIO_set_data(b, (void *)(intptr_t)fd);
    SSL_set_bio(s, b, b);
    if (!host) {
        SSL_set_accept_state(s);
        /* Always asked for; verified when shown; required if so configured
         * (a member's Hello needs a verified one: node_client.c). */
        SSL_set_verify(
            s, SSL_VERIFY_PEER | (t->require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
            NULL);
    } else {
        SSL_set_connect_state(s);
        int ok = is_ip_literal(host) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), host)
                                     : SSL_set1_host(s, host) && SSL_set_tlsext_host_name(s, host);
        if (!ok) {
            SSL_free(s);
            ERR_clear_error();
            snprintf(err, err_len, "cannot check a certificate against '%s'", host);
            return EINVAL;
        }
    }
    *out = s;
    return 0;
}

bool net_tls_peer_verified(SSL *s)
{
    X509 *cert = SSL_get0_peer_certificate(s);
    return cert && SSL_get_verify_result(s) == X509_V_OK;
}

int net_tls_peer_names(SSL *s, const char *host)
{
    if (!net_tls_peer_verified(s))
        return ENOENT;
    X509 *cert = SSL_get0_peer_certificate(s);
    int ok = is_ip_literal(host) ? X509_check_ip_asc(cert, host, 0)
                                 : X509_check_host(cert, host, 0, 0, NULL);
    /* A member's certificate also serves: its peers check serverAuth when
     * they dial it (a client certificate for the same host does not). */
    int server = ok == 1 ? X509_check_purpose(cert, X509_PURPOSE_SSL_SERVER, 0) : 0;
    ERR_clear_error();
    return ok != 1 ? EACCES : server != 1 ? EPERM : 0;
}

int net_tls_peer_cn(SSL *s, char *buf, size_t len)
{
    if (!net_tls_peer_verified(s))
        return ENOENT;
    X509_NAME *name = X509_get_subject_name(SSL_get0_peer_certificate(s));
    int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
        return ENOENT; /* none, or two: which would it be? */
    const ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    int n = ASN1_STRING_length(d);
    const unsigned char *p = ASN1_STRING_get0_data(d);
    if (n < 0 || !p)
        return ENOENT;
    if ((size_t)n >= len)
        return ERANGE;
    if (memchr(p, 0, (size_t)n))
        return EINVAL;
    memcpy(buf, p, (size_t)n);
    buf[n] = 0;
    return 0;
}
