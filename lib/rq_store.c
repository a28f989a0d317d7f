/*
 * The toy store through apr_dbd; see rq_store.h.
 *
 * Connections live in an apr_reslist, each with its own prepared statements.
 * No connection is held across the toy write's delay, so the pool bounds the
 * database work, not the number of requests that may wait.
 *
 * SQLite has one writer per database. Its apr_dbd driver also runs every
 * statement under one process-wide mutex, so a thread waiting in SQLite's
 * busy handler would stall the thread that holds the write lock in the same
 * process; and the driver answers SQLITE_BUSY itself with 100 ms sleeps.
 * Write transactions are therefore serialised within the process by a mutex
 * of our own and across processes (httpd's children, raceqd) by an exclusive
 * flock(2) on a file beside the database, DB-lock, so a writer waits in the
 * kernel and is woken the moment the previous one commits; SQLite's own lock,
 * taken with BEGIN IMMEDIATE, is then free. Nothing slow happens while the
 * locks are held. The same locks make the creation of the tables by two
 * processes opening a new store at once take turns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <apr_dbd.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_lib.h>
#include <apr_reslist.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <jansson.h>

#include "rq_log.h"
#include "rq_pool.h"
#include "rq_store.h"

#define CONN_SOFT_MAX 8
#define CONN_HARD_MAX 64
#define CONN_TTL apr_time_from_sec(300)
#define CONN_WAIT apr_time_from_sec(30)
#define SQLITE_BUSY_MS "10000"

/* SQLite's result codes, as apr_dbd's sqlite3 driver passes them on. */
#define SQLITE_RC_BUSY 5
#define SQLITE_RC_LOCKED 6
#define SQLITE_RC_SCHEMA 17
#define SCHEMA_TRIES 20
#define SCHEMA_PAUSE apr_time_from_msec(5)

enum {
    STMT_USER_GET,
    STMT_USER_PUT,
    STMT_APPLIED,
    STMT_HISTORY_ADD,
    STMT_HISTORY,
    STMT_LOOKUP,
    STMT_COUNT
};

static const char *const stmt_sql[STMT_COUNT] = {
    "SELECT writes FROM users WHERE user_id = %s",
    "INSERT INTO users (user_id, writes) VALUES (%s, %lld) "
    "ON CONFLICT (user_id) DO UPDATE SET writes = excluded.writes",
    "SELECT req_id FROM history WHERE req_id = %s",
    "INSERT INTO history (req_id, user_id, seq, start_us, finish_us, ord, hash) "
    "SELECT %s, %s, %s, %lld, %lld, COALESCE(MAX(ord), 0) + 1, %s "
    "FROM history WHERE user_id = %s "
    "ON CONFLICT (req_id) DO NOTHING",
    "SELECT req_id, seq, start_us, finish_us FROM history "
    "WHERE user_id = %s ORDER BY ord, finish_us, req_id",
    "SELECT user_id, seq, hash FROM history WHERE req_id = %s"
};

static const char *const stmt_label[STMT_COUNT] = {
    "rq_user_get", "rq_user_put", "rq_applied", "rq_history_add", "rq_history",
    "rq_lookup"
};

static const char *const schema_sql[] = {
    "CREATE TABLE IF NOT EXISTS users ("
    "user_id VARCHAR(128) PRIMARY KEY, "
    "writes BIGINT NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS history ("
    "req_id VARCHAR(128) PRIMARY KEY, "
    "user_id VARCHAR(128) NOT NULL, "
    "seq VARCHAR(128), "
    "start_us BIGINT NOT NULL, "
    "finish_us BIGINT NOT NULL, "
    "ord BIGINT NOT NULL, "
    "hash VARCHAR(64))",
    "CREATE INDEX IF NOT EXISTS history_user_ord ON history (user_id, ord)",
    NULL
};

struct rq_store_t {
    apr_pool_t *pool;
    const apr_dbd_driver_t *driver;
    const char *driver_name;
    const char *params;
    int is_sqlite;
    apr_reslist_t *conns;
    apr_thread_mutex_t *write_mutex;
    int lock_fd;
};

