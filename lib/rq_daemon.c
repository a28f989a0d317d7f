/*
 * raceqd's core; see rq_daemon.h.
 *
 * Each received message gets a pool of its own (unmanaged: created by a
 * poller, destroyed by the housekeeper) and sits on the in-hand list until
 * it is deleted or handed back. Its state says who owns it next:
 * the scheduler (queued or applying), the housekeeper's delete queue, or
 * its release queue. Only the housekeeper talks to SQS besides the pollers,
 * each thread with a client of its own.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_allocator.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <apr_uuid.h>
#include <jansson.h>

#include "rq_daemon.h"
#include "rq_log.h"
#include "rq_payload.h"
#include "rq_sched.h"
#include "rq_sqs.h"
#include "rq_store.h"
#include "rq_wait.h"

/* Free memory the messages' allocator keeps for the next messages. */
#define MSG_ALLOC_KEEP (8 * 1024 * 1024)

enum { MSG_SCHED, MSG_DELETE, MSG_RELEASE };

typedef struct dmsg_t dmsg_t;

struct dmsg_t {
    apr_pool_t *pool;
    rq_sqs_msg_t m;
    rq_payload_t *pl;      /* NULL when the body is not a request object */
    const char *hash;
    apr_time_t vis_until;
    int state;
    int applied;
    int release_after;     /* seconds of visibility when handed back */
    dmsg_t *prev;          /* in-hand list */
    dmsg_t *next;
    dmsg_t *next_job;      /* delete or release queue */
};

typedef struct job_queue_t {
    dmsg_t *head;
    dmsg_t *tail;
    int n;
} job_queue_t;

struct rq_daemon_t {
    apr_pool_t *pool;
    rq_daemon_conf_t conf;
    rq_aws_conf_t aws;
    rq_creds_provider_t *creds;
    rq_sqs_opts_t sqs_opts;
    rq_store_t *store;
    apr_allocator_t *msg_alloc;  /* shared by the messages' pools */
    rq_wait_server_t *wait;
    rq_sched_t *sched;
    apr_thread_t **pollers;
    apr_thread_t *housekeeper;
    rq_sqs_t *hk_sqs;
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *hk_cond;  /* work for the housekeeper */
    apr_thread_cond_t *room;     /* in_hand went down, or stopping */
    dmsg_t *in_hand;
    job_queue_t deletes;
    job_queue_t releases;
    rq_daemon_stats_t st;
    int stopping;
    int hk_stop;
    int started;
};

static void queue_push(job_queue_t *q, dmsg_t *m)
{
    m->next_job = NULL;
    if (q->tail) {
        q->tail->next_job = m;
    }
    else {
        q->head = m;
    }
    q->tail = m;
    q->n++;
}

/* Takes up to max jobs off a queue, in order; lock held. */
static dmsg_t *queue_take(job_queue_t *q, int max, int *pn)
{
    dmsg_t *first = q->head, *last = NULL, *m = q->head;
    int n = 0;

    while (m && n < max) {
        last = m;
        m = m->next_job;
        n++;
    }
    if (last) {
        last->next_job = NULL;
    }
    q->head = m;
    if (!m) {
        q->tail = NULL;
    }
    q->n -= n;
    *pn = n;
    return first;
}

/* Hands a message to the housekeeper; lock held. */
static void job_add(rq_daemon_t *d, dmsg_t *m, int state)
{
    m->state = state;
    queue_push(state == MSG_DELETE ? &d->deletes : &d->releases, m);
    apr_thread_cond_signal(d->hk_cond);
}

static void msg_forget(rq_daemon_t *d, dmsg_t *m)
{
    apr_thread_mutex_lock(d->lock);
    if (m->prev) {
        m->prev->next = m->next;
    }
    else {
        d->in_hand = m->next;
    }
    if (m->next) {
        m->next->prev = m->prev;
    }
    d->st.in_hand--;
    apr_thread_cond_broadcast(d->room);
    apr_thread_mutex_unlock(d->lock);
    apr_pool_destroy(m->pool);
}

