/*
 * mod_raceq: serialises writes per user through an SQS FIFO queue, or, in
 * race mode, applies them at once and concurrently.
 *
 * This file is httpd glue only: directives, the handler, the hooks. Body
 * validation, the store, the queue and the daemon's wait channel live in
 * lib/, which logs through rq_log and is pointed here at our module index.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "unixd.h"

#include <apr_dbd.h>
#include <apr_file_io.h>
#include <apr_hash.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_uri.h>
#include <jansson.h>

#include "rq_fifo.h"
#include "rq_log.h"
#include "rq_payload.h"
#include "rq_pool.h"
#include "rq_sqs.h"
#include "rq_store.h"

APLOG_USE_MODULE(raceq);

#define RQ_HANDLER "raceq"
#define RQ_ECHO_HANDLER "raceq-echo"
#define RQ_USERS_PATH "/users/"
#define RQ_DELAY_MAX_MS 600000
#define RQ_BODY_LIMIT (1024 * 1024)
#define RQ_TIMEOUT_MAX 3600
#define RQ_SOCKET_DEFAULT "/run/raceq/raceqd.sock"

typedef enum {
    RQ_MODE_UNSET = -1,
    RQ_MODE_RACE = 0,
    RQ_MODE_FIFO = 1
} raceq_mode_e;

/* Per-directory configuration as written: every field unset until set. */
typedef struct raceq_dir_t {
    const char *location;
    int mode;
    const char *store_driver;
    const char *store_params;
    int delay_min_ms;
    int delay_max_ms;
    apr_off_t max_body;
    const char *queue_url;
    const char *region;
    const char *endpoint;
    const char *env_file;
    const char *daemon_socket;
    int timeout_s;
    int generate_id;
} raceq_dir_t;

/* The configuration in force for a request, defaults applied. */
typedef struct raceq_conf_t {
    const char *location;
    int mode;
    const char *store_driver;
    const char *store_params;
    apr_interval_time_t delay_min;
    apr_interval_time_t delay_max;
    apr_off_t max_body;
    const char *queue_url;   /* NULL: AWS_FIFO_URL */
    const char *region;      /* NULL: the AWS conventions */
    const char *endpoint;    /* NULL: AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL */
    const char *env_file;    /* NULL: none */
    const char *daemon_socket;
    apr_interval_time_t timeout;
    int generate_id;         /* make a req_id when the request has none */
} raceq_conf_t;

/* One request being served. */
typedef struct raceq_req_t {
    request_rec *r;
    raceq_conf_t conf;
    int body_done; /* the request body has been read to its end */
    int answered;  /* a response has been written */
} raceq_req_t;

/* Stores opened in this child, by "driver\nparams", shared by its threads. */
static apr_pool_t *store_pool;
static apr_hash_t *store_cache;
static apr_thread_mutex_t *store_mutex;

/*
 * fifo clients made in this child, one per distinct daemon socket and AWS
 * settings, shared by its threads. A configuration that cannot work is
 * remembered with its reason, so that it is not retried on every request.
 */
typedef struct fifo_entry_t {
    rq_fifo_t *fifo;
    const char *err;
} fifo_entry_t;

static apr_pool_t *fifo_pool;
static apr_hash_t *fifo_cache;
static apr_thread_mutex_t *fifo_mutex;

/* SQLite files named in the configuration, so that their directories exist. */
static apr_array_header_t *sqlite_paths;

/* The request a thread serves, so that lib/ lines carry its context. */
static __thread request_rec *log_r;
static __thread int log_r_errors; /* lines at error or worse logged for log_r */
static server_rec *log_s;

/* --- logging ------------------------------------------------------------- */

static void log_line(void *baton, const char *file, int line, int level, apr_status_t rv,
                     const char *msg)
{
    const char *sep = "";
    const char *why = "";
    char buf[256];

    (void)baton;
    if (rv >= APR_OS_START_USERERR && rv < APR_OS_START_CANONERR) {
        /* httpd's apr_strerror() does not know the library's own codes. */
        sep = ": ";
        why = rq_strerror(rv, buf, sizeof(buf));
        rv = APR_SUCCESS;
    }
    if (log_r) {
        log_r_errors += level <= APLOG_ERR;
        ap_log_rerror_(file, line, APLOG_MODULE_INDEX, level, rv, log_r, "%s%s%s", msg, sep,
                       why);
    }
    else if (log_s) {
        ap_log_error_(file, line, APLOG_MODULE_INDEX, level, rv, log_s, "%s%s%s", msg, sep, why);
    }
}

static int log_enabled(void *baton, int level)
{
    (void)baton;
    if (log_r) {
        return APLOG_R_MODULE_IS_LEVEL(log_r, APLOG_MODULE_INDEX, level);
    }
    return log_s && APLOG_MODULE_IS_LEVEL(log_s, APLOG_MODULE_INDEX, level);
}

static void log_attach(server_rec *s)
{
    log_s = s;
    rq_log_set(log_line, log_enabled, NULL);
}

/* --- configuration ------------------------------------------------------- */

static void *dir_create(apr_pool_t *p, char *dir)
{
    raceq_dir_t *d = apr_pcalloc(p, sizeof(*d));

    d->location = dir;
    d->mode = RQ_MODE_UNSET;
    d->delay_min_ms = -1;
    d->delay_max_ms = -1;
    d->max_body = -1;
    d->timeout_s = -1;
    d->generate_id = -1;
    return d;
}

#define MERGE_PTR(f) (add->f ? add->f : base->f)
#define MERGE_NUM(f) (add->f >= 0 ? add->f : base->f)

