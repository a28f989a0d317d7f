/*
 * The SQS client without a network: each test scripts the replies of a fake
 * transport and checks what the client sent, how it retried, and what it
 * returned. Validation, error mapping, retries, MD5 checks, partial batches,
 * and that no secret reaches a log line.
 */
#include <apr_general.h>
#include <apr_strings.h>
#include <jansson.h>

#include "rq_log.h"
#include "rq_sqs.h"
#include "rq_tap.h"
#include "sqs_test_util.h"

#define QURL "http://sqs.us-east-1.localhost:1/000000000000/t.fifo"
#define MAX_REPLIES 16

typedef struct fake_reply_t {
    apr_status_t rv;   /* transport outcome */
    int transient;
    int status;
    const char *query_error;
    const char *body;
} fake_reply_t;

typedef struct fake_t {
    fake_reply_t replies[MAX_REPLIES];
    int n;
    int calls;
    apr_pool_t *p;
    /* the last request */
    const char *target;
    const char *authz;
    const char *token;
    const char *host;
    const char *content_type;
    const char *date;
    json_t *body;
    apr_interval_time_t timeout;
} fake_t;

static fake_t fake;

static const char *fake_header(const rq_http_request_t *req, const char *name)
{
    int i;

    for (i = 0; i < req->headers->nelts; i++) {
        const rq_header_t *h = &APR_ARRAY_IDX(req->headers, i, rq_header_t);

        if (strcasecmp(h->name, name) == 0) {
            return h->value;
        }
    }
    return NULL;
}

static apr_status_t fake_call(rq_http_response_t *resp, void *baton, apr_pool_t *p,
                              const rq_http_request_t *req)
{
    fake_reply_t *r;

    (void)baton;
    fake.target = apr_pstrdup(fake.p, fake_header(req, "X-Amz-Target"));
    fake.authz = apr_pstrdup(fake.p, fake_header(req, "Authorization"));
    fake.token = apr_pstrdup(fake.p, fake_header(req, "X-Amz-Security-Token"));
    fake.host = apr_pstrdup(fake.p, fake_header(req, "Host"));
    fake.content_type = apr_pstrdup(fake.p, fake_header(req, "Content-Type"));
    fake.date = apr_pstrdup(fake.p, fake_header(req, "X-Amz-Date"));
    fake.timeout = req->timeout;
    json_decref(fake.body);
    fake.body = json_loadb(req->body, req->body_len, 0, NULL);

    r = &fake.replies[fake.calls < fake.n ? fake.calls : fake.n - 1];
    fake.calls++;
    resp->headers = apr_table_make(p, 2);
    if (r->rv != APR_SUCCESS) {
        resp->transient = r->transient;
        resp->error = "fake transport failure";
        return r->rv;
    }
    resp->status = r->status;
    if (r->query_error) {
        apr_table_set(resp->headers, "x-amzn-query-error", r->query_error);
    }
    apr_table_set(resp->headers, "x-amzn-RequestId", "fake-request-id");
    resp->body = r->body;
    resp->body_len = strlen(r->body);
    return APR_SUCCESS;
}

/* Scripts the replies of the next call(s); the last one repeats. */
static void fake_script(int n, const fake_reply_t *replies)
{
    memset(fake.replies, 0, sizeof(fake.replies));
    memcpy(fake.replies, replies, sizeof(*replies) * n);
    fake.n = n;
    fake.calls = 0;
    json_decref(fake.body);
    fake.body = NULL;
}

static const char *body_str(const char *key)
{
    return json_string_value(json_object_get(fake.body, key));
}

static rq_sqs_t *client(apr_pool_t *p, int max_attempts)
{
    rq_sqs_opts_t opts;
    rq_sqs_t *sqs = NULL;

    memset(&opts, 0, sizeof(opts));
    rq_http_create_custom(&opts.http, p, fake_call, NULL);
    opts.endpoint = "https://sqs.us-east-1.amazonaws.com";
    opts.region = "us-east-1";
    opts.max_attempts = max_attempts;
    opts.timeout = apr_time_from_sec(4);
    if (rq_sqs_create(&sqs, p, &opts) != APR_SUCCESS) {
        return NULL;
    }
    return sqs;
}

