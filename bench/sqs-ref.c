/*
 * The reference client of the throughput benchmark: what the queue allows
 * for the calls fifo mode makes, without httpd, raceqd or the store.
 * Senders loop over SendMessage (group = a user drawn from the pool,
 * deduplication id unique), as each request does; pollers loop over
 * ReceiveMessage (up to 10, long poll) and DeleteMessageBatch of what they
 * received, as raceqd's pollers and housekeeper do. As with wrk's
 * connections, each sender has at most one message in the queue: it sends
 * the next once one has been deleted (a closed loop), so the emulator is
 * measured at the load the benchmark puts on it, not flooded with sends.
 * It uses the same SQS client as mod_raceq and raceqd, one per thread.
 *
 *   sqs-ref --threads 64 --pollers 2 --seconds 5 --users 1000
 *
 * Settings and credentials as for raceq-sqs (AWS_FIFO_URL,
 * AWS_ENDPOINT_URL_SQS, ...). Prints one JSON object: messages sent,
 * received and deleted, errors, and deleted messages per second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <apr_time.h>
#include <jansson.h>

#include "rq_creds.h"
#include "rq_log.h"
#include "rq_sqs.h"

typedef struct ref_opts_t {
    int threads;
    int pollers;
    int seconds;
    int users;
} ref_opts_t;

/* Messages sent and not yet deleted, at most one per sender. */
typedef struct ref_flight_t {
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *room;
    int n;
} ref_flight_t;

typedef struct ref_thread_t {
    const ref_opts_t *opts;
    ref_flight_t *flight;
    const char *queue_url;
    apr_time_t until;
    int no;
    long sent;
    long received;
    long deleted;
    long errors;
    const char *error;
} ref_thread_t;

static apr_status_t client_make(rq_sqs_t **psqs, const char **pqueue, const char **pwhy,
                                apr_pool_t *p)
{
    rq_aws_conf_t given;
    rq_aws_conf_t conf;
    rq_sqs_opts_t opts;
    apr_status_t rv;

    memset(&given, 0, sizeof(given));
    rv = rq_aws_conf_resolve_ex(&conf, pwhy, p, &given);
    if (rv == APR_SUCCESS) {
        rv = rq_aws_conf_require_queue(pwhy, p, &conf);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }

    memset(&opts, 0, sizeof(opts));
    opts.endpoint = conf.endpoint;
    opts.region = conf.region;
    rv = rq_creds_provider_create_ex(&opts.creds, pwhy, p, &conf, NULL);
    if (rv == APR_SUCCESS) {
        rv = rq_sqs_create(psqs, p, &opts);
    }
    *pqueue = conf.queue_url;
    return rv;
}

static void ref_error(ref_thread_t *t, apr_pool_t *p, const char *what, apr_status_t rv)
{
    t->errors++;
    if (!t->error) {
        t->error = apr_psprintf(p, "%s: %s", what, rq_sqs_strerror(p, rv));
    }
}

static void ref_landed(ref_flight_t *f, int n)
{
    apr_thread_mutex_lock(f->lock);
    f->n -= n;
    apr_thread_cond_broadcast(f->room);
    apr_thread_mutex_unlock(f->lock);
}

/* A sender's turn: one message, as one request sends it. */
static void ref_send(ref_thread_t *t, rq_sqs_t *sqs, apr_pool_t *p, apr_pool_t *perr)
{
    int user = rand() % t->opts->users + 1;
    const char *req = apr_psprintf(p, "ref-t%d-%ld", t->no, t->sent + t->errors);
    const char *group = apr_psprintf(p, "ref-u%d", user);
    const char *body = apr_psprintf(p, "{\"req_id\":\"%s\",\"user_id\":\"%s\"}", req,
                                    group);
    ref_flight_t *f = t->flight;
    rq_sqs_sent_t sent;
    apr_status_t rv;

    apr_thread_mutex_lock(f->lock);
    while (f->n >= t->opts->threads && apr_time_now() < t->until) {
        apr_thread_cond_timedwait(f->room, f->lock, apr_time_from_msec(100));
    }
    f->n++;
    apr_thread_mutex_unlock(f->lock);

    rv = rq_sqs_send(&sent, sqs, p, t->queue_url, body, group, req);
    if (rv != APR_SUCCESS) {
        ref_error(t, perr, "send", rv);
        ref_landed(f, 1);
        return;
    }
    t->sent++;
}

/* A poller's turn: a long poll for up to 10, one batch delete of them. */
static void ref_poll(ref_thread_t *t, rq_sqs_t *sqs, apr_pool_t *p, apr_pool_t *perr)
{
    apr_array_header_t *msgs = NULL;
    apr_array_header_t *ents;
    apr_status_t rv;
    int i;

    rv = rq_sqs_receive(&msgs, sqs, p, t->queue_url, 10, 1, 30, NULL);
    if (rv != APR_SUCCESS) {
        ref_error(t, perr, "receive", rv);
        return;
    }
    t->received += msgs->nelts;
    if (msgs->nelts == 0) {
        return;
    }

    ents = apr_array_make(p, msgs->nelts, sizeof(rq_sqs_entry_t));
    for (i = 0; i < msgs->nelts; i++) {
        const rq_sqs_msg_t *m = &APR_ARRAY_IDX(msgs, i, rq_sqs_msg_t);
        rq_sqs_entry_t *e = apr_array_push(ents);

        memset(e, 0, sizeof(*e));
        e->id = apr_psprintf(p, "d%d", i);
        e->receipt_handle = m->receipt_handle;
    }
    rv = rq_sqs_delete_batch(sqs, p, t->queue_url, ents);
    if (rv != APR_SUCCESS) {
        ref_error(t, perr, "delete", rv);
        return;
    }
    ref_landed(t->flight, ents->nelts);
    for (i = 0; i < ents->nelts; i++) {
        if (APR_ARRAY_IDX(ents, i, rq_sqs_entry_t).status == APR_SUCCESS) {
            t->deleted++;
        }
        else {
            ref_error(t, perr, "delete", APR_ARRAY_IDX(ents, i, rq_sqs_entry_t).status);
        }
    }
}