static void *dir_merge(apr_pool_t *p, void *basev, void *addv)
{
    const raceq_dir_t *base = basev;
    const raceq_dir_t *add = addv;
    raceq_dir_t *d = apr_pcalloc(p, sizeof(*d));
    int store_set = add->store_driver != NULL;
    int delay_set = add->delay_min_ms >= 0;

    d->location = MERGE_PTR(location);
    d->mode = MERGE_NUM(mode);
    d->store_driver = store_set ? add->store_driver : base->store_driver;
    d->store_params = store_set ? add->store_params : base->store_params;
    d->delay_min_ms = delay_set ? add->delay_min_ms : base->delay_min_ms;
    d->delay_max_ms = delay_set ? add->delay_max_ms : base->delay_max_ms;
    d->max_body = MERGE_NUM(max_body);
    d->queue_url = MERGE_PTR(queue_url);
    d->region = MERGE_PTR(region);
    d->endpoint = MERGE_PTR(endpoint);
    d->env_file = MERGE_PTR(env_file);
    d->daemon_socket = MERGE_PTR(daemon_socket);
    d->timeout_s = MERGE_NUM(timeout_s);
    d->generate_id = MERGE_NUM(generate_id);
    return d;
}

/* The one place where defaults live. */
static void conf_get(raceq_conf_t *c, request_rec *r)
{
    const raceq_dir_t *d = ap_get_module_config(r->per_dir_config, &raceq_module);

    c->location = d->location;
    c->mode = d->mode >= 0 ? d->mode : RQ_MODE_RACE;
    c->store_driver = d->store_driver ? d->store_driver : RQ_STORE_DEFAULT_DRIVER;
    c->store_params = d->store_driver ? d->store_params : RQ_STORE_DEFAULT_PARAMS;
    c->delay_min = apr_time_from_msec(d->delay_min_ms >= 0 ? d->delay_min_ms : 1);
    c->delay_max = apr_time_from_msec(d->delay_max_ms >= 0 ? d->delay_max_ms : 200);
    c->max_body = d->max_body >= 0 ? d->max_body : 65536;
    c->queue_url = d->queue_url;
    c->region = d->region;
    c->endpoint = d->endpoint;
    c->env_file = d->env_file;
    c->daemon_socket = d->daemon_socket ? d->daemon_socket : RQ_SOCKET_DEFAULT;
    c->timeout = apr_time_from_sec(d->timeout_s >= 0 ? d->timeout_s : 30);
    c->generate_id = d->generate_id > 0;
}

/* Parses a whole decimal number within [lo, hi]; returns 0 when it is not one. */
static int number_parse(apr_int64_t *pn, const char *s, apr_int64_t lo, apr_int64_t hi)
{
    char *end = NULL;
    apr_int64_t n;

    if (!s || !apr_isdigit(*s)) {
        return 0;
    }
    errno = 0;
    n = apr_strtoi64(s, &end, 10);
    if (errno || *end || n < lo || n > hi) {
        return 0;
    }
    *pn = n;
    return 1;
}

static const char *cmd_mode(cmd_parms *cmd, void *dconf, const char *arg)
{
    raceq_dir_t *d = dconf;

    if (strcasecmp(arg, "race") == 0) {
        d->mode = RQ_MODE_RACE;
    }
    else if (strcasecmp(arg, "fifo") == 0) {
        d->mode = RQ_MODE_FIFO;
    }
    else {
        return apr_psprintf(cmd->pool, "%s must be 'race' or 'fifo', not '%s'",
                            cmd->cmd->name, arg);
    }
    return NULL;
}

static int driver_name_ok(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        if (!apr_islower(*s) && !apr_isdigit(*s) && *s != '_') {
            return 0;
        }
    }
    return 1;
}

static const char *store_params_take(apr_pool_t *p, const char *args)
{
    while (apr_isspace(*args)) {
        args++;
    }
    if (*args == '"' || *args == '\'') {
        return ap_getword_conf(p, &args);
    }
    return apr_pstrdup(p, args);
}

static int sqlite_is_file(const char *params)
{
    return strcmp(params, ":memory:") != 0 && strncmp(params, "file:", 5) != 0;
}

static const char *cmd_store(cmd_parms *cmd, void *dconf, const char *args)
{
    raceq_dir_t *d = dconf;
    const char *driver = ap_getword_conf(cmd->pool, &args);
    const char *params = store_params_take(cmd->pool, args);
    const apr_dbd_driver_t *drv = NULL;
    apr_status_t rv;

    if (!driver_name_ok(driver) || !*params) {
        return apr_psprintf(cmd->pool, "%s needs an apr_dbd driver and its parameters, "
                            "e.g. '%s sqlite3 /var/lib/raceq/toy.db'",
                            cmd->cmd->name, cmd->cmd->name);
    }

    apr_dbd_init(cmd->pool);
    rv = apr_dbd_get_driver(cmd->pool, driver, &drv);
    if (rv != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: the apr_dbd driver '%s' is not available "
                            "(on Debian, install libaprutil1-dbd-%s)",
                            cmd->cmd->name, driver, driver);
    }

    if (strcmp(driver, "sqlite3") == 0 && sqlite_is_file(params)) {
        params = ap_server_root_relative(cmd->pool, params);
        if (!params) {
            return apr_psprintf(cmd->pool, "%s: invalid database path", cmd->cmd->name);
        }
        if (sqlite_paths) {
            APR_ARRAY_PUSH(sqlite_paths, const char *) = params;
        }
    }
    d->store_driver = driver;
    d->store_params = params;
    return NULL;
}

static const char *cmd_delay(cmd_parms *cmd, void *dconf, const char *lo, const char *hi)
{
    raceq_dir_t *d = dconf;
    apr_int64_t min;
    apr_int64_t max;

    if (!number_parse(&min, lo, 0, RQ_DELAY_MAX_MS) ||
        !number_parse(&max, hi, 0, RQ_DELAY_MAX_MS)) {
        return apr_psprintf(cmd->pool, "%s takes two whole numbers of milliseconds "
                            "between 0 and %d, e.g. '%s 1 200'",
                            cmd->cmd->name, RQ_DELAY_MAX_MS, cmd->cmd->name);
    }
    if (min > max) {
        return apr_psprintf(cmd->pool, "%s: the minimum (%s ms) is larger than the "
                            "maximum (%s ms)", cmd->cmd->name, lo, hi);
    }
    d->delay_min_ms = (int)min;
    d->delay_max_ms = (int)max;
    return NULL;
}

