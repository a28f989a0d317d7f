/*
 * fifo mode, the web side; see rq_fifo.h.
 *
 * SQS clients hold a curl handle each and are not thread-safe, so idle ones
 * wait on a stack and a call takes one (or makes one) for the time of its
 * send: as many clients as requests send at once, each kept alive.
 */
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "rq_fifo.h"
#include "rq_log.h"

typedef struct sqs_slot_t sqs_slot_t;

struct sqs_slot_t {
    apr_pool_t *pool;
    rq_sqs_t *sqs;
    sqs_slot_t *next;
};

struct rq_fifo_t {
    apr_pool_t *pool;
    rq_fifo_opts_t opts;
    rq_aws_conf_t aws;
    rq_sqs_opts_t sqs_opts;
    apr_thread_mutex_t *lock;
    sqs_slot_t *idle;
};

void rq_fifo_opts_default(rq_fifo_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->connect.attempts = 5;
    o->connect.backoff = apr_time_from_msec(10);
    o->connect.backoff_max = apr_time_from_msec(100);
}

static apr_status_t slots_cleanup(void *data)
{
    rq_fifo_t *f = data;

    while (f->idle) {
        sqs_slot_t *s = f->idle;

        f->idle = s->next;
        apr_pool_destroy(s->pool);
    }
    return APR_SUCCESS;
}

static apr_status_t slot_get(sqs_slot_t **pslot, rq_fifo_t *f)
{
    sqs_slot_t *s;
    apr_pool_t *sp;
    apr_status_t rv;

    apr_thread_mutex_lock(f->lock);
    s = f->idle;
    if (s) {
        f->idle = s->next;
    }
    apr_thread_mutex_unlock(f->lock);
    if (s) {
        *pslot = s;
        return APR_SUCCESS;
    }
    apr_pool_create_unmanaged_ex(&sp, NULL, NULL);
    s = apr_pcalloc(sp, sizeof(*s));
    s->pool = sp;
    rv = rq_sqs_create(&s->sqs, sp, &f->sqs_opts);
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(sp);
        return rv;
    }
    *pslot = s;
    return APR_SUCCESS;
}

static void slot_put(rq_fifo_t *f, sqs_slot_t *s)
{
    apr_thread_mutex_lock(f->lock);
    s->next = f->idle;
    f->idle = s;
    apr_thread_mutex_unlock(f->lock);
}

static apr_status_t sqs_send(rq_sqs_sent_t *out, const rq_sqs_error_t **perr, void *baton,
                             apr_pool_t *p, const char *body, const char *group_id,
                             const char *dedup_id)
{
    rq_fifo_t *f = baton;
    sqs_slot_t *s;
    apr_status_t rv;

    rv = slot_get(&s, f);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = rq_sqs_send(out, s->sqs, p, f->aws.queue_url, body, group_id, dedup_id);
    if (rv != APR_SUCCESS) {
        rq_sqs_error_t *e = apr_pmemdup(p, rq_sqs_error(s->sqs), sizeof(*e));

        e->type = e->type ? apr_pstrdup(p, e->type) : NULL;
        e->message = e->message ? apr_pstrdup(p, e->message) : NULL;
        *perr = e;
    }
    slot_put(f, s);
    return rv;
}

static apr_status_t aws_setup(rq_fifo_t *f, const char **perr, apr_pool_t *p)
{
    rq_creds_provider_t *creds;
    apr_pool_t *cp;
    apr_status_t rv;

    rv = rq_aws_conf_resolve_ex(&f->aws, perr, p, &f->opts.aws);
    if (rv == APR_SUCCESS) {
        rv = rq_aws_conf_require_queue(perr, p, &f->aws);
    }
    if (rv == APR_SUCCESS) {
        apr_pool_create(&cp, p); /* the provider's own */
        rv = rq_creds_provider_create_ex(&creds, perr, cp, &f->aws, NULL);
    }
    if (rv == APR_SUCCESS) {
        f->sqs_opts.endpoint = f->aws.endpoint;
        f->sqs_opts.region = f->aws.region;
        f->sqs_opts.creds = creds;
        f->sqs_opts.timeout = f->opts.sqs_timeout;
        f->sqs_opts.max_attempts = f->opts.sqs_max_attempts;
    }
    return rv;
}

