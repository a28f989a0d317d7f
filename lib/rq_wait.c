/*
 * The wait channel: framing, the blocking client and the server that
 * remembers outcomes and wakes waiters. See rq_wait.h for the protocol.
 *
 * The server runs one thread around a pollset; connections are
 * non-blocking and owned by that thread. Other threads (the daemon's
 * workers) only write the final frame to a waiter, under the server lock;
 * frames are a few hundred bytes and a client has at most two outstanding,
 * so a write that does not complete at once means a broken peer, which is
 * then shut down rather than buffered for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_hash.h>
#include <apr_poll.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "rq_log.h"
#include "rq_wait.h"

/* ---- frames ---- */

const char *rq_wait_hash(apr_pool_t *p, const char *body, apr_size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *hex;
    unsigned int i;

    if (!EVP_Digest(body, len, md, &mdlen, EVP_sha256(), NULL)) {
        return NULL;
    }
    hex = apr_palloc(p, mdlen * 2 + 1);
    for (i = 0; i < mdlen; i++) {
        apr_snprintf(hex + i * 2, 3, "%02x", md[i]);
    }
    return hex;
}

int rq_wait_id_valid(const char *id)
{
    apr_size_t n = 0;

    if (!id) {
        return 0;
    }
    for (; *id; id++, n++) {
        if (*id < '!' || *id > '~' || n >= 128) {
            return 0;
        }
    }
    return n > 0;
}

static int hash_valid(const char *h)
{
    apr_size_t n = 0;

    for (; h && *h; h++, n++) {
        if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f'))) {
            return 0;
        }
    }
    return h && n == RQ_WAIT_HASH_LEN;
}

static int seq_valid(const char *s)
{
    apr_size_t n = 0;

    for (; s && *s; s++, n++) {
        if (*s < '0' || *s > '9' || n >= 128) {
            return 0;
        }
    }
    return s && n > 0;
}

static json_t *msg_to_json(const rq_wait_msg_t *m)
{
    json_t *o = json_object();

    if (m->req_id) {
        json_object_set_new(o, "req_id", json_string(m->req_id));
    }
    if (m->user_id) {
        json_object_set_new(o, "user_id", json_string(m->user_id));
    }
    if (m->hash) {
        json_object_set_new(o, "hash", json_string(m->hash));
    }
    if (m->type == RQ_WAIT_DONE || m->type == RQ_WAIT_SENT) {
        json_object_set_new(o, "seq", m->seq ? json_string(m->seq) : json_null());
    }
    if (m->type == RQ_WAIT_DONE) {
        json_object_set_new(o, "applied", json_boolean(m->applied));
    }
    if (m->message) {
        json_object_set_new(o, "message", json_string(m->message));
    }
    return o;
}

/* Builds a whole frame in malloc'd memory; usable from any thread. */
static apr_status_t frame_build(char **pbuf, apr_size_t *plen, const rq_wait_msg_t *m)
{
    json_t *o = msg_to_json(m);
    char *payload = json_dumps(o, JSON_COMPACT);
    apr_size_t n;
    char *buf;

    json_decref(o);
    if (!payload) {
        return APR_ENOMEM;
    }
    n = strlen(payload);
    if (n > RQ_WAIT_FRAME_MAX || m->type < RQ_WAIT_REGISTER || m->type > RQ_WAIT_ERROR) {
        free(payload);
        return RQ_WAIT_EBADFRAME;
    }
    buf = malloc(RQ_WAIT_HEADER_LEN + n);
    if (!buf) {
        free(payload);
        return APR_ENOMEM;
    }
    buf[0] = 'R';
    buf[1] = 'Q';
    buf[2] = RQ_WAIT_VERSION;
    buf[3] = (char)m->type;
    buf[4] = (char)((n >> 24) & 0xff);
    buf[5] = (char)((n >> 16) & 0xff);
    buf[6] = (char)((n >> 8) & 0xff);
    buf[7] = (char)(n & 0xff);
    memcpy(buf + RQ_WAIT_HEADER_LEN, payload, n);
    free(payload);
    *pbuf = buf;
    *plen = RQ_WAIT_HEADER_LEN + n;
    return APR_SUCCESS;
}

apr_status_t rq_wait_encode(char **pbuf, apr_size_t *plen, apr_pool_t *p, const rq_wait_msg_t *msg)
{
    char *raw;
    apr_status_t rv;

    rv = frame_build(&raw, plen, msg);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    *pbuf = apr_pmemdup(p, raw, *plen);
    free(raw);
    return APR_SUCCESS;
}

apr_status_t rq_wait_header_parse(int *ptype, apr_size_t *plen, const char **pwhy,
                                  const unsigned char *hdr)
{
    const char *why = NULL;
    apr_size_t n;

    n = ((apr_size_t)hdr[4] << 24) | ((apr_size_t)hdr[5] << 16) | ((apr_size_t)hdr[6] << 8)
        | (apr_size_t)hdr[7];
    if (hdr[0] != 'R' || hdr[1] != 'Q') {
        why = "bad magic";
    }
    else if (hdr[2] != RQ_WAIT_VERSION) {
        why = "unsupported version";
    }
    else if (hdr[3] < RQ_WAIT_REGISTER || hdr[3] > RQ_WAIT_ERROR) {
        why = "unknown frame type";
    }
    else if (n > RQ_WAIT_FRAME_MAX) {
        why = "frame too large";
    }
    if (pwhy) {
        *pwhy = why;
    }
    if (why) {
        return RQ_WAIT_EBADFRAME;
    }
    *ptype = hdr[3];
    *plen = n;
    return APR_SUCCESS;
}