typedef struct store_conn_t {
    apr_pool_t *pool;
    apr_pool_t *stmt_pool;
    apr_dbd_t *handle;
    apr_dbd_prepared_t *stmt[STMT_COUNT];
} store_conn_t;

static int secret_key(const char *key, apr_size_t len)
{
    static const char *const keys[] = { "password", "pass", "passwd", "pwd", NULL };
    int i;

    for (i = 0; keys[i]; i++) {
        if (strlen(keys[i]) == len && strncasecmp(key, keys[i], len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Length of a parameter value: quoted, or up to a space or a separator. */
static apr_size_t value_len(const char *v)
{
    const char *end;

    if (*v == '\'' || *v == '"') {
        end = strchr(v + 1, *v);
        return end ? (apr_size_t)(end - v) + 1 : strlen(v);
    }
    return strcspn(v, " \t\r\n;,&");
}

/* Masks key=value secrets: "host=h password=x" gives "host=h password=****". */
static char *params_mask(apr_pool_t *p, const char *params)
{
    char *out = apr_palloc(p, strlen(params) * 2 + 5);
    char *o = out;
    const char *s = params;

    while (*s) {
        apr_size_t klen = 0;
        const char *v;

        while (apr_isalnum(s[klen]) || s[klen] == '_') {
            klen++;
        }
        for (v = s + klen; *v == ' ' || *v == '\t'; v++) {
        }
        if (klen == 0 || *v != '=' || !secret_key(s, klen)) {
            apr_size_t n = klen ? klen : 1;

            memcpy(o, s, n);
            o += n;
            s += n;
            continue;
        }
        for (v++; *v == ' ' || *v == '\t'; v++) {
        }
        memcpy(o, s, (apr_size_t)(v - s));
        o += v - s;
        memcpy(o, "****", 4);
        o += 4;
        s = v + value_len(v);
    }
    *o = '\0';
    return out;
}

/* Masks the password of a URI's user information: scheme://user:****@host. */
static const char *uri_mask(apr_pool_t *p, const char *params)
{
    const char *auth = strstr(params, "://");
    const char *end;
    const char *at = NULL;
    const char *colon;
    const char *c;

    if (!auth) {
        return params;
    }
    auth += 3;
    end = auth + strcspn(auth, "/?#");
    for (c = auth; c < end; c++) {
        at = *c == '@' ? c : at;
    }
    colon = at ? memchr(auth, ':', (apr_size_t)(at - auth)) : NULL;
    if (!colon) {
        return params;
    }
    return apr_pstrcat(p, apr_pstrmemdup(p, params, (apr_size_t)(colon + 1 - params)), "****",
                       at, NULL);
}

const char *rq_store_describe(apr_pool_t *p, const char *driver, const char *params)
{
    return apr_pstrcat(p, driver ? driver : "", " ",
                       params_mask(p, uri_mask(p, params ? params : "")), NULL);
}

static const char *store_name(const rq_store_t *store, apr_pool_t *p)
{
    return rq_store_describe(p, store->driver_name, store->params);
}

static apr_status_t db_fail(rq_store_t *store, store_conn_t *conn, apr_pool_t *p, int err,
                            const char *what)
{
    const char *msg = apr_dbd_error(store->driver, conn->handle, err);

    rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, APR_SUCCESS, p,
                  "RQ02001: the store %s failed to %s: %s", store_name(store, p), what,
                  msg ? msg : "unknown database error");
    return RQ_STORE_EDB;
}

/* Runs a statement that may return rows (SQLite's PRAGMAs do), ignoring them. */
static int conn_run(rq_store_t *store, store_conn_t *conn, apr_pool_t *p, const char *sql)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int err;

    err = apr_dbd_select(store->driver, p, conn->handle, &res, sql, 0);
    if (err != 0) {
        return err;
    }
    while (apr_dbd_get_row(store->driver, p, res, &row, -1) == 0) {
        /* drain */
    }
    return 0;
}

/* --- the write lock -------------------------------------------------------- */

/*
 * The lock file is opened read-only (flock needs no more), so it works
 * whichever of the processes sharing the store created it. Without it (a
 * read-only directory, a driver other than SQLite) writers of several
 * processes meet in SQLite's busy handling, slower but still correct.
 */
static void write_lock_open(rq_store_t *store)
{
    const char *path = apr_pstrcat(store->pool, store->params, "-lock", NULL);
    int fd;

    store->lock_fd = -1;
    if (!store->is_sqlite || strcmp(store->params, ":memory:") == 0 ||
        strncmp(store->params, "file:", 5) == 0) {
        return;
    }
    fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_WARNING, APR_FROM_OS_ERROR(errno), store->pool,
                      "RQ02014: cannot open the write lock %s; writers in several "
                      "processes will wait in SQLite's busy handler", path);
        return;
    }
    store->lock_fd = fd;
}

