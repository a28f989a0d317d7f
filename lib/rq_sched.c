/*
 * Per-group ordered dispatch; see rq_sched.h.
 *
 * A group exists while it has items queued or running. It sits on the ready
 * list only when it has items and none is running, so a worker that takes a
 * group from that list is the only one running it. Groups and items are
 * malloc'd and freed as they empty, so memory follows the work in hand.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_hash.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include "rq_log.h"
#include "rq_sched.h"

typedef struct sched_item_t sched_item_t;
typedef struct sched_group_t sched_group_t;

struct sched_item_t {
    void *data;
    sched_item_t *next;
};

struct sched_group_t {
    char *key;
    sched_item_t *head;
    sched_item_t *tail;
    int running;
    sched_group_t *next_ready;
};

struct rq_sched_t {
    rq_sched_opts_t opts;
    apr_pool_t *pool;
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *work;    /* a group became ready, or stopping */
    apr_thread_cond_t *idle;    /* pending went down */
    apr_hash_t *groups;
    sched_group_t *ready_head;
    sched_group_t *ready_tail;
    apr_thread_t **threads;
    int pending;
    int stopping;
    int stopped;
};

static void ready_push(rq_sched_t *s, sched_group_t *g)
{
    g->next_ready = NULL;
    if (s->ready_tail) {
        s->ready_tail->next_ready = g;
    }
    else {
        s->ready_head = g;
    }
    s->ready_tail = g;
    apr_thread_cond_signal(s->work);
}

static sched_group_t *ready_pop(rq_sched_t *s)
{
    sched_group_t *g = s->ready_head;

    if (g) {
        s->ready_head = g->next_ready;
        if (!s->ready_head) {
            s->ready_tail = NULL;
        }
        g->next_ready = NULL;
    }
    return g;
}

static sched_item_t *group_shift(sched_group_t *g)
{
    sched_item_t *it = g->head;

    if (it) {
        g->head = it->next;
        if (!g->head) {
            g->tail = NULL;
        }
    }
    return it;
}

static void group_free(rq_sched_t *s, sched_group_t *g)
{
    apr_hash_set(s->groups, g->key, APR_HASH_KEY_STRING, NULL);
    free(g->key);
    free(g);
}

apr_status_t rq_sched_submit(rq_sched_t *s, const char *group, void *data)
{
    sched_item_t *it = calloc(1, sizeof(*it));
    sched_group_t *g;

    if (!it) {
        return APR_ENOMEM;
    }
    it->data = data;
    apr_thread_mutex_lock(s->lock);
    g = apr_hash_get(s->groups, group, APR_HASH_KEY_STRING);
    if (!g) {
        g = calloc(1, sizeof(*g));
        if (!g || !(g->key = strdup(group))) {
            free(g);
            free(it);
            apr_thread_mutex_unlock(s->lock);
            return APR_ENOMEM;
        }
        apr_hash_set(s->groups, g->key, APR_HASH_KEY_STRING, g);
    }
    if (g->tail) {
        g->tail->next = it;
    }
    else {
        g->head = it;
    }
    g->tail = it;
    s->pending++;
    if (!g->running && g->head == it) {
        ready_push(s, g);
    }
    apr_thread_mutex_unlock(s->lock);
    return APR_SUCCESS;
}

/* Hands the rest of a failed group to the drop callback, in order. */
static void group_stop(rq_sched_t *s, sched_group_t *g, apr_status_t why)
{
    sched_item_t *rest = g->head;

    g->head = g->tail = NULL;
    group_free(s, g);
    while (rest) {
        sched_item_t *next = rest->next;

        apr_thread_mutex_unlock(s->lock);
        if (s->opts.drop) {
            s->opts.drop(s->opts.baton, rest->data, why);
        }
        apr_thread_mutex_lock(s->lock);
        s->pending--;
        apr_thread_cond_broadcast(s->idle);
        free(rest);
        rest = next;
    }
}

