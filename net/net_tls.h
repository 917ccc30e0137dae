/* net_tls.h - TLS (OpenSSL) contexts for net_conn and net_client: this
 * side's certificate and key, and the CA that must sign the other side's.
 *
 * A context serves both roles. As the server (an accepted connection) it
 * always asks for a client certificate and verifies one that is presented
 * against the CA; with require_client_cert a client without one is
 * refused at the handshake. As the client (a dialed connection) it
 * presents its certificate, if it has one, and verifies the server's
 * against the CA and against the host it dialed (an IP address must be
 * in the certificate's IP SANs, a name in its DNS SANs or, lacking those,
 * its CN). TLS 1.2 at least; 1.3 when both sides speak it. No
 * renegotiation, no compression, no session resumption.
 *
 * Threads: a context may be shared by the sessions of any number of
 * threads once made (OpenSSL's SSL_CTX is); one session, one thread.
 */
#ifndef RAFTFS_NET_TLS_H
#define RAFTFS_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct net_tls;
struct ssl_st; /* OpenSSL's SSL */

struct net_tls_config {
    /* PEM certificate (chain) this side presents; NULL: none (a client
     * that shows no certificate). */
    const char *cert_file;
    /* Its private key (PEM), with cert_file. Refused if group or others
     * may access it. */
    const char *key_file;
    /* PEM CA certificate(s) that sign the other side's certificate; NULL:
     * the system's default CAs (a client only). */
    const char *ca_file;
    /* Server: a client that shows no certificate is refused. */
    bool require_client_cert;
};

/* Is TLS asked for (a CA or a certificate is given)? */
bool net_tls_wanted(const struct net_tls_config *cfg);

/* Makes a context: reads the files, checks the key's permissions and that
 * it matches the certificate. EINVAL (a file missing, unreadable, too
 * open, not PEM, not matching), ENOMEM, with a reason in err. */
int net_tls_new(const struct net_tls_config *cfg, struct net_tls **out, char *err, size_t err_len);
/* Frees a context once no session of it is left. NULL is accepted. */
void net_tls_free(struct net_tls *t);

/* EACCES if path is readable, writable or executable by group or others
 * (as ssh refuses such a key), errno of stat; with a reason in err. */
int net_tls_check_key_file(const char *path, char *err, size_t err_len);

/* ---- for net_conn and net_client ---- */

/* A session over the connected socket fd (not owned), in the server role
 * (host NULL) or in the client role, where the server's certificate must
 * name host (an IP address or a DNS name, without port). Its I/O goes
 * through the fault seam (FAULT_NET_SEND, FAULT_NET_RECV) with
 * MSG_NOSIGNAL. ENOMEM, EINVAL (bad host), with a reason in err. Free with
 * SSL_free. */
int net_tls_session_new(struct net_tls *t, int fd, const char *host, struct ssl_st **out, char *err,
                        size_t err_len);

/* Why an SSL call on s that returned ret (<= 0, SSL_get_error code) failed,
 * in words: OpenSSL's reason and, for a certificate, the verification's.
 * Empties the thread's OpenSSL error queue. Returns the errno to close
 * with: 0 for an orderly end (close_notify or end of stream at a frame
 * boundary: the caller decides), EAGAIN for WANT_READ/WANT_WRITE (the
 * caller looks at ssl_err), else EPROTO, or the socket's errno. */
int net_tls_failure(struct ssl_st *s, int ret, int ssl_err, char *why, size_t why_len);

/* Did the other side present a certificate that verified against the CA? */
bool net_tls_peer_verified(struct ssl_st *s);

/* The common name of the other side's verified certificate into buf
 * (NUL-terminated): 0, or ENOENT (no verified certificate, or no CN, or
 * more than one), EINVAL (a CN with a NUL byte), ERANGE (too long). */
int net_tls_peer_cn(struct ssl_st *s, char *buf, size_t len);

/* Could the other side's verified certificate serve as host's, by the
 * rules a dialer checks a server's by (an IP address in its IP SANs; a
 * name in its DNS SANs or, lacking those, its CN; fit for a TLS server)?
 * 0: yes; ENOENT: no verified certificate; EACCES: it does not name host;
 * EPERM: it does, but is not for a server (extended key usage). */
int net_tls_peer_names(struct ssl_st *s, const char *host);

/* The host part of "HOST:PORT" or "[V6]:PORT" into buf (for the server's
 * certificate check). EINVAL if it does not fit or has no port. */
int net_tls_host_of(const char *addr, char *buf, size_t len);

#endif
