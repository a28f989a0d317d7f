/*
 * The SQS client against the fauxqs emulator, started by this test on a free
 * loopback port (node tests/fauxqs-server.mjs): a FIFO queue, sends, long
 * polls, group locking, deduplication, visibility and redelivery, batches,
 * an unknown queue, and an emulator that is down or does not answer.
 */
#include <apr_general.h>
#include <apr_network_io.h>
#include <apr_strings.h>

#include "rq_sqs.h"
#include "rq_tap.h"
#include "sqs_test_util.h"

#define MAX_POLLS 10

static apr_pool_t *pool;
static rq_sqs_t *sqs;
static rq_http_t *http;
static const char *qurl;
static int emu_port;

static rq_sqs_msg_t *msg_at(apr_array_header_t *msgs, int i)
{
    return &APR_ARRAY_IDX(msgs, i, rq_sqs_msg_t);
}

/* The received message of the given group, or NULL. */
static rq_sqs_msg_t *msg_of(apr_array_header_t *msgs, const char *group)
{
    int i;

    for (i = 0; msgs && i < msgs->nelts; i++) {
        if (msg_at(msgs, i)->group_id && strcmp(msg_at(msgs, i)->group_id, group) == 0) {
            return msg_at(msgs, i);
        }
    }
    return NULL;
}

static const char *send_one(rq_sqs_sent_t *sent, const char *body, const char *group,
                            const char *dedup)
{
    apr_status_t rv = rq_sqs_send(sent, sqs, pool, qurl, body, group, dedup);

    return rv == APR_SUCCESS ? sent->sequence_number : NULL;
}

static void test_queue(void)
{
    apr_table_t *attrs = apr_table_make(pool, 2);
    const char *url = NULL;
    apr_status_t rv;

    apr_table_set(attrs, "VisibilityTimeout", "30");
    rv = rq_sqs_create_queue(&qurl, sqs, pool, "raceq-test.fifo", attrs);
    RQ_IS_INT(rv, APR_SUCCESS, "CreateQueue makes a FIFO queue");
    RQ_OK(qurl && strstr(qurl, "/000000000000/raceq-test.fifo"), "its URL: %s",
          qurl ? qurl : "(none)");
    rv = rq_sqs_create_queue(&url, sqs, pool, "raceq-test.fifo", attrs);
    RQ_IS_INT(rv, APR_SUCCESS, "creating it again with the same attributes succeeds");
    RQ_IS_STR(url, qurl, "and gives the same URL");
    rv = rq_sqs_get_queue_url(&url, sqs, pool, "raceq-test.fifo");
    RQ_IS_INT(rv, APR_SUCCESS, "GetQueueUrl finds it");
    RQ_IS_STR(url, qurl, "with the same URL");
    rv = rq_sqs_get_queue_attributes(&attrs, sqs, pool, qurl);
    RQ_IS_INT(rv, APR_SUCCESS, "GetQueueAttributes succeeds");
    RQ_IS_STR(apr_table_get(attrs, "FifoQueue"), "true", "the queue is FIFO");
    RQ_IS_STR(apr_table_get(attrs, "VisibilityTimeout"), "30", "with our visibility timeout");
}