/* A string field: *pout from p, NULL when absent (and allowed to be). */
static const char *field_str(json_t *o, const char *name, apr_pool_t *p, int *pbad)
{
    json_t *v = json_object_get(o, name);

    if (!v || json_is_null(v)) {
        return NULL;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        *pbad = 1;
        return NULL;
    }
    return apr_pstrdup(p, json_string_value(v));
}

static const char *payload_check(const rq_wait_msg_t *m, json_t *o)
{
    json_t *applied = json_object_get(o, "applied");

    if (m->type != RQ_WAIT_ERROR && !rq_wait_id_valid(m->req_id)) {
        return "missing or invalid req_id";
    }
    switch (m->type) {
    case RQ_WAIT_REGISTER:
        if (!rq_wait_id_valid(m->user_id)) {
            return "missing or invalid user_id";
        }
        return hash_valid(m->hash) ? NULL : "missing or invalid hash";
    case RQ_WAIT_SENT:
    case RQ_WAIT_DONE:
        if (m->seq && !seq_valid(m->seq)) {
            return "invalid seq";
        }
        if (m->type == RQ_WAIT_DONE && !json_is_boolean(applied)) {
            return "missing or invalid applied";
        }
        return NULL;
    case RQ_WAIT_ERROR:
        return m->message ? NULL : "missing message";
    default:
        return NULL;
    }
}

apr_status_t rq_wait_payload_parse(rq_wait_msg_t *msg, const char **pwhy, apr_pool_t *p,
                                   int type, const char *payload, apr_size_t len)
{
    json_error_t jerr;
    json_t *o;
    int bad = 0;
    const char *why;

    memset(msg, 0, sizeof(*msg));
    msg->type = type;
    o = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o || !json_is_object(o)) {
        why = "payload is not a JSON object";
        goto done;
    }
    msg->req_id = field_str(o, "req_id", p, &bad);
    msg->user_id = field_str(o, "user_id", p, &bad);
    msg->hash = field_str(o, "hash", p, &bad);
    msg->seq = field_str(o, "seq", p, &bad);
    msg->message = field_str(o, "message", p, &bad);
    msg->applied = json_is_true(json_object_get(o, "applied"));
    why = bad ? "a field is not a string" : payload_check(msg, o);

done:
    json_decref(o);
    if (pwhy) {
        *pwhy = why;
    }
    return why ? RQ_WAIT_EBADFRAME : APR_SUCCESS;
}

/* ---- client ---- */

static apr_status_t connect_once(apr_socket_t **psock, apr_pool_t *p, apr_sockaddr_t *sa)
{
    apr_socket_t *s;
    apr_status_t rv;

    rv = apr_socket_create(&s, APR_UNIX, SOCK_STREAM, 0, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    do {
        rv = apr_socket_connect(s, sa);
    } while (APR_STATUS_IS_EINTR(rv));
    if (rv != APR_SUCCESS) {
        apr_socket_close(s);
        return rv;
    }
    *psock = s;
    return APR_SUCCESS;
}

apr_status_t rq_wait_connect(apr_socket_t **psock, apr_status_t *plast, int *ptries,
                             apr_pool_t *p, const char *path,
                             const rq_wait_connect_opts_t *opts)
{
    int attempts = (opts && opts->attempts > 0) ? opts->attempts : 5;
    apr_interval_time_t pause = (opts && opts->backoff > 0) ? opts->backoff
                                                            : apr_time_from_msec(10);
    apr_interval_time_t cap = (opts && opts->backoff_max > 0) ? opts->backoff_max
                                                              : apr_time_from_msec(200);
    apr_sockaddr_t *sa;
    apr_status_t rv;
    int i = 0;

    rv = apr_sockaddr_info_get(&sa, path, APR_UNIX, 0, 0, p);
    while (rv == APR_SUCCESS && i < attempts) {
        if (i > 0) {
            apr_sleep(pause);
            pause = pause * 2 > cap ? cap : pause * 2;
        }
        i++;
        rv = connect_once(psock, p, sa);
        if (rv == APR_SUCCESS) {
            break;
        }
        if (APR_STATUS_IS_EACCES(rv) || APR_STATUS_IS_ENAMETOOLONG(rv)) {
            break; /* retrying cannot help */
        }
        if (plast) {
            *plast = rv;
        }
        rv = APR_SUCCESS;
        if (i == attempts) {
            rv = RQ_WAIT_EUNREACHABLE;
        }
    }
    if (ptries) {
        *ptries = i;
    }
    if (rv != APR_SUCCESS && rv != RQ_WAIT_EUNREACHABLE) {
        if (plast) {
            *plast = rv;
        }
        rv = RQ_WAIT_EUNREACHABLE;
    }
    return rv;
}

static apr_status_t deadline_set(apr_socket_t *sock, apr_time_t deadline)
{
    apr_interval_time_t left = deadline - apr_time_now();

    if (left <= 0) {
        return APR_TIMEUP;
    }
    return apr_socket_timeout_set(sock, left);
}

static apr_status_t write_all(apr_socket_t *sock, const char *buf, apr_size_t len,
                              apr_time_t deadline)
{
    apr_status_t rv = APR_SUCCESS;

    while (len > 0) {
        apr_size_t n = len;

        rv = deadline_set(sock, deadline);
        if (rv != APR_SUCCESS) {
            break;
        }
        rv = apr_socket_send(sock, buf, &n);
        buf += n;
        len -= n;
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EINTR(rv) && !APR_STATUS_IS_EAGAIN(rv)) {
            break;
        }
        rv = APR_SUCCESS;
    }
    return rv;
}

