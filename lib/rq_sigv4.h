/*
 * AWS Signature Version 4, one function per stage, with OpenSSL.
 * The stage functions are public so that raceq-sign and the tests can show
 * and check each step against AWS's test vectors.
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

#endif