static void test_send_receive_lock(void)
{
    rq_sqs_sent_t s1, s2, s3, dup;
    apr_array_header_t *msgs = NULL;
    rq_sqs_msg_t *m;
    apr_table_t *attrs;
    apr_status_t rv;

    RQ_OK(send_one(&s1, "{\"req_id\":\"r1\",\"user_id\":\"u1\"}", "u1", "r1") != NULL,
          "send r1 to group u1");
    RQ_OK(send_one(&s2, "{\"req_id\":\"r2\",\"user_id\":\"u1\"}", "u1", "r2") != NULL,
          "send r2 to group u1");
    RQ_OK(send_one(&s3, "{\"req_id\":\"r3\",\"user_id\":\"u2\"}", "u2", "r3") != NULL,
          "send r3 to group u2");
    RQ_OK(s1.sequence_number && s2.sequence_number
          && strcmp(s1.sequence_number, s2.sequence_number) < 0, "sequence numbers grow");

    rv = rq_sqs_send(&dup, sqs, pool, qurl, "{\"req_id\":\"r1\",\"user_id\":\"u1\"}", "u1", "r1");
    RQ_IS_INT(rv, APR_SUCCESS, "sending r1 again succeeds");
    RQ_IS_STR(dup.message_id, s1.message_id, "deduplicated: the same message id");
    RQ_IS_STR(dup.sequence_number, s1.sequence_number, "and the same sequence number");
    rv = rq_sqs_get_queue_attributes(&attrs, sqs, pool, qurl);
    RQ_IS_STR(apr_table_get(attrs, "ApproximateNumberOfMessages"), "3",
              "three messages are queued, not four");

    rv = rq_sqs_receive(&msgs, sqs, pool, qurl, 10, 1, -1, NULL);
    RQ_IS_INT(rv, APR_SUCCESS, "receive succeeds");
    m = msg_of(msgs, "u1");
    RQ_OK(m != NULL, "a message of group u1 came");
    if (m) {
        RQ_IS_STR(m->body, "{\"req_id\":\"r1\",\"user_id\":\"u1\"}", "the first of u1, in order");
        RQ_IS_STR(m->dedup_id, "r1", "its dedup id");
        RQ_IS_STR(m->sequence_number, s1.sequence_number, "its sequence number");
        RQ_IS_INT(m->receive_count, 1, "received once");
        RQ_OK(m->sent > 0 && m->first_receive >= m->sent, "timestamps are read");
    }
    RQ_OK(msg_of(msgs, "u2") != NULL, "a message of group u2 came too");

    rv = rq_sqs_receive(&msgs, sqs, pool, qurl, 10, 1, -1, NULL);
    RQ_IS_INT(rv, APR_SUCCESS, "a second receive succeeds");
    RQ_IS_INT(msgs->nelts, 0, "and returns nothing: both groups are locked while in flight");

    rv = rq_sqs_delete(sqs, pool, qurl, m ? m->receipt_handle : "none");
    RQ_IS_INT(rv, APR_SUCCESS, "DeleteMessage of r1 succeeds");
    rv = rq_sqs_receive(&msgs, sqs, pool, qurl, 10, 1, -1, NULL);
    m = msg_of(msgs, "u1");
    RQ_OK(m && strstr(m->body, "\"r2\""), "after the delete, u1's next message r2 comes");
    RQ_IS_INT(msgs->nelts, 1, "alone: u2 is still locked");
    if (m) {
        RQ_IS_INT(rq_sqs_delete(sqs, pool, qurl, m->receipt_handle), APR_SUCCESS, "delete r2");
    }
}

static void test_long_poll_empty(void)
{
    apr_array_header_t *msgs = NULL;
    apr_time_t start;
    apr_status_t rv;
    rq_sqs_t *other;
    rq_sqs_opts_t opts;
    const char *url;

    memset(&opts, 0, sizeof(opts));
    opts.timeout = apr_time_from_sec(1); /* shorter than the wait: the wait is added */
    RQ_IS_INT(sqs_test_client(&other, pool, emu_port, &opts), APR_SUCCESS,
              "a client with a 1 s timeout");
    rq_sqs_create_queue(&url, other, pool, "raceq-empty.fifo", NULL);
    start = apr_time_now();
    rv = rq_sqs_receive(&msgs, other, pool, url, 10, 2, -1, NULL);
    RQ_IS_INT(rv, APR_SUCCESS, "a 2 s long poll on an empty queue succeeds");
    RQ_IS_INT(msgs->nelts, 0, "empty");
    RQ_OK(apr_time_now() - start >= apr_time_from_msec(1000),
          "after waiting (%" APR_TIME_T_FMT " ms)", apr_time_as_msec(apr_time_now() - start));
}

static void test_visibility(void)
{
    apr_array_header_t *msgs = NULL, *entries;
    rq_sqs_entry_t *e;
    rq_sqs_sent_t s;
    rq_sqs_msg_t *m = NULL;
    int i;

    send_one(&s, "visible again", "u3", "r4");
    rq_sqs_receive(&msgs, sqs, pool, qurl, 10, 1, 1, NULL);
    RQ_OK(msg_of(msgs, "u3") != NULL, "r4 received with a visibility timeout of 1 s");

    for (i = 0; i < MAX_POLLS && !m; i++) {
        rq_sqs_receive(&msgs, sqs, pool, qurl, 10, 1, 30, NULL);
        m = msg_of(msgs, "u3");
    }
    RQ_OK(m != NULL, "r4 is delivered again once its visibility expired");
    RQ_IS_INT(m ? m->receive_count : 0, 2, "with a receive count of 2");

    RQ_IS_INT(rq_sqs_change_visibility(sqs, pool, qurl, m ? m->receipt_handle : "x", 0),
              APR_SUCCESS, "ChangeMessageVisibility to 0 succeeds");
    rq_sqs_receive(&msgs, sqs, pool, qurl, 10, 1, 30, "attempt-vis-1");
    m = msg_of(msgs, "u3");
    RQ_IS_INT(m ? m->receive_count : 0, 3, "and makes it visible at once");

    entries = apr_array_make(pool, 2, sizeof(rq_sqs_entry_t));
    e = apr_array_push(entries);
    *e = (rq_sqs_entry_t){ .id = "good", .receipt_handle = m ? m->receipt_handle : "x",
                           .visibility_timeout = 60 };
    e = apr_array_push(entries);
    *e = (rq_sqs_entry_t){ .id = "bad", .receipt_handle = "not-a-receipt-handle",
                           .visibility_timeout = 60 };
    RQ_IS_INT(rq_sqs_change_visibility_batch(sqs, pool, qurl, entries), RQ_SQS_EPARTIAL,
              "a visibility batch with a bad handle fails in part");
    RQ_IS_INT(APR_ARRAY_IDX(entries, 0, rq_sqs_entry_t).status, APR_SUCCESS,
              "the good entry succeeded");
    RQ_IS_INT(APR_ARRAY_IDX(entries, 1, rq_sqs_entry_t).status, RQ_SQS_ECLIENT,
              "the bad one failed as a client error");
    RQ_IS_STR(APR_ARRAY_IDX(entries, 1, rq_sqs_entry_t).error_code, "ReceiptHandleIsInvalid",
              "with SQS's code");
    RQ_IS_INT(rq_sqs_delete(sqs, pool, qurl, m ? m->receipt_handle : "x"), APR_SUCCESS,
              "delete r4");
}