static apr_status_t write_lock_close(void *data)
{
    rq_store_t *store = data;

    if (store->lock_fd >= 0) {
        close(store->lock_fd);
        store->lock_fd = -1;
    }
    return APR_SUCCESS;
}

static void write_lock(rq_store_t *store)
{
    if (!store->is_sqlite) {
        return;
    }
    apr_thread_mutex_lock(store->write_mutex);
    while (store->lock_fd >= 0 && flock(store->lock_fd, LOCK_EX) != 0 && errno == EINTR) {
        /* a signal: wait again */
    }
}

static void write_unlock(rq_store_t *store)
{
    if (!store->is_sqlite) {
        return;
    }
    if (store->lock_fd >= 0) {
        flock(store->lock_fd, LOCK_UN);
    }
    apr_thread_mutex_unlock(store->write_mutex);
}

/* Runs a statement again while another process holds the database. */
static int conn_run_retry(rq_store_t *store, store_conn_t *conn, const char *sql)
{
    int err = 0;
    int tries;

    for (tries = 0; tries < SCHEMA_TRIES; tries++) {
        err = conn_run(store, conn, conn->pool, sql);
        if (err != SQLITE_RC_SCHEMA && err != SQLITE_RC_BUSY && err != SQLITE_RC_LOCKED) {
            break;
        }
        apr_sleep(SCHEMA_PAUSE);
    }
    return err;
}

/*
 * Switches SQLite to WAL and creates the tables, under the write lock, so
 * that processes opening a new store at once take turns. A connection that
 * read the schema before another process created the tables gets
 * SQLITE_SCHEMA once (the driver prepares with the legacy interface, which
 * does not retry), and a switch to WAL may find the database busy (SQLite
 * does not always call the busy handler for it): both are run again.
 */
static int schema_make(rq_store_t *store, store_conn_t *conn, const char **pwhat)
{
    static const char *const pragmas[] = {
        "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", NULL
    };
    int err = 0;
    int i;

    write_lock(store);
    *pwhat = "set up the connection";
    for (i = 0; store->is_sqlite && pragmas[i] && err == 0; i++) {
        err = conn_run_retry(store, conn, pragmas[i]);
    }
    if (err == 0) {
        *pwhat = "create its tables";
    }
    for (i = 0; schema_sql[i] && err == 0; i++) {
        err = conn_run_retry(store, conn, schema_sql[i]);
    }
    write_unlock(store);
    return err;
}

/* --- connections --------------------------------------------------------- */

/*
 * A history table made before the body hash was recorded gets the column.
 * Another process may add it at the same moment: its ALTER failing is fine
 * as long as the column is there afterwards.
 */