/* ---- applying (scheduler workers) ---- */

static apr_status_t msg_run(void *baton, void *item)
{
    rq_daemon_t *d = baton;
    dmsg_t *m = item;
    rq_apply_t a;
    apr_pool_t *tmp;
    apr_status_t rv = APR_SUCCESS;

    if (!m->pl) {
        apr_thread_mutex_lock(d->lock);
        job_add(d, m, MSG_DELETE);
        apr_thread_mutex_unlock(d->lock);
        return APR_SUCCESS;
    }
    memset(&a, 0, sizeof(a));
    a.payload = m->pl;
    a.seq = m->m.sequence_number;
    a.delay_min = d->conf.delay_min;
    a.delay_max = d->conf.delay_max;
    a.hash = m->hash;
    /* tmp is this worker's: the message is its own until handed on below. */
    apr_pool_create(&tmp, m->pool);
    rv = rq_store_apply_once(d->store, tmp, &a, &m->applied);
    if (rv != APR_SUCCESS) {
        m->release_after = m->m.receive_count < 5 ? 1 << m->m.receive_count : 30;
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, rv, tmp,
                      "RQ09002: applying req_id %s of user %s failed; the user's later "
                      "messages wait, it comes again in %d s",
                      m->pl->req_id, m->pl->user_id, m->release_after);
    }
    apr_pool_destroy(tmp);

    apr_thread_mutex_lock(d->lock);
    if (rv == APR_SUCCESS) {
        m->applied ? d->st.applied++ : d->st.already++;
        job_add(d, m, MSG_DELETE);
    }
    else {
        d->st.failed++;
        job_add(d, m, MSG_RELEASE);
    }
    apr_thread_mutex_unlock(d->lock);
    return rv;
}

static void msg_drop(void *baton, void *item, apr_status_t why)
{
    rq_daemon_t *d = baton;
    dmsg_t *m = item;

    (void)why;
    apr_thread_mutex_lock(d->lock);
    d->st.released++;
    m->release_after = 0;
    job_add(d, m, MSG_RELEASE);
    apr_thread_mutex_unlock(d->lock);
}

/* ---- receiving (pollers) ---- */

static apr_status_t msg_alloc_free(void *data)
{
    apr_allocator_destroy(data);
    return APR_SUCCESS;
}

/*
 * Each message has a pool of its own, made by a poller and destroyed by
 * whichever thread is done with it last. The pools share one allocator,
 * with a mutex, so the memory of messages done is reused rather than mapped
 * and unmapped again for every message; it keeps at most MSG_ALLOC_KEEP
 * bytes free.
 */
static apr_status_t msg_alloc_make(rq_daemon_t *d, apr_pool_t *p)
{
    apr_thread_mutex_t *mutex;
    apr_status_t rv;

    rv = apr_allocator_create(&d->msg_alloc);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_thread_mutex_create(&mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        apr_allocator_destroy(d->msg_alloc);
        return rv;
    }
    apr_allocator_mutex_set(d->msg_alloc, mutex);
    apr_allocator_max_free_set(d->msg_alloc, MSG_ALLOC_KEEP);
    apr_pool_cleanup_register(p, d->msg_alloc, msg_alloc_free, apr_pool_cleanup_null);
    return APR_SUCCESS;
}