static void test_batches(void)
{
    apr_array_header_t *entries = apr_array_make(pool, 3, sizeof(rq_sqs_send_entry_t));
    apr_array_header_t *handles = apr_array_make(pool, 3, sizeof(rq_sqs_entry_t));
    apr_array_header_t *msgs = NULL;
    rq_sqs_send_entry_t *e;
    rq_sqs_entry_t *h;
    apr_status_t rv;
    int i, polls, got = 0;

    for (i = 0; i < 3; i++) {
        e = apr_array_push(entries);
        *e = (rq_sqs_send_entry_t){ .id = apr_psprintf(pool, "e%d", i),
                                    .body = apr_psprintf(pool, "batch body %d", i),
                                    .group_id = i < 2 ? "u4" : "u5",
                                    .dedup_id = apr_psprintf(pool, "b%d", i) };
    }
    rv = rq_sqs_send_batch(sqs, pool, qurl, entries);
    RQ_IS_INT(rv, APR_SUCCESS, "SendMessageBatch sends three messages");
    for (i = 0; i < 3; i++) {
        e = &APR_ARRAY_IDX(entries, i, rq_sqs_send_entry_t);
        RQ_OK(e->status == APR_SUCCESS && e->message_id && e->sequence_number,
              "entry %d has a message id and a sequence number", i);
    }

    /* u4's second message comes only after its first is deleted. */
    for (polls = 0; polls < MAX_POLLS && got < 3; polls++) {
        rq_sqs_receive(&msgs, sqs, pool, qurl, 10, 1, -1, NULL);
        apr_array_clear(handles);
        for (i = 0; i < msgs->nelts; i++) {
            h = apr_array_push(handles);
            *h = (rq_sqs_entry_t){ .id = apr_psprintf(pool, "d%d", i),
                                   .receipt_handle = msg_at(msgs, i)->receipt_handle };
            got++;
        }
        if (handles->nelts) {
            rv = rq_sqs_delete_batch(sqs, pool, qurl, handles);
            RQ_IS_INT(rv, APR_SUCCESS, "DeleteMessageBatch deletes %d message(s)",
                      handles->nelts);
        }
    }
    RQ_IS_INT(got, 3, "all three batch messages were received and deleted");
}

static void test_limits(void)
{
    char *big = apr_palloc(pool, RQ_SQS_MAX_BODY + 2);
    rq_sqs_sent_t s;
    apr_array_header_t *msgs = NULL;
    apr_status_t rv;

    memset(big, 'x', RQ_SQS_MAX_BODY + 1);
    big[RQ_SQS_MAX_BODY] = '\0';
    rv = rq_sqs_send(&s, sqs, pool, qurl, big, "u6", "big");
    RQ_IS_INT(rv, APR_SUCCESS, "a 1 MiB body is accepted");
    rv = rq_sqs_receive(&msgs, sqs, pool, qurl, 1, 1, -1, NULL);
    RQ_OK(rv == APR_SUCCESS && msgs->nelts == 1
          && strlen(msg_at(msgs, 0)->body) == RQ_SQS_MAX_BODY, "and received whole, MD5 checked");
    if (msgs && msgs->nelts == 1) {
        rq_sqs_delete(sqs, pool, qurl, msg_at(msgs, 0)->receipt_handle);
    }
    big[RQ_SQS_MAX_BODY] = 'x';
    big[RQ_SQS_MAX_BODY + 1] = '\0';
    rv = rq_sqs_send(&s, sqs, pool, qurl, big, "u6", "too-big");
    RQ_IS_INT(rv, RQ_SQS_EINVALID, "1 MiB + 1 byte is refused before sending");
}