/* Reads exactly len bytes; RQ_WAIT_ECLOSED if the peer closed before any. */
static apr_status_t read_all(apr_socket_t *sock, char *buf, apr_size_t len, apr_time_t deadline)
{
    apr_size_t got = 0;
    apr_status_t rv;

    while (got < len) {
        apr_size_t n = len - got;

        rv = deadline_set(sock, deadline);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        rv = apr_socket_recv(sock, buf + got, &n);
        got += n;
        if (rv == APR_EOF || (rv == APR_SUCCESS && n == 0)) {
            return got == 0 ? RQ_WAIT_ECLOSED : RQ_WAIT_EBADFRAME;
        }
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EINTR(rv) && !APR_STATUS_IS_EAGAIN(rv)) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

apr_status_t rq_wait_send(apr_socket_t *sock, apr_pool_t *p, const rq_wait_msg_t *msg,
                          apr_time_t deadline)
{
    char *buf;
    apr_size_t len;
    apr_status_t rv;

    rv = rq_wait_encode(&buf, &len, p, msg);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return write_all(sock, buf, len, deadline);
}

apr_status_t rq_wait_recv(rq_wait_msg_t *msg, apr_socket_t *sock, apr_pool_t *p,
                          apr_time_t deadline)
{
    unsigned char hdr[RQ_WAIT_HEADER_LEN];
    char *payload;
    apr_size_t len;
    const char *why;
    int type;
    apr_status_t rv;

    rv = read_all(sock, (char *)hdr, sizeof(hdr), deadline);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = rq_wait_header_parse(&type, &len, &why, hdr);
    if (rv != APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_WARNING, 0, p, "RQ08001: wait channel: %s", why);
        return rv;
    }
    payload = apr_palloc(p, len + 1);
    rv = read_all(sock, payload, len, deadline);
    if (rv != APR_SUCCESS) {
        return rv == RQ_WAIT_ECLOSED ? RQ_WAIT_EBADFRAME : rv;
    }
    rv = rq_wait_payload_parse(msg, &why, p, type, payload, len);
    if (rv != APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_WARNING, 0, p, "RQ08002: wait channel: %s", why);
    }
    return rv;
}

/* ---- server ---- */

typedef struct wait_conn_t wait_conn_t;
typedef struct wait_entry_t wait_entry_t;

enum { ENTRY_PENDING, ENTRY_SENT, ENTRY_DONE };

/* What is known of one req_id; malloc'd so that forgetting it frees it. */
struct wait_entry_t {
    char *req_id;
    char hash[RQ_WAIT_HASH_LEN + 1]; /* "" when unknown */
    char seq[129];
    int state;
    int applied;
    apr_time_t stamp;
    wait_conn_t *waiters;
    wait_entry_t *older;
    wait_entry_t *newer;
};

struct wait_conn_t {
    apr_pool_t *pool;
    apr_time_t opened;
    wait_conn_t *prev_conn;     /* every open connection, for the idle sweep */
    wait_conn_t *next_conn;
    apr_socket_t *sock;
    apr_pollfd_t pfd;
    apr_size_t have;
    int registered;
    int done;
    wait_entry_t *entry;
    wait_conn_t *next_waiter;
    char hash[RQ_WAIT_HASH_LEN + 1];
    unsigned char buf[RQ_WAIT_HEADER_LEN + RQ_WAIT_FRAME_MAX];
};

struct rq_wait_server_t {
    apr_pool_t *pool; /* owned by the serving thread once started */
    rq_wait_server_opts_t opts;
    apr_socket_t *listener;
    apr_pollset_t *pollset;
    apr_thread_t *thread;
    apr_thread_mutex_t *lock; /* entries, waiters, counters, waiter writes */
    apr_hash_t *entries;
    wait_entry_t *oldest;
    wait_entry_t *newest;
    apr_time_t started;
    apr_time_t last_expiry;
    apr_uint32_t stopping;      /* apr_atomic: read by the serving thread */
    int conns;
    int waiters;
    long rejected;
    long woken;
    int evict_warned;
    apr_pollfd_t listen_pfd;
    apr_time_t listen_resume;   /* accepting paused until then; 0: not paused */
    long accept_failed;         /* accept() failures since the last report */
    apr_time_t accept_reported;
    long refused;               /* connections over max_conns since the last report */
    apr_time_t refused_reported;
    wait_conn_t *conn_list;     /* the serving thread's */
};