static dmsg_t *msg_adopt(rq_daemon_t *d, const rq_sqs_msg_t *src, apr_time_t received)
{
    rq_payload_error_t err;
    apr_pool_t *mp;
    dmsg_t *m;

    apr_pool_create_unmanaged_ex(&mp, NULL, d->msg_alloc);
    m = apr_pcalloc(mp, sizeof(*m));
    m->pool = mp;
    m->m = *src;
    m->m.message_id = apr_pstrdup(mp, src->message_id);
    m->m.receipt_handle = apr_pstrdup(mp, src->receipt_handle);
    m->m.body = apr_pstrdup(mp, src->body ? src->body : "");
    m->m.group_id = apr_pstrdup(mp, src->group_id ? src->group_id : "");
    m->m.dedup_id = apr_pstrdup(mp, src->dedup_id);
    m->m.sequence_number = apr_pstrdup(mp, src->sequence_number);
    m->vis_until = received + apr_time_from_sec(d->conf.visibility_timeout);
    m->hash = rq_wait_hash(mp, m->m.body, strlen(m->m.body));
    if (rq_payload_parse(&m->pl, &err, mp, m->m.body, strlen(m->m.body)) != APR_SUCCESS) {
        m->pl = NULL;
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, 0, mp,
                      "RQ09003: message %s in group %s is not a request object (%s%s%s); "
                      "it is deleted unapplied", m->m.message_id, m->m.group_id,
                      err.field ? err.field : "", err.field ? ": " : "", err.message);
    }
    return m;
}

static void msgs_submit(rq_daemon_t *d, apr_array_header_t *msgs, apr_time_t received)
{
    int i;

    for (i = 0; i < msgs->nelts; i++) {
        dmsg_t *m = msg_adopt(d, &APR_ARRAY_IDX(msgs, i, rq_sqs_msg_t), received);

        apr_thread_mutex_lock(d->lock);
        m->state = MSG_SCHED;
        m->next = d->in_hand;
        if (d->in_hand) {
            d->in_hand->prev = m;
        }
        d->in_hand = m;
        d->st.in_hand++;
        d->st.received++;
        apr_thread_mutex_unlock(d->lock);
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, 0, m->pool,
                      "RQ09004: received message %s group %s seq %s (receive %d)",
                      m->m.message_id, m->m.group_id, m->m.sequence_number,
                      m->m.receive_count);
        /* Submitted in the order of the batch: that is the group's order. */
        rq_sched_submit(d->sched, m->m.group_id, m);
    }
}

/* Sleeps up to t unless stopping; returns non-zero when stopping. */
static int pause_unless_stopping(rq_daemon_t *d, apr_interval_time_t t)
{
    int stopping;

    apr_thread_mutex_lock(d->lock);
    if (!d->stopping) {
        apr_thread_cond_timedwait(d->room, d->lock, t);
    }
    stopping = d->stopping;
    apr_thread_mutex_unlock(d->lock);
    return stopping;
}

/* Waits for room for a whole batch; returns non-zero when stopping. */
static int room_wait(rq_daemon_t *d)
{
    int stopping;

    apr_thread_mutex_lock(d->lock);
    while (!d->stopping && d->st.in_hand + d->conf.max_messages > d->conf.max_in_hand) {
        apr_thread_cond_wait(d->room, d->lock);
    }
    stopping = d->stopping;
    apr_thread_mutex_unlock(d->lock);
    return stopping;
}

static apr_interval_time_t retry_pause(rq_daemon_t *d, int failures)
{
    apr_interval_time_t cap = apr_time_from_msec(200);

    while (failures-- > 1 && cap < d->conf.retry_max) {
        cap *= 2;
    }
    if (cap > d->conf.retry_max) {
        cap = d->conf.retry_max;
    }
    return cap / 2 + (apr_interval_time_t)(random() % (cap / 2 + 1));
}

static void poll_failed(rq_daemon_t *d, rq_sqs_t *sqs, apr_pool_t *it, apr_status_t rv,
                        int failures)
{
    const rq_sqs_error_t *e = rq_sqs_error(sqs);
    int level = failures == 1 || failures % 30 == 0 ? RQ_LOG_ERR : RQ_LOG_DEBUG;

    apr_thread_mutex_lock(d->lock);
    d->st.poll_errors++;
    apr_thread_mutex_unlock(d->lock);
    rq_log_perror(RQ_LOG_MARK, level, rv, it,
                  "RQ09005: receiving from %s failed (%d in a row%s%s); retrying",
                  d->aws.queue_url, failures, e && e->message ? ": " : "",
                  e && e->message ? e->message : "");
}