static const char *md5(apr_pool_t *p, const char *s)
{
    char hex[33];

    rq_sqs_md5_hex(hex, s, strlen(s));
    return apr_pstrdup(p, hex);
}

static void test_ids(void)
{
    char long_id[200];

    RQ_OK(rq_sqs_id_valid("user-1"), "a plain id is valid");
    RQ_OK(rq_sqs_id_valid("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"), "every punctuation mark is valid");
    RQ_OK(!rq_sqs_id_valid(""), "an empty id is not");
    RQ_OK(!rq_sqs_id_valid(NULL), "a NULL id is not");
    RQ_OK(!rq_sqs_id_valid("a b"), "a space is not allowed");
    RQ_OK(!rq_sqs_id_valid("caf\xc3\xa9"), "a non-ASCII letter is not allowed");
    RQ_OK(!rq_sqs_id_valid("a\tb"), "a tab is not allowed");
    memset(long_id, 'x', 128);
    long_id[128] = '\0';
    RQ_OK(rq_sqs_id_valid(long_id), "128 characters are allowed");
    long_id[128] = 'x';
    long_id[129] = '\0';
    RQ_OK(!rq_sqs_id_valid(long_id), "129 characters are not");
}

static void test_bodies(apr_pool_t *p)
{
    char *big = apr_palloc(p, RQ_SQS_MAX_BODY + 2);
    const char *why = NULL;

    memset(big, 'a', RQ_SQS_MAX_BODY + 1);
    big[RQ_SQS_MAX_BODY + 1] = '\0';
    RQ_OK(rq_sqs_body_valid(big, RQ_SQS_MAX_BODY, NULL), "a body of exactly 1 MiB is valid");
    RQ_OK(!rq_sqs_body_valid(big, RQ_SQS_MAX_BODY + 1, &why), "1 MiB + 1 byte is not");
    RQ_OK(why && strstr(why, "1 MiB"), "and the reason says so: %s", why ? why : "");
    RQ_OK(!rq_sqs_body_valid("", 0, NULL), "an empty body is not valid");
    RQ_OK(rq_sqs_body_valid("a\tb\nc\rd", 7, NULL), "tab, LF and CR are allowed");
    RQ_OK(!rq_sqs_body_valid("a\x01z", 3, NULL), "U+0001 is refused");
    RQ_OK(!rq_sqs_body_valid("a\x1f", 2, NULL), "U+001F is refused");
    RQ_OK(rq_sqs_body_valid("\xe2\x82\xac \xf0\x9f\x98\x80", 8, NULL),
          "the euro sign and an emoji are allowed");
    RQ_OK(!rq_sqs_body_valid("\xef\xbf\xbe", 3, NULL), "U+FFFE is refused");
    RQ_OK(!rq_sqs_body_valid("\xef\xbf\xbf", 3, NULL), "U+FFFF is refused");
    RQ_OK(!rq_sqs_body_valid("\xed\xa0\x80", 3, &why), "an encoded surrogate is refused");
    RQ_OK(why && strstr(why, "UTF-8"), "as invalid UTF-8");
    RQ_OK(!rq_sqs_body_valid("\xc0\xaf", 2, NULL), "an overlong form is refused");
    RQ_OK(!rq_sqs_body_valid("ab\xc3", 3, NULL), "a truncated sequence is refused");
    RQ_OK(!rq_sqs_body_valid("\xf4\x90\x80\x80", 4, NULL), "a code point past U+10FFFF is refused");
    RQ_OK(rq_sqs_body_valid("\xf4\x8f\xbf\xbf", 4, NULL), "U+10FFFF is allowed");
}