static const char *cmd_max_body(cmd_parms *cmd, void *dconf, const char *arg)
{
    raceq_dir_t *d = dconf;
    apr_int64_t n;

    if (!number_parse(&n, arg, 1, RQ_BODY_LIMIT)) {
        return apr_psprintf(cmd->pool, "%s takes a number of bytes between 1 and %d "
                            "(the largest SQS message), not '%s'",
                            cmd->cmd->name, RQ_BODY_LIMIT, arg);
    }
    d->max_body = (apr_off_t)n;
    return NULL;
}

static const char *cmd_timeout(cmd_parms *cmd, void *dconf, const char *arg)
{
    raceq_dir_t *d = dconf;
    apr_int64_t n;

    if (!number_parse(&n, arg, 1, RQ_TIMEOUT_MAX)) {
        return apr_psprintf(cmd->pool, "%s takes a number of seconds between 1 and %d, "
                            "not '%s'", cmd->cmd->name, RQ_TIMEOUT_MAX, arg);
    }
    d->timeout_s = (int)n;
    return NULL;
}

static const char *url_check(cmd_parms *cmd, const char *arg)
{
    apr_uri_t uri;

    if (apr_uri_parse(cmd->pool, arg, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname ||
        !*uri.hostname ||
        (strcasecmp(uri.scheme, "http") != 0 && strcasecmp(uri.scheme, "https") != 0)) {
        return apr_psprintf(cmd->pool, "%s takes an http:// or https:// URL, not '%s'",
                            cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *cmd_queue_url(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = url_check(cmd, arg);

    if (!err) {
        ((raceq_dir_t *)dconf)->queue_url = arg;
    }
    return err;
}

static const char *cmd_endpoint(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = url_check(cmd, arg);

    if (!err) {
        ((raceq_dir_t *)dconf)->endpoint = arg;
    }
    return err;
}

static const char *cmd_region(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *s;

    for (s = arg; *s; s++) {
        if (!apr_islower(*s) && !apr_isdigit(*s) && *s != '-') {
            break;
        }
    }
    if (!*arg || *s || strlen(arg) > 64) {
        return apr_psprintf(cmd->pool, "%s takes an AWS region name such as 'eu-west-1', "
                            "not '%s'", cmd->cmd->name, arg);
    }
    ((raceq_dir_t *)dconf)->region = arg;
    return NULL;
}

static const char *cmd_env_file(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);

    if (!path || !*arg) {
        return apr_psprintf(cmd->pool, "%s: invalid path '%s'", cmd->cmd->name, arg);
    }
    ((raceq_dir_t *)dconf)->env_file = path;
    return NULL;
}

static const char *cmd_daemon_socket(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *path = ap_runtime_dir_relative(cmd->pool, arg);

    if (!path || !*arg) {
        return apr_psprintf(cmd->pool, "%s: invalid path '%s'", cmd->cmd->name, arg);
    }
    if (strlen(path) > 107) {
        return apr_psprintf(cmd->pool, "%s: '%s' is longer than a Unix socket path may be "
                            "(107 bytes)", cmd->cmd->name, path);
    }
    ((raceq_dir_t *)dconf)->daemon_socket = path;
    return NULL;
}

static const char *cmd_generate_id(cmd_parms *cmd, void *dconf, int on)
{
    (void)cmd;
    ((raceq_dir_t *)dconf)->generate_id = on ? 1 : 0;
    return NULL;
}

static const command_rec raceq_cmds[] = {
    AP_INIT_TAKE1("RaceQMode", cmd_mode, NULL, RSRC_CONF | ACCESS_CONF,
                  "race (apply at once, concurrently) or fifo (through the SQS FIFO queue)"),
    AP_INIT_RAW_ARGS("RaceQStore", cmd_store, NULL, RSRC_CONF | ACCESS_CONF,
                     "apr_dbd driver and parameters of the store, e.g. sqlite3 /path/toy.db"),
    AP_INIT_TAKE2("RaceQApplyDelay", cmd_delay, NULL, RSRC_CONF | ACCESS_CONF,
                  "the toy write's random duration: MIN_MS MAX_MS"),
    AP_INIT_TAKE1("RaceQMaxBody", cmd_max_body, NULL, RSRC_CONF | ACCESS_CONF,
                  "largest request body accepted, in bytes"),
    AP_INIT_TAKE1("RaceQQueueURL", cmd_queue_url, NULL, RSRC_CONF | ACCESS_CONF,
                  "URL of the SQS FIFO queue (else AWS_FIFO_URL)"),
    AP_INIT_TAKE1("RaceQRegion", cmd_region, NULL, RSRC_CONF | ACCESS_CONF,
                  "AWS region of the queue"),
    AP_INIT_TAKE1("RaceQEndpoint", cmd_endpoint, NULL, RSRC_CONF | ACCESS_CONF,
                  "SQS endpoint URL (else AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL)"),
    AP_INIT_TAKE1("RaceQEnvFile", cmd_env_file, NULL, RSRC_CONF | ACCESS_CONF,
                  "a .env file with AWS settings"),
    AP_INIT_TAKE1("RaceQDaemonSocket", cmd_daemon_socket, NULL, RSRC_CONF | ACCESS_CONF,
                  "the Unix socket of raceqd"),
    AP_INIT_TAKE1("RaceQTimeout", cmd_timeout, NULL, RSRC_CONF | ACCESS_CONF,
                  "seconds a fifo request waits for its write"),
    AP_INIT_FLAG("RaceQGenerateId", cmd_generate_id, NULL, RSRC_CONF | ACCESS_CONF,
                 "On: make a req_id when neither the body nor Idempotency-Key has one"),
    { NULL }
};

/* --- stores -------------------------------------------------------------- */

static apr_status_t store_cache_reset(void *data)
{
    (void)data;
    store_cache = NULL;
    store_mutex = NULL;
    store_pool = NULL;
    return APR_SUCCESS;
}

static apr_status_t store_get(rq_store_t **pstore, apr_pool_t *p, const raceq_conf_t *c)
{
    const char *key = apr_pstrcat(p, c->store_driver, "\n", c->store_params, NULL);
    apr_status_t rv = APR_SUCCESS;

    *pstore = NULL;
    if (!store_cache) {
        return APR_EINIT;
    }
    apr_thread_mutex_lock(store_mutex);
    *pstore = apr_hash_get(store_cache, key, APR_HASH_KEY_STRING);
    if (!*pstore) {
        rv = rq_store_open(pstore, store_pool, c->store_driver, c->store_params);
        if (rv == APR_SUCCESS) {
            key = apr_pstrdup(store_pool, key);
            apr_hash_set(store_cache, key, APR_HASH_KEY_STRING, *pstore);
        }
    }
    apr_thread_mutex_unlock(store_mutex);
    return rv;
}

/*
 * Started as root, httpd makes the directories of its SQLite stores, owned
 * by the User it serves as, so that the children can create the database.
 */
static void sqlite_dir_prepare(apr_pool_t *p, server_rec *s, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dir;
    apr_finfo_t fi;
    apr_status_t rv;

    if (!slash || slash == path) {
        return;
    }
    dir = apr_pstrndup(p, path, (apr_size_t)(slash - path));
    if (apr_stat(&fi, dir, APR_FINFO_TYPE, p) == APR_SUCCESS) {
        return;
    }
    rv = apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, p);
    if (rv == APR_SUCCESS && chown(dir, ap_unixd_config.user_id, ap_unixd_config.group_id)) {
        rv = APR_FROM_OS_ERROR(errno);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "RQ11001: cannot prepare the directory %s of the store %s; the "
                     "children may fail to create the database", dir, path);
    }
}

/* --- responses ----------------------------------------------------------- */

static int body_send(raceq_req_t *q, int status, const char *json)
{
    request_rec *r = q->r;

    q->answered = 1;
    r->status = status;
    ap_set_content_type(r, "application/json");
    if (!q->body_done) {
        /* An unread body is not drained: close the connection after answering. */
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    ap_rwrite(json, (int)strlen(json), r);
    return OK;
}

/*
 * Every error: {"status":N,"error":"<sentence>","field":"<field>"|null},
 * and "req_id" when the answer concerns a write that is still under way.
 */
static int error_send_id(raceq_req_t *q, int status, const char *field, const char *msg,
                         const char *req_id)
{
    json_t *o = json_pack("{s:i, s:s, s:s?}", "status", status, "error", msg, "field", field);
    char *s;
    int rc;

    if (o && req_id) {
        json_object_set_new(o, "req_id", json_string(req_id));
    }
    s = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;

    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, q->r, "RQ11002: answering %d: %s%s%s", status,
                  msg, field ? " (field " : "", field ? apr_pstrcat(q->r->pool, field, ")",
                                                                   NULL) : "");
    rc = body_send(q, status, s ? s : "{\"status\":500}");
    free(s);
    json_decref(o);
    return rc;
}

static int error_send(raceq_req_t *q, int status, const char *field, const char *msg)
{
    return error_send_id(q, status, field, msg, NULL);
}

static int method_refuse(raceq_req_t *q, const char *allow)
{
    apr_table_setn(q->r->headers_out, "Allow", allow);
    return error_send(q, HTTP_METHOD_NOT_ALLOWED, NULL,
                      apr_psprintf(q->r->pool, "method %s is not allowed here; use %s",
                                   q->r->method, allow));
}

/*
 * A store failure: logged once at error, by the library where it knows the
 * cause, else here. The answer says whether a read or a write failed.
 */
static int fault_send(raceq_req_t *q, apr_status_t rv, const char *what)
{
    char buf[256];

    ap_log_rerror(APLOG_MARK, log_r_errors ? APLOG_DEBUG : APLOG_ERR, APR_SUCCESS, q->r,
                  "RQ11003: %s (store %s): %s", what,
                  rq_store_describe(q->r->pool, q->conf.store_driver, q->conf.store_params),
                  rq_strerror(rv, buf, sizeof(buf)));
    return error_send(q, HTTP_INTERNAL_SERVER_ERROR, NULL, q->r->method_number == M_GET
                      ? "the user's state could not be read; see the server's error log"
                      : "the write could not be completed; see the server's error log");
}

/* --- POST <location> ----------------------------------------------------- */

static int content_type_ok(request_rec *r)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    apr_size_t len;

    if (!ct) {
        return 0;
    }
    while (apr_isspace(*ct)) {
        ct++;
    }
    len = strcspn(ct, ";");
    while (len > 0 && apr_isspace(ct[len - 1])) {
        len--;
    }
    return len == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

static int too_large(raceq_req_t *q)
{
    return error_send(q, HTTP_REQUEST_ENTITY_TOO_LARGE, NULL,
                      apr_psprintf(q->r->pool, "the request body is larger than %"
                                   APR_OFF_T_FMT " bytes (RaceQMaxBody)", q->conf.max_body));
}

/* First buffer for a chunked body; it doubles as needed up to the limit. */
#define RQ_BODY_CHUNKED_START 1024

/* Moves buf[0..len) to a buffer twice as large, at most cap bytes. */
static char *body_grow(apr_pool_t *p, const char *buf, apr_size_t len, apr_size_t *psize,
                       apr_size_t cap)
{
    apr_size_t size = *psize > cap / 2 ? cap : *psize * 2;
    char *bigger = apr_palloc(p, size);

    memcpy(bigger, buf, len);
    *psize = size;
    return bigger;
}

/*
 * Reads the body, dechunked, never past RaceQMaxBody + 1 bytes. The buffer
 * is as large as Content-Length (plus one byte to see a longer body); for a
 * chunked body it starts small and grows.
 */
static int body_read(raceq_req_t *q, const char **pbody, apr_size_t *plen)
{
    request_rec *r = q->r;
    apr_size_t max = (apr_size_t)q->conf.max_body;
    apr_size_t size;
    apr_size_t len = 0;
    char *buf;
    long n;
    int rc;

    rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);
    if (rc != OK) {
        return error_send(q, rc, NULL, "the request body cannot be read");
    }
    if (r->remaining > q->conf.max_body) {
        return too_large(q);
    }

    size = r->read_chunked ? RQ_BODY_CHUNKED_START : (apr_size_t)r->remaining + 1;
    size = size > max + 1 ? max + 1 : size;
    buf = apr_palloc(r->pool, size);
    if (ap_should_client_block(r)) {
        while ((n = ap_get_client_block(r, buf + len, size - len)) > 0) {
            len += (apr_size_t)n;
            if (len > max) {
                return too_large(q);
            }
            if (len == size) {
                buf = body_grow(r->pool, buf, len, &size, max + 1);
            }
        }
        if (n < 0) {
            return error_send(q, HTTP_BAD_REQUEST, NULL, "the request body cannot be read");
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "RQ11100: request body of %" APR_SIZE_T_FMT
                  " bytes read into a buffer of %" APR_SIZE_T_FMT " bytes", len, size);
    q->body_done = 1;
    *pbody = buf;
    *plen = len;
    return OK;
}

static int race_apply(raceq_req_t *q, const rq_payload_t *pl)
{
    rq_store_t *store = NULL;
    rq_apply_t a;
    apr_status_t rv;

    rv = store_get(&store, q->r->pool, &q->conf);
    if (rv != APR_SUCCESS) {
        return fault_send(q, rv, "the store cannot be opened");
    }

    a.payload = pl;
    a.seq = NULL;
    a.delay_min = q->conf.delay_min;
    a.delay_max = q->conf.delay_max;
    rv = rq_store_apply_race(store, q->r->pool, &a);
    if (rv == RQ_STORE_EDUPLICATE) {
        return error_send(q, HTTP_CONFLICT, "req_id", "req_id has already been applied");
    }
    if (rv != APR_SUCCESS) {
        return fault_send(q, rv, "the write failed");
    }
    return body_send(q, HTTP_OK, pl->json);
}

/* --- fifo mode ---------------------------------------------------------- */

static void fifo_opts_fill(rq_fifo_opts_t *o, const raceq_conf_t *c)
{
    rq_fifo_opts_default(o);
    o->socket_path = c->daemon_socket;
    o->aws.queue_url = c->queue_url;
    o->aws.region = c->region;
    o->aws.endpoint = c->endpoint;
    o->aws.env_file = c->env_file;
}

static const char *fifo_key(apr_pool_t *p, const raceq_conf_t *c)
{
    return apr_pstrcat(p, c->daemon_socket, "\n", c->queue_url ? c->queue_url : "", "\n",
                       c->region ? c->region : "", "\n", c->endpoint ? c->endpoint : "",
                       "\n", c->env_file ? c->env_file : "", NULL);
}

static apr_status_t fifo_cache_reset(void *data)
{
    (void)data;
    fifo_cache = NULL;
    fifo_mutex = NULL;
    fifo_pool = NULL;
    return APR_SUCCESS;
}

/* Called with fifo_mutex held; the entry and its key live in a pool of their own. */
static fifo_entry_t *fifo_entry_make(const char *key, const raceq_conf_t *c)
{
    fifo_entry_t *e;
    apr_pool_t *ep;
    rq_fifo_opts_t o;
    const char *err = NULL;

    if (apr_pool_create(&ep, fifo_pool) != APR_SUCCESS) {
        return NULL;
    }
    e = apr_pcalloc(ep, sizeof(*e));
    fifo_opts_fill(&o, c);
    if (rq_fifo_create(&e->fifo, &err, ep, &o) != APR_SUCCESS) {
        e->fifo = NULL;
        e->err = apr_pstrdup(ep, err ? err : "the fifo client cannot be set up");
    }
    apr_hash_set(fifo_cache, apr_pstrdup(ep, key), APR_HASH_KEY_STRING, e);
    return e;
}

/* The fifo client for this configuration, made on first use in this child. */
static apr_status_t fifo_get(rq_fifo_t **pfifo, const char **perr, apr_pool_t *p,
                             const raceq_conf_t *c)
{
    const char *key = fifo_key(p, c);
    fifo_entry_t *e;

    *pfifo = NULL;
    *perr = "the fifo client cache of this process is not set up";
    if (!fifo_cache) {
        return APR_EINIT;
    }
    apr_thread_mutex_lock(fifo_mutex);
    e = apr_hash_get(fifo_cache, key, APR_HASH_KEY_STRING);
    if (!e) {
        e = fifo_entry_make(key, c);
    }
    apr_thread_mutex_unlock(fifo_mutex);
    if (!e) {
        return APR_ENOMEM;
    }
    if (!e->fifo) {
        *perr = e->err;
        return APR_EINVAL;
    }
    *pfifo = e->fifo;
    return APR_SUCCESS;
}

/* Throttling and network failures are passing: 503; any other refusal: 502. */
static int sqs_fail_status(apr_status_t sqs_status)
{
    if (sqs_status == RQ_SQS_ENETWORK || sqs_status == RQ_SQS_ETHROTTLED) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    return HTTP_BAD_GATEWAY;
}

static int fifo_queued_send(raceq_req_t *q, const rq_fifo_result_t *res, int status,
                            const char *what)
{
    return error_send_id(q, status, NULL,
                         apr_psprintf(q->r->pool, "%s; the write is queued and will still "
                                      "be applied", what), res->req_id);
}

/* Maps rq_fifo_call's outcome onto the answer; the library logged the cause. */
static int fifo_answer(raceq_req_t *q, const rq_payload_t *pl, apr_status_t rv,
                       const rq_fifo_result_t *res)
{
    request_rec *r = q->r;

    switch (rv) {
    case APR_SUCCESS:
        if (res->seq) {
            apr_table_setn(r->headers_out, "X-RaceQ-Seq", res->seq);
        }
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "RQ11011: req_id %s answered, seq %s%s",
                      pl->req_id, res->seq ? res->seq : "none",
                      res->duplicate ? ", applied before" : "");
        return body_send(q, HTTP_OK, pl->json);
    case RQ_FIFO_EUNREACHABLE:
        apr_table_setn(r->headers_out, "Retry-After", "1");
        return error_send(q, HTTP_SERVICE_UNAVAILABLE, NULL,
                          "the queue daemon is not reachable; nothing was sent");
    case RQ_FIFO_ECONFLICT:
        return error_send(q, HTTP_CONFLICT, "req_id",
                          "req_id was already used with another body; nothing was applied");
    case RQ_FIFO_ESQS:
        apr_table_setn(r->headers_out, "Retry-After", "1");
        if (sqs_fail_status(res->sqs_status) == HTTP_SERVICE_UNAVAILABLE) {
            return error_send(q, HTTP_SERVICE_UNAVAILABLE, NULL,
                              "the queue could not be reached; the write may not have been "
                              "queued, and a retry with the same req_id is safe");
        }
        return error_send(q, HTTP_BAD_GATEWAY, NULL,
                          "the queue did not take the write; nothing was queued");
    case RQ_FIFO_ETIMEDOUT:
        return fifo_queued_send(q, res, HTTP_GATEWAY_TIME_OUT,
                                apr_psprintf(r->pool, "no answer within %" APR_TIME_T_FMT
                                             " s (RaceQTimeout)",
                                             apr_time_sec(q->conf.timeout)));
    case RQ_FIFO_EGONE:
        return fifo_queued_send(q, res, HTTP_GATEWAY_TIME_OUT,
                                "the queue daemon stopped before answering");
    case RQ_FIFO_EPROTO:
        if (res->sent) {
            return fifo_queued_send(q, res, HTTP_BAD_GATEWAY,
                                    "the queue daemon gave an invalid answer");
        }
        return error_send(q, HTTP_BAD_GATEWAY, NULL,
                          "the queue daemon gave an invalid answer; nothing was sent");
    default:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "RQ11012: req_id %s: the fifo call "
                      "failed", pl->req_id);
        return error_send(q, HTTP_INTERNAL_SERVER_ERROR, NULL,
                          "the write could not be completed; see the server's error log");
    }
}