/*
 * An empty receive that came back in under a second (--wait-seconds 0, or a
 * server that does not hold long polls) is followed by a pause that makes
 * the round a second: an idle queue is not asked thousands of times a second.
 */
static void empty_pause(rq_daemon_t *d, apr_time_t began)
{
    apr_interval_time_t took = apr_time_now() - began;

    if (took >= 0 && took < apr_time_from_sec(1)) {
        pause_unless_stopping(d, apr_time_from_sec(1) - took);
    }
}

typedef struct poller_t {
    rq_daemon_t *d;
    apr_pool_t *pool;
    rq_sqs_t *sqs;
} poller_t;

static void *APR_THREAD_FUNC poller_main(apr_thread_t *t, void *data)
{
    poller_t *pl = data;
    rq_daemon_t *d = pl->d;
    apr_pool_t *it;
    int failures = 0;

    apr_pool_create(&it, pl->pool);
    while (!room_wait(d)) {
        apr_array_header_t *msgs = NULL;
        char attempt[APR_UUID_FORMATTED_LENGTH + 1];
        apr_uuid_t uuid;
        apr_time_t began = apr_time_now();
        apr_status_t rv;

        apr_pool_clear(it);
        apr_uuid_get(&uuid);
        apr_uuid_format(attempt, &uuid);
        rv = rq_sqs_receive(&msgs, pl->sqs, it, d->aws.queue_url, d->conf.max_messages,
                            d->conf.wait_seconds, d->conf.visibility_timeout, attempt);
        if (rv != APR_SUCCESS) {
            poll_failed(d, pl->sqs, it, rv, ++failures);
            pause_unless_stopping(d, retry_pause(d, failures));
            continue;
        }
        if (failures > 0) {
            rq_log_perror(RQ_LOG_MARK, RQ_LOG_NOTICE, 0, it,
                          "RQ09006: receiving from %s works again after %d failures",
                          d->aws.queue_url, failures);
            failures = 0;
        }
        msgs_submit(d, msgs, apr_time_now());
        if (msgs->nelts == 0) {
            empty_pause(d, began);
        }
    }
    apr_pool_destroy(it);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* ---- housekeeping: delete, wake, hand back, extend ---- */

static apr_array_header_t *entries_make(apr_pool_t *p, dmsg_t *list, int vis)
{
    apr_array_header_t *a = apr_array_make(p, 10, sizeof(rq_sqs_entry_t));
    int i = 0;

    for (; list; list = list->next_job, i++) {
        rq_sqs_entry_t *e = apr_array_push(a);

        memset(e, 0, sizeof(*e));
        e->id = apr_itoa(p, i);
        e->receipt_handle = list->m.receipt_handle;
        e->visibility_timeout = vis >= 0 ? vis : list->release_after;
    }
    return a;
}

/* SQS's reason for a failed delete: the entry's own, else the call's. */
static const char *delete_cause(rq_daemon_t *d, apr_pool_t *p, apr_status_t rv,
                                const rq_sqs_entry_t *e)
{
    const rq_sqs_error_t *err = rq_sqs_error(d->hk_sqs);
    const char *type = NULL, *msg = NULL;

    if ((rv == APR_SUCCESS || rv == RQ_SQS_EPARTIAL) && (e->error_code || e->error_message)) {
        type = e->error_code;
        msg = e->error_message;
    }
    else if (err) {
        type = err->type ? err->type : err->code;
        msg = err->message;
    }
    if (!type && !msg) {
        return "no reason given";
    }
    return apr_pstrcat(p, type ? type : "", type && msg ? ": " : "", msg ? msg : "", NULL);
}

static void deletes_run(rq_daemon_t *d, apr_pool_t *p, dmsg_t *list, int n)
{
    apr_array_header_t *ents = entries_make(p, list, -1);
    apr_status_t rv;
    int i = 0, failed = 0;

    if (n == 1) {
        rv = rq_sqs_delete(d->hk_sqs, p, d->aws.queue_url, list->m.receipt_handle);
        APR_ARRAY_IDX(ents, 0, rq_sqs_entry_t).status = rv;
    }
    else {
        rv = rq_sqs_delete_batch(d->hk_sqs, p, d->aws.queue_url, ents);
    }
    while (list) {
        dmsg_t *next = list->next_job;
        apr_status_t erv = rv;

        if (rv == APR_SUCCESS || rv == RQ_SQS_EPARTIAL) {
            erv = APR_ARRAY_IDX(ents, i, rq_sqs_entry_t).status;
        }
        if (erv != APR_SUCCESS) {
            failed++;
            rq_log_perror(RQ_LOG_MARK, RQ_LOG_WARNING, erv, p,
                          "RQ09007: deleting message %s failed (%s); it may come again and "
                          "will then only be deleted", list->m.message_id,
                          delete_cause(d, p, rv, &APR_ARRAY_IDX(ents, i, rq_sqs_entry_t)));
        }
        /* The write is done either way: the waiters get their answer. */
        if (list->pl) {
            rq_wait_server_done(d->wait, list->pl->req_id, list->hash,
                                list->m.sequence_number, list->applied);
        }
        msg_forget(d, list);
        list = next;
        i++;
    }
    apr_thread_mutex_lock(d->lock);
    d->st.deleted += n - failed;
    d->st.delete_failed += failed;
    apr_thread_mutex_unlock(d->lock);
}

static void releases_run(rq_daemon_t *d, apr_pool_t *p, dmsg_t *list)
{
    apr_array_header_t *ents = entries_make(p, list, -1);
    apr_status_t rv;

    rv = rq_sqs_change_visibility_batch(d->hk_sqs, p, d->aws.queue_url, ents);
    if (rv != APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_WARNING, rv, p,
                      "RQ09008: handing messages back to the queue failed; they come "
                      "again when their visibility timeout ends");
    }
    while (list) {
        dmsg_t *next = list->next_job;

        msg_forget(d, list);
        list = next;
    }
}

