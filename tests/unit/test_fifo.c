/* rq_fifo_call's outcomes against a real wait server and a stand-in sender:
 * daemon absent, applied, late duplicate, conflict, SQS failure, timeout. */
#include <stdlib.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "rq_fifo.h"
#include "rq_log.h"
#include "rq_tap.h"

typedef struct sender_t {
    rq_wait_server_t *srv;
    int mode;   /* 0: applied soon, 1: fails, 2: never applied */
    int calls;
} sender_t;

typedef struct later_t {
    rq_wait_server_t *srv;
    const char *req_id;
    const char *hash;
} later_t;

static void *APR_THREAD_FUNC apply_later(apr_thread_t *t, void *data)
{
    later_t *l = data;

    apr_sleep(apr_time_from_msec(20));
    rq_wait_server_done(l->srv, l->req_id, l->hash, "4242", 1);
    free(l);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static apr_status_t fake_send(rq_sqs_sent_t *out, const rq_sqs_error_t **perr, void *baton,
                              apr_pool_t *p, const char *body, const char *group_id,
                              const char *dedup_id)
{
    static rq_sqs_error_t err;
    sender_t *s = baton;
    later_t *l;
    apr_thread_t *t;

    err.http_status = 503;
    err.type = "ServiceUnavailable";
    err.message = "the queue is down";
    (void)group_id;
    s->calls++;
    if (s->mode == 1) {
        *perr = &err;
        return RQ_SQS_ESERVER;
    }
    out->message_id = "mid-1";
    out->sequence_number = "4242";
    if (s->mode == 0) {
        l = malloc(sizeof(*l));
        l->srv = s->srv;
        l->req_id = apr_pstrdup(p, dedup_id);
        l->hash = rq_wait_hash(p, body, strlen(body));
        apr_thread_create(&t, NULL, apply_later, l, p);
        apr_thread_detach(t);
    }
    return APR_SUCCESS;
}

static rq_payload_t *payload(apr_pool_t *p, const char *req, const char *body)
{
    rq_payload_t *pl = apr_pcalloc(p, sizeof(*pl));

    pl->req_id = req;
    pl->user_id = "user-1";
    pl->json = body;
    return pl;
}

int main(void)
{
    apr_pool_t *p;
    char dir[] = "/tmp/rq-fifo-XXXXXX";
    rq_wait_server_opts_t wo;
    rq_wait_server_t *srv;
    rq_fifo_opts_t o;
    rq_fifo_t *f;
    rq_fifo_result_t res;
    sender_t s = { NULL, 0, 0 };
    const char *err;
    apr_status_t rv;

    apr_initialize();
    apr_pool_create(&p, NULL);
    rq_log_set_level(RQ_LOG_EMERG); /* failures are logged on purpose */
    mkdtemp(dir);

    rq_fifo_opts_default(&o);
    o.socket_path = apr_pstrcat(p, dir, "/raceqd.sock", NULL);
    o.send = fake_send;
    o.send_baton = &s;
    RQ_OK(rq_fifo_create(&f, &err, p, &o) == APR_SUCCESS, "fifo client created");

    rv = rq_fifo_call(&res, f, p, payload(p, "r-1", "{\"a\":1}"), apr_time_from_sec(5));
    RQ_IS_INT(rv, RQ_FIFO_EUNREACHABLE, "no daemon: unreachable");
    RQ_IS_INT(res.connect_tries, 5, "after the configured tries");
    RQ_IS_INT(s.calls, 0, "nothing was sent");
    RQ_OK(res.why && strstr(res.why, "not reachable"), "the reason is given");

    memset(&wo, 0, sizeof(wo));
    wo.path = o.socket_path;
    wo.uid = wo.gid = -1;
    rq_wait_server_create(&srv, p, &wo);
    rq_wait_server_start(srv);
    s.srv = srv;

    rv = rq_fifo_call(&res, f, p, payload(p, "r-1", "{\"a\":1}"), apr_time_from_sec(10));
    RQ_IS_INT(rv, APR_SUCCESS, "registered, sent, answered");
    RQ_IS_STR(res.seq, "4242", "with the sequence number");
    RQ_OK(res.sent && res.applied && !res.duplicate, "sent and applied by this call");
    RQ_IS_STR(res.body, "{\"a\":1}", "the answer body is the request object");

    rv = rq_fifo_call(&res, f, p, payload(p, "r-1", "{\"a\":1}"), apr_time_from_sec(10));
    RQ_IS_INT(rv, APR_SUCCESS, "the same req_id later: the same answer");
    RQ_OK(!res.sent && res.duplicate, "without sending again");
    RQ_IS_INT(s.calls, 1, "one send in all");

    rv = rq_fifo_call(&res, f, p, payload(p, "r-1", "{\"a\":2}"), apr_time_from_sec(10));
    RQ_IS_INT(rv, RQ_FIFO_ECONFLICT, "the same req_id with another body: conflict");
    RQ_IS_INT(s.calls, 1, "nothing sent");

    s.mode = 1;
    rv = rq_fifo_call(&res, f, p, payload(p, "r-2", "{\"a\":3}"), apr_time_from_sec(10));
    RQ_IS_INT(rv, RQ_FIFO_ESQS, "the queue failing: an SQS failure");
    RQ_IS_INT(res.sqs_status, RQ_SQS_ESERVER, "with the client's status");
    RQ_OK(res.why && strstr(res.why, "the queue is down"), "and SQS's message");
    RQ_OK(res.why && !strstr(res.why, "nothing was queued")
          && strstr(res.why, "may not have been queued")
          && strstr(res.why, "same req_id is safe"),
          "the reason does not claim to know the message was not queued");

    s.mode = 0;
    rv = rq_fifo_call(&res, f, p, payload(p, "r-2", "{\"a\":4}"), apr_time_from_sec(10));
    RQ_IS_INT(rv, APR_SUCCESS, "a failed send left nothing behind: the id can be used again");

    s.mode = 2;
    rv = rq_fifo_call(&res, f, p, payload(p, "r-3", "{\"a\":5}"), apr_time_from_msec(100));
    RQ_IS_INT(rv, RQ_FIFO_ETIMEDOUT, "no answer in time: timeout");
    RQ_OK(res.sent, "the message was queued");

    rq_wait_server_stop(srv);
    rmdir(dir);
    apr_pool_destroy(p);
    apr_terminate();
    return rq_tap_done();
}