apr_status_t rq_fifo_create(rq_fifo_t **pfifo, const char **perr, apr_pool_t *p,
                            const rq_fifo_opts_t *opts)
{
    rq_fifo_t *f = apr_pcalloc(p, sizeof(*f));
    apr_status_t rv = APR_SUCCESS;

    *perr = NULL;
    f->pool = p;
    f->opts = *opts;
    if (!opts->socket_path || !*opts->socket_path) {
        *perr = "no raceqd socket is set (RaceQDaemonSocket)";
        return APR_EINVAL;
    }
    f->opts.socket_path = apr_pstrdup(p, opts->socket_path);
    if (!f->opts.send) {
        f->opts.send = sqs_send;
        f->opts.send_baton = f;
        rv = aws_setup(f, perr, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_mutex_create(&f->lock, APR_THREAD_MUTEX_DEFAULT, p);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_pool_cleanup_register(p, f, slots_cleanup, apr_pool_cleanup_null);
    *pfifo = f;
    return APR_SUCCESS;
}

/* ---- the call ---- */

static apr_status_t fail(rq_fifo_result_t *res, apr_pool_t *p, apr_status_t status,
                         apr_status_t cause, const char *why)
{
    res->why = why;
    rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, cause, p, "RQ08501: req_id %s: %s", res->req_id,
                  why);
    return status;
}

static apr_status_t call_register(rq_wait_msg_t *reply, rq_fifo_result_t *res,
                                  apr_socket_t *sock, apr_pool_t *p, const rq_payload_t *pl,
                                  apr_time_t deadline)
{
    rq_wait_msg_t m;
    apr_status_t rv;

    memset(&m, 0, sizeof(m));
    m.type = RQ_WAIT_REGISTER;
    m.req_id = pl->req_id;
    m.user_id = pl->user_id;
    m.hash = rq_wait_hash(p, pl->json, strlen(pl->json));
    rv = rq_wait_send(sock, p, &m, deadline);
    if (rv == APR_SUCCESS) {
        rv = rq_wait_recv(reply, sock, p, deadline);
    }
    if (rv == RQ_WAIT_EBADFRAME) {
        return fail(res, p, RQ_FIFO_EPROTO, rv, "raceqd answered a malformed frame");
    }
    if (rv != APR_SUCCESS) {
        return fail(res, p, RQ_FIFO_EUNREACHABLE, rv,
                    "raceqd did not take the wait; nothing was sent");
    }
    return APR_SUCCESS;
}

/* Maps raceqd's final answer (DONE or CONFLICT) onto the result. */
static apr_status_t call_answer(rq_fifo_result_t *res, apr_pool_t *p, const rq_wait_msg_t *m)
{
    if (m->type == RQ_WAIT_DONE && strcmp(m->req_id, res->req_id) == 0) {
        res->seq = m->seq;
        res->applied = m->applied && res->sent;
        res->duplicate = !m->applied || !res->sent;
        return APR_SUCCESS;
    }
    if (m->type == RQ_WAIT_CONFLICT) {
        res->why = "this req_id was already used with another body";
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_INFO, 0, p, "RQ08502: req_id %s: %s", res->req_id,
                      res->why);
        return RQ_FIFO_ECONFLICT;
    }
    return fail(res, p, RQ_FIFO_EPROTO, 0,
                apr_psprintf(p, "raceqd answered an unexpected frame (type %d)", m->type));
}

static apr_status_t call_send(rq_fifo_result_t *res, rq_fifo_t *f, apr_socket_t *sock,
                              apr_pool_t *p, const rq_payload_t *pl, apr_time_t deadline)
{
    rq_sqs_sent_t sent;
    rq_wait_msg_t m;
    apr_status_t rv;

    memset(&sent, 0, sizeof(sent));
    rv = f->opts.send(&sent, &res->sqs_error, f->opts.send_baton, p, pl->json, pl->user_id,
                      pl->req_id);
    if (rv != APR_SUCCESS) {
        const rq_sqs_error_t *e = res->sqs_error;

        res->sqs_status = rv;
        return fail(res, p, RQ_FIFO_ESQS, rv,
                    apr_psprintf(p, "sending to the queue failed%s%s%s%s; the message may "
                                 "not have been queued; a retry with the same req_id is safe",
                                 e && e->type ? ": " : "", e && e->type ? e->type : "",
                                 e && e->message ? ": " : "", e && e->message ? e->message
                                                                              : ""));
    }
    res->sent = 1;
    res->message_id = sent.message_id;
    memset(&m, 0, sizeof(m));
    m.type = RQ_WAIT_SENT;
    m.req_id = pl->req_id;
    m.seq = sent.sequence_number;
    rq_wait_send(sock, p, &m, deadline); /* if lost, the answer still comes */
    return APR_SUCCESS;
}

static apr_status_t call_wait(rq_fifo_result_t *res, apr_socket_t *sock, apr_pool_t *p,
                              apr_time_t deadline)
{
    rq_wait_msg_t m;
    apr_status_t rv;

    rv = rq_wait_recv(&m, sock, p, deadline);
    if (rv == APR_SUCCESS) {
        return call_answer(res, p, &m);
    }
    if (APR_STATUS_IS_TIMEUP(rv)) {
        res->why = "no answer in time; the write is queued and will still be applied";
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_WARNING, 0, p, "RQ08503: req_id %s: %s",
                      res->req_id, res->why);
        return RQ_FIFO_ETIMEDOUT;
    }
    if (rv == RQ_WAIT_EBADFRAME) {
        return fail(res, p, RQ_FIFO_EPROTO, rv, "raceqd answered a malformed frame");
    }
    return fail(res, p, RQ_FIFO_EGONE, rv,
                "raceqd closed the wait channel; the write is queued and will still be "
                "applied");
}

apr_status_t rq_fifo_call(rq_fifo_result_t *res, rq_fifo_t *f, apr_pool_t *p,
                          const rq_payload_t *pl, apr_interval_time_t timeout)
{
    apr_time_t deadline = apr_time_now() + timeout;
    apr_socket_t *sock = NULL;
    apr_status_t rv, last = APR_SUCCESS;
    rq_wait_msg_t reply;

    memset(res, 0, sizeof(*res));
    res->req_id = pl->req_id;
    res->body = pl->json;
    rv = rq_wait_connect(&sock, &last, &res->connect_tries, p, f->opts.socket_path,
                         &f->opts.connect);
    if (rv != APR_SUCCESS) {
        return fail(res, p, RQ_FIFO_EUNREACHABLE, last,
                    apr_psprintf(p, "raceqd is not reachable on %s after %d tries "
                                 "(RaceQDaemonSocket); nothing was sent",
                                 f->opts.socket_path, res->connect_tries));
    }

    rv = call_register(&reply, res, sock, p, pl, deadline);
    if (rv == APR_SUCCESS && reply.type != RQ_WAIT_WAITING) {
        rv = call_answer(res, p, &reply); /* known already: nothing to send */
        goto out;
    }
    if (rv == APR_SUCCESS) {
        rv = call_send(res, f, sock, p, pl, deadline);
    }
    if (rv == APR_SUCCESS) {
        rv = call_wait(res, sock, p, deadline);
    }

out:
    apr_socket_close(sock);
    return rv;
}