static void test_invalid_not_sent(apr_pool_t *p)
{
    rq_sqs_t *sqs = client(p, 3);
    fake_reply_t ok = { APR_SUCCESS, 0, 200, NULL, "{}" };
    rq_sqs_sent_t sent;
    apr_array_header_t *msgs, *entries;
    rq_sqs_send_entry_t *e;
    apr_status_t rv;

    fake_script(1, &ok);
    rv = rq_sqs_send(&sent, sqs, p, QURL, "{}", "bad group", "r1");
    RQ_IS_INT(rv, RQ_SQS_EINVALID, "a group id with a space is refused locally");
    RQ_OK(strstr(rq_sqs_error(sqs)->message, "MessageGroupId") != NULL,
          "the error names MessageGroupId: %s", rq_sqs_error(sqs)->message);
    rv = rq_sqs_send(&sent, sqs, p, QURL, "{}", "u1", "");
    RQ_IS_INT(rv, RQ_SQS_EINVALID, "an empty dedup id is refused locally");
    RQ_OK(strstr(rq_sqs_error(sqs)->message, "MessageDeduplicationId") != NULL,
          "the error names MessageDeduplicationId");
    rv = rq_sqs_send(&sent, sqs, p, QURL, "bad \x02 body", "u1", "r1");
    RQ_IS_INT(rv, RQ_SQS_EINVALID, "a body with U+0002 is refused locally");
    rv = rq_sqs_send(&sent, sqs, p, "", "{}", "u1", "r1");
    RQ_IS_INT(rv, RQ_SQS_EINVALID, "an empty queue URL is refused locally");
    rv = rq_sqs_receive(&msgs, sqs, p, QURL, 11, 0, -1, NULL);
    RQ_IS_INT(rv, RQ_SQS_EINVALID, "MaxNumberOfMessages 11 is refused locally");
    rv = rq_sqs_receive(&msgs, sqs, p, QURL, 1, 21, -1, NULL);
    RQ_IS_INT(rv, RQ_SQS_EINVALID, "WaitTimeSeconds 21 is refused locally");
    rv = rq_sqs_change_visibility(sqs, p, QURL, "rh", 43201);
    RQ_IS_INT(rv, RQ_SQS_EINVALID, "VisibilityTimeout 43201 is refused locally");

    entries = apr_array_make(p, 2, sizeof(rq_sqs_send_entry_t));
    e = apr_array_push(entries);
    *e = (rq_sqs_send_entry_t){ .id = "a", .body = "x", .group_id = "g", .dedup_id = "d1" };
    e = apr_array_push(entries);
    *e = (rq_sqs_send_entry_t){ .id = "a", .body = "y", .group_id = "g", .dedup_id = "d2" };
    rv = rq_sqs_send_batch(sqs, p, QURL, entries);
    RQ_IS_INT(rv, RQ_SQS_EINVALID, "a batch with two entries of one id is refused locally");
    RQ_IS_INT(fake.calls, 0, "nothing invalid was sent");
}

static void test_send_request(apr_pool_t *p)
{
    rq_sqs_t *sqs = client(p, 3);
    const char *reply = apr_psprintf(p, "{\"MessageId\":\"m-1\",\"MD5OfMessageBody\":\"%s\","
                                     "\"SequenceNumber\":\"18880000000000000001\"}",
                                     md5(p, "{\"a\":1}"));
    fake_reply_t ok = { APR_SUCCESS, 0, 200, NULL, reply };
    rq_sqs_sent_t sent = { 0 };
    apr_status_t rv;

    fake_script(1, &ok);
    rv = rq_sqs_send(&sent, sqs, p, QURL, "{\"a\":1}", "user-1", "req-1");
    RQ_IS_INT(rv, APR_SUCCESS, "send succeeds");
    RQ_IS_STR(sent.message_id, "m-1", "the message id is returned");
    RQ_IS_STR(sent.sequence_number, "18880000000000000001", "the sequence number is returned");
    RQ_IS_INT(fake.calls, 1, "one request");
    RQ_IS_STR(fake.target, "AmazonSQS.SendMessage", "X-Amz-Target names the action");
    RQ_IS_STR(fake.content_type, "application/x-amz-json-1.0", "JSON 1.0 content type");
    RQ_IS_STR(fake.host, "sqs.us-east-1.amazonaws.com", "Host is the endpoint's");
    RQ_OK(fake.date && strlen(fake.date) == 16 && fake.date[8] == 'T', "X-Amz-Date is set");
    RQ_OK(fake.authz && strncmp(fake.authz, "AWS4-HMAC-SHA256 Credential=" SQS_TEST_ACCESS_KEY
                                "/", 48) == 0, "signed with SigV4: %s", fake.authz);
    RQ_OK(fake.authz && strstr(fake.authz, "/us-east-1/sqs/aws4_request"),
          "for region us-east-1 and service sqs");
    RQ_OK(fake.authz && strstr(fake.authz, "x-amz-security-token")
          && strstr(fake.authz, "x-amz-target"), "the token and target are signed");
    RQ_IS_STR(fake.token, SQS_TEST_TOKEN, "the session token is sent");
    RQ_IS_STR(body_str("QueueUrl"), QURL, "QueueUrl in the body");
    RQ_IS_STR(body_str("MessageBody"), "{\"a\":1}", "MessageBody in the body");
    RQ_IS_STR(body_str("MessageGroupId"), "user-1", "MessageGroupId in the body");
    RQ_IS_STR(body_str("MessageDeduplicationId"), "req-1", "MessageDeduplicationId in the body");
    RQ_IS_INT(fake.timeout, apr_time_from_sec(4), "the configured timeout applies");
}

