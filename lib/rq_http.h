/*
 * One HTTP exchange at a time over a kept-alive connection, behind a small
 * interface: the library's own calls go through rq_http_call(), which uses
 * libcurl unless the client was created with rq_http_create_custom(), where
 * a test (or another transport) answers instead.
 *
 * A client is not thread-safe: use one per thread.
 */
#ifndef RQ_HTTP_H
#define RQ_HTTP_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#include "rq_sigv4.h"

typedef struct rq_http_request_t {
    const char *method;                  /* "POST" */
    const char *url;                     /* where to connect and what to ask */
    const apr_array_header_t *headers;   /* of rq_header_t, sent as given */
    const char *body;
    apr_size_t body_len;
    apr_interval_time_t connect_timeout; /* 0: no limit of our own */
    apr_interval_time_t timeout;         /* whole exchange; 0: no limit */
} rq_http_request_t;

typedef struct rq_http_response_t {
    int status;            /* HTTP status; 0 when no reply came */
    apr_table_t *headers;  /* names as received; lookups ignore case */
    const char *body;      /* NUL-terminated; may hold NULs before body_len */
    apr_size_t body_len;
    int transient;         /* on failure: worth trying again (network, timeout) */
    const char *error;     /* on failure: what went wrong, for a log line */
} rq_http_response_t;

/*
 * Performs one exchange. Returns APR_SUCCESS when a reply came, whatever
 * its status; otherwise an APR status telling why none came (see
 * rq_http_status_from_curl), with resp->transient and resp->error set.
 */
typedef apr_status_t rq_http_call_fn(rq_http_response_t *resp, void *baton, apr_pool_t *p,
                                     const rq_http_request_t *req);

typedef struct rq_http_t rq_http_t;

/* A libcurl client: one easy handle, kept alive, released with p. */
apr_status_t rq_http_create(rq_http_t **phttp, apr_pool_t *p);

/* A client whose exchanges are answered by fn. */
apr_status_t rq_http_create_custom(rq_http_t **phttp, apr_pool_t *p, rq_http_call_fn *fn,
                                   void *baton);

/* Performs one exchange; strings in resp are allocated from p. */
apr_status_t rq_http_call(rq_http_response_t *resp, rq_http_t *http, apr_pool_t *p,
                          const rq_http_request_t *req);

/*
 * The APR status for a libcurl result code (a CURLcode), and whether it is
 * transient (worth trying again) in *ptransient (may be NULL).
 */
apr_status_t rq_http_status_from_curl(int curl_code, int *ptransient);

/* The libcurl connection count of this client (0 for a custom one). */
long rq_http_connects(const rq_http_t *http);

#endif