/*
 * Registers the wait with raceqd, sends to the queue and waits: all in
 * rq_fifo_call. The worker is held for at most RaceQTimeout.
 */
static int fifo_apply(raceq_req_t *q, const rq_payload_t *pl)
{
    rq_fifo_result_t res;
    rq_fifo_t *fifo = NULL;
    const char *err = NULL;
    apr_status_t rv;

    rv = fifo_get(&fifo, &err, q->r->pool, &q->conf);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, q->r, "RQ11010: RaceQMode fifo at %s "
                      "cannot work: %s", q->conf.location ? q->conf.location : q->r->uri,
                      err);
        return error_send(q, HTTP_INTERNAL_SERVER_ERROR, NULL,
                          "fifo mode is not configured correctly on this server; nothing was "
                          "sent; see the server's error log");
    }

    apr_table_setn(q->r->headers_out, "X-RaceQ-Req-Id", pl->req_id);
    rv = rq_fifo_call(&res, fifo, q->r->pool, pl, q->conf.timeout);
    return fifo_answer(q, pl, rv, &res);
}

static int post_handle(raceq_req_t *q)
{
    rq_payload_t *pl = NULL;
    rq_payload_error_t err;
    rq_payload_idsrc_t src;
    const char *body = NULL;
    apr_size_t len = 0;
    int rc;

    if (q->r->method_number != M_POST) {
        return method_refuse(q, "POST");
    }
    if (!content_type_ok(q->r)) {
        return error_send(q, HTTP_UNSUPPORTED_MEDIA_TYPE, NULL,
                          "the request body must be sent as Content-Type application/json");
    }

    rc = body_read(q, &body, &len);
    if (q->answered) {
        return rc;
    }

    src.key = apr_table_get(q->r->headers_in, "Idempotency-Key");
    src.generate = q->conf.generate_id;
    if (rq_payload_parse_keyed(&pl, &err, q->r->pool, body, len, &src) != APR_SUCCESS) {
        return error_send(q, HTTP_BAD_REQUEST, err.field, err.message);
    }
    apr_table_setn(q->r->headers_out, "X-RaceQ-Req-Id", pl->req_id);

    if (q->conf.mode == RQ_MODE_FIFO) {
        return fifo_apply(q, pl);
    }
    return race_apply(q, pl);
}

