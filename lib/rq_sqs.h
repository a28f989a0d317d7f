/*
 * Amazon SQS over the JSON protocol (X-Amz-Target: AmazonSQS.*), signed with
 * SigV4, with libcurl and jansson.
 *
 * A client holds one curl handle and keeps its connection alive: use one
 * client per thread. Throttling, 5xx and network errors are retried with
 * exponential backoff and full jitter, bounded in count and time; client
 * errors are not retried. After a failure, rq_sqs_error() tells the SQS error
 * type and message. Strings in results are allocated from the pool passed to
 * the call.
 */
#ifndef RQ_SQS_H
#define RQ_SQS_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#include "rq_creds.h"
#include "rq_http.h"

/* Status codes beyond APR's, for SQS outcomes. */
#define RQ_SQS_ERR_BASE       (APR_OS_START_USERERR + 3000)
#define RQ_SQS_ECLIENT        (RQ_SQS_ERR_BASE + 1) /* 4xx: the request was refused */
#define RQ_SQS_ETHROTTLED     (RQ_SQS_ERR_BASE + 2) /* throttled after all retries */
#define RQ_SQS_ESERVER        (RQ_SQS_ERR_BASE + 3) /* 5xx after all retries */
#define RQ_SQS_ENETWORK       (RQ_SQS_ERR_BASE + 4) /* could not connect or read */
#define RQ_SQS_ENOQUEUE       (RQ_SQS_ERR_BASE + 5) /* QueueDoesNotExist */
#define RQ_SQS_EBADREPLY      (RQ_SQS_ERR_BASE + 6) /* malformed reply or MD5 mismatch */
#define RQ_SQS_EINVALID       (RQ_SQS_ERR_BASE + 7) /* refused locally before sending */
#define RQ_SQS_ECREDS         (RQ_SQS_ERR_BASE + 8) /* no credentials could be found */
#define RQ_SQS_EPARTIAL       (RQ_SQS_ERR_BASE + 9) /* some entries of a batch failed */

/* Limits SQS enforces, checked before anything is sent. */
#define RQ_SQS_MAX_BODY       1048576 /* bytes of a message body */
#define RQ_SQS_MAX_ID         128     /* characters of a group or deduplication id */
#define RQ_SQS_MAX_BATCH      10      /* entries of a batch, messages of a receive */
#define RQ_SQS_MAX_WAIT       20      /* seconds of a long poll */
#define RQ_SQS_MAX_VISIBILITY 43200   /* seconds */

typedef struct rq_sqs_opts_t {
    const char *endpoint;               /* e.g. "https://sqs.eu-west-1.amazonaws.com" */
    const char *region;
    rq_creds_provider_t *creds;
    apr_interval_time_t connect_timeout; /* 0: a default */
    apr_interval_time_t timeout;         /* total per call, not counting a long poll's wait */
    int max_attempts;                    /* 0: a default */
    apr_interval_time_t retry_budget;    /* total time spent retrying; 0: a default */
    rq_http_t *http;                     /* NULL: a libcurl client of our own */
} rq_sqs_opts_t;

/* Defaults for the zero fields of rq_sqs_opts_t. */
#define RQ_SQS_DEFAULT_CONNECT_TIMEOUT apr_time_from_sec(3)
#define RQ_SQS_DEFAULT_TIMEOUT         apr_time_from_sec(10)
#define RQ_SQS_DEFAULT_MAX_ATTEMPTS    5
#define RQ_SQS_DEFAULT_RETRY_BUDGET    apr_time_from_sec(20)

typedef struct rq_sqs_error_t {
    int http_status;     /* 0 when no reply came */
    const char *type;    /* e.g. "AWS.SimpleQueueService.NonExistentQueue" */
    const char *message;
    const char *code;    /* the JSON reply's short __type, e.g. "QueueDoesNotExist" */
    const char *request_id; /* x-amzn-RequestId, for AWS support */
    int attempts;        /* how many requests the failed call made */
} rq_sqs_error_t;

typedef struct rq_sqs_t rq_sqs_t;

typedef struct rq_sqs_sent_t {
    const char *message_id;
    const char *sequence_number;
} rq_sqs_sent_t;

typedef struct rq_sqs_msg_t {
    const char *message_id;
    const char *receipt_handle;
    const char *body;
    const char *group_id;
    const char *dedup_id;
    const char *sequence_number;
    int receive_count;
    apr_time_t first_receive; /* ApproximateFirstReceiveTimestamp */
    apr_time_t sent;          /* SentTimestamp */
} rq_sqs_msg_t;

/* One entry of a batch call, and its outcome. */
typedef struct rq_sqs_entry_t {
    const char *id;             /* unique within the batch */
    const char *receipt_handle; /* delete / change visibility */
    int visibility_timeout;     /* change visibility */
    apr_status_t status;        /* set by the call */
    const char *error_code;     /* set by the call on failure */
    const char *error_message;
} rq_sqs_entry_t;