/* Collects up to 10 messages in the scheduler whose visibility ends soon; lock held. */
static int extend_collect(rq_daemon_t *d, dmsg_t **out, apr_time_t now)
{
    apr_interval_time_t margin = apr_time_from_sec(d->conf.visibility_timeout) / 3;
    dmsg_t *m;
    int n = 0;

    for (m = d->in_hand; m && n < 10; m = m->next) {
        if (m->state == MSG_SCHED && m->vis_until - now < margin) {
            out[n++] = m;
            m->vis_until = now + apr_time_from_sec(d->conf.visibility_timeout);
        }
    }
    return n;
}

/* Extends visibility in batches of 10; messages are pinned by MSG_SCHED. */
static void extend_run(rq_daemon_t *d, apr_pool_t *p)
{
    dmsg_t *batch[10];
    int n, i, rounds = 0;

    do {
        apr_array_header_t *ents = apr_array_make(p, 10, sizeof(rq_sqs_entry_t));
        apr_status_t rv;

        apr_thread_mutex_lock(d->lock);
        n = extend_collect(d, batch, apr_time_now());
        for (i = 0; i < n; i++) {
            rq_sqs_entry_t *e = apr_array_push(ents);

            memset(e, 0, sizeof(*e));
            e->id = apr_itoa(p, i);
            e->receipt_handle = apr_pstrdup(p, batch[i]->m.receipt_handle);
            e->visibility_timeout = d->conf.visibility_timeout;
        }
        d->st.extended += n;
        apr_thread_mutex_unlock(d->lock);
        if (n == 0) {
            break;
        }
        rv = rq_sqs_change_visibility_batch(d->hk_sqs, p, d->aws.queue_url, ents);
        if (rv != APR_SUCCESS) {
            rq_log_perror(RQ_LOG_MARK, RQ_LOG_WARNING, rv, p,
                          "RQ09009: extending the visibility of %d messages failed", n);
        }
    } while (n == 10 && ++rounds < 100);
}