static void entry_unlink(rq_wait_server_t *srv, wait_entry_t *e)
{
    if (e->older) {
        e->older->newer = e->newer;
    }
    else {
        srv->oldest = e->newer;
    }
    if (e->newer) {
        e->newer->older = e->older;
    }
    else {
        srv->newest = e->older;
    }
    e->older = e->newer = NULL;
}

static void entry_push(rq_wait_server_t *srv, wait_entry_t *e)
{
    e->stamp = apr_time_now();
    e->older = srv->newest;
    e->newer = NULL;
    if (srv->newest) {
        srv->newest->newer = e;
    }
    else {
        srv->oldest = e;
    }
    srv->newest = e;
}

static void entry_forget(rq_wait_server_t *srv, wait_entry_t *e)
{
    entry_unlink(srv, e);
    apr_hash_set(srv->entries, e->req_id, APR_HASH_KEY_STRING, NULL);
    free(e->req_id);
    free(e);
}

/*
 * Forgets the oldest idle entries while over the bound, never keep (the entry
 * being created); lock held, from any thread, hence a pool of its own to log.
 */
static void entries_bound(rq_wait_server_t *srv, wait_entry_t *keep)
{
    wait_entry_t *e = srv->oldest;
    int over = (int)apr_hash_count(srv->entries) - srv->opts.remember_max;
    apr_pool_t *lp;

    while (e && over > 0) {
        wait_entry_t *next = e->newer;

        if (!e->waiters && e != keep) {
            entry_forget(srv, e);
            over--;
        }
        e = next;
    }
    if (!srv->evict_warned && apr_pool_create(&lp, NULL) == APR_SUCCESS) {
        srv->evict_warned = 1;
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_WARNING, 0, lp,
                      "RQ08003: more than %d request ids to remember; the oldest are "
                      "forgotten early, so a late duplicate may not be recognised",
                      srv->opts.remember_max);
        apr_pool_destroy(lp);
    }
}

static wait_entry_t *entry_create(rq_wait_server_t *srv, const char *req_id, int state)
{
    wait_entry_t *e = calloc(1, sizeof(*e));

    if (!e || !(e->req_id = strdup(req_id))) {
        free(e);
        return NULL;
    }
    e->state = state;
    entry_push(srv, e);
    apr_hash_set(srv->entries, e->req_id, APR_HASH_KEY_STRING, e);
    if ((int)apr_hash_count(srv->entries) > srv->opts.remember_max) {
        entries_bound(srv, e);
    }
    return e;
}

/* Forgets idle outcomes older than the remembered window; lock held. */
static void entries_expire(rq_wait_server_t *srv, apr_time_t now)
{
    int budget = 10000;

    while (srv->oldest && srv->oldest->stamp + srv->opts.remember < now && budget-- > 0) {
        wait_entry_t *e = srv->oldest;

        if (e->waiters) {
            entry_unlink(srv, e);
            entry_push(srv, e);
            continue;
        }
        entry_forget(srv, e);
    }
}

/* Writes one frame to a waiter without blocking; lock held. */
static void conn_write(wait_conn_t *c, const rq_wait_msg_t *m)
{
    char *buf;
    apr_size_t len;
    apr_size_t off = 0;
    apr_status_t rv;

    rv = frame_build(&buf, &len, m);
    while (rv == APR_SUCCESS && off < len) {
        apr_size_t n = len - off;

        rv = apr_socket_send(c->sock, buf + off, &n);
        off += n;
        if (APR_STATUS_IS_EINTR(rv)) {
            rv = APR_SUCCESS;
        }
        else if (rv == APR_SUCCESS && n == 0) {
            rv = APR_EAGAIN;
        }
    }
    if (rv == APR_SUCCESS) {
        free(buf);
        return;
    }
    if (!APR_STATUS_IS_EPIPE(rv) && !APR_STATUS_IS_ECONNRESET(rv)
        && rq_log_is_level(RQ_LOG_DEBUG)) {
        apr_pool_t *lp;

        /* Workers write here too: a pool of this call's own to log with. */
        if (apr_pool_create(&lp, NULL) == APR_SUCCESS) {
            rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, rv, lp,
                          "RQ08004: wait channel: could not answer a waiter, closing it");
            apr_pool_destroy(lp);
        }
    }
    free(buf);
    apr_socket_shutdown(c->sock, APR_SHUTDOWN_READWRITE);
}

static void conn_answer(rq_wait_server_t *srv, wait_conn_t *c, int type, wait_entry_t *e,
                        const char *req_id)
{
    rq_wait_msg_t m;

    memset(&m, 0, sizeof(m));
    m.type = type;
    m.req_id = req_id;
    if (type == RQ_WAIT_DONE) {
        m.seq = e->seq[0] ? e->seq : NULL;
        m.applied = e->applied;
    }
    conn_write(c, &m);
    if (type == RQ_WAIT_DONE || type == RQ_WAIT_CONFLICT) {
        c->done = 1;
        srv->woken++;
    }
}

