/*
 * AWS Signature Version 4, one function per stage, with OpenSSL.
 * The stage functions are public so that raceq-sign and the tests can show
 * and check each step against AWS's test vectors.
 *
 * The stages, in order:
 *   canonical URI, canonical query, canonical headers, signed headers and
 *   payload hash -> canonical request -> string to sign; signing key (cached)
 *   -> signature -> Authorization header value.
 *
 * Paths follow the generic rule for services other than S3: dot segments
 * and repeated slashes are removed, then every byte outside the unreserved
 * set (A-Z a-z 0-9 - . _ ~) and "/" is percent-encoded with upper-case hex.
 * The path is encoded as given: a '%' already in it becomes "%25", which is
 * the double encoding those services expect of a path sent encoded.
 */
#ifndef RQ_SIGV4_H
#define RQ_SIGV4_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#include "rq_creds.h"

typedef struct rq_header_t {
    const char *name;
    const char *value;
} rq_header_t;

typedef struct rq_sigv4_input_t {
    const char *method;          /* "POST" */
    const char *uri;             /* raw path with optional "?query" */
    apr_array_header_t *headers; /* of rq_header_t; must hold Host and X-Amz-Date,
                                    and X-Amz-Security-Token when a token is used */
    const char *body;
    apr_size_t body_len;
} rq_sigv4_input_t;

/* Formats t as the X-Amz-Date value YYYYMMDDTHHMMSSZ (16 characters + NUL). */
void rq_sigv4_amz_date(char buf[17], apr_time_t t);

/*
 * Signs in one call: sets *pauthz to the Authorization header's value.
 * amz_date must equal the X-Amz-Date header in in->headers.
 */
apr_status_t rq_sigv4_sign(const char **pauthz, apr_pool_t *p, const rq_sigv4_input_t *in,
                           const rq_creds_t *creds, const char *region, const char *service,
                           const char *amz_date);

/* ---- the stages ---------------------------------------------------------- */

#define RQ_SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

/* Length of a SHA-256 in bytes, and of its lower-case hex form plus NUL. */
#define RQ_SIGV4_KEY_LEN 32
#define RQ_SIGV4_HEX_LEN 65

/* Every intermediate result of one signature, for display and tests. */
typedef struct rq_sigv4_result_t {
    const char *canonical_request;
    const char *signed_headers;
    const char *string_to_sign;
    const char *signature;     /* lower-case hex */
    const char *authorization; /* the Authorization header's value */
} rq_sigv4_result_t;

/* A cache of signing keys; see rq_sigv4_signing_key(). */
typedef struct rq_sigv4_key_cache_t rq_sigv4_key_cache_t;

/*
 * Returns APR_SUCCESS when amz_date has the form YYYYMMDDTHHMMSSZ with a
 * plausible month, day, hour, minute and second, APR_EINVAL otherwise.
 */
apr_status_t rq_sigv4_date_check(const char *amz_date);

/*
 * Canonical URI of the path path[0..len) (no query): dot segments and
 * repeated slashes removed, then percent-encoded. An empty path gives "/".
 */
apr_status_t rq_sigv4_canonical_uri(const char **pout, apr_pool_t *p, const char *path,
                                    apr_size_t len);

/*
 * Canonical query string of query (the part after '?', without it; NULL or
 * "" gives ""). Each name and value is percent-decoded, then re-encoded;
 * pairs are sorted by encoded name, then by encoded value, so repeated names
 * keep all their values. A name without '=' gets an empty value; empty
 * pieces between '&' are dropped. '+' is a literal plus, not a space.
 * APR_EINVAL for a malformed percent escape.
 */
apr_status_t rq_sigv4_canonical_query(const char **pout, apr_pool_t *p, const char *query);

/*
 * Canonical header block: one "name:value\n" line per distinct header name,
 * sorted by lower-case name. Values are trimmed, inner runs of white space
 * (obsolete folding included) become one space, and the values of a name
 * given several times are joined by ',' in their order. An Authorization
 * header is never signed and is left out. APR_EINVAL for an empty name.
 */
apr_status_t rq_sigv4_canonical_headers(const char **pout, apr_pool_t *p,
                                        const apr_array_header_t *headers);

/* The ';'-joined sorted lower-case names of the headers that are signed. */
apr_status_t rq_sigv4_signed_headers(const char **pout, apr_pool_t *p,
                                     const apr_array_header_t *headers);

/* Lower-case hex SHA-256 of body[0..len). */
apr_status_t rq_sigv4_payload_hash(char out[RQ_SIGV4_HEX_LEN], const void *body, apr_size_t len);

/*
 * The canonical request of in, and its signed header list in *psigned
 * (which may be NULL). An X-Amz-Content-Sha256 header, when present, is
 * taken as the payload hash instead of hashing the body.
 */
apr_status_t rq_sigv4_canonical_request(const char **pcreq, const char **psigned,
                                        apr_pool_t *p, const rq_sigv4_input_t *in);

/* "YYYYMMDD/region/service/aws4_request" for the date part of amz_date. */
apr_status_t rq_sigv4_scope(const char **pout, apr_pool_t *p, const char *amz_date,
                            const char *region, const char *service);

/* The string to sign for a canonical request made at amz_date. */
apr_status_t rq_sigv4_string_to_sign(const char **pout, apr_pool_t *p, const char *creq,
                                     const char *amz_date, const char *region,
                                     const char *service);

/*
 * Creates an empty key cache that lives as long as p. The cache is safe to
 * share between threads.
 */
apr_status_t rq_sigv4_key_cache_create(rq_sigv4_key_cache_t **pcache, apr_pool_t *p);

/* The process-wide cache that rq_sigv4_sign() uses. */
rq_sigv4_key_cache_t *rq_sigv4_key_cache_default(void);

/* How many lookups were answered from the cache, and how many computed. */
void rq_sigv4_key_cache_stats(const rq_sigv4_key_cache_t *cache, unsigned long *phits,
                              unsigned long *pmisses);

/*
 * The signing key HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region),
 * service), "aws4_request") for the date part of amz_date. With a cache
 * (may be NULL), a key already derived for the same date, region, service
 * and secret is returned without recomputing it. The cache keeps a hash of
 * the secret, never the secret itself.
 */
apr_status_t rq_sigv4_signing_key(unsigned char key[RQ_SIGV4_KEY_LEN],
                                  rq_sigv4_key_cache_t *cache, const char *secret,
                                  const char *amz_date, const char *region,
                                  const char *service);

/* Lower-case hex HMAC-SHA256 of the string to sign under the signing key. */
apr_status_t rq_sigv4_signature(char out[RQ_SIGV4_HEX_LEN],
                                const unsigned char key[RQ_SIGV4_KEY_LEN], const char *sts);

/* "AWS4-HMAC-SHA256 Credential=AK/scope, SignedHeaders=..., Signature=..." */
apr_status_t rq_sigv4_authorization(const char **pout, apr_pool_t *p, const char *access_key,
                                    const char *scope, const char *signed_headers,
                                    const char *signature);

/*
 * Runs every stage and keeps each result. Checks that in->headers hold Host,
 * an X-Amz-Date equal to amz_date, and X-Amz-Security-Token when creds carry
 * a session token (APR_EINVAL otherwise). cache may be NULL.
 */
apr_status_t rq_sigv4_sign_all(rq_sigv4_result_t *out, apr_pool_t *p,
                               const rq_sigv4_input_t *in, const rq_creds_t *creds,
                               const char *region, const char *service, const char *amz_date,
                               rq_sigv4_key_cache_t *cache);

#endif