static void test_retries(apr_pool_t *p)
{
    rq_sqs_t *sqs = client(p, 4);
    const char *url_reply = "{\"QueueUrl\":\"" QURL "\"}";
    fake_reply_t throttled[] = {
        { APR_SUCCESS, 0, 400, "RequestThrottled;Sender",
          "{\"__type\":\"com.amazonaws.sqs#ThrottlingException\",\"message\":\"Rate exceeded\"}" },
        { APR_SUCCESS, 0, 200, NULL, url_reply },
    };
    fake_reply_t too_many[] = {
        { APR_SUCCESS, 0, 429, NULL, "" },
        { APR_SUCCESS, 0, 429, NULL, "" },
        { APR_SUCCESS, 0, 200, NULL, url_reply },
    };
    fake_reply_t s500 = { APR_SUCCESS, 0, 500, NULL,
                          "{\"__type\":\"com.amazonaws.sqs#InternalError\",\"message\":\"boom\"}" };
    fake_reply_t net[] = {
        { APR_ECONNREFUSED, 1, 0, NULL, NULL },
        { APR_TIMEUP, 1, 0, NULL, NULL },
        { APR_SUCCESS, 0, 200, NULL, url_reply },
    };
    fake_reply_t hard_net = { APR_EINVAL, 0, 0, NULL, NULL };
    const char *url = NULL;
    apr_status_t rv;

    fake_script(2, throttled);
    rv = rq_sqs_get_queue_url(&url, sqs, p, "t.fifo");
    RQ_IS_INT(rv, APR_SUCCESS, "a throttled call is retried and succeeds");
    RQ_IS_INT(fake.calls, 2, "after two requests");
    RQ_IS_STR(url, QURL, "the queue URL is returned");

    fake_script(3, too_many);
    rv = rq_sqs_get_queue_url(&url, sqs, p, "t.fifo");
    RQ_IS_INT(rv, APR_SUCCESS, "HTTP 429 without a body is retried too");
    RQ_IS_INT(fake.calls, 3, "after three requests");

    fake_script(1, &s500);
    rv = rq_sqs_get_queue_url(&url, sqs, p, "t.fifo");
    RQ_IS_INT(rv, RQ_SQS_ESERVER, "5xx on every attempt gives RQ_SQS_ESERVER");
    RQ_IS_INT(fake.calls, 4, "after max_attempts requests");
    RQ_IS_INT(rq_sqs_error(sqs)->attempts, 4, "the error counts the attempts");
    RQ_IS_INT(rq_sqs_error(sqs)->http_status, 500, "and keeps the HTTP status");
    RQ_IS_STR(rq_sqs_error(sqs)->message, "boom", "and the message");

    fake_script(3, net);
    rv = rq_sqs_get_queue_url(&url, sqs, p, "t.fifo");
    RQ_IS_INT(rv, APR_SUCCESS, "refused connections and timeouts are retried");
    RQ_IS_INT(fake.calls, 3, "after three requests");

    fake_script(1, &hard_net);
    rv = rq_sqs_get_queue_url(&url, sqs, p, "t.fifo");
    RQ_IS_INT(rv, RQ_SQS_ENETWORK, "a transport failure that cannot pass gives ENETWORK");
    RQ_IS_INT(fake.calls, 1, "without a retry");
}