static void waiter_detach(rq_wait_server_t *srv, wait_conn_t *c)
{
    wait_entry_t *e = c->entry;
    wait_conn_t **pp;

    if (!e) {
        return;
    }
    for (pp = &e->waiters; *pp; pp = &(*pp)->next_waiter) {
        if (*pp == c) {
            *pp = c->next_waiter;
            srv->waiters--;
            break;
        }
    }
    c->entry = NULL;
    c->next_waiter = NULL;
    if (e->state == ENTRY_PENDING && !e->waiters) {
        entry_forget(srv, e); /* nothing was sent for it */
    }
}

void rq_wait_server_done(rq_wait_server_t *srv, const char *req_id, const char *hash,
                         const char *seq, int applied)
{
    wait_entry_t *e;
    wait_conn_t *c;

    apr_thread_mutex_lock(srv->lock);
    e = apr_hash_get(srv->entries, req_id, APR_HASH_KEY_STRING);
    if (!e) {
        e = entry_create(srv, req_id, ENTRY_DONE);
    }
    if (e) {
        e->state = ENTRY_DONE;
        apr_cpystrn(e->hash, hash ? hash : "", sizeof(e->hash));
        apr_cpystrn(e->seq, seq ? seq : "", sizeof(e->seq));
        e->applied = applied;
        entry_unlink(srv, e);
        entry_push(srv, e);
        while ((c = e->waiters) != NULL) {
            int same = !e->hash[0] || strcmp(c->hash, e->hash) == 0;

            e->waiters = c->next_waiter;
            c->next_waiter = NULL;
            c->entry = NULL;
            srv->waiters--;
            conn_answer(srv, c, same ? RQ_WAIT_DONE : RQ_WAIT_CONFLICT, e, req_id);
        }
    }
    apr_thread_mutex_unlock(srv->lock);
}

void rq_wait_server_stats(rq_wait_stats_t *st, rq_wait_server_t *srv)
{
    apr_thread_mutex_lock(srv->lock);
    st->conns = srv->conns;
    st->waiters = srv->waiters;
    st->remembered = (int)apr_hash_count(srv->entries);
    st->rejected = srv->rejected;
    st->woken = srv->woken;
    apr_thread_mutex_unlock(srv->lock);
}

/* Asks durable storage about a req_id unknown to memory, while memory is young. */
static void register_lookup(rq_wait_server_t *srv, wait_conn_t *c, const rq_wait_msg_t *m)
{
    rq_wait_found_t f;
    const char *hash;
    wait_entry_t *e;
    apr_status_t rv;

    if (!srv->opts.lookup || apr_time_now() - srv->started > srv->opts.remember) {
        return;
    }
    memset(&f, 0, sizeof(f));
    rv = srv->opts.lookup(&f, srv->opts.lookup_baton, c->pool, m->req_id);
    if (rv != APR_SUCCESS) {
        return;
    }
    hash = f.hash;
    if (!hash && f.user_id && strcmp(f.user_id, m->user_id) != 0) {
        hash = "-"; /* no hash recorded: another user means another body */
    }
    apr_thread_mutex_lock(srv->lock);
    e = apr_hash_get(srv->entries, m->req_id, APR_HASH_KEY_STRING);
    if (!e && (e = entry_create(srv, m->req_id, ENTRY_DONE)) != NULL) {
        apr_cpystrn(e->seq, f.seq ? f.seq : "", sizeof(e->seq));
        apr_cpystrn(e->hash, hash ? hash : "", sizeof(e->hash));
        e->applied = f.applied;
    }
    apr_thread_mutex_unlock(srv->lock);
}

static void on_register(rq_wait_server_t *srv, wait_conn_t *c, const rq_wait_msg_t *m)
{
    wait_entry_t *e;

    apr_cpystrn(c->hash, m->hash, sizeof(c->hash));
    c->registered = 1;
    apr_thread_mutex_lock(srv->lock);
    e = apr_hash_get(srv->entries, m->req_id, APR_HASH_KEY_STRING);
    apr_thread_mutex_unlock(srv->lock);
    if (!e) {
        register_lookup(srv, c, m);
    }

    apr_thread_mutex_lock(srv->lock);
    e = apr_hash_get(srv->entries, m->req_id, APR_HASH_KEY_STRING);
    if (e && e->hash[0] && strcmp(e->hash, c->hash) != 0) {
        conn_answer(srv, c, RQ_WAIT_CONFLICT, e, m->req_id);
    }
    else if (e && e->state == ENTRY_DONE) {
        conn_answer(srv, c, RQ_WAIT_DONE, e, m->req_id);
    }
    else {
        if (!e) {
            e = entry_create(srv, m->req_id, ENTRY_PENDING);
        }
        if (e) {
            apr_cpystrn(e->hash, c->hash, sizeof(e->hash));
            c->entry = e;
            c->next_waiter = e->waiters;
            e->waiters = c;
            srv->waiters++;
            conn_answer(srv, c, RQ_WAIT_WAITING, e, m->req_id);
        }
    }
    apr_thread_mutex_unlock(srv->lock);
}