/*
 * SetHandler raceq-echo: the baseline for benchmarks. It does what every
 * handler must (read the body within RaceQMaxBody, answer JSON) and nothing
 * else, so comparing it with race mode shows what the toy write costs.
 */
static int echo_handle(raceq_req_t *q)
{
    const char *body = NULL;
    apr_size_t len = 0;
    int rc;

    if (q->r->method_number != M_POST) {
        return method_refuse(q, "POST");
    }

    rc = body_read(q, &body, &len);
    if (q->answered) {
        return rc;
    }
    return body_send(q, HTTP_OK, "{\"ok\":true}");
}

/* --- GET <location>/users/<user_id> -------------------------------------- */

static int hex_value(char c)
{
    if (apr_isdigit(c)) {
        return c - '0';
    }
    c = (char)apr_tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes %XX escapes (all of them, %2F too); refuses bad escapes and %00. */
static int id_decode(char **pout, apr_pool_t *p, const char *raw)
{
    char *out = apr_palloc(p, strlen(raw) + 1);
    char *o = out;

    while (*raw) {
        if (*raw != '%') {
            *o++ = *raw++;
            continue;
        }
        if (hex_value(raw[1]) < 0 || hex_value(raw[2]) < 0) {
            return 0;
        }
        *o = (char)(hex_value(raw[1]) * 16 + hex_value(raw[2]));
        if (*o++ == '\0') {
            return 0;
        }
        raw += 3;
    }
    *o = '\0';
    *pout = out;
    return 1;
}

static int user_handle(raceq_req_t *q, const char *raw)
{
    rq_payload_error_t err;
    rq_store_t *store = NULL;
    const char *json = NULL;
    char *user_id = NULL;
    apr_status_t rv;

    if (q->r->method_number != M_GET) {
        return method_refuse(q, "GET");
    }
    /* A body sent along is read and dropped, so the connection can be kept. */
    if (ap_discard_request_body(q->r) == OK) {
        q->body_done = 1;
    }
    if (!id_decode(&user_id, q->r->pool, raw)) {
        return error_send(q, HTTP_BAD_REQUEST, "user_id", "user_id is not validly URL-encoded");
    }
    if (rq_payload_check_id(&err, q->r->pool, "user_id", user_id, strlen(user_id)) !=
        APR_SUCCESS) {
        return error_send(q, HTTP_BAD_REQUEST, err.field, err.message);
    }

    rv = store_get(&store, q->r->pool, &q->conf);
    if (rv == APR_SUCCESS) {
        rv = rq_store_user_json(&json, store, q->r->pool, user_id);
    }
    if (rv != APR_SUCCESS) {
        return fault_send(q, rv, "the user cannot be read");
    }
    return body_send(q, HTTP_OK, json);
}

/* --- routing and hooks --------------------------------------------------- */

/*
 * The location's own path takes POST; <location>/users/<id> takes GET.
 * Matching uses the raw path so that an id may hold escaped characters.
 * Where the section has no plain path (LocationMatch, Directory) the last
 * "/users/<id>" of the path is taken.
 */
static int route(raceq_req_t *q)
{
    const char *path = q->r->parsed_uri.path ? q->r->parsed_uri.path : q->r->uri;
    const char *base = q->conf.location;
    apr_size_t blen = base ? strlen(base) : 0;
    const char *rest;
    const char *users;

    while (blen > 0 && base[blen - 1] == '/') {
        blen--;
    }
    if (base && *base == '/' && strncmp(path, base, blen) == 0) {
        rest = path + blen;
    }
    else {
        users = strstr(path, RQ_USERS_PATH);
        while (users && strstr(users + 1, RQ_USERS_PATH)) {
            users = strstr(users + 1, RQ_USERS_PATH);
        }
        rest = users && !strchr(users + strlen(RQ_USERS_PATH), '/') ? users : "";
    }

    if (*rest == '\0' || strcmp(rest, "/") == 0) {
        return post_handle(q);
    }
    if (strncmp(rest, RQ_USERS_PATH, strlen(RQ_USERS_PATH)) == 0) {
        rest += strlen(RQ_USERS_PATH);
        if (*rest && !strchr(rest, '/')) {
            return user_handle(q, rest);
        }
    }
    return error_send(q, HTTP_NOT_FOUND, NULL, "no such resource");
}

static int raceq_handler(request_rec *r)
{
    raceq_req_t q;
    int rc;

    if (!r->handler || (strcmp(r->handler, RQ_HANDLER) != 0 &&
                        strcmp(r->handler, RQ_ECHO_HANDLER) != 0)) {
        return DECLINED;
    }

    memset(&q, 0, sizeof(q));
    q.r = r;
    conf_get(&q.conf, r);
    log_r = r;
    log_r_errors = 0;
    rc = strcmp(r->handler, RQ_ECHO_HANDLER) == 0 ? echo_handle(&q) : route(&q);
    log_r = NULL;
    return rc;
}

/* --- startup checks of fifo sections ------------------------------------ */

/* A plain <Location> whose path holds the other's: httpd merges both. */
static int location_covers(const core_dir_config *outer, const core_dir_config *inner)
{
    apr_size_t len;

    if (!outer->d || !inner->d || outer->r || inner->r || outer->d_is_fnmatch) {
        return 0;
    }
    len = strlen(outer->d);
    if (strncmp(inner->d, outer->d, len) != 0) {
        return 0;
    }
    return len == 0 || outer->d[len - 1] == '/' || inner->d[len] == '\0' ||
           inner->d[len] == '/';
}

/* The configuration section i of secs gets at request time, as far as we can tell. */
static raceq_dir_t *section_merged(apr_pool_t *p, server_rec *s, apr_array_header_t *secs,
                                   int i, int nested)
{
    ap_conf_vector_t **v = (ap_conf_vector_t **)secs->elts;
    const core_dir_config *ci = ap_get_core_module_config(v[i]);
    raceq_dir_t *d = ap_get_module_config(s->lookup_defaults, &raceq_module);
    int j;

    for (j = 0; j < secs->nelts; j++) {
        raceq_dir_t *dj = ap_get_module_config(v[j], &raceq_module);

        if (!dj || !d) {
            continue; /* a section read before the module was loaded */
        }
        if (j == i || (nested && location_covers(ap_get_core_module_config(v[j]), ci))) {
            d = dir_merge(p, d, dj);
        }
    }
    return d;
}

/* Returns the reason a fifo section could not work, or NULL. */
static const char *fifo_conf_problem(apr_pool_t *p, apr_hash_t *seen, const raceq_dir_t *d)
{
    rq_aws_conf_t given;
    rq_aws_conf_t aws;
    const char *err = NULL;
    const char *key;

    memset(&given, 0, sizeof(given));
    given.queue_url = d->queue_url;
    given.region = d->region;
    given.endpoint = d->endpoint;
    given.env_file = d->env_file;
    key = apr_pstrcat(p, d->queue_url ? d->queue_url : "", "\n", d->region ? d->region : "",
                      "\n", d->endpoint ? d->endpoint : "", "\n",
                      d->env_file ? d->env_file : "", NULL);
    if (apr_hash_get(seen, key, APR_HASH_KEY_STRING)) {
        return NULL;
    }
    apr_hash_set(seen, key, APR_HASH_KEY_STRING, key);

    if (rq_aws_conf_resolve_ex(&aws, &err, p, &given) != APR_SUCCESS ||
        rq_aws_conf_require_queue(&err, p, &aws) != APR_SUCCESS) {
        return err ? err : "the AWS settings cannot be resolved";
    }
    return NULL;
}

static const char *section_name(apr_pool_t *p, ap_conf_vector_t *v, int is_url)
{
    const core_dir_config *cd = ap_get_core_module_config(v);

    return apr_psprintf(p, "<%s%s %s>", is_url ? "Location" : "Directory",
                        cd->r ? "Match" : "", cd->d ? cd->d : "");
}

/* Checks every section of s in fifo mode; logs and returns the first problem's count. */
static int fifo_sections_check(apr_pool_t *p, server_rec *s, apr_hash_t *seen,
                               apr_array_header_t *secs, int is_url)
{
    ap_conf_vector_t **v = (ap_conf_vector_t **)secs->elts;
    const char *err;
    raceq_dir_t *d;
    int i;

    for (i = 0; i < secs->nelts; i++) {
        d = section_merged(p, s, secs, i, is_url);
        if (!d || d->mode != RQ_MODE_FIFO || !(err = fifo_conf_problem(p, seen, d))) {
            continue;
        }
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                     "RQ11013: RaceQMode fifo in %s cannot work: %s",
                     section_name(p, v[i], is_url), err);
        return 1;
    }
    return 0;
}