static void test_client_errors(apr_pool_t *p)
{
    rq_sqs_t *sqs = client(p, 4);
    fake_reply_t noqueue = { APR_SUCCESS, 0, 400, "AWS.SimpleQueueService.NonExistentQueue;Sender",
                             "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\","
                             "\"message\":\"The specified queue does not exist.\"}" };
    fake_reply_t invalid = { APR_SUCCESS, 0, 400, NULL,
                             "{\"__type\":\"com.amazonaws.sqs#InvalidParameterValue\","
                             "\"message\":\"bad value\"}" };
    fake_reply_t denied = { APR_SUCCESS, 0, 403, NULL,
                            "{\"__type\":\"com.amazon.coral.service#AccessDeniedException\","
                            "\"Message\":\"no\"}" };
    const rq_sqs_error_t *err;
    const char *url;
    apr_status_t rv;

    fake_script(1, &noqueue);
    rv = rq_sqs_get_queue_url(&url, sqs, p, "missing.fifo");
    err = rq_sqs_error(sqs);
    RQ_IS_INT(rv, RQ_SQS_ENOQUEUE, "QueueDoesNotExist gives RQ_SQS_ENOQUEUE");
    RQ_IS_INT(fake.calls, 1, "and is not retried");
    RQ_IS_STR(err->type, "AWS.SimpleQueueService.NonExistentQueue", "type from the query header");
    RQ_IS_STR(err->code, "QueueDoesNotExist", "code from __type");
    RQ_IS_STR(err->message, "The specified queue does not exist.", "the message is kept");
    RQ_IS_STR(err->request_id, "fake-request-id", "and the request id");

    fake_script(1, &invalid);
    rv = rq_sqs_get_queue_url(&url, sqs, p, "x.fifo");
    RQ_IS_INT(rv, RQ_SQS_ECLIENT, "InvalidParameterValue gives RQ_SQS_ECLIENT");
    RQ_IS_INT(fake.calls, 1, "and is not retried");
    RQ_IS_STR(rq_sqs_error(sqs)->type, "InvalidParameterValue", "type without a query header");

    fake_script(1, &denied);
    rv = rq_sqs_get_queue_url(&url, sqs, p, "x.fifo");
    RQ_IS_INT(rv, RQ_SQS_ECLIENT, "403 gives RQ_SQS_ECLIENT");
    RQ_IS_STR(rq_sqs_error(sqs)->message, "no", "a capitalised Message is read too");

    RQ_IS_INT(rq_sqs_status_from_error(400, "KmsThrottled"), RQ_SQS_ETHROTTLED,
              "the mapping knows KmsThrottled");
    RQ_IS_INT(rq_sqs_status_from_error(503, NULL), RQ_SQS_ESERVER, "503 maps to ESERVER");
    RQ_IS_INT(rq_sqs_status_from_error(302, NULL), RQ_SQS_EBADREPLY, "302 maps to EBADREPLY");
    RQ_OK(strstr(rq_sqs_strerror(p, RQ_SQS_ENOQUEUE), "does not exist") != NULL,
          "strerror names a missing queue");
}