static void on_sent(rq_wait_server_t *srv, wait_conn_t *c, const rq_wait_msg_t *m)
{
    apr_thread_mutex_lock(srv->lock);
    if (c->entry && strcmp(c->entry->req_id, m->req_id) == 0
        && c->entry->state == ENTRY_PENDING) {
        c->entry->state = ENTRY_SENT;
        entry_unlink(srv, c->entry);
        entry_push(srv, c->entry);
    }
    apr_thread_mutex_unlock(srv->lock);
}

/* Returns non-zero when the connection must be closed. */
static int conn_reject(rq_wait_server_t *srv, wait_conn_t *c, const char *why)
{
    rq_wait_msg_t m;

    rq_log_perror(RQ_LOG_MARK, RQ_LOG_WARNING, 0, c->pool,
                  "RQ08005: wait channel: rejected a frame from a client (%s); "
                  "closing the connection", why);
    memset(&m, 0, sizeof(m));
    m.type = RQ_WAIT_ERROR;
    m.message = why;
    apr_thread_mutex_lock(srv->lock);
    srv->rejected++;
    conn_write(c, &m);
    apr_thread_mutex_unlock(srv->lock);
    return 1;
}

static int frame_handle(rq_wait_server_t *srv, wait_conn_t *c, int type, const char *payload,
                        apr_size_t len)
{
    apr_pool_t *tmp;
    rq_wait_msg_t m;
    const char *why;
    int close_it = 0;

    apr_pool_create(&tmp, c->pool);
    if (rq_wait_payload_parse(&m, &why, tmp, type, payload, len) != APR_SUCCESS) {
        close_it = conn_reject(srv, c, why);
    }
    else if (type == RQ_WAIT_REGISTER && !c->registered) {
        on_register(srv, c, &m);
    }
    else if (type == RQ_WAIT_SENT && c->registered) {
        on_sent(srv, c, &m);
    }
    else {
        close_it = conn_reject(srv, c, "unexpected frame type");
    }
    apr_pool_destroy(tmp);
    return close_it;
}

/* Consumes every whole frame in the buffer; non-zero to close. */
static int conn_frames(rq_wait_server_t *srv, wait_conn_t *c)
{
    for (;;) {
        apr_size_t len, whole;
        const char *why;
        int type;

        if (c->have < RQ_WAIT_HEADER_LEN) {
            return 0;
        }
        if (rq_wait_header_parse(&type, &len, &why, c->buf) != APR_SUCCESS) {
            return conn_reject(srv, c, why);
        }
        whole = RQ_WAIT_HEADER_LEN + len;
        if (c->have < whole) {
            return 0;
        }
        if (frame_handle(srv, c, type, (const char *)c->buf + RQ_WAIT_HEADER_LEN, len)) {
            return 1;
        }
        memmove(c->buf, c->buf + whole, c->have - whole);
        c->have -= whole;
    }
}

/* Reads what is there; non-zero when the connection must be closed. */
static int conn_read(rq_wait_server_t *srv, wait_conn_t *c)
{
    for (;;) {
        apr_size_t n = sizeof(c->buf) - c->have;
        apr_status_t rv;

        rv = apr_socket_recv(c->sock, (char *)c->buf + c->have, &n);
        c->have += n;
        if (n > 0 && conn_frames(srv, c)) {
            return 1;
        }
        if (APR_STATUS_IS_EINTR(rv)) {
            continue;
        }
        if (APR_STATUS_IS_EAGAIN(rv)) {
            return 0;
        }
        if (rv != APR_SUCCESS || n == 0) {
            return 1; /* closed or broken: a waiter that left is no error */
        }
    }
}

static void conn_close(rq_wait_server_t *srv, wait_conn_t *c)
{
    apr_pollset_remove(srv->pollset, &c->pfd);
    if (c->prev_conn) {
        c->prev_conn->next_conn = c->next_conn;
    }
    else {
        srv->conn_list = c->next_conn;
    }
    if (c->next_conn) {
        c->next_conn->prev_conn = c->prev_conn;
    }
    apr_thread_mutex_lock(srv->lock);
    waiter_detach(srv, c);
    srv->conns--;
    apr_thread_mutex_unlock(srv->lock);
    apr_socket_close(c->sock);
    apr_pool_destroy(c->pool);
}

/* Closes connections that did not complete their REGISTER in time. */
static void conns_idle_close(rq_wait_server_t *srv, apr_time_t now)
{
    wait_conn_t *c = srv->conn_list;
    int n = 0;

    while (c) {
        wait_conn_t *next = c->next_conn;

        if (!c->registered && now - c->opened > srv->opts.register_timeout) {
            conn_close(srv, c);
            n++;
        }
        c = next;
    }
    if (n > 0) {
        apr_pool_t *lp;

        apr_pool_create(&lp, srv->pool);
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_INFO, 0, lp,
                      "RQ08008: wait channel: closed %d connection(s) that sent no REGISTER "
                      "within %" APR_TIME_T_FMT " ms", n,
                      apr_time_as_msec(srv->opts.register_timeout));
        apr_pool_destroy(lp);
    }
}