/*
 * A fifo section without a resolvable queue (RaceQQueueURL, AWS_FIFO_URL in
 * the environment or RaceQEnvFile) or region stops httpd from starting,
 * rather than answering 500 to every request.
 */
static int fifo_startup_check(apr_pool_t *ptemp, server_rec *s0)
{
    apr_hash_t *seen = apr_hash_make(ptemp);
    server_rec *s;
    const char *err;

    for (s = s0; s; s = s->next) {
        core_server_config *sc = ap_get_core_module_config(s->module_config);
        const raceq_dir_t *d = ap_get_module_config(s->lookup_defaults, &raceq_module);

        if (d && d->mode == RQ_MODE_FIFO && (err = fifo_conf_problem(ptemp, seen, d))) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                         "RQ11013: RaceQMode fifo in the server configuration of %s cannot "
                         "work: %s", s->server_hostname ? s->server_hostname : "", err);
            return 1;
        }
        if (fifo_sections_check(ptemp, s, seen, sc->sec_url, 1) ||
            fifo_sections_check(ptemp, s, seen, sc->sec_dir, 0)) {
            return 1;
        }
    }
    return 0;
}

static int raceq_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    sqlite_paths = apr_array_make(pconf, 4, sizeof(const char *));
    return OK;
}

static int raceq_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                             server_rec *s)
{
    const apr_dbd_driver_t *drv = NULL;
    int i;

    (void)plog;
    log_attach(s);

    /* Load the default driver before the children start. */
    apr_dbd_init(pconf);
    apr_dbd_get_driver(pconf, RQ_STORE_DEFAULT_DRIVER, &drv);

    if (fifo_startup_check(ptemp, s)) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    if (geteuid() != 0) {
        return OK;
    }
    sqlite_dir_prepare(ptemp, s, RQ_STORE_DEFAULT_PARAMS);
    for (i = 0; sqlite_paths && i < sqlite_paths->nelts; i++) {
        sqlite_dir_prepare(ptemp, s, APR_ARRAY_IDX(sqlite_paths, i, const char *));
    }
    return OK;
}