static apr_status_t hash_column_add(rq_store_t *store, store_conn_t *conn)
{
    static const char probe[] = "SELECT hash FROM history WHERE 1 = 0";
    int err;

    if (conn_run(store, conn, conn->pool, probe) == 0) {
        return APR_SUCCESS;
    }
    err = conn_run(store, conn, conn->pool, "ALTER TABLE history ADD COLUMN hash VARCHAR(64)");
    if (err != 0 && conn_run(store, conn, conn->pool, probe) != 0) {
        return db_fail(store, conn, conn->pool, err, "add the hash column to its history");
    }
    if (err != 0) {
        return APR_SUCCESS; /* added by another process */
    }
    rq_log_perror(RQ_LOG_MARK, RQ_LOG_NOTICE, APR_SUCCESS, conn->pool,
                  "RQ02021: the store %s: history table upgraded with a body hash column",
                  store_name(store, conn->pool));
    return APR_SUCCESS;
}

static apr_status_t conn_setup(rq_store_t *store, store_conn_t *conn)
{
    const char *what = NULL;
    int err = 0;
    int i;

    if (store->is_sqlite) {
        err = conn_run(store, conn, conn->pool, "PRAGMA busy_timeout = " SQLITE_BUSY_MS);
        if (err != 0) {
            return db_fail(store, conn, conn->pool, err, "set up the connection");
        }
    }

    err = schema_make(store, conn, &what);
    if (err != 0) {
        return db_fail(store, conn, conn->pool, err, what);
    }
    if (hash_column_add(store, conn) != APR_SUCCESS) {
        return RQ_STORE_EDB;
    }

    for (i = 0; i < STMT_COUNT; i++) {
        err = apr_dbd_prepare(store->driver, conn->stmt_pool, conn->handle, stmt_sql[i],
                              stmt_label[i], &conn->stmt[i]);
        if (err != 0) {
            return db_fail(store, conn, conn->pool, err, "prepare a statement");
        }
    }
    return APR_SUCCESS;
}

static apr_status_t conn_close(void *resource, void *params, apr_pool_t *pool)
{
    store_conn_t *conn = resource;
    rq_store_t *store = params;

    (void)pool;
    apr_pool_destroy(conn->stmt_pool);
    apr_dbd_close(store->driver, conn->handle);
    apr_pool_destroy(conn->pool);
    return APR_SUCCESS;
}

static apr_status_t conn_open(void **resource, void *params, apr_pool_t *pool)
{
    rq_store_t *store = params;
    store_conn_t *conn;
    apr_pool_t *cp;
    const char *err = NULL;
    apr_status_t rv;

    rv = apr_pool_create(&cp, pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    conn = apr_pcalloc(cp, sizeof(*conn));
    conn->pool = cp;

    rv = apr_dbd_open_ex(store->driver, cp, store->params, &conn->handle, &err);
    if (rv != APR_SUCCESS) {
        /* The driver's message is the cause; its status adds nothing. */
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, err ? APR_SUCCESS : rv, cp,
                      "RQ02002: cannot open the store %s%s%s; check that the database exists "
                      "or can be created, and that this process may write to it",
                      store_name(store, cp), err ? ": " : "", err ? err : "");
        apr_pool_destroy(cp);
        return rv;
    }

    apr_pool_create(&conn->stmt_pool, cp);
    rv = conn_setup(store, conn);
    if (rv != APR_SUCCESS) {
        conn_close(conn, store, pool);
        return rv;
    }
    *resource = conn;
    return APR_SUCCESS;
}

static apr_status_t conn_get(store_conn_t **pconn, rq_store_t *store, apr_pool_t *p)
{
    void *res = NULL;
    apr_status_t rv = apr_reslist_acquire(store->conns, &res);

    *pconn = res;
    if (rv == APR_TIMEUP) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, APR_SUCCESS, p,
                      "RQ02003: no connection to the store %s became free in time",
                      store_name(store, p));
    }
    if (rv != APR_SUCCESS) {
        /* Opening a connection logged its own cause. */
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, rv, p,
                      "RQ02020: no connection to the store %s", store_name(store, p));
        return rv == APR_EGENERAL ? RQ_STORE_EOPEN : rv;
    }
    return APR_SUCCESS;
}

