/* Unit tests for lib/rq_store.c against a real SQLite file through apr_dbd. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <jansson.h>

#include "rq_log.h"
#include "rq_store.h"
#include "rq_tap.h"

#define MS(n) ((apr_interval_time_t)(n) * 1000)

typedef struct worker_t {
    rq_store_t *store;
    const char *user_id;
    int index;
    int count;
    int once;
    apr_interval_time_t delay;
    const char *fixed_req; /* every apply uses this req_id when set */
    int applied;
    apr_status_t rv;
} worker_t;

static rq_payload_t *payload_make(apr_pool_t *p, const char *req_id, const char *user_id)
{
    rq_payload_t *pl = apr_pcalloc(p, sizeof(*pl));

    pl->req_id = req_id;
    pl->user_id = user_id;
    pl->json = apr_psprintf(p, "{\"req_id\":\"%s\",\"user_id\":\"%s\"}", req_id, user_id);
    return pl;
}

static rq_apply_t apply_make(apr_pool_t *p, const char *req_id, const char *user_id,
                             const char *seq, apr_interval_time_t delay)
{
    rq_apply_t a;

    memset(&a, 0, sizeof(a));
    a.payload = payload_make(p, req_id, user_id);
    a.seq = seq;
    a.delay_min = delay;
    a.delay_max = delay;
    return a;
}

static json_t *user_load(rq_store_t *store, apr_pool_t *p, const char *user_id)
{
    const char *js = NULL;
    apr_status_t rv = rq_store_user_json(&js, store, p, user_id);

    if (rv != APR_SUCCESS || !js) {
        return NULL;
    }
    return json_loads(js, 0, NULL);
}

static long long user_writes(rq_store_t *store, apr_pool_t *p, const char *user_id)
{
    json_t *u = user_load(store, p, user_id);
    long long n = u ? (long long)json_integer_value(json_object_get(u, "writes")) : -1;

    json_decref(u);
    return n;
}