static void *APR_THREAD_FUNC housekeeper_main(apr_thread_t *t, void *data)
{
    rq_daemon_t *d = data;
    apr_time_t last_extend = 0;
    apr_pool_t *it;

    /* Not a subpool of d->pool: the main thread still uses that one. */
    apr_pool_create_unmanaged_ex(&it, NULL, NULL);
    apr_thread_mutex_lock(d->lock);
    for (;;) {
        dmsg_t *list;
        int n, release;

        if (!d->deletes.n && !d->releases.n) {
            if (d->hk_stop && d->st.in_hand == 0) {
                break;
            }
            apr_thread_cond_timedwait(d->hk_cond, d->lock, apr_time_from_msec(500));
        }
        release = d->deletes.n == 0 && d->releases.n > 0;
        list = queue_take(release ? &d->releases : &d->deletes, 10, &n);
        apr_thread_mutex_unlock(d->lock);

        apr_pool_clear(it);
        if (n > 0 && release) {
            releases_run(d, it, list);
        }
        else if (n > 0) {
            deletes_run(d, it, list, n);
        }
        if (apr_time_now() - last_extend >= apr_time_from_sec(1)) {
            last_extend = apr_time_now();
            extend_run(d, it);
        }
        apr_thread_mutex_lock(d->lock);
    }
    apr_thread_mutex_unlock(d->lock);
    apr_pool_destroy(it);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* ---- the wait server's memory after a restart ---- */

/* Finds req_id in the store, by itself: applied before this daemon started. */
static apr_status_t store_lookup(rq_wait_found_t *pfound, void *baton, apr_pool_t *p,
                                 const char *req_id)
{
    rq_daemon_t *d = baton;
    rq_store_record_t rec;
    apr_status_t rv;

    rv = rq_store_lookup(&rec, d->store, p, req_id);
    if (rv != APR_SUCCESS) {
        return APR_NOTFOUND;
    }
    pfound->user_id = rec.user_id;
    pfound->seq = rec.seq;
    pfound->hash = rec.hash;
    pfound->applied = rec.applied;
    return APR_SUCCESS;
}

/* ---- life cycle ---- */

void rq_daemon_conf_default(rq_daemon_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->socket_uid = -1;
    c->socket_gid = -1;
    c->socket_mode = 0660;
    c->workers = 8;
    c->pollers = 1;
    c->max_messages = 10;
    c->wait_seconds = 20;
    c->visibility_timeout = 30;
    c->max_in_hand = 200;
    c->delay_min = apr_time_from_msec(1);
    c->delay_max = apr_time_from_msec(200);
    c->remember = apr_time_from_sec(600);
    c->remember_max = 200000;
    c->retry_max = apr_time_from_sec(5);
    c->max_connections = 4096;
    c->register_timeout = apr_time_from_sec(5);
}

const char *rq_daemon_conf_check(apr_pool_t *p, const rq_daemon_conf_t *c)
{
    if (!c->socket_path || !*c->socket_path) {
        return "no wait channel socket is set (--socket)";
    }
    if (c->workers < 1 || c->workers > 1024) {
        return apr_psprintf(p, "workers must be 1 to 1024, not %d", c->workers);
    }
    if (c->pollers < 1 || c->pollers > 64) {
        return apr_psprintf(p, "pollers must be 1 to 64, not %d", c->pollers);
    }
    if (c->max_messages < 1 || c->max_messages > 10) {
        return apr_psprintf(p, "messages per receive must be 1 to 10, not %d",
                            c->max_messages);
    }
    if (c->wait_seconds < 0 || c->wait_seconds > 20) {
        return apr_psprintf(p, "wait seconds must be 0 to 20, not %d", c->wait_seconds);
    }
    if (c->visibility_timeout < 3 || c->visibility_timeout > 43200) {
        return apr_psprintf(p, "visibility timeout must be 3 to 43200 s, not %d",
                            c->visibility_timeout);
    }
    if (c->delay_min < 0 || c->delay_max < c->delay_min) {
        return "apply delay: MIN must be >= 0 and MAX >= MIN";
    }
    if (c->max_connections < 1 || c->max_connections > 1000000) {
        return apr_psprintf(p, "--max-connections must be 1 to 1000000, not %d",
                            c->max_connections);
    }
    if (c->register_timeout < apr_time_from_sec(1)) {
        return "--register-timeout must be at least 1 s";
    }
    if (c->max_in_hand < c->max_messages) {
        return apr_psprintf(p, "--max-in-hand (%d) must be at least --max-messages (%d), "
                            "or nothing is ever received", c->max_in_hand,
                            c->max_messages);
    }
    if (c->remember < apr_time_from_sec(300)) {
        return apr_psprintf(p, "--remember must be at least 300 s (SQS's 5-minute "
                            "deduplication window), not %" APR_TIME_T_FMT " s",
                            apr_time_sec(c->remember));
    }
    return NULL;
}

static apr_status_t aws_setup(rq_daemon_t *d, const char **perr, apr_pool_t *p)
{
    apr_pool_t *cp;
    apr_status_t rv;

    rv = rq_aws_conf_resolve_ex(&d->aws, perr, p, &d->conf.aws);
    if (rv == APR_SUCCESS) {
        rv = rq_aws_conf_require_queue(perr, p, &d->aws);
    }
    if (rv == APR_SUCCESS) {
        apr_pool_create(&cp, p); /* the provider's own: no other thread uses it */
        rv = rq_creds_provider_create_ex(&d->creds, perr, cp, &d->aws, NULL);
    }
    memset(&d->sqs_opts, 0, sizeof(d->sqs_opts));
    d->sqs_opts.endpoint = d->aws.endpoint;
    d->sqs_opts.region = d->aws.region;
    d->sqs_opts.creds = d->creds;
    d->sqs_opts.timeout = d->conf.sqs_timeout;
    return rv;
}

static apr_status_t wait_setup(rq_daemon_t *d, const char **perr, apr_pool_t *p)
{
    rq_wait_server_opts_t wo;
    apr_status_t rv;

    memset(&wo, 0, sizeof(wo));
    wo.path = d->conf.socket_path;
    wo.mode = d->conf.socket_mode;
    wo.uid = d->conf.socket_uid;
    wo.gid = d->conf.socket_gid;
    wo.remember = d->conf.remember;
    wo.remember_max = d->conf.remember_max;
    wo.max_conns = d->conf.max_connections;
    wo.register_timeout = d->conf.register_timeout;
    wo.lookup = store_lookup;
    wo.lookup_baton = d;
    rv = rq_wait_server_create(&d->wait, p, &wo);
    if (rv != APR_SUCCESS) {
        char buf[256];

        *perr = apr_psprintf(p, "the wait channel socket %s cannot be created: %s%s",
                             d->conf.socket_path, apr_strerror(rv, buf, sizeof(buf)),
                             APR_STATUS_IS_EEXIST(rv) ? " (a file that is not a socket "
                             "is in the way)" : "");
    }
    return rv;
}

apr_status_t rq_daemon_create(rq_daemon_t **pd, const char **perr, apr_pool_t *p,
                              const rq_daemon_conf_t *conf)
{
    rq_daemon_t *d = apr_pcalloc(p, sizeof(*d));
    const char *driver, *params;
    apr_status_t rv;

    d->pool = p;
    d->conf = *conf;
    *perr = rq_daemon_conf_check(p, conf);
    if (*perr) {
        return APR_EINVAL;
    }
    rv = aws_setup(d, perr, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }

    driver = conf->store_driver ? conf->store_driver : RQ_STORE_DEFAULT_DRIVER;
    params = conf->store_params ? conf->store_params : RQ_STORE_DEFAULT_PARAMS;
    rv = rq_store_open(&d->store, p, driver, params);
    if (rv != APR_SUCCESS) {
        *perr = apr_psprintf(p, "the store \"%s %s\" cannot be opened (--store)", driver,
                             params);
        return rv;
    }
    rv = wait_setup(d, perr, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }

    rv = msg_alloc_make(d, p);
    if (rv != APR_SUCCESS) {
        *perr = "out of memory";
        return rv;
    }
    apr_thread_mutex_create(&d->lock, APR_THREAD_MUTEX_DEFAULT, p);
    apr_thread_cond_create(&d->hk_cond, p);
    apr_thread_cond_create(&d->room, p);
    rv = rq_sqs_create(&d->hk_sqs, p, &d->sqs_opts);
    if (rv != APR_SUCCESS) {
        *perr = "the SQS client cannot be created";
        return rv;
    }
    *pd = d;
    return APR_SUCCESS;
}

static apr_status_t pollers_start(rq_daemon_t *d)
{
    apr_status_t rv = APR_SUCCESS;
    int i;

    d->pollers = apr_pcalloc(d->pool, sizeof(apr_thread_t *) * d->conf.pollers);
    for (i = 0; rv == APR_SUCCESS && i < d->conf.pollers; i++) {
        poller_t *pl = apr_pcalloc(d->pool, sizeof(*pl));

        pl->d = d;
        apr_pool_create(&pl->pool, d->pool);
        rv = rq_sqs_create(&pl->sqs, pl->pool, &d->sqs_opts);
        if (rv == APR_SUCCESS) {
            rv = apr_thread_create(&d->pollers[i], NULL, poller_main, pl, d->pool);
        }
    }
    return rv;
}

apr_status_t rq_daemon_start(rq_daemon_t *d)
{
    rq_sched_opts_t so;
    apr_status_t rv;

    memset(&so, 0, sizeof(so));
    so.workers = d->conf.workers;
    so.run = msg_run;
    so.drop = msg_drop;
    so.baton = d;
    rv = rq_sched_create(&d->sched, d->pool, &so);
    if (rv == APR_SUCCESS) {
        rv = rq_wait_server_start(d->wait);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&d->housekeeper, NULL, housekeeper_main, d, d->pool);
    }
    if (rv == APR_SUCCESS) {
        rv = pollers_start(d);
    }
    if (rv == APR_SUCCESS) {
        d->started = 1;
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_NOTICE, 0, d->pool,
                      "RQ09010: receiving from %s (endpoint %s, region %s); %d workers, "
                      "wait channel %s", d->aws.queue_url, d->aws.endpoint, d->aws.region,
                      d->conf.workers, d->conf.socket_path);
    }
    return rv;
}