static void *APR_THREAD_FUNC ref_run(apr_thread_t *thd, void *data)
{
    ref_thread_t *t = data;
    apr_pool_t *p = NULL;
    apr_pool_t *iter = NULL;
    rq_sqs_t *sqs = NULL;
    const char *why = NULL;
    apr_status_t rv;

    apr_pool_create(&p, NULL);
    apr_pool_create(&iter, p);
    rv = client_make(&sqs, &t->queue_url, &why, p);
    if (rv != APR_SUCCESS) {
        t->errors++;
        t->error = strdup(why ? why : "the SQS client could not be made");
        goto out;
    }

    while (apr_time_now() < t->until) {
        if (t->no > t->opts->threads) {
            ref_poll(t, sqs, iter, p);
        }
        else {
            ref_send(t, sqs, iter, p);
        }
        apr_pool_clear(iter);
    }
    if (t->error) {
        t->error = strdup(t->error);
    }

out:
    apr_pool_destroy(p);
    apr_thread_exit(thd, APR_SUCCESS);
    return NULL;
}

static int opts_parse(ref_opts_t *o, int argc, char **argv)
{
    int i;

    o->threads = 64;
    o->pollers = 2;
    o->seconds = 5;
    o->users = 1000;
    for (i = 1; i + 1 < argc; i += 2) {
        int n = atoi(argv[i + 1]);

        if (n < 1 || n > 100000) {
            return 0;
        }
        if (strcmp(argv[i], "--threads") == 0 && n <= 1024) {
            o->threads = n;
        }
        else if (strcmp(argv[i], "--pollers") == 0 && n <= 64) {
            o->pollers = n;
        }
        else if (strcmp(argv[i], "--seconds") == 0 && n <= 600) {
            o->seconds = n;
        }
        else if (strcmp(argv[i], "--users") == 0) {
            o->users = n;
        }
        else {
            return 0;
        }
    }
    return i == argc;
}

int main(int argc, char **argv)
{
    ref_opts_t o;
    ref_thread_t *ts;
    apr_thread_t **thds;
    apr_pool_t *p;
    ref_flight_t flight;
    apr_time_t start;
    long sent = 0, received = 0, deleted = 0, errors = 0;
    const char *error = NULL;
    double seconds;
    json_t *out;
    apr_status_t rv;
    int n;
    int i;

    if (!opts_parse(&o, argc, argv)) {
        fprintf(stderr, "usage: sqs-ref [--threads N] [--pollers N] [--seconds S] [--users U]\n");
        return 2;
    }
    apr_initialize();
    apr_pool_create(&p, NULL);
    rq_log_set_level(RQ_LOG_EMERG);

    memset(&flight, 0, sizeof(flight));
    apr_thread_mutex_create(&flight.lock, APR_THREAD_MUTEX_DEFAULT, p);
    apr_thread_cond_create(&flight.room, p);
    n = o.threads + o.pollers;
    ts = apr_pcalloc(p, sizeof(*ts) * (apr_size_t)n);
    thds = apr_pcalloc(p, sizeof(*thds) * (apr_size_t)n);
    start = apr_time_now();
    for (i = 0; i < n; i++) {
        ts[i].opts = &o;
        ts[i].flight = &flight;
        ts[i].no = i + 1;
        ts[i].until = start + apr_time_from_sec(o.seconds);
        apr_thread_create(&thds[i], NULL, ref_run, &ts[i], p);
    }
    for (i = 0; i < n; i++) {
        apr_thread_join(&rv, thds[i]);
        sent += ts[i].sent;
        received += ts[i].received;
        deleted += ts[i].deleted;
        errors += ts[i].errors;
        error = error ? error : ts[i].error;
    }

    seconds = (double)(apr_time_now() - start) / APR_USEC_PER_SEC;
    out = json_pack("{s:i, s:i, s:f, s:i, s:I, s:I, s:I, s:I, s:f, s:s?}",
                    "threads", o.threads, "pollers", o.pollers, "seconds", seconds,
                    "users", o.users, "sent", (json_int_t)sent,
                    "received", (json_int_t)received, "deleted", (json_int_t)deleted,
                    "errors", (json_int_t)errors, "deleted_per_s", deleted / seconds,
                    "first_error", error);
    json_dumpf(out, stdout, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(6));
    printf("\n");
    json_decref(out);
    apr_pool_destroy(p);
    apr_terminate();
    return errors ? 1 : 0;
}