static void test_md5(apr_pool_t *p)
{
    rq_sqs_t *sqs = client(p, 3);
    fake_reply_t bad_send = { APR_SUCCESS, 0, 200, NULL,
                              "{\"MessageId\":\"m\",\"MD5OfMessageBody\":"
                              "\"00000000000000000000000000000000\"}" };
    const char *recv = apr_psprintf(p, "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":"
                                    "\"rh\",\"Body\":\"hello\",\"MD5OfBody\":\"%s\"}]}",
                                    md5(p, "hellO"));
    fake_reply_t bad_recv = { APR_SUCCESS, 0, 200, NULL, recv };
    rq_sqs_sent_t sent;
    apr_array_header_t *msgs;
    apr_status_t rv;

    RQ_IS_STR(md5(p, "hello"), "5d41402abc4b2a76b9719d911017c592", "MD5 of hello");

    fake_script(1, &bad_send);
    rv = rq_sqs_send(&sent, sqs, p, QURL, "hello", "g", "d");
    RQ_IS_INT(rv, RQ_SQS_EBADREPLY, "a wrong MD5OfMessageBody gives EBADREPLY");
    RQ_IS_INT(fake.calls, 1, "without a retry (the message may be stored)");
    RQ_IS_STR(sqs_test_log_take(p), "[error] RQ06005: SQS stored message m with a digest that "
              "does not match the body sent\n", "and logs one error naming the message");

    fake_script(1, &bad_recv);
    rv = rq_sqs_receive(&msgs, sqs, p, QURL, 1, 0, -1, NULL);
    RQ_IS_INT(rv, RQ_SQS_EBADREPLY, "a wrong MD5OfBody gives EBADREPLY");
    RQ_OK(strstr(rq_sqs_error(sqs)->message, "MD5OfBody") != NULL, "and says so");
    RQ_IS_STR(sqs_test_log_take(p), "[error] RQ06007: SQS message m arrived with a body that "
              "does not match its digest; it will be delivered again\n",
              "and logs one error naming the message");
}

static void test_receive(apr_pool_t *p)
{
    rq_sqs_t *sqs = client(p, 3);
    const char *tmpl = "{\"MessageId\":\"m%d\",\"ReceiptHandle\":\"rh%d\",\"Body\":\"b%d\","
                       "\"MD5OfBody\":\"%s\",\"Attributes\":{\"MessageGroupId\":\"u1\","
                       "\"MessageDeduplicationId\":\"r%d\",\"SequenceNumber\":\"10%d\","
                       "\"ApproximateReceiveCount\":\"%d\",\"SentTimestamp\":\"1700000000123\","
                       "\"ApproximateFirstReceiveTimestamp\":\"1700000000456\"}}";
    const char *body = apr_psprintf(p, "{\"Messages\":[%s,%s,%s]}",
                                    apr_psprintf(p, tmpl, 1, 1, 1, md5(p, "b1"), 1, 1, 1),
                                    apr_psprintf(p, tmpl, 2, 2, 2, md5(p, "b2"), 2, 2, 1),
                                    apr_psprintf(p, tmpl, 3, 3, 3, md5(p, "b3"), 3, 3, 2));
    fake_reply_t ok = { APR_SUCCESS, 0, 200, NULL, body };
    fake_reply_t empty = { APR_SUCCESS, 0, 200, NULL, "{}" };
    apr_array_header_t *msgs = NULL;
    rq_sqs_msg_t *m;
    apr_status_t rv;

    fake_script(1, &ok);
    rv = rq_sqs_receive(&msgs, sqs, p, QURL, 10, 20, 30, "attempt-1");
    RQ_IS_INT(rv, APR_SUCCESS, "receive succeeds");
    RQ_IS_STR(fake.target, "AmazonSQS.ReceiveMessage", "X-Amz-Target names ReceiveMessage");
    RQ_IS_INT(json_integer_value(json_object_get(fake.body, "MaxNumberOfMessages")), 10,
              "MaxNumberOfMessages sent");
    RQ_IS_INT(json_integer_value(json_object_get(fake.body, "WaitTimeSeconds")), 20,
              "WaitTimeSeconds sent");
    RQ_IS_INT(json_integer_value(json_object_get(fake.body, "VisibilityTimeout")), 30,
              "VisibilityTimeout sent");
    RQ_IS_STR(body_str("ReceiveRequestAttemptId"), "attempt-1", "ReceiveRequestAttemptId sent");
    RQ_IS_STR(json_string_value(json_array_get(json_object_get(fake.body,
                                                               "MessageSystemAttributeNames"), 0)),
              "All", "all system attributes asked for");
    RQ_IS_INT(fake.timeout, apr_time_from_sec(24), "a long poll's timeout covers its wait");
    RQ_IS_INT(msgs ? msgs->nelts : -1, 3, "three messages of one group in one batch");
    if (msgs && msgs->nelts == 3) {
        m = &APR_ARRAY_IDX(msgs, 2, rq_sqs_msg_t);
        RQ_IS_STR(APR_ARRAY_IDX(msgs, 0, rq_sqs_msg_t).body, "b1", "in the order received");
        RQ_IS_STR(m->message_id, "m3", "message id");
        RQ_IS_STR(m->receipt_handle, "rh3", "receipt handle");
        RQ_IS_STR(m->group_id, "u1", "group id");
        RQ_IS_STR(m->dedup_id, "r3", "dedup id");
        RQ_IS_STR(m->sequence_number, "103", "sequence number");
        RQ_IS_INT(m->receive_count, 2, "receive count");
        RQ_IS_INT(m->sent, apr_time_from_msec(1700000000123LL), "sent timestamp");
        RQ_IS_INT(m->first_receive, apr_time_from_msec(1700000000456LL), "first receive");
    }

    fake_script(1, &empty);
    rv = rq_sqs_receive(&msgs, sqs, p, QURL, 1, 0, -1, NULL);
    RQ_IS_INT(rv, APR_SUCCESS, "an empty receive succeeds");
    RQ_IS_INT(msgs->nelts, 0, "with no message");
    RQ_OK(!json_object_get(fake.body, "VisibilityTimeout"), "the queue's visibility is kept");
    RQ_OK(!json_object_get(fake.body, "ReceiveRequestAttemptId"), "no attempt id when none");
}