/* Refuses a connection over the limit; reported at most once a second. */
static void conn_refuse(rq_wait_server_t *srv, apr_pool_t *p, apr_socket_t *s)
{
    apr_time_t now = apr_time_now();

    apr_socket_close(s);
    srv->refused++;
    if (now - srv->refused_reported >= apr_time_from_sec(1)) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_WARNING, 0, p,
                      "RQ08006: wait channel: %d connections open, the limit "
                      "(--max-connections); refused %ld since the last report",
                      srv->conns, srv->refused);
        srv->refused = 0;
        srv->refused_reported = now;
    }
}

/*
 * accept() failed (out of file descriptors, most often): the listener stays
 * readable, so it leaves the pollset for a moment instead of being polled in
 * a tight loop; the failures are reported at most every 10 seconds.
 */
static void accept_failed(rq_wait_server_t *srv, apr_pool_t *p, apr_status_t rv)
{
    apr_time_t now = apr_time_now();

    srv->accept_failed++;
    if (srv->accept_reported == 0 || now - srv->accept_reported >= apr_time_from_sec(10)) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, rv, p,
                      "RQ08007: wait channel: accepting connections failed (%ld times since "
                      "the last report); pausing new connections briefly", srv->accept_failed);
        srv->accept_failed = 0;
        srv->accept_reported = now;
    }
    if (srv->listen_resume == 0) {
        apr_pollset_remove(srv->pollset, &srv->listen_pfd);
    }
    srv->listen_resume = now + apr_time_from_msec(250);
}

/* Puts the listener back once its pause is over. */
static void accept_resume(rq_wait_server_t *srv, apr_time_t now)
{
    if (srv->listen_resume != 0 && now >= srv->listen_resume) {
        srv->listen_resume = 0;
        apr_pollset_add(srv->pollset, &srv->listen_pfd);
    }
}

static void conn_accept(rq_wait_server_t *srv)
{
    for (;;) {
        apr_pool_t *cp;
        apr_socket_t *s;
        wait_conn_t *c;
        apr_status_t rv;

        apr_pool_create(&cp, srv->pool);
        rv = apr_socket_accept(&s, srv->listener, cp);
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv) && !APR_STATUS_IS_EINTR(rv)
            && !APR_STATUS_IS_ECONNABORTED(rv)) {
            accept_failed(srv, cp, rv);
        }
        if (rv != APR_SUCCESS || srv->conns >= srv->opts.max_conns) {
            if (rv == APR_SUCCESS) {
                conn_refuse(srv, cp, s);
            }
            apr_pool_destroy(cp);
            return;
        }
        c = apr_pcalloc(cp, sizeof(*c));
        c->pool = cp;
        c->sock = s;
        c->opened = apr_time_now();
        c->next_conn = srv->conn_list;
        if (srv->conn_list) {
            srv->conn_list->prev_conn = c;
        }
        srv->conn_list = c;
        apr_socket_opt_set(s, APR_SO_NONBLOCK, 1);
        apr_socket_timeout_set(s, 0);
        c->pfd.p = cp;
        c->pfd.desc_type = APR_POLL_SOCKET;
        c->pfd.reqevents = APR_POLLIN;
        c->pfd.desc.s = s;
        c->pfd.client_data = c;
        apr_pollset_add(srv->pollset, &c->pfd);
        apr_thread_mutex_lock(srv->lock);
        srv->conns++;
        apr_thread_mutex_unlock(srv->lock);
    }
}

/* Set by rq_wait_server_stop() from another thread, hence read atomically. */
static int server_stopping(rq_wait_server_t *srv)
{
    return apr_atomic_read32(&srv->stopping) != 0;
}