/* Returns the connection; one that saw an error is closed, not reused. */
static void conn_put(rq_store_t *store, store_conn_t *conn, apr_status_t rv)
{
    if (!conn) {
        return;
    }
    if (rv == RQ_STORE_EDB) {
        apr_reslist_invalidate(store->conns, conn);
        return;
    }
    apr_reslist_release(store->conns, conn);
}

static apr_status_t sqlite_dir_make(rq_store_t *store, apr_pool_t *p)
{
    const char *path = store->params;
    const char *slash = strrchr(path, '/');
    const char *dir;
    apr_status_t rv;

    if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0 || !slash ||
        slash == path) {
        return APR_SUCCESS;
    }

    dir = apr_pstrndup(p, path, (apr_size_t)(slash - path));
    rv = apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, rv, p,
                      "RQ02004: cannot create the directory %s for the store %s", dir, path);
    }
    return rv;
}

static apr_status_t store_first_conn(rq_store_t *store, apr_pool_t *p)
{
    store_conn_t *conn = NULL;
    apr_status_t rv;

    rv = conn_get(&conn, store, p);
    if (rv != APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, rv, p, "RQ02005: the store %s cannot be used",
                      store_name(store, p));
        return rv;
    }
    conn_put(store, conn, APR_SUCCESS);
    return APR_SUCCESS;
}

apr_status_t rq_store_open(rq_store_t **pstore, apr_pool_t *p, const char *driver,
                           const char *params)
{
    rq_store_t *store;
    apr_pool_t *sp;
    apr_status_t rv;

    *pstore = NULL;
    rv = rq_pool_create_locked(&sp, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    store = apr_pcalloc(sp, sizeof(*store));
    store->pool = sp;
    store->driver_name = apr_pstrdup(sp, driver);
    store->params = apr_pstrdup(sp, params);
    store->is_sqlite = strcmp(driver, "sqlite3") == 0;

    apr_dbd_init(sp);
    rv = apr_dbd_get_driver(sp, driver, &store->driver);
    if (rv != APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, rv, p,
                      "RQ02006: the apr_dbd driver '%s' is not available", driver);
        goto fail;
    }

    if (store->is_sqlite) {
        rv = sqlite_dir_make(store, sp);
        if (rv != APR_SUCCESS) {
            goto fail;
        }
    }

    write_lock_open(store);
    apr_pool_cleanup_register(sp, store, write_lock_close, apr_pool_cleanup_null);
    rv = apr_thread_mutex_create(&store->write_mutex, APR_THREAD_MUTEX_DEFAULT, sp);
    if (rv == APR_SUCCESS) {
        rv = apr_reslist_create(&store->conns, 0, CONN_SOFT_MAX, CONN_HARD_MAX, CONN_TTL,
                                conn_open, conn_close, store, sp);
    }
    if (rv != APR_SUCCESS) {
        goto fail;
    }
    apr_reslist_cleanup_order_set(store->conns, APR_RESLIST_CLEANUP_FIRST);
    apr_reslist_timeout_set(store->conns, CONN_WAIT);

    rv = store_first_conn(store, p);
    if (rv != APR_SUCCESS) {
        goto fail;
    }
    *pstore = store;
    return APR_SUCCESS;

fail:
    apr_pool_destroy(sp);
    return rv;
}

/* --- statements ---------------------------------------------------------- */

/*
 * Runs a one-argument query; *pfound says whether a row came, *pval holds the
 * first column of the last row (NULL for SQL NULL). what names the step for
 * the log.
 */
static apr_status_t stmt_first(const char **pval, int *pfound, rq_store_t *store,
                               store_conn_t *conn, apr_pool_t *p, int stmt, const char *arg,
                               const char *what)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[1] = { arg };
    int err;

    *pval = NULL;
    *pfound = 0;
    err = apr_dbd_pselect(store->driver, p, conn->handle, &res, conn->stmt[stmt], 0, 1, args);
    if (err != 0) {
        return db_fail(store, conn, p, err, what);
    }
    while (apr_dbd_get_row(store->driver, p, res, &row, -1) == 0) {
        *pval = apr_dbd_get_entry(store->driver, row, 0);
        *pfound = 1;
    }
    return APR_SUCCESS;
}