void rq_daemon_stop(rq_daemon_t *d)
{
    apr_status_t trv;
    int i;

    apr_thread_mutex_lock(d->lock);
    d->stopping = 1;
    apr_thread_cond_broadcast(d->room);
    apr_thread_mutex_unlock(d->lock);
    for (i = 0; d->pollers && i < d->conf.pollers; i++) {
        if (d->pollers[i]) {
            apr_thread_join(&trv, d->pollers[i]);
        }
    }
    if (d->sched) {
        rq_sched_destroy(d->sched); /* applies what is queued */
    }

    apr_thread_mutex_lock(d->lock);
    d->hk_stop = 1;
    apr_thread_cond_signal(d->hk_cond);
    apr_thread_mutex_unlock(d->lock);
    if (d->housekeeper) {
        apr_thread_join(&trv, d->housekeeper);
    }
    rq_wait_server_stop(d->wait);
    rq_log_perror(RQ_LOG_MARK, RQ_LOG_NOTICE, 0, d->pool,
                  "RQ09011: stopped: %ld received, %ld applied, %ld already applied, "
                  "%ld deleted, %ld failed, %ld handed back", d->st.received, d->st.applied,
                  d->st.already, d->st.deleted, d->st.failed, d->st.released);
}

void rq_daemon_stats(rq_daemon_stats_t *st, rq_daemon_t *d)
{
    apr_thread_mutex_lock(d->lock);
    *st = d->st;
    apr_thread_mutex_unlock(d->lock);
}
