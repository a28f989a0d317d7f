/*
 * fifo mode, the web side: one call that registers a wait with raceqd,
 * sends the request object to the FIFO queue and waits for the answer.
 *
 * Use:
 *
 *     child init (once per process, threads may share it):
 *         rq_fifo_opts_t o;
 *         rq_fifo_opts_default(&o);
 *         o.socket_path = "/run/raceq/raceqd.sock";   RaceQDaemonSocket
 *         o.aws.queue_url = ...;                      RaceQQueueURL (or NULL)
 *         o.aws.region / endpoint / env_file = ...;   RaceQRegion ...
 *         rv = rq_fifo_create(&fifo, &err, pchild, &o);
 *
 *     handler, after rq_payload_parse() accepted the body:
 *         rq_fifo_result_t res;
 *         rv = rq_fifo_call(&res, fifo, r->pool, payload, timeout);
 *
 * rq_fifo_call():
 *   1. connects to raceqd's socket, retrying briefly with a capped backoff;
 *   2. registers the wait for payload->req_id, with the SHA-256 of
 *      payload->json (the exact body it will send);
 *   3. if raceqd already knows the outcome for that req_id (a duplicate
 *      within the remembered window), returns it without sending anything;
 *   4. else sends payload->json to the queue, MessageGroupId = user_id,
 *      MessageDeduplicationId = req_id, tells raceqd it was sent;
 *   5. waits for the answer until the timeout (counted from the call).
 *
 * Outcomes, and the answer the module gives:
 *   APR_SUCCESS          200, echo payload->json; res.seq is the SQS
 *                        sequence number of the applied message (a header);
 *                        res.duplicate says the req_id had been applied
 *                        before (the write happened once, this is its answer).
 *   RQ_FIFO_EUNREACHABLE 503: raceqd is not running or refuses; nothing sent.
 *   RQ_FIFO_ECONFLICT    409: the req_id is known with another body; nothing
 *                        applied for this request.
 *   RQ_FIFO_ESQS         502 (or 503 when res.sqs_status is
 *                        RQ_SQS_ENETWORK / RQ_SQS_ETHROTTLED): sending
 *                        failed after the client's retries; res.sqs_error
 *                        says why; the message may or may not have been
 *                        queued (a network failure cannot tell), so a retry
 *                        with the same req_id is safe.
 *   RQ_FIFO_ETIMEDOUT    504: the message is queued (res.sent) and will still
 *                        be applied; the request stops waiting.
 *   RQ_FIFO_EGONE        504 as well: raceqd closed the channel after the
 *                        message was queued (it is stopping); still applied.
 *   RQ_FIFO_EPROTO       502: raceqd answered something malformed.
 * Every failure is logged once by rq_fifo_call with its cause (tags
 * RQ085xx), so the module only maps the status to its answer.
 */
#ifndef RQ_FIFO_H
#define RQ_FIFO_H

#include <apr_pools.h>
#include <apr_time.h>

#include "rq_creds.h"
#include "rq_payload.h"
#include "rq_sqs.h"
#include "rq_wait.h"

#define RQ_FIFO_ERR_BASE     (APR_OS_START_USERERR + 5100)
#define RQ_FIFO_EUNREACHABLE (RQ_FIFO_ERR_BASE + 1)
#define RQ_FIFO_ECONFLICT    (RQ_FIFO_ERR_BASE + 2)
#define RQ_FIFO_ESQS         (RQ_FIFO_ERR_BASE + 3)
#define RQ_FIFO_ETIMEDOUT    (RQ_FIFO_ERR_BASE + 4)
#define RQ_FIFO_EGONE        (RQ_FIFO_ERR_BASE + 5)
#define RQ_FIFO_EPROTO       (RQ_FIFO_ERR_BASE + 6)

typedef struct rq_fifo_t rq_fifo_t;

/*
 * Sends body to the queue. The default uses an rq_sqs_t client per thread;
 * tests put a stand-in here. On failure *psqs_error may say why.
 */
typedef apr_status_t rq_fifo_send_fn(rq_sqs_sent_t *out, const rq_sqs_error_t **psqs_error,
                                     void *baton, apr_pool_t *p, const char *body,
                                     const char *group_id, const char *dedup_id);

typedef struct rq_fifo_opts_t {
    const char *socket_path;      /* raceqd's socket (RaceQDaemonSocket) */
    rq_aws_conf_t aws;            /* given values, resolved as rq_creds.h says */
    rq_wait_connect_opts_t connect; /* tries and backoff of the connect */
    apr_interval_time_t sqs_timeout; /* per SQS call; 0: the client's default */
    int sqs_max_attempts;         /* 0: the client's default */
    rq_fifo_send_fn *send;        /* NULL: SQS through rq_sqs */
    void *send_baton;
} rq_fifo_opts_t;

typedef struct rq_fifo_result_t {
    const char *req_id;
    const char *seq;         /* sequence number of the applied message, or NULL */
    const char *message_id;  /* of the message this call sent, or NULL */
    const char *body;        /* the answer: the request object as applied */
    int sent;                /* this call queued the message */
    int applied;             /* this call's message was the one that wrote */
    int duplicate;           /* the req_id had been applied before */
    int connect_tries;
    apr_status_t sqs_status; /* RQ_FIFO_ESQS: the client's status */
    const rq_sqs_error_t *sqs_error;
    const char *why;         /* a sentence for the log / error body on failure */
} rq_fifo_result_t;

void rq_fifo_opts_default(rq_fifo_opts_t *opts);

/*
 * Resolves the AWS settings (a queue URL is required) and prepares the
 * per-thread SQS clients; *perr says what is wrong on failure. Lives as long
 * as p; rq_fifo_call is safe from many threads at once.
 */
apr_status_t rq_fifo_create(rq_fifo_t **pfifo, const char **perr, apr_pool_t *p,
                            const rq_fifo_opts_t *opts);

/* See the top of this file. timeout counts from the call's start. */
apr_status_t rq_fifo_call(rq_fifo_result_t *res, rq_fifo_t *fifo, apr_pool_t *p,
                          const rq_payload_t *payload, apr_interval_time_t timeout);

#endif
