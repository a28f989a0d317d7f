/*
 * The SQS client on the wire against a stand-in JSON-protocol server
 * (tests/sqs-standin.mjs) for what the emulator cannot show: throttling,
 * 5xx and dropped connections retried then successful, retries exhausted,
 * a wrong MD5 digest, a partly failed batch, and one receive holding several
 * messages of one group.
 */
#include <apr_general.h>
#include <apr_strings.h>

#include "rq_sqs.h"
#include "rq_tap.h"
#include "sqs_test_util.h"

#define QBASE "http://sqs.us-east-1.localhost:1/000000000000/"

static apr_pool_t *pool;
static rq_sqs_t *sqs;

static apr_status_t send_to(const char *queue, rq_sqs_sent_t *sent)
{
    return rq_sqs_send(sent, sqs, pool, apr_pstrcat(pool, QBASE, queue, NULL), "{\"a\":1}",
                       "u1", apr_psprintf(pool, "d-%s", queue));
}

static void test_retried(void)
{
    rq_sqs_sent_t sent;

    RQ_IS_INT(send_to("throttled", &sent), APR_SUCCESS, "throttled twice, then sent");
    RQ_IS_STR(rq_sqs_error(sqs)->request_id, "standin-3", "on the third request");
    RQ_IS_INT(rq_sqs_error(sqs)->attempts, 3, "the client counted three attempts");
    RQ_IS_INT(send_to("too_many", &sent), APR_SUCCESS, "HTTP 429, then sent");
    RQ_IS_STR(rq_sqs_error(sqs)->request_id, "standin-2", "on the second request");
    RQ_IS_INT(send_to("flaky", &sent), APR_SUCCESS, "503 with a plain body twice, then sent");
    RQ_IS_STR(rq_sqs_error(sqs)->request_id, "standin-3", "on the third request");
    RQ_IS_INT(send_to("dropped", &sent), APR_SUCCESS, "a dropped connection, then sent");
    RQ_OK(sent.message_id && sent.sequence_number, "with a message id and a sequence number");
}

static void test_exhausted(void)
{
    rq_sqs_sent_t sent;

    RQ_IS_INT(send_to("broken", &sent), RQ_SQS_ESERVER, "500 on every attempt: ESERVER");
    RQ_IS_INT(rq_sqs_error(sqs)->attempts, 4, "after max_attempts");
    RQ_IS_STR(rq_sqs_error(sqs)->code, "InternalError", "with SQS's code");
    RQ_IS_STR(rq_sqs_error(sqs)->message, "always failing", "and message");
    RQ_IS_INT(send_to("no-such-queue", &sent), RQ_SQS_ENOQUEUE, "an unknown queue: ENOQUEUE");
    RQ_IS_INT(rq_sqs_error(sqs)->attempts, 1, "not retried");
}

static void test_md5(void)
{
    rq_sqs_sent_t sent;

    RQ_IS_INT(send_to("badmd5", &sent), RQ_SQS_EBADREPLY, "a wrong MD5OfMessageBody: EBADREPLY");
    RQ_IS_INT(rq_sqs_error(sqs)->attempts, 1, "not retried");
    RQ_OK(strstr(sqs_test_log_take(pool), "[error] RQ06005: SQS stored message ") != NULL,
          "an error is logged for the stored message");
}

static void test_partial(void)
{
    apr_array_header_t *entries = apr_array_make(pool, 3, sizeof(rq_sqs_send_entry_t));
    rq_sqs_send_entry_t *e;
    int i;

    for (i = 0; i < 3; i++) {
        e = apr_array_push(entries);
        *e = (rq_sqs_send_entry_t){ .id = apr_psprintf(pool, "e%d", i), .body = "b",
                                    .group_id = "u1", .dedup_id = apr_psprintf(pool, "p%d", i) };
    }
    RQ_IS_INT(rq_sqs_send_batch(sqs, pool, QBASE "partial", entries), RQ_SQS_EPARTIAL,
              "a partly failed batch: EPARTIAL");
    RQ_IS_INT(APR_ARRAY_IDX(entries, 0, rq_sqs_send_entry_t).status, APR_SUCCESS,
              "the first entry was sent");
    RQ_IS_INT(APR_ARRAY_IDX(entries, 1, rq_sqs_send_entry_t).status, RQ_SQS_ESERVER,
              "the second failed on the server's side");
    RQ_IS_STR(APR_ARRAY_IDX(entries, 2, rq_sqs_send_entry_t).error_message, "try again",
              "the third carries SQS's message");
}

static void test_group_batch(void)
{
    apr_array_header_t *msgs = NULL;
    const char *order = "";
    int i;

    RQ_IS_INT(rq_sqs_receive(&msgs, sqs, pool, QBASE "groups", 10, 0, -1, NULL), APR_SUCCESS,
              "a receive with several messages of one group");
    RQ_IS_INT(msgs ? msgs->nelts : 0, 4, "four messages");
    for (i = 0; msgs && i < msgs->nelts; i++) {
        const rq_sqs_msg_t *m = &APR_ARRAY_IDX(msgs, i, rq_sqs_msg_t);

        order = apr_pstrcat(pool, order, m->group_id, ":", m->dedup_id, " ", NULL);
    }
    RQ_IS_STR(order, "u1:r1 u1:r2 u2:r3 u1:r4 ", "kept in the order SQS gave them");
}

int main(int argc, char **argv)
{
    sqs_test_server_t srv;
    rq_sqs_opts_t opts;

    (void)argc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    sqs_test_env(0);
    sqs_test_log_capture();

    if (sqs_test_server_start(&srv, sqs_test_top(pool, argv[0]), "sqs-standin.mjs", NULL,
                              pool) != 0) {
        printf("Bail out! could not start node tests/sqs-standin.mjs\n");
        return 1;
    }
    memset(&opts, 0, sizeof(opts));
    opts.max_attempts = 4;
    opts.timeout = apr_time_from_sec(5);
    RQ_IS_INT(sqs_test_client(&sqs, pool, srv.port, &opts), APR_SUCCESS, "a client");

    test_retried();
    test_exhausted();
    test_md5();
    test_partial();
    test_group_batch();
    RQ_IS_STR(sqs_test_log_take(pool), "", "nothing else was logged at notice or above");

    sqs_test_server_stop(&srv);
    apr_pool_destroy(pool);
    apr_terminate();
    return rq_tap_done();
}