static void test_batches(apr_pool_t *p)
{
    rq_sqs_t *sqs = client(p, 3);
    const char *reply = apr_psprintf(p, "{\"Successful\":[{\"Id\":\"a\",\"MessageId\":\"ma\","
                                     "\"MD5OfMessageBody\":\"%s\",\"SequenceNumber\":\"7\"}],"
                                     "\"Failed\":[{\"Id\":\"b\",\"Code\":\"InvalidParameterValue\","
                                     "\"Message\":\"nope\",\"SenderFault\":true}]}",
                                     md5(p, "body-a"));
    fake_reply_t partial = { APR_SUCCESS, 0, 200, NULL, reply };
    fake_reply_t del = { APR_SUCCESS, 0, 200, NULL,
                         "{\"Successful\":[{\"Id\":\"x\"}],\"Failed\":[{\"Id\":\"y\","
                         "\"Code\":\"InternalError\",\"Message\":\"later\","
                         "\"SenderFault\":false}]}" };
    apr_array_header_t *entries = apr_array_make(p, 3, sizeof(rq_sqs_send_entry_t));
    apr_array_header_t *handles = apr_array_make(p, 2, sizeof(rq_sqs_entry_t));
    rq_sqs_send_entry_t *e;
    rq_sqs_entry_t *h;
    apr_status_t rv;

    e = apr_array_push(entries);
    *e = (rq_sqs_send_entry_t){ .id = "a", .body = "body-a", .group_id = "g", .dedup_id = "a" };
    e = apr_array_push(entries);
    *e = (rq_sqs_send_entry_t){ .id = "b", .body = "body-b", .group_id = "g", .dedup_id = "b" };
    e = apr_array_push(entries);
    *e = (rq_sqs_send_entry_t){ .id = "c", .body = "body-c", .group_id = "g", .dedup_id = "c" };

    fake_script(1, &partial);
    rv = rq_sqs_send_batch(sqs, p, QURL, entries);
    RQ_IS_INT(rv, RQ_SQS_EPARTIAL, "a partly failed batch gives RQ_SQS_EPARTIAL");
    RQ_IS_STR(fake.target, "AmazonSQS.SendMessageBatch", "SendMessageBatch was called");
    RQ_IS_INT(json_array_size(json_object_get(fake.body, "Entries")), 3, "with three entries");
    e = &APR_ARRAY_IDX(entries, 0, rq_sqs_send_entry_t);
    RQ_IS_INT(e->status, APR_SUCCESS, "entry a succeeded");
    RQ_IS_STR(e->sequence_number, "7", "with its sequence number");
    e = &APR_ARRAY_IDX(entries, 1, rq_sqs_send_entry_t);
    RQ_IS_INT(e->status, RQ_SQS_ECLIENT, "entry b failed as a client error");
    RQ_IS_STR(e->error_code, "InvalidParameterValue", "with its code");
    RQ_IS_STR(e->error_message, "nope", "and message");
    e = &APR_ARRAY_IDX(entries, 2, rq_sqs_send_entry_t);
    RQ_IS_INT(e->status, RQ_SQS_EBADREPLY, "entry c, in neither list, is a failure");

    h = apr_array_push(handles);
    *h = (rq_sqs_entry_t){ .id = "x", .receipt_handle = "rx" };
    h = apr_array_push(handles);
    *h = (rq_sqs_entry_t){ .id = "y", .receipt_handle = "ry" };
    fake_script(1, &del);
    rv = rq_sqs_delete_batch(sqs, p, QURL, handles);
    RQ_IS_INT(rv, RQ_SQS_EPARTIAL, "a partly failed delete batch gives RQ_SQS_EPARTIAL");
    RQ_IS_INT(APR_ARRAY_IDX(handles, 0, rq_sqs_entry_t).status, APR_SUCCESS, "x was deleted");
    RQ_IS_INT(APR_ARRAY_IDX(handles, 1, rq_sqs_entry_t).status, RQ_SQS_ESERVER,
              "y failed on the server's side");

    fake_script(1, &del);
    rv = rq_sqs_change_visibility_batch(sqs, p, QURL, handles);
    RQ_IS_STR(fake.target, "AmazonSQS.ChangeMessageVisibilityBatch", "visibility batch called");
    RQ_OK(json_object_get(json_array_get(json_object_get(fake.body, "Entries"), 0),
                          "VisibilityTimeout") != NULL, "with a VisibilityTimeout per entry");
    RQ_IS_INT(rv, RQ_SQS_EPARTIAL, "and reports the failed entry");
}