static apr_status_t writes_read(apr_int64_t *pwrites, rq_store_t *store, store_conn_t *conn,
                                apr_pool_t *p, const char *user_id)
{
    const char *v;
    int found;
    apr_status_t rv;

    rv = stmt_first(&v, &found, store, conn, p, STMT_USER_GET, user_id, "read a user");
    *pwrites = v ? apr_atoi64(v) : 0;
    return rv;
}

static apr_status_t applied_read(int *papplied, rq_store_t *store, store_conn_t *conn,
                                 apr_pool_t *p, const char *req_id)
{
    const char *v;

    return stmt_first(&v, papplied, store, conn, p, STMT_APPLIED, req_id, "look up a request");
}

/* What one apply writes, decided before the write transaction starts. */
typedef struct store_write_t {
    const rq_apply_t *a;
    const char *hash;      /* recorded with the history row; NULL in race mode */
    apr_int64_t writes;
    apr_time_t start;
    apr_time_t finish;
} store_write_t;

static apr_status_t history_add(int *padded, rq_store_t *store, store_conn_t *conn,
                                apr_pool_t *p, const store_write_t *w)
{
    const rq_payload_t *pl = w->a->payload;
    const char *args[7];
    int nrows = 0;
    int err;

    args[0] = pl->req_id;
    args[1] = pl->user_id;
    args[2] = w->a->seq;
    args[3] = apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)w->start);
    args[4] = apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)w->finish);
    args[5] = w->hash;
    args[6] = pl->user_id;
    err = apr_dbd_pquery(store->driver, p, conn->handle, &nrows,
                         conn->stmt[STMT_HISTORY_ADD], 7, args);
    if (err != 0) {
        return db_fail(store, conn, p, err, "append to the history");
    }
    *padded = nrows > 0;
    return APR_SUCCESS;
}

static apr_status_t writes_put(rq_store_t *store, store_conn_t *conn, apr_pool_t *p,
                               const store_write_t *w)
{
    const char *args[2];
    int nrows = 0;
    int err;

    args[0] = w->a->payload->user_id;
    args[1] = apr_psprintf(p, "%" APR_INT64_T_FMT, w->writes + 1);
    err = apr_dbd_pquery(store->driver, p, conn->handle, &nrows, conn->stmt[STMT_USER_PUT], 2,
                         args);
    if (err != 0) {
        return db_fail(store, conn, p, err, "write a user");
    }
    return APR_SUCCESS;
}

static apr_status_t tx_exec(rq_store_t *store, store_conn_t *conn, apr_pool_t *p,
                            const char *sql)
{
    int nrows = 0;
    int err = apr_dbd_query(store->driver, conn->handle, &nrows, sql);

    if (err != 0) {
        return db_fail(store, conn, p, err, sql);
    }
    return APR_SUCCESS;
}

/*
 * The write step in one short transaction: the history record (which is also
 * the record that req_id was applied) and the user's new count. *papplied is
 * 0 and nothing is written when req_id is already in the history.
 */
static apr_status_t write_commit(int *papplied, rq_store_t *store, store_conn_t *conn,
                                 apr_pool_t *p, const store_write_t *w)
{
    apr_status_t rv;
    int added = 0;

    *papplied = 0;
    write_lock(store);

    rv = tx_exec(store, conn, p, store->is_sqlite ? "BEGIN IMMEDIATE" : "BEGIN");
    if (rv != APR_SUCCESS) {
        goto out;
    }

    rv = history_add(&added, store, conn, p, w);
    if (rv == APR_SUCCESS && added) {
        rv = writes_put(store, conn, p, w);
    }

    if (rv == APR_SUCCESS && added) {
        rv = tx_exec(store, conn, p, "COMMIT");
        *papplied = rv == APR_SUCCESS;
    }
    else {
        tx_exec(store, conn, p, "ROLLBACK");
    }

out:
    write_unlock(store);
    return rv;
}

