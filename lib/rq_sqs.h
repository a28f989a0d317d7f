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

typedef struct rq_sqs_opts_t {
    const char *endpoint;               /* e.g. "https://sqs.eu-west-1.amazonaws.com" */
    const char *region;
    rq_creds_provider_t *creds;
    apr_interval_time_t connect_timeout; /* 0: a default */
    apr_interval_time_t timeout;         /* total per call, not counting a long poll's wait */
    int max_attempts;                    /* 0: a default */
    apr_interval_time_t retry_budget;    /* total time spent retrying; 0: a default */
} rq_sqs_opts_t;

typedef struct rq_sqs_error_t {
    int http_status;     /* 0 when no reply came */
    const char *type;    /* e.g. "AWS.SimpleQueueService.NonExistentQueue" */
    const char *message;
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

apr_status_t rq_sqs_create(rq_sqs_t **psqs, apr_pool_t *p, const rq_sqs_opts_t *opts);

const rq_sqs_error_t *rq_sqs_error(const rq_sqs_t *sqs);

/* Checks a MessageGroupId or MessageDeduplicationId: 1-128 allowed characters. */
int rq_sqs_id_valid(const char *id);

apr_status_t rq_sqs_send(rq_sqs_sent_t *out, rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                         const char *body, const char *group_id, const char *dedup_id);

/* Receives up to max messages (1-10) with all system attributes. */
apr_status_t rq_sqs_receive(apr_array_header_t **pmsgs, rq_sqs_t *sqs, apr_pool_t *p,
                            const char *queue_url, int max, int wait_seconds,
                            int visibility_timeout, const char *attempt_id);

apr_status_t rq_sqs_delete(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                           const char *receipt_handle);

/* Entries are rq_sqs_entry_t; each entry's status tells its own outcome. */
apr_status_t rq_sqs_delete_batch(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                                 apr_array_header_t *entries);

apr_status_t rq_sqs_change_visibility(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                                      const char *receipt_handle, int visibility_timeout);

apr_status_t rq_sqs_change_visibility_batch(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                                            apr_array_header_t *entries);

#endif
