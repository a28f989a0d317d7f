/*
 * The reference client of the throughput benchmark: what the queue allows
 * for the calls fifo mode makes, without httpd, raceqd or the store. Each
 * thread loops: send one message (group = a user drawn from the pool,
 * deduplication id unique), receive up to 10 and delete each one received.
 * It uses the same SQS client as mod_raceq and raceqd, one per thread.
 *
 *   sqs-ref --threads 64 --seconds 5 --users 1000
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
#include <apr_thread_proc.h>
#include <apr_time.h>
#include <jansson.h>

#include "rq_creds.h"
#include "rq_log.h"
#include "rq_sqs.h"

typedef struct ref_opts_t {
    int threads;
    int seconds;
    int users;
} ref_opts_t;

typedef struct ref_thread_t {
    const ref_opts_t *opts;
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

/* One turn: a send, a receive, a delete per message received. */
static void ref_turn(ref_thread_t *t, rq_sqs_t *sqs, apr_pool_t *p, apr_pool_t *perr)
{
    int user = rand() % t->opts->users + 1;
    const char *req = apr_psprintf(p, "ref-t%d-%ld", t->no, t->sent + t->errors);
    const char *group = apr_psprintf(p, "ref-u%d", user);
    const char *body = apr_psprintf(p, "{\"req_id\":\"%s\",\"user_id\":\"%s\"}", req, group);
    apr_array_header_t *msgs = NULL;
    rq_sqs_sent_t sent;
    apr_status_t rv;
    int i;

    rv = rq_sqs_send(&sent, sqs, p, t->queue_url, body, group, req);
    if (rv != APR_SUCCESS) {
        ref_error(t, perr, "send", rv);
        return;
    }
    t->sent++;

    rv = rq_sqs_receive(&msgs, sqs, p, t->queue_url, 10, 0, 30, NULL);
    if (rv != APR_SUCCESS) {
        ref_error(t, perr, "receive", rv);
        return;
    }
    t->received += msgs->nelts;

    for (i = 0; i < msgs->nelts; i++) {
        const rq_sqs_msg_t *m = &APR_ARRAY_IDX(msgs, i, rq_sqs_msg_t);

        rv = rq_sqs_delete(sqs, p, t->queue_url, m->receipt_handle);
        if (rv != APR_SUCCESS) {
            ref_error(t, perr, "delete", rv);
            continue;
        }
        t->deleted++;
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
        ref_turn(t, sqs, iter, p);
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
    apr_time_t start;
    long sent = 0, received = 0, deleted = 0, errors = 0;
    const char *error = NULL;
    double seconds;
    json_t *out;
    apr_status_t rv;
    int i;

    if (!opts_parse(&o, argc, argv)) {
        fprintf(stderr, "usage: sqs-ref [--threads N] [--seconds S] [--users U]\n");
        return 2;
    }
    apr_initialize();
    apr_pool_create(&p, NULL);
    rq_log_set_level(RQ_LOG_EMERG);

    ts = apr_pcalloc(p, sizeof(*ts) * (apr_size_t)o.threads);
    thds = apr_pcalloc(p, sizeof(*thds) * (apr_size_t)o.threads);
    start = apr_time_now();
    for (i = 0; i < o.threads; i++) {
        ts[i].opts = &o;
        ts[i].no = i + 1;
        ts[i].until = start + apr_time_from_sec(o.seconds);
        apr_thread_create(&thds[i], NULL, ref_run, &ts[i], p);
    }
    for (i = 0; i < o.threads; i++) {
        apr_thread_join(&rv, thds[i]);
        sent += ts[i].sent;
        received += ts[i].received;
        deleted += ts[i].deleted;
        errors += ts[i].errors;
        error = error ? error : ts[i].error;
    }

    seconds = (double)(apr_time_now() - start) / APR_USEC_PER_SEC;
    out = json_pack("{s:i, s:f, s:i, s:I, s:I, s:I, s:I, s:f, s:s?}", "threads", o.threads,
                    "seconds", seconds, "users", o.users, "sent", (json_int_t)sent,
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