/* --- the toy write ------------------------------------------------------- */

static void delay_sleep(const rq_apply_t *a)
{
    apr_interval_time_t lo = a->delay_min > 0 ? a->delay_min : 0;
    apr_interval_time_t hi = a->delay_max > lo ? a->delay_max : lo;
    apr_uint32_t r = 0;

    if (hi > lo && apr_generate_random_bytes((unsigned char *)&r, sizeof(r)) == APR_SUCCESS) {
        lo += (apr_interval_time_t)(r % (apr_uint64_t)(hi - lo + 1));
    }
    if (lo > 0) {
        apr_sleep(lo);
    }
}

/* Reads the user's count and logs the read; *papplied says req_id is known. */
static apr_status_t apply_read(store_write_t *w, int *papplied, rq_store_t *store,
                               apr_pool_t *p, int check_applied)
{
    const rq_payload_t *pl = w->a->payload;
    store_conn_t *conn = NULL;
    apr_status_t rv;

    *papplied = 0;
    rv = conn_get(&conn, store, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }

    if (check_applied) {
        rv = applied_read(papplied, store, conn, p, pl->req_id);
        if (rv != APR_SUCCESS || *papplied) {
            goto out;
        }
    }

    w->start = apr_time_now();
    rv = writes_read(&w->writes, store, conn, p, pl->user_id);
    if (rv == APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_INFO, APR_SUCCESS, p, "RQ02010: finding-%s___%s",
                      pl->req_id, pl->user_id);
    }

out:
    conn_put(store, conn, rv);
    return rv;
}

static apr_status_t apply_write(int *papplied, rq_store_t *store, apr_pool_t *p,
                                store_write_t *w)
{
    const rq_payload_t *pl = w->a->payload;
    store_conn_t *conn = NULL;
    apr_status_t rv;

    rv = conn_get(&conn, store, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }

    rq_log_perror(RQ_LOG_MARK, RQ_LOG_INFO, APR_SUCCESS, p, "RQ02011: writing-%s___%s",
                  pl->req_id, pl->user_id);
    w->finish = apr_time_now();
    rv = write_commit(papplied, store, conn, p, w);
    conn_put(store, conn, rv);
    return rv;
}

apr_status_t rq_store_apply_race(rq_store_t *store, apr_pool_t *ptemp, const rq_apply_t *a)
{
    store_write_t w = { a, NULL, 0, 0, 0 };
    int applied = 0;
    apr_status_t rv;

    rv = apply_read(&w, &applied, store, ptemp, 0);
    if (rv != APR_SUCCESS) {
        return rv;
    }

    delay_sleep(a);

    rv = apply_write(&applied, store, ptemp, &w);
    if (rv == APR_SUCCESS && !applied) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_INFO, APR_SUCCESS, ptemp,
                      "RQ02012: req_id %s was already applied; nothing written",
                      a->payload->req_id);
        return RQ_STORE_EDUPLICATE;
    }
    return rv;
}

apr_status_t rq_store_apply_once(rq_store_t *store, apr_pool_t *ptemp, const rq_apply_t *a,
                                 int *papplied)
{
    store_write_t w = { a, NULL, 0, 0, 0 };
    int known = 0;
    apr_status_t rv;

    *papplied = 0;
    w.hash = a->hash;
    rv = apply_read(&w, &known, store, ptemp, 1);
    if (rv != APR_SUCCESS || known) {
        goto out;
    }

    delay_sleep(a);

    rv = apply_write(papplied, store, ptemp, &w);

out:
    if (rv == APR_SUCCESS && !*papplied) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, APR_SUCCESS, ptemp,
                      "RQ02013: req_id %s was already applied; nothing written",
                      a->payload->req_id);
    }
    return rv;
}

/* --- reading a user back ------------------------------------------------- */

static apr_status_t json_release(void *data)
{
    json_decref((json_t *)data);
    return APR_SUCCESS;
}