static void test_malformed(apr_pool_t *p)
{
    rq_sqs_t *sqs = client(p, 3);
    fake_reply_t junk = { APR_SUCCESS, 0, 200, NULL, "<html>proxy</html>" };
    const char *url;

    fake_script(1, &junk);
    RQ_IS_INT(rq_sqs_get_queue_url(&url, sqs, p, "t.fifo"), RQ_SQS_EBADREPLY,
              "a reply that is not JSON gives EBADREPLY");
}

/* ---- no secret in any log line, at any level --------------------------- */

static int log_lines;
static int log_leaks;

static void log_capture(void *baton, const char *file, int line, int level, apr_status_t rv,
                        const char *msg)
{
    (void)baton, (void)file, (void)line, (void)level, (void)rv;
    log_lines++;
    if (strstr(msg, SQS_TEST_SECRET) || strstr(msg, SQS_TEST_TOKEN)
        || strstr(msg, "Signature=") || strstr(msg, "Authorization")) {
        log_leaks++;
    }
}

static int log_all(void *baton, int level)
{
    (void)baton, (void)level;
    return 1;
}

static void test_no_secrets_logged(apr_pool_t *p)
{
    rq_sqs_t *sqs = client(p, 2);
    fake_reply_t replies[] = {
        { APR_SUCCESS, 0, 500, NULL, "{}" },
        { APR_SUCCESS, 0, 200, NULL, "{\"QueueUrl\":\"" QURL "\"}" },
    };
    const char *url;

    rq_log_set(log_capture, log_all, NULL);
    fake_script(2, replies);
    rq_sqs_get_queue_url(&url, sqs, p, "t.fifo");
    sqs_test_log_capture();
    RQ_OK(log_lines >= 4, "trace logging wrote the exchange (%d lines)", log_lines);
    RQ_IS_INT(log_leaks, 0, "no line holds the secret, the token or the signature");
}

int main(void)
{
    apr_pool_t *p;

    apr_initialize();
    apr_pool_create(&p, NULL);
    fake.p = p;
    sqs_test_env(1);
    sqs_test_log_capture();

    test_ids();
    test_bodies(p);
    test_invalid_not_sent(p);
    test_send_request(p);
    test_retries(p);
    test_client_errors(p);
    test_md5(p);
    test_receive(p);
    test_batches(p);
    test_malformed(p);
    test_no_secrets_logged(p);
    RQ_IS_STR(sqs_test_log_take(p), "", "nothing else was logged at notice or above");

    json_decref(fake.body);
    apr_pool_destroy(p);
    apr_terminate();
    return rq_tap_done();
}