static void test_unknown_queue(void)
{
    const char *missing = apr_pstrcat(pool, apr_pstrndup(pool, qurl, strrchr(qurl, '/') - qurl),
                                      "/no-such-queue.fifo", NULL);
    const char *url;
    rq_sqs_sent_t s;
    apr_status_t rv;

    rv = rq_sqs_send(&s, sqs, pool, missing, "x", "u1", "nq");
    RQ_IS_INT(rv, RQ_SQS_ENOQUEUE, "sending to an unknown queue gives RQ_SQS_ENOQUEUE");
    RQ_IS_STR(rq_sqs_error(sqs)->type, "AWS.SimpleQueueService.NonExistentQueue",
              "with SQS's error type");
    RQ_IS_INT(rq_sqs_error(sqs)->attempts, 1, "after one attempt");
    rv = rq_sqs_get_queue_url(&url, sqs, pool, "no-such-queue.fifo");
    RQ_IS_INT(rv, RQ_SQS_ENOQUEUE, "GetQueueUrl of an unknown queue gives RQ_SQS_ENOQUEUE");
}

static void test_reuse(void)
{
    RQ_IS_INT(rq_http_connects(http), 1, "every call so far used one kept-alive connection");
}

/* A port that was listening and is now closed. */
static void test_down(int port)
{
    rq_sqs_opts_t opts;
    rq_sqs_t *down;
    rq_sqs_sent_t s;
    apr_time_t start;
    apr_status_t rv;

    memset(&opts, 0, sizeof(opts));
    opts.connect_timeout = apr_time_from_msec(500);
    opts.timeout = apr_time_from_sec(1);
    opts.max_attempts = 3;
    opts.retry_budget = apr_time_from_sec(2);
    sqs_test_client(&down, pool, port, &opts);
    start = apr_time_now();
    rv = rq_sqs_send(&s, down, pool, qurl, "x", "u1", "down");
    RQ_IS_INT(rv, RQ_SQS_ENETWORK, "an emulator that is down gives RQ_SQS_ENETWORK");
    RQ_OK(strstr(rq_sqs_error(down)->message, "onnect") != NULL, "saying it could not connect: %s",
          rq_sqs_error(down)->message);
    RQ_IS_INT(rq_sqs_error(down)->attempts, 3, "after the configured attempts");
    RQ_OK(apr_time_now() - start < apr_time_from_sec(30), "without hanging");
}

/* A server that accepts connections and never answers. */
static void test_silent(void)
{
    apr_socket_t *sock;
    apr_sockaddr_t *sa;
    rq_sqs_opts_t opts;
    rq_sqs_t *silent;
    rq_sqs_sent_t s;
    apr_status_t rv;

    apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, 0, 0, pool);
    apr_socket_create(&sock, APR_INET, SOCK_STREAM, APR_PROTO_TCP, pool);
    apr_socket_bind(sock, sa);
    apr_socket_listen(sock, 8);
    apr_socket_addr_get(&sa, APR_LOCAL, sock);

    memset(&opts, 0, sizeof(opts));
    opts.timeout = apr_time_from_msec(500);
    opts.max_attempts = 2;
    sqs_test_client(&silent, pool, sa->port, &opts);
    rv = rq_sqs_send(&s, silent, pool, qurl, "x", "u1", "silent");
    RQ_IS_INT(rv, RQ_SQS_ENETWORK, "a server that never answers gives RQ_SQS_ENETWORK");
    RQ_OK(strstr(rq_sqs_error(silent)->message, "imed out") != NULL, "after a timeout: %s",
          rq_sqs_error(silent)->message);
    RQ_IS_INT(rq_sqs_error(silent)->attempts, 2, "and a retry");
    apr_socket_close(sock);
}

int main(int argc, char **argv)
{
    sqs_test_server_t srv;
    rq_sqs_opts_t opts;

    (void)argc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    sqs_test_env(0);

    if (sqs_test_server_start(&srv, sqs_test_top(pool, argv[0]), "fauxqs-server.mjs", NULL,
                              pool) != 0) {
        printf("Bail out! could not start node tests/fauxqs-server.mjs (run scripts/deps.sh)\n");
        return 1;
    }
    emu_port = srv.port;
    memset(&opts, 0, sizeof(opts));
    rq_http_create(&http, pool);
    opts.http = http;
    RQ_IS_INT(sqs_test_client(&sqs, pool, srv.port, &opts), APR_SUCCESS,
              "a client of the emulator on 127.0.0.1:%d", srv.port);

    test_queue();
    test_send_receive_lock();
    test_long_poll_empty();
    test_visibility();
    test_batches();
    test_limits();
    test_unknown_queue();
    test_reuse();

    sqs_test_server_stop(&srv);
    test_down(srv.port);
    test_silent();

    apr_pool_destroy(pool);
    apr_terminate();
    return rq_tap_done();
}