/*
 * The fifo clients live in a pool of the child: destroyed when the child
 * exits (after a graceful restart, once its last waiting request is done),
 * which closes their connections; nothing of them exists in the parent.
 */
static void fifo_cache_init(apr_pool_t *pchild, server_rec *s)
{
    apr_pool_t *fp = NULL;
    apr_status_t rv;

    rv = rq_pool_create_locked(&fp, pchild);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_mutex_create(&fifo_mutex, APR_THREAD_MUTEX_DEFAULT, fp);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "RQ11014: cannot set up the fifo client cache; fifo requests will fail");
        return;
    }
    fifo_pool = fp;
    fifo_cache = apr_hash_make(fp);
    apr_pool_cleanup_register(fp, NULL, fifo_cache_reset, apr_pool_cleanup_null);
}

static void raceq_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_pool_t *sp = NULL;
    apr_status_t rv;

    log_attach(s);
    fifo_cache_init(pchild, s);
    rv = rq_pool_create_locked(&sp, pchild);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_mutex_create(&store_mutex, APR_THREAD_MUTEX_DEFAULT, sp);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "RQ11004: cannot set up the store cache; requests will fail");
        return;
    }
    store_pool = sp;
    store_cache = apr_hash_make(sp);
    apr_pool_cleanup_register(sp, NULL, store_cache_reset, apr_pool_cleanup_null);
}

static void raceq_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(raceq_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(raceq_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(raceq_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(raceq_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA raceq_module = {
    STANDARD20_MODULE_STUFF,
    dir_create,
    dir_merge,
    NULL,
    NULL,
    raceq_cmds,
    raceq_register_hooks,
    AP_MODULE_FLAG_NONE
};