static void *APR_THREAD_FUNC worker_run(apr_thread_t *t, void *data)
{
    worker_t *w = data;
    apr_pool_t *p;
    int i;

    apr_pool_create(&p, NULL);
    w->rv = APR_SUCCESS;
    for (i = 0; i < w->count && w->rv == APR_SUCCESS; i++) {
        const char *req = w->fixed_req ? w->fixed_req
                                       : apr_psprintf(p, "%s-r%d-%d", w->user_id, w->index, i);
        rq_apply_t a = apply_make(p, req, w->user_id, w->once ? "1" : NULL, w->delay);
        int applied = 0;

        if (w->once) {
            w->rv = rq_store_apply_once(w->store, p, &a, &applied);
            w->applied += applied;
        }
        else {
            w->rv = rq_store_apply_race(w->store, p, &a);
        }
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static int workers_run(worker_t *ws, int n, apr_pool_t *p)
{
    apr_thread_t *threads[16];
    apr_status_t trv;
    int i;
    int ok = 1;

    for (i = 0; i < n; i++) {
        apr_thread_create(&threads[i], NULL, worker_run, &ws[i], p);
    }
    for (i = 0; i < n; i++) {
        apr_thread_join(&trv, threads[i]);
        ok = ok && ws[i].rv == APR_SUCCESS;
    }
    return ok;
}

static void test_open(apr_pool_t *p, const char *dir)
{
    rq_store_t *store = NULL;
    const char *nested = apr_pstrcat(p, dir, "/a/b/toy.db", NULL);
    apr_finfo_t fi;

    RQ_IS_INT(rq_store_open(&store, p, "sqlite3", nested), APR_SUCCESS,
              "open creates the database and its missing directories");
    RQ_IS_INT(apr_stat(&fi, nested, APR_FINFO_TYPE, p), APR_SUCCESS, "the file exists");

    store = NULL;
    RQ_OK(rq_store_open(&store, p, "sqlite3", "/proc/raceq-none/toy.db") != APR_SUCCESS &&
              store == NULL,
          "open fails where the directory cannot be made");
    RQ_OK(rq_store_open(&store, p, "nosuchdriver", "x") != APR_SUCCESS && store == NULL,
          "open fails with an unknown driver");
}

static void test_race_single(rq_store_t *store, apr_pool_t *p)
{
    rq_apply_t a = apply_make(p, "r1", "alice", NULL, MS(1));
    json_t *u;
    json_t *h;

    RQ_IS_INT(rq_store_apply_race(store, p, &a), APR_SUCCESS, "apply_race succeeds");
    u = user_load(store, p, "alice");
    RQ_OK(u != NULL, "user_json is valid JSON");
    RQ_IS_STR(json_string_value(json_object_get(u, "user_id")), "alice", "user_id echoed");
    RQ_IS_INT(json_integer_value(json_object_get(u, "writes")), 1, "one write");
    h = json_object_get(u, "history");
    RQ_IS_INT(json_array_size(h), 1, "one history entry");
    RQ_IS_STR(json_string_value(json_object_get(json_array_get(h, 0), "req_id")), "r1",
              "history names the req_id");
    RQ_OK(json_is_null(json_object_get(json_array_get(h, 0), "seq")),
          "seq is null in race mode");
    RQ_OK(json_integer_value(json_object_get(json_array_get(h, 0), "finish")) >=
              json_integer_value(json_object_get(json_array_get(h, 0), "start")) + 1000,
          "finish is at least the delay after start");
    json_decref(u);

    RQ_IS_INT(rq_store_apply_race(store, p, &a), RQ_STORE_EDUPLICATE,
              "apply_race refuses a req_id already in the history");
    RQ_IS_INT(user_writes(store, p, "alice"), 1, "and writes nothing");
}

static void test_user_json_shape(rq_store_t *store, apr_pool_t *p)
{
    const char *js = NULL;
    rq_apply_t a = apply_make(p, "s1", "carol", "18890", 0);
    rq_apply_t b = apply_make(p, "s2", "carol", "18891", 0);
    int applied = 0;

    RQ_IS_INT(rq_store_user_json(&js, store, p, "nobody"), APR_SUCCESS, "unknown user reads");
    RQ_IS_STR(js, "{\"user_id\":\"nobody\",\"writes\":0,\"history\":[]}",
              "unknown user: writes 0, empty history");

    rq_store_apply_once(store, p, &a, &applied);
    rq_store_apply_once(store, p, &b, &applied);
    rq_store_user_json(&js, store, p, "carol");
    RQ_OK(js && strncmp(js, "{\"user_id\":\"carol\",\"writes\":2,\"history\":[{\"req_id\":"
                            "\"s1\",\"seq\":\"18890\",\"start\":", 75) == 0,
          "user_json keys in order, seq as a string: %s", js ? js : "(null)");
    RQ_OK(js && strstr(js, "{\"req_id\":\"s2\",\"seq\":\"18891\"") > strstr(js, "\"s1\""),
          "history in apply order");
}

static void test_once(rq_store_t *store, apr_pool_t *p)
{
    rq_apply_t a = apply_make(p, "o1", "bob", "100", MS(1));
    rq_apply_t q = apply_make(p, "it's\"; DROP TABLE users; --", "bob", "101", 0);
    int applied = -1;

    RQ_IS_INT(rq_store_apply_once(store, p, &a, &applied), APR_SUCCESS, "apply_once works");
    RQ_IS_INT(applied, 1, "first apply is applied");
    applied = -1;
    RQ_IS_INT(rq_store_apply_once(store, p, &a, &applied), APR_SUCCESS, "again works");
    RQ_IS_INT(applied, 0, "second apply of the same req_id is not applied");
    RQ_IS_INT(user_writes(store, p, "bob"), 1, "writes stays 1");

    RQ_IS_INT(rq_store_apply_once(store, p, &q, &applied), APR_SUCCESS,
              "quotes in ids are data, not SQL");
    RQ_IS_INT(user_writes(store, p, "bob"), 2, "and are stored");
}

/* A second process on the same file, as httpd children and raceqd are. */
static void other_process_run(const char *db)
{
    static const char *const users[] = { "p1", "p2" };
    apr_pool_t *p;
    rq_store_t *store = NULL;
    worker_t ws[2];
    int i;

    memset(ws, 0, sizeof(ws));
    apr_pool_create(&p, NULL);
    if (rq_store_open(&store, p, "sqlite3", db) != APR_SUCCESS) {
        _exit(2);
    }
    for (i = 0; i < 2; i++) {
        ws[i].store = store;
        ws[i].user_id = users[i];
        ws[i].index = i;
        ws[i].count = 10;
        ws[i].once = 1;
        ws[i].delay = MS(2);
    }
    _exit(workers_run(ws, 2, p) ? 0 : 1);
}

static void test_once_concurrent(rq_store_t *store, apr_pool_t *p, const char *db)
{
    static const char *const users[] = { "u1", "u2", "u3", "u4" };
    worker_t ws[4];
    apr_proc_t proc;
    apr_exit_why_e why;
    int code = -1;
    int i;
    int ok;

    memset(ws, 0, sizeof(ws));
    if (apr_proc_fork(&proc, p) == APR_INCHILD) {
        other_process_run(db);
    }
    for (i = 0; i < 4; i++) {
        ws[i].store = store;
        ws[i].user_id = users[i];
        ws[i].index = i;
        ws[i].count = 10;
        ws[i].once = 1;
        ws[i].delay = MS(2);
    }
    ok = workers_run(ws, 4, p);
    apr_proc_wait(&proc, &code, &why, APR_WAIT);
    RQ_OK(ok, "concurrent apply_once for different users succeeds");
    RQ_IS_INT(code, 0, "another process applied at the same time without error");
    for (i = 0; i < 4; i++) {
        RQ_IS_INT(user_writes(store, p, users[i]), 10, "user %s has exactly 10 writes",
                  users[i]);
    }
    RQ_IS_INT(user_writes(store, p, "p1"), 10, "the other process's user p1 has 10 writes");
    RQ_IS_INT(user_writes(store, p, "p2"), 10, "the other process's user p2 has 10 writes");
}

static void test_once_same_req(rq_store_t *store, apr_pool_t *p)
{
    worker_t ws[4];
    int applied = 0;
    int i;

    memset(ws, 0, sizeof(ws));
    for (i = 0; i < 4; i++) {
        ws[i].store = store;
        ws[i].user_id = "dupuser";
        ws[i].count = 1;
        ws[i].once = 1;
        ws[i].delay = MS(20);
        ws[i].fixed_req = "dup-1";
    }
    RQ_OK(workers_run(ws, 4, p), "one req_id applied by 4 threads at once: no error");
    for (i = 0; i < 4; i++) {
        applied += ws[i].applied;
    }
    RQ_IS_INT(applied, 1, "exactly one of them reports it applied");
    RQ_IS_INT(user_writes(store, p, "dupuser"), 1, "and it is written once");
}

static void test_race_loses(rq_store_t *store, apr_pool_t *p)
{
    worker_t ws[5];
    long long writes;
    int i;

    memset(ws, 0, sizeof(ws));
    for (i = 0; i < 5; i++) {
        ws[i].store = store;
        ws[i].user_id = "racer";
        ws[i].index = i;
        ws[i].count = 1;
        ws[i].once = 0;
        ws[i].delay = MS(100);
    }
    RQ_OK(workers_run(ws, 5, p), "concurrent apply_race succeeds");
    writes = user_writes(store, p, "racer");
    RQ_OK(writes >= 1 && writes < 5, "concurrent apply_race loses updates (writes %lld of 5)",
          writes);
}

static void test_describe(apr_pool_t *p)
{
    RQ_IS_STR(rq_store_describe(p, "sqlite3", "/var/lib/raceq/toy.db"),
              "sqlite3 /var/lib/raceq/toy.db", "describe: a path as it is");
    RQ_IS_STR(rq_store_describe(p, "pgsql", "host=db port=5432 user=rq password=s3cret "
                                "dbname=toy"),
              "pgsql host=db port=5432 user=rq password=**** dbname=toy",
              "describe: password= masked");
    RQ_IS_STR(rq_store_describe(p, "pgsql", "host=db PASSWORD = 'a b c' dbname=toy"),
              "pgsql host=db PASSWORD = **** dbname=toy", "describe: quoted, spaced, upper case");
    RQ_IS_STR(rq_store_describe(p, "mysql", "host=db,user=rq,pass=pw1,dbname=toy"),
              "mysql host=db,user=rq,pass=****,dbname=toy", "describe: pass= masked");
    RQ_IS_STR(rq_store_describe(p, "odbc", "DATASOURCE=x;PWD=pw2;UID=u"),
              "odbc DATASOURCE=x;PWD=****;UID=u", "describe: PWD= masked");
    RQ_IS_STR(rq_store_describe(p, "pgsql", "postgresql://rq:s3cret@db:5432/toy?sslmode=require"),
              "pgsql postgresql://rq:****@db:5432/toy?sslmode=require",
              "describe: a URI's password masked");
    RQ_IS_STR(rq_store_describe(p, "pgsql", "postgresql://rq@db/toy"),
              "pgsql postgresql://rq@db/toy", "describe: a URI without password as it is");
    RQ_IS_STR(rq_store_describe(p, "pgsql", "user=passenger dbname=password"),
              "pgsql user=passenger dbname=password", "describe: only keys are matched");
}

static char open_log[4096];
static int open_errors;

static void open_log_line(void *baton, const char *file, int line, int level, apr_status_t rv,
                          const char *msg)
{
    apr_size_t len = strlen(open_log);

    (void)baton, (void)file, (void)line;
    if (level <= RQ_LOG_ERR) {
        open_errors++;
        apr_snprintf(open_log + len, sizeof(open_log) - len, "%d %s\n", rv, msg);
    }
}

static int open_log_enabled(void *baton, int level)
{
    (void)baton, (void)level;
    return 1;
}

/* A database that cannot be opened: one error line, with the driver's cause. */
static void test_open_error_logged(apr_pool_t *p, const char *dir)
{
    rq_store_t *store = NULL;

    rq_log_set(open_log_line, open_log_enabled, NULL);
    RQ_OK(rq_store_open(&store, p, "sqlite3", dir) != APR_SUCCESS && store == NULL,
          "open fails on a directory");
    rq_log_set(NULL, NULL, NULL);
    rq_log_set_level(RQ_LOG_EMERG);
    RQ_IS_INT(open_errors, 1, "one line at error: %s", open_log);
    RQ_OK(strncmp(open_log, "0 RQ02002: cannot open the store sqlite3 ", 41) == 0 &&
          strstr(open_log, ": unable to open database file; check that") != NULL,
          "with the driver's cause and no status code: %s", open_log);
}

#define HASH_1 "1111111111111111111111111111111111111111111111111111111111111111"

static void test_lookup(rq_store_t *store, apr_pool_t *p)
{
    rq_apply_t a = apply_make(p, "look-1", "dora", "555", 0);
    rq_store_record_t rec;
    int applied = 0;

    RQ_IS_INT(rq_store_lookup(&rec, store, p, "look-1"), APR_NOTFOUND,
              "lookup: a req_id never applied is not found");
    RQ_OK(!rec.applied, "and not marked applied");
    a.hash = HASH_1;
    rq_store_apply_once(store, p, &a, &applied);
    RQ_IS_INT(rq_store_lookup(&rec, store, p, "look-1"), APR_SUCCESS,
              "lookup by req_id alone finds an applied request");
    RQ_IS_STR(rec.user_id, "dora", "with its user");
    RQ_IS_STR(rec.seq, "555", "its sequence number");
    RQ_IS_STR(rec.hash, HASH_1, "and the body hash recorded by apply_once");
    RQ_OK(rec.applied, "marked applied");

    a = apply_make(p, "look-2", "dora", NULL, 0);
    rq_store_apply_race(store, p, &a);
    RQ_IS_INT(rq_store_lookup(&rec, store, p, "look-2"), APR_SUCCESS, "a race-mode write too");
    RQ_OK(rec.seq == NULL && rec.hash == NULL, "with no sequence number and no hash");
}

/* A history table made before the hash column existed is upgraded in place. */
static void test_migrate(apr_pool_t *p, const char *dir)
{
    const char *db = apr_pstrcat(p, dir, "/old.db", NULL);
    const char *sql = apr_psprintf(p, "sqlite3 '%s' \"CREATE TABLE users (user_id "
        "VARCHAR(128) PRIMARY KEY, writes BIGINT NOT NULL DEFAULT 0); CREATE TABLE history "
        "(req_id VARCHAR(128) PRIMARY KEY, user_id VARCHAR(128) NOT NULL, seq VARCHAR(128), "
        "start_us BIGINT NOT NULL, finish_us BIGINT NOT NULL, ord BIGINT NOT NULL); "
        "INSERT INTO users VALUES ('eve', 1); "
        "INSERT INTO history VALUES ('old-1', 'eve', '900', 1, 2, 1);\"", db);
    rq_apply_t a = apply_make(p, "new-1", "eve", "901", 0);
    rq_store_t *store = NULL;
    rq_store_record_t rec;
    int applied = 0;

    RQ_IS_INT(system(sql), 0, "a store with the old history table");
    RQ_IS_INT(rq_store_open(&store, p, "sqlite3", db), APR_SUCCESS, "opens");
    if (!store) {
        return;
    }
    RQ_IS_INT(rq_store_lookup(&rec, store, p, "old-1"), APR_SUCCESS, "an old row is found");
    RQ_OK(rec.hash == NULL && rec.seq && strcmp(rec.seq, "900") == 0,
          "with its sequence number and no hash");
    a.hash = HASH_1;
    RQ_IS_INT(rq_store_apply_once(store, p, &a, &applied), APR_SUCCESS,
              "apply_once works on the upgraded table");
    RQ_IS_INT(rq_store_lookup(&rec, store, p, "new-1"), APR_SUCCESS, "the new row is found");
    RQ_IS_STR(rec.hash, HASH_1, "with its hash");
    RQ_IS_INT(user_writes(store, p, "eve"), 2, "the count goes on from the old one");
}

int main(void)
{
    apr_pool_t *p;
    rq_store_t *store = NULL;
    char tmpl[] = "/tmp/rq-store-XXXXXX";
    const char *dir;
    const char *db;
    const char *cleanup;

    apr_initialize();
    apr_pool_create(&p, NULL);
    rq_log_set_level(RQ_LOG_EMERG);
    dir = mkdtemp(tmpl);
    db = apr_pstrcat(p, dir, "/toy.db", NULL);

    test_open(p, dir);
    test_describe(p);
    test_open_error_logged(p, dir);
    RQ_IS_INT(rq_store_open(&store, p, "sqlite3", db), APR_SUCCESS, "open a fresh store");
    if (store) {
        test_race_single(store, p);
        test_user_json_shape(store, p);
        test_once(store, p);
        test_once_concurrent(store, p, db);
        test_once_same_req(store, p);
        test_race_loses(store, p);
        test_lookup(store, p);
    }
    test_migrate(p, dir);

    cleanup = apr_psprintf(p, "rm -rf '%s'", dir);
    RQ_IS_INT(system(cleanup), 0, "temporary directory removed");
    apr_pool_destroy(p);
    apr_terminate();
    return rq_tap_done();
}