static void *APR_THREAD_FUNC server_main(apr_thread_t *t, void *data)
{
    rq_wait_server_t *srv = data;

    while (!server_stopping(srv)) {
        const apr_pollfd_t *out;
        apr_int32_t n = 0, i;
        apr_time_t now;
        apr_status_t rv;

        rv = apr_pollset_poll(srv->pollset, srv->listen_resume ? apr_time_from_msec(50)
                              : apr_time_from_sec(1), &n, &out);
        for (i = 0; rv == APR_SUCCESS && i < n && !server_stopping(srv); i++) {
            wait_conn_t *c = out[i].client_data;

            if (!c) {
                conn_accept(srv);
            }
            else if (conn_read(srv, c)) {
                conn_close(srv, c);
            }
        }
        now = apr_time_now();
        accept_resume(srv, now);
        if (now - srv->last_expiry >= apr_time_from_sec(1)) {
            srv->last_expiry = now;
            conns_idle_close(srv, now);
            apr_thread_mutex_lock(srv->lock);
            entries_expire(srv, now);
            apr_thread_mutex_unlock(srv->lock);
        }
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* A socket file left by a server that died is removed; anything else stays. */
static apr_status_t path_clear(apr_pool_t *p, const char *path)
{
    struct stat st;
    apr_socket_t *probe;
    apr_sockaddr_t *sa;

    if (lstat(path, &st) != 0) {
        return errno == ENOENT ? APR_SUCCESS : APR_FROM_OS_ERROR(errno);
    }
    if (!S_ISSOCK(st.st_mode)) {
        return APR_EEXIST;
    }
    if (apr_sockaddr_info_get(&sa, path, APR_UNIX, 0, 0, p) == APR_SUCCESS
        && connect_once(&probe, p, sa) == APR_SUCCESS) {
        apr_socket_close(probe);
        return APR_FROM_OS_ERROR(EADDRINUSE);
    }
    if (unlink(path) != 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    return APR_SUCCESS;
}

static apr_status_t listener_create(rq_wait_server_t *srv, apr_pool_t *p)
{
    const rq_wait_server_opts_t *o = &srv->opts;
    struct sockaddr_un un;
    apr_sockaddr_t *sa;
    mode_t old;
    apr_status_t rv;

    if (strlen(o->path) >= sizeof(un.sun_path)) {
        return APR_ENAMETOOLONG;
    }
    rv = path_clear(p, o->path);
    if (rv == APR_SUCCESS) {
        rv = apr_sockaddr_info_get(&sa, o->path, APR_UNIX, 0, 0, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_create(&srv->listener, APR_UNIX, SOCK_STREAM, 0, srv->pool);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }

    old = umask(0177); /* never world- or group-accessible before the chmod */
    rv = apr_socket_bind(srv->listener, sa);
    umask(old);
    if (rv != APR_SUCCESS) {
        return rv;
    }

    if ((o->uid >= 0 || o->gid >= 0) && chown(o->path, o->uid, o->gid) != 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    if (chmod(o->path, (mode_t)o->mode) != 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    rv = apr_socket_listen(srv->listener, 511);
    if (rv == APR_SUCCESS) {
        apr_socket_opt_set(srv->listener, APR_SO_NONBLOCK, 1);
        apr_socket_timeout_set(srv->listener, 0);
    }
    return rv;
}

static apr_status_t server_cleanup(void *data)
{
    rq_wait_server_stop(data);
    return APR_SUCCESS;
}

apr_status_t rq_wait_server_create(rq_wait_server_t **psrv, apr_pool_t *p,
                                   const rq_wait_server_opts_t *opts)
{
    rq_wait_server_t *srv = apr_pcalloc(p, sizeof(*srv));
    apr_pollfd_t pfd;
    apr_status_t rv;

    srv->opts = *opts;
    srv->opts.path = apr_pstrdup(p, opts->path);
    srv->opts.mode = opts->mode ? opts->mode : 0660;
    srv->opts.remember = opts->remember > 0 ? opts->remember : apr_time_from_sec(600);
    srv->opts.remember_max = opts->remember_max > 0 ? opts->remember_max : 200000;
    srv->opts.max_conns = opts->max_conns > 0 ? opts->max_conns : 4096;
    srv->opts.register_timeout = opts->register_timeout > 0 ? opts->register_timeout
                                                            : apr_time_from_sec(5);
    /* A root pool of its own: the serving thread creates subpools of it. */
    rv = apr_pool_create(&srv->pool, NULL);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    srv->entries = apr_hash_make(srv->pool);
    rv = apr_thread_mutex_create(&srv->lock, APR_THREAD_MUTEX_DEFAULT, srv->pool);
    if (rv == APR_SUCCESS) {
        rv = listener_create(srv, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_pollset_create(&srv->pollset, srv->opts.max_conns + 1, srv->pool,
                                APR_POLLSET_WAKEABLE);
    }
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(srv->pool);
        return rv;
    }
    memset(&pfd, 0, sizeof(pfd));
    pfd.p = srv->pool;
    pfd.desc_type = APR_POLL_SOCKET;
    pfd.reqevents = APR_POLLIN;
    pfd.desc.s = srv->listener;
    srv->listen_pfd = pfd;
    apr_pollset_add(srv->pollset, &pfd);
    srv->started = apr_time_now();
    apr_pool_cleanup_register(p, srv, server_cleanup, apr_pool_cleanup_null);
    *psrv = srv;
    return APR_SUCCESS;
}

apr_status_t rq_wait_server_start(rq_wait_server_t *srv)
{
    return apr_thread_create(&srv->thread, NULL, server_main, srv, srv->pool);
}

void rq_wait_server_stop(rq_wait_server_t *srv)
{
    apr_hash_index_t *hi;
    apr_status_t trv;

    if (!srv->pool) {
        return;
    }
    apr_atomic_set32(&srv->stopping, 1);
    if (srv->thread) {
        apr_pollset_wakeup(srv->pollset);
        apr_thread_join(&trv, srv->thread);
        srv->thread = NULL;
    }
    for (hi = apr_hash_first(NULL, srv->entries); hi; hi = apr_hash_next(hi)) {
        wait_entry_t *e = apr_hash_this_val(hi);

        free(e->req_id);
        free(e);
    }
    unlink(srv->opts.path);
    apr_pool_destroy(srv->pool); /* closes every connection */
    srv->pool = NULL;
}
