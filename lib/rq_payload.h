/*
 * The toy endpoint's request object: a JSON object with string fields
 * "req_id" and "user_id", each 1-128 characters that SQS accepts in a
 * MessageGroupId / MessageDeduplicationId. Parsing refuses what could be
 * ambiguous or unsafe: invalid UTF-8, embedded NUL, duplicate keys, deep
 * nesting, anything but an object.
 */
#ifndef RQ_PAYLOAD_H
#define RQ_PAYLOAD_H

#include <apr_pools.h>

#define RQ_PAYLOAD_ERR_BASE (APR_OS_START_USERERR + 1000)
#define RQ_PAYLOAD_EINVALID (RQ_PAYLOAD_ERR_BASE + 1)

/* Longest req_id / user_id, as SQS allows for group and deduplication ids. */
#define RQ_PAYLOAD_ID_MAX 128

/* Deepest nesting of arrays and objects accepted in a body. */
#define RQ_PAYLOAD_DEPTH_MAX 32

typedef struct rq_payload_t {
    const char *req_id;
    const char *user_id;
    const char *json; /* the object, compact, keys in their original order */
} rq_payload_t;

/* Why a body was refused: the field at fault (NULL for the body as a whole). */
typedef struct rq_payload_error_t {
    const char *field;
    const char *message;
} rq_payload_error_t;

/*
 * Parses body[0..len) into *ppl (allocated from p; the parsed JSON lives until
 * p is cleared). On refusal returns RQ_PAYLOAD_EINVALID and fills err with
 * the field at fault ("req_id", "user_id" or NULL) and a short sentence.
 */
apr_status_t rq_payload_parse(rq_payload_t **ppl, rq_payload_error_t *err, apr_pool_t *p,
                              const char *body, apr_size_t len);

/*
 * Checks one id (value[0..len)) against the rules for req_id and user_id:
 * 1-128 characters, printable ASCII without the space. field names it in the
 * message. Returns APR_SUCCESS or RQ_PAYLOAD_EINVALID with err filled.
 */
apr_status_t rq_payload_check_id(rq_payload_error_t *err, apr_pool_t *p, const char *field,
                                 const char *value, apr_size_t len);

/* Where a request's id may come from besides the body's "req_id". */
typedef struct rq_payload_idsrc_t {
    const char *key; /* an Idempotency-Key header value; NULL when absent */
    int generate;    /* make a unique id (a UUID) when body and key lack one */
} rq_payload_idsrc_t;

/*
 * Like rq_payload_parse, but the id may also come from src. The key is
 * checked like req_id (refusals name the field "req_id"); a body req_id and
 * a key that differ are refused. Without req_id in the body the key is used,
 * else a generated id when src->generate is set, else the body is refused as
 * by rq_payload_parse. The id used is made the object's first member
 * "req_id", so pl->json and pl->req_id carry it.
 */
apr_status_t rq_payload_parse_keyed(rq_payload_t **ppl, rq_payload_error_t *err,
                                    apr_pool_t *p, const char *body, apr_size_t len,
                                    const rq_payload_idsrc_t *src);

#endif