static json_t *history_entry(const apr_dbd_driver_t *driver, apr_dbd_row_t *row)
{
    const char *req_id = apr_dbd_get_entry(driver, row, 0);
    const char *seq = apr_dbd_get_entry(driver, row, 1);
    const char *start = apr_dbd_get_entry(driver, row, 2);
    const char *finish = apr_dbd_get_entry(driver, row, 3);

    return json_pack("{s:s, s:s?, s:I, s:I}", "req_id", req_id ? req_id : "", "seq", seq,
                     "start", (json_int_t)(start ? apr_atoi64(start) : 0), "finish",
                     (json_int_t)(finish ? apr_atoi64(finish) : 0));
}

static apr_status_t history_read(json_t *history, rq_store_t *store, store_conn_t *conn,
                                 apr_pool_t *p, const char *user_id)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[1] = { user_id };
    int err;

    err = apr_dbd_pselect(store->driver, p, conn->handle, &res, conn->stmt[STMT_HISTORY], 0,
                          1, args);
    if (err != 0) {
        return db_fail(store, conn, p, err, "read a history");
    }
    while (apr_dbd_get_row(store->driver, p, res, &row, -1) == 0) {
        json_array_append_new(history, history_entry(store->driver, row));
    }
    return APR_SUCCESS;
}

apr_status_t rq_store_user_json(const char **pjson, rq_store_t *store, apr_pool_t *p,
                                const char *user_id)
{
    store_conn_t *conn = NULL;
    json_t *history = json_array();
    json_t *user;
    apr_int64_t writes = 0;
    apr_status_t rv;
    char *s;

    *pjson = NULL;
    apr_pool_cleanup_register(p, history, json_release, apr_pool_cleanup_null);
    rv = conn_get(&conn, store, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }

    rv = writes_read(&writes, store, conn, p, user_id);
    if (rv == APR_SUCCESS) {
        rv = history_read(history, store, conn, p, user_id);
    }
    conn_put(store, conn, rv);
    if (rv != APR_SUCCESS) {
        return rv;
    }

    user = json_pack("{s:s, s:I, s:O}", "user_id", user_id, "writes", (json_int_t)writes,
                     "history", history);
    if (!user) {
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(p, user, json_release, apr_pool_cleanup_null);

    s = json_dumps(user, JSON_PRESERVE_ORDER | JSON_COMPACT);
    if (!s) {
        return APR_ENOMEM;
    }
    *pjson = apr_pstrdup(p, s);
    free(s);
    return APR_SUCCESS;
}

/* --- looking a request up ------------------------------------------------ */

apr_status_t rq_store_lookup(rq_store_record_t *prec, rq_store_t *store, apr_pool_t *p,
                             const char *req_id)
{
    store_conn_t *conn = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[1] = { req_id };
    apr_status_t rv;
    int err;

    memset(prec, 0, sizeof(*prec));
    rv = conn_get(&conn, store, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }

    err = apr_dbd_pselect(store->driver, p, conn->handle, &res, conn->stmt[STMT_LOOKUP], 0, 1,
                          args);
    if (err != 0) {
        rv = db_fail(store, conn, p, err, "look up a request");
        goto out;
    }
    while (apr_dbd_get_row(store->driver, p, res, &row, -1) == 0) {
        const char *user_id = apr_dbd_get_entry(store->driver, row, 0);
        const char *seq = apr_dbd_get_entry(store->driver, row, 1);
        const char *hash = apr_dbd_get_entry(store->driver, row, 2);

        prec->user_id = apr_pstrdup(p, user_id ? user_id : "");
        prec->seq = seq ? apr_pstrdup(p, seq) : NULL;
        prec->hash = hash && *hash ? apr_pstrdup(p, hash) : NULL;
        prec->applied = 1;
    }
    rv = prec->applied ? APR_SUCCESS : APR_NOTFOUND;

out:
    conn_put(store, conn, rv == APR_NOTFOUND ? APR_SUCCESS : rv);
    return rv;
}