/* Runs the head item of a group taken from the ready list; lock held. */
static void group_step(rq_sched_t *s, sched_group_t *g)
{
    sched_item_t *it = group_shift(g);
    apr_status_t rv;

    g->running = 1;
    apr_thread_mutex_unlock(s->lock);
    rv = s->opts.run(s->opts.baton, it->data);
    free(it);
    apr_thread_mutex_lock(s->lock);
    g->running = 0;
    s->pending--;
    apr_thread_cond_broadcast(s->idle);

    if (rv != APR_SUCCESS) {
        group_stop(s, g, rv);
    }
    else if (g->head) {
        ready_push(s, g);
    }
    else {
        group_free(s, g);
    }
}

static void *APR_THREAD_FUNC worker_main(apr_thread_t *t, void *data)
{
    rq_sched_t *s = data;

    apr_thread_mutex_lock(s->lock);
    for (;;) {
        sched_group_t *g = ready_pop(s);

        if (g) {
            group_step(s, g);
            continue;
        }
        if (s->stopping && s->pending == 0) {
            break;
        }
        apr_thread_cond_wait(s->work, s->lock);
    }
    apr_thread_cond_broadcast(s->work);
    apr_thread_mutex_unlock(s->lock);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

int rq_sched_pending(rq_sched_t *s)
{
    int n;

    apr_thread_mutex_lock(s->lock);
    n = s->pending;
    apr_thread_mutex_unlock(s->lock);
    return n;
}

apr_status_t rq_sched_wait_below(rq_sched_t *s, int n, apr_interval_time_t timeout)
{
    apr_time_t until = apr_time_now() + timeout;
    apr_status_t rv = APR_SUCCESS;

    apr_thread_mutex_lock(s->lock);
    while (s->pending >= n) {
        apr_interval_time_t left = until - apr_time_now();

        if (left <= 0) {
            rv = APR_TIMEUP;
            break;
        }
        apr_thread_cond_timedwait(s->idle, s->lock, left);
    }
    apr_thread_mutex_unlock(s->lock);
    return rv;
}

void rq_sched_drain(rq_sched_t *s)
{
    apr_thread_mutex_lock(s->lock);
    while (s->pending > 0) {
        apr_thread_cond_wait(s->idle, s->lock);
    }
    apr_thread_mutex_unlock(s->lock);
}

void rq_sched_destroy(rq_sched_t *s)
{
    apr_status_t trv;
    int i;

    if (s->stopped) {
        return;
    }
    s->stopped = 1;
    apr_thread_mutex_lock(s->lock);
    s->stopping = 1;
    apr_thread_cond_broadcast(s->work);
    apr_thread_mutex_unlock(s->lock);
    for (i = 0; i < s->opts.workers; i++) {
        if (s->threads[i]) {
            apr_thread_join(&trv, s->threads[i]);
        }
    }
}

static apr_status_t sched_cleanup(void *data)
{
    rq_sched_destroy(data);
    return APR_SUCCESS;
}

apr_status_t rq_sched_create(rq_sched_t **psched, apr_pool_t *p, const rq_sched_opts_t *opts)
{
    rq_sched_t *s = apr_pcalloc(p, sizeof(*s));
    apr_status_t rv;
    int i;

    s->opts = *opts;
    s->opts.workers = opts->workers > 0 ? opts->workers : 4;
    s->pool = p;
    s->groups = apr_hash_make(p);
    s->threads = apr_pcalloc(p, sizeof(*s->threads) * s->opts.workers);
    rv = apr_thread_mutex_create(&s->lock, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_cond_create(&s->work, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_cond_create(&s->idle, p);
    }
    for (i = 0; rv == APR_SUCCESS && i < s->opts.workers; i++) {
        rv = apr_thread_create(&s->threads[i], NULL, worker_main, s, p);
    }
    apr_pool_cleanup_register(p, s, sched_cleanup, apr_pool_cleanup_null);
    if (rv != APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, rv, p,
                      "RQ09001: could not start %d worker threads", s->opts.workers);
        return rv;
    }
    *psched = s;
    return APR_SUCCESS;
}