/* One message of rq_sqs_send_batch(), and its outcome. */
typedef struct rq_sqs_send_entry_t {
    const char *id;              /* unique within the batch: 1-80 of [A-Za-z0-9_-] */
    const char *body;
    const char *group_id;
    const char *dedup_id;        /* NULL with content-based deduplication */
    apr_status_t status;         /* set by the call */
    const char *message_id;      /* set on success */
    const char *sequence_number;
    const char *error_code;      /* set on failure */
    const char *error_message;
} rq_sqs_send_entry_t;

/*
 * Creates a client; endpoint and region are required, creds may be NULL
 * (the credentials are then resolved as rq_creds.h says). The client lives
 * as long as p.
 */
apr_status_t rq_sqs_create(rq_sqs_t **psqs, apr_pool_t *p, const rq_sqs_opts_t *opts);

/*
 * The error of the last failed call: http_status, type and message as SQS
 * gave them (type is the x-amzn-query-error code when present, e.g.
 * "AWS.SimpleQueueService.NonExistentQueue", else the JSON __type's short
 * name), or a description of a local or network failure. Valid until the
 * next call on this client.
 */
const rq_sqs_error_t *rq_sqs_error(const rq_sqs_t *sqs);

/* A short description of an RQ_SQS_* status, else apr_strerror's. */
const char *rq_sqs_strerror(apr_pool_t *p, apr_status_t rv);

/* The status for an SQS error type and HTTP status: the one place that maps them. */
apr_status_t rq_sqs_status_from_error(int http_status, const char *type);

/*
 * Checks a message body: 1 to RQ_SQS_MAX_BODY bytes of valid UTF-8 holding
 * only characters SQS accepts (#x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD
 * #x10000-#x10FFFF). On failure *pwhy (may be NULL) says what is wrong.
 */
int rq_sqs_body_valid(const char *body, apr_size_t len, const char **pwhy);

/* Lower-case hex MD5 of data[0..len) into out (33 bytes with the NUL). */
apr_status_t rq_sqs_md5_hex(char out[33], const void *data, apr_size_t len);

/*
 * Creates a queue, or returns the URL of an existing one with the same
 * attributes. A name ending in ".fifo" makes a FIFO queue (FifoQueue=true is
 * added). attributes (may be NULL) are SQS queue attributes, e.g.
 * "VisibilityTimeout" -> "30", "ContentBasedDeduplication" -> "false".
 */
apr_status_t rq_sqs_create_queue(const char **pqueue_url, rq_sqs_t *sqs, apr_pool_t *p,
                                 const char *name, apr_table_t *attributes);

apr_status_t rq_sqs_get_queue_url(const char **pqueue_url, rq_sqs_t *sqs, apr_pool_t *p,
                                  const char *name);

/* All attributes of the queue, e.g. "ApproximateNumberOfMessages". */
apr_status_t rq_sqs_get_queue_attributes(apr_table_t **pattrs, rq_sqs_t *sqs, apr_pool_t *p,
                                         const char *queue_url);

/* Deletes every message of the queue (SQS allows this once a minute). */
apr_status_t rq_sqs_purge(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url);

/* Checks a MessageGroupId or MessageDeduplicationId: 1-128 allowed characters. */
int rq_sqs_id_valid(const char *id);

apr_status_t rq_sqs_send(rq_sqs_sent_t *out, rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                         const char *body, const char *group_id, const char *dedup_id);

/*
 * Sends 1-10 messages in one call. Returns APR_SUCCESS when every entry
 * was sent, RQ_SQS_EPARTIAL when some were not (each entry's status tells),
 * or the call's own failure (then no entry status is meaningful).
 */
apr_status_t rq_sqs_send_batch(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                               apr_array_header_t *entries);

/*
 * Receives up to max messages (1-10) with all system attributes, waiting up
 * to wait_seconds (0-20) for the first. visibility_timeout < 0 keeps the
 * queue's; attempt_id (may be NULL) is the ReceiveRequestAttemptId that makes
 * a retried receive on a FIFO queue return the same messages. *pmsgs holds
 * rq_sqs_msg_t, empty when none came.
 */
apr_status_t rq_sqs_receive(apr_array_header_t **pmsgs, rq_sqs_t *sqs, apr_pool_t *p,
                            const char *queue_url, int max, int wait_seconds,
                            int visibility_timeout, const char *attempt_id);

apr_status_t rq_sqs_delete(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                           const char *receipt_handle);

/*
 * Entries are rq_sqs_entry_t; each entry's status tells its own outcome.
 * Returns as rq_sqs_send_batch() does.
 */
apr_status_t rq_sqs_delete_batch(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                                 apr_array_header_t *entries);

apr_status_t rq_sqs_change_visibility(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                                      const char *receipt_handle, int visibility_timeout);

apr_status_t rq_sqs_change_visibility_batch(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                                            apr_array_header_t *entries);

#endif
