/*
 * raceqd: applies mod_raceq's fifo-mode writes from the SQS FIFO queue, one
 * user at a time, and wakes the waiting requests. Options, configuration
 * file, signals and the process; the work is in lib/rq_daemon.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_file_info.h>
#include <apr_general.h>
#include <apr_getopt.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "rq_daemon.h"
#include "rq_env.h"
#include "rq_log.h"

#define RACEQD_VERSION "0.1.0"

typedef struct opts_t {
    rq_daemon_conf_t d;
    const char *config;
    const char *pid_file;
    const char *log_file;
    const char *socket_owner;
    const char *socket_group;
    int foreground;
    int log_level;
} opts_t;

enum {
    O_CONFIG = 256, O_QUEUE, O_REGION, O_ENDPOINT, O_ENV, O_STORE, O_SOCKET, O_OWNER,
    O_GROUP, O_MODE, O_WORKERS, O_POLLERS, O_FG, O_PID, O_LEVEL, O_LOGFILE, O_DELAY,
    O_VIS, O_WAIT, O_MAXMSG, O_INHAND, O_REMEMBER, O_MAXCONN, O_REGTIME, O_HELP, O_VERSION
};

static const apr_getopt_option_t options[] = {
    { "config", O_CONFIG, 1, "FILE: key = value lines with these option names" },
    { "queue-url", O_QUEUE, 1, "URL: the FIFO queue (else AWS_FIFO_URL)" },
    { "region", O_REGION, 1, "REGION (else AWS_REGION, the profile, the URL)" },
    { "endpoint", O_ENDPOINT, 1, "URL (else AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL)" },
    { "env-file", O_ENV, 1, "FILE: a .env file to read" },
    { "store", O_STORE, 1, "\"DRIVER PARAMS\": e.g. \"sqlite3 /var/lib/raceq/toy.db\"" },
    { "socket", O_SOCKET, 1, "PATH: the wait channel's Unix socket" },
    { "socket-owner", O_OWNER, 1, "USER owning the socket" },
    { "socket-group", O_GROUP, 1, "GROUP of the socket (as root: www-data)" },
    { "socket-mode", O_MODE, 1, "octal permissions of the socket, default 0660" },
    { "workers", O_WORKERS, 1, "N: users applied in parallel, default 8" },
    { "pollers", O_POLLERS, 1, "N: concurrent long polls, default 1" },
    { "foreground", O_FG, 0, "do not detach (systemd, tests)" },
    { "pid-file", O_PID, 1, "FILE" },
    { "log-level", O_LEVEL, 1, "emerg..debug, trace1..trace8; default notice" },
    { "log-file", O_LOGFILE, 1, "FILE (else stderr); reopened on SIGHUP" },
    { "apply-delay", O_DELAY, 1, "\"MIN MAX\" ms of the toy write, default \"1 200\"" },
    { "visibility-timeout", O_VIS, 1, "seconds, default 30" },
    { "wait-seconds", O_WAIT, 1, "long-poll wait, 0-20, default 20" },
    { "max-messages", O_MAXMSG, 1, "per receive, 1-10, default 10" },
    { "max-in-hand", O_INHAND, 1, "messages received and not yet deleted, default 200" },
    { "remember", O_REMEMBER, 1, "seconds outcomes are kept for duplicates, default 600" },
    { "max-connections", O_MAXCONN, 1,
      "N: wait channel connections open at once, default 4096; more are refused" },
    { "register-timeout", O_REGTIME, 1,
      "seconds a connection may stay without its REGISTER, default 5" },
    { "help", O_HELP, 0, "this text" },
    { "version", O_VERSION, 0, "print the version" },
    { NULL, 0, 0, NULL }
};

static void usage(FILE *out)
{
    int i;

    fprintf(out, "usage: raceqd [options]\n\n");
    for (i = 0; options[i].name; i++) {
        fprintf(out, "  --%-20s %s\n", options[i].name, options[i].description);
    }
}

static int opt_find(const char *name)
{
    int i;

    for (i = 0; options[i].name; i++) {
        if (strcmp(options[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

static const char *int_arg(int *out, apr_pool_t *p, const char *name, const char *v, int base)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, base);
    if (errno || end == v || *end || n < 0 || n > 1000000) {
        return apr_psprintf(p, "--%s: \"%s\" is not a valid number", name, v);
    }
    *out = (int)n;
    return NULL;
}

static const char *delay_arg(opts_t *o, apr_pool_t *p, const char *v)
{
    int lo, hi, n = 0;

    if (sscanf(v, "%d %d%n", &lo, &hi, &n) != 2 || v[n] || lo < 0 || hi < lo) {
        return apr_psprintf(p, "--apply-delay: \"%s\" is not \"MIN MAX\" milliseconds", v);
    }
    o->d.delay_min = apr_time_from_msec(lo);
    o->d.delay_max = apr_time_from_msec(hi);
    return NULL;
}

static const char *store_arg(opts_t *o, apr_pool_t *p, const char *v)
{
    const char *sp = strchr(v, ' ');

    if (!sp || sp == v || !sp[1]) {
        return apr_psprintf(p, "--store: \"%s\" is not \"DRIVER PARAMS\"", v);
    }
    o->d.store_driver = apr_pstrndup(p, v, sp - v);
    o->d.store_params = apr_pstrdup(p, sp + 1);
    return NULL;
}

static const char *opt_set_more(opts_t *o, apr_pool_t *p, int id, const char *v)
{
    const char *name = options[opt_find("config") + id - O_CONFIG].name;
    int n = 0;

    switch (id) {
    case O_LEVEL:
        o->log_level = rq_log_level_parse(v);
        return o->log_level < 0 ? apr_psprintf(p, "--log-level: unknown level \"%s\"", v)
                                : NULL;
    case O_DELAY:
        return delay_arg(o, p, v);
    case O_MODE:
        return int_arg(&o->d.socket_mode, p, name, v, 8);
    case O_REMEMBER: {
        const char *err = int_arg(&n, p, name, v, 10);

        o->d.remember = apr_time_from_sec(n);
        return err;
    }
    case O_MAXCONN:
        return int_arg(&o->d.max_connections, p, name, v, 10);
    case O_REGTIME: {
        const char *err = int_arg(&n, p, name, v, 10);

        o->d.register_timeout = apr_time_from_sec(n);
        return err;
    }
    default:
        return apr_psprintf(p, "unknown option %d", id);
    }
}

/* Applies one option, from the command line or the configuration file. */
static const char *opt_set(opts_t *o, apr_pool_t *p, int id, const char *v)
{
    const char *name = options[id - O_CONFIG].name;

    switch (id) {
    case O_CONFIG: o->config = v; return NULL;
    case O_QUEUE: o->d.aws.queue_url = v; return NULL;
    case O_REGION: o->d.aws.region = v; return NULL;
    case O_ENDPOINT: o->d.aws.endpoint = v; return NULL;
    case O_ENV: o->d.aws.env_file = v; return NULL;
    case O_STORE: return store_arg(o, p, v);
    case O_SOCKET: o->d.socket_path = v; return NULL;
    case O_OWNER: o->socket_owner = v; return NULL;
    case O_GROUP: o->socket_group = v; return NULL;
    case O_WORKERS: return int_arg(&o->d.workers, p, name, v, 10);
    case O_POLLERS: return int_arg(&o->d.pollers, p, name, v, 10);
    case O_FG: o->foreground = !v || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1");
        return NULL;
    case O_PID: o->pid_file = v; return NULL;
    case O_LOGFILE: o->log_file = v; return NULL;
    case O_VIS: return int_arg(&o->d.visibility_timeout, p, name, v, 10);
    case O_WAIT: return int_arg(&o->d.wait_seconds, p, name, v, 10);
    case O_MAXMSG: return int_arg(&o->d.max_messages, p, name, v, 10);
    case O_INHAND: return int_arg(&o->d.max_in_hand, p, name, v, 10);
    default: return opt_set_more(o, p, id, v);
    }
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
        *--e = '\0';
    }
    if (e - s >= 2 && ((*s == '"' && e[-1] == '"') || (*s == '\'' && e[-1] == '\''))) {
        e[-1] = '\0';
        s++;
    }
    return s;
}

static const char *config_read(opts_t *o, apr_pool_t *p, const char *path)
{
    char *buf, *line, *state;
    apr_size_t len;
    int n = 0;

    if (rq_file_read_all(&buf, &len, p, path, RQ_SETTINGS_FILE_MAX) != APR_SUCCESS) {
        return apr_psprintf(p, "--config: cannot read %s: %s", path, strerror(errno));
    }
    for (line = apr_strtok(buf, "\n", &state); line; line = apr_strtok(NULL, "\n", &state)) {
        char *eq, *key, *val;
        const char *err;
        int i;

        n++;
        key = trim(line);
        if (!*key || *key == '#') {
            continue;
        }
        eq = strchr(key, '=');
        val = eq ? trim(eq + 1) : NULL;
        if (eq) {
            *eq = '\0';
        }
        key = trim(key);
        i = opt_find(key);
        if (i < 0 || options[i].optch == O_CONFIG || options[i].optch >= O_HELP) {
            return apr_psprintf(p, "%s:%d: unknown setting \"%s\"", path, n, key);
        }
        if (!val && options[i].has_arg) {
            return apr_psprintf(p, "%s:%d: \"%s\" needs a value", path, n, key);
        }
        err = opt_set(o, p, options[i].optch, val);
        if (err) {
            return apr_psprintf(p, "%s:%d: %s", path, n, err);
        }
    }
    return NULL;
}

/* Two passes: --config first, so that the command line overrides the file. */
static const char *args_parse(opts_t *o, apr_pool_t *p, int argc, const char *const *argv,
                              int pass)
{
    apr_getopt_t *g;
    const char *arg, *err;
    int id;
    apr_status_t rv;

    apr_getopt_init(&g, p, argc, argv);
    g->errfn = NULL;
    while ((rv = apr_getopt_long(g, options, &id, &arg)) == APR_SUCCESS) {
        if (id == O_HELP || id == O_VERSION) {
            if (pass == 1) {
                id == O_HELP ? usage(stdout) : (void)printf("raceqd %s\n", RACEQD_VERSION);
                exit(0);
            }
            continue;
        }
        if (id == O_DELAY && arg && !strchr(arg, ' ') && g->ind < argc) {
            arg = apr_pstrcat(p, arg, " ", argv[g->ind++], NULL); /* --apply-delay 1 200 */
        }
        if ((pass == 1) == (id == O_CONFIG) && (err = opt_set(o, p, id, arg)) != NULL) {
            return err;
        }
    }
    if (rv != APR_EOF) {
        return apr_psprintf(p, "unknown option or missing value near \"%s\" (see --help)",
                            argv[g->ind - 1]);
    }
    if (g->ind < argc) {
        return apr_psprintf(p, "unexpected argument \"%s\"", argv[g->ind]);
    }
    return NULL;
}

static const char *socket_owner(opts_t *o, apr_pool_t *p)
{
    if (o->socket_owner) {
        struct passwd *pw = getpwnam(o->socket_owner);

        if (!pw) {
            return apr_psprintf(p, "--socket-owner: no user \"%s\"", o->socket_owner);
        }
        o->d.socket_uid = (int)pw->pw_uid;
    }
    if (!o->socket_group && geteuid() == 0 && getgrnam("www-data")) {
        o->socket_group = "www-data"; /* Debian's httpd User can connect */
    }
    if (o->socket_group) {
        struct group *gr = getgrnam(o->socket_group);

        if (!gr) {
            return apr_psprintf(p, "--socket-group: no group \"%s\"", o->socket_group);
        }
        o->d.socket_gid = (int)gr->gr_gid;
    }
    return NULL;
}

/*
 * Points fd 2 at the log file. open() then dup2() replaces fd 2 in one step:
 * there is no moment without a stderr, and on failure the old file stays.
 */
/* A path relative to the working directory, made absolute. */
static const char *path_absolute(const char **ppath, apr_pool_t *p, const char *name)
{
    char *abs = NULL;
    apr_status_t rv;
    char buf[256];

    if (!*ppath || **ppath == '/') {
        return NULL;
    }
    rv = apr_filepath_merge(&abs, NULL, *ppath, APR_FILEPATH_NOTRELATIVE, p);
    if (rv != APR_SUCCESS) {
        return apr_psprintf(p, "--%s: cannot make %s an absolute path: %s", name, *ppath,
                            apr_strerror(rv, buf, sizeof(buf)));
    }
    *ppath = abs;
    return NULL;
}

/*
 * Detaching changes the working directory to "/", and the store opens more
 * connections later: every path given relative to where raceqd was started
 * is made absolute first, so that it names the same file throughout.
 */
static const char *paths_absolute(opts_t *o, apr_pool_t *p)
{
    const char *err;

    err = path_absolute(&o->log_file, p, "log-file");
    if (!err) {
        err = path_absolute(&o->pid_file, p, "pid-file");
    }
    if (!err) {
        err = path_absolute(&o->d.socket_path, p, "socket");
    }
    if (!err && o->d.store_driver && strcmp(o->d.store_driver, "sqlite3") == 0
        && strcmp(o->d.store_params, ":memory:") != 0
        && strncmp(o->d.store_params, "file:", 5) != 0) {
        err = path_absolute(&o->d.store_params, p, "store");
    }
    return err;
}

static int log_reopen(const char *path)
{
    int fd;

    if (!path) {
        return 0;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        return -1;
    }
    fflush(stderr);
    if (fd != STDERR_FILENO && dup2(fd, STDERR_FILENO) < 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    if (fd != STDERR_FILENO) {
        close(fd);
    }
    return 0;
}

static int pid_write(const char *path)
{
    FILE *f;

    if (!path) {
        return 0;
    }
    f = fopen(path, "w");
    if (!f) {
        return -1;
    }
    fprintf(f, "%ld\n", (long)getpid());
    return fclose(f);
}

static void signals_block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Waits for SIGTERM/SIGINT, reopening the log on SIGHUP. */
static void signals_wait(sigset_t *set, opts_t *o, apr_pool_t *p)
{
    int sig = 0;

    for (;;) {
        if (sigwait(set, &sig) != 0) {
            continue;
        }
        if (sig != SIGHUP) {
            break;
        }
        if (log_reopen(o->log_file) != 0) {
            rq_log_perror(RQ_LOG_MARK, RQ_LOG_WARNING, APR_FROM_OS_ERROR(errno), p,
                          "RQ10004: SIGHUP: cannot reopen the log file %s; logging on to "
                          "the file open so far", o->log_file);
            continue;
        }
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_NOTICE, 0, p, "RQ10001: log file reopened");
    }
    rq_log_perror(RQ_LOG_MARK, RQ_LOG_NOTICE, 0, p,
                  "RQ10002: %s received: finishing the messages in hand (a second one "
                  "stops at once)", sig == SIGINT ? "SIGINT" : "SIGTERM");
}

typedef struct stop_watch_t {
    pthread_mutex_t lock;  /* held while o and d are used */
    sigset_t set;
    opts_t *o;
    rq_daemon_t *d;        /* NULL once the stop is done and they go away */
} stop_watch_t;

/*
 * Runs while a graceful stop finishes what is in hand: a second SIGTERM or
 * SIGINT ends the process at once. What is in hand is not deleted, so SQS
 * delivers it again once its visibility timeout ends; apply being
 * idempotent, nothing is applied twice.
 */
static void *stop_watch_main(void *data)
{
    stop_watch_t *w = data;
    rq_daemon_stats_t st;
    apr_pool_t *p;
    int sig = 0;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    for (;;) {
        if (sigwait(&w->set, &sig) != 0) {
            continue;
        }
        pthread_mutex_lock(&w->lock);
        if (!w->d) {
            /* The stop is done: the process is exiting with its status. */
            pthread_mutex_unlock(&w->lock);
            apr_pool_destroy(p);
            return NULL;
        }
        if (sig != SIGHUP) {
            break;
        }
        if (log_reopen(w->o->log_file) == 0) {
            rq_log_perror(RQ_LOG_MARK, RQ_LOG_NOTICE, 0, p, "RQ10001: log file reopened");
        }
        pthread_mutex_unlock(&w->lock);
    }
    /* The lock stays held: the main thread cannot free o and d before _exit. */
    rq_daemon_stats(&st, w->d);
    rq_log_perror(RQ_LOG_MARK, RQ_LOG_WARNING, 0, p,
                  "RQ10005: second %s: stopping at once; %d message(s) in hand are abandoned "
                  "undeleted, SQS delivers them again when their visibility timeout ends "
                  "(they are applied at most once)", sig == SIGINT ? "SIGINT" : "SIGTERM",
                  st.in_hand);
    unlink(w->o->d.socket_path);
    if (w->o->pid_file) {
        unlink(w->o->pid_file);
    }
    _exit(1);
    return NULL;
}

/*
 * Called once the graceful stop is done, before the daemon's memory is
 * freed: a signal arriving later no longer touches it.
 */
static void stop_watch_retire(stop_watch_t *w)
{
    pthread_mutex_lock(&w->lock);
    w->d = NULL;
    w->o = NULL;
    pthread_mutex_unlock(&w->lock);
}

static void stop_watch_start(stop_watch_t *w)
{
    pthread_t t;

    if (pthread_create(&t, NULL, stop_watch_main, w) == 0) {
        pthread_detach(t);
    }
}

static int fail(const char *err)
{
    fprintf(stderr, "raceqd: %s\n", err);
    return 1;
}

static int run(opts_t *o, apr_pool_t *p)
{
    static stop_watch_t watch = { .lock = PTHREAD_MUTEX_INITIALIZER };
    rq_daemon_t *d;
    sigset_t set;
    const char *err = NULL;
    apr_status_t rv;

    signals_block(&set);
    rv = rq_daemon_create(&d, &err, p, &o->d);
    if (rv != APR_SUCCESS) {
        return fail(err ? err : "cannot start");
    }
    if (!o->foreground && apr_proc_detach(APR_PROC_DETACH_DAEMONIZE) != APR_SUCCESS) {
        return fail("cannot detach from the terminal");
    }
    if (log_reopen(o->log_file) != 0 || pid_write(o->pid_file) != 0) {
        return fail(apr_psprintf(p, "cannot write %s: %s", o->log_file ? o->log_file
                                 : o->pid_file, strerror(errno)));
    }
    rv = rq_daemon_start(d);
    if (rv != APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_CRIT, rv, p, "RQ10003: cannot start the threads");
        return 1;
    }
    signals_wait(&set, o, p);
    watch.set = set;
    watch.o = o;
    watch.d = d;
    stop_watch_start(&watch);
    rq_daemon_stop(d);
    stop_watch_retire(&watch);
    if (o->pid_file) {
        unlink(o->pid_file);
    }
    return 0;
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    opts_t o;
    const char *err;
    int rc;

    apr_app_initialize(&argc, &argv, NULL);
    apr_pool_create(&p, NULL);
    memset(&o, 0, sizeof(o));
    rq_daemon_conf_default(&o.d);
    o.log_level = RQ_LOG_NOTICE;

    err = args_parse(&o, p, argc, argv, 1);
    if (!err && o.config) {
        err = config_read(&o, p, o.config);
    }
    if (!err) {
        err = args_parse(&o, p, argc, argv, 2);
    }
    if (!err) {
        err = socket_owner(&o, p);
    }
    if (!err) {
        err = rq_daemon_conf_check(p, &o.d);
    }
    if (!err) {
        err = paths_absolute(&o, p);
    }
    if (err) {
        fail(err);
        return 2;
    }
    if (o.log_file && log_reopen(o.log_file) != 0) {
        return fail(apr_psprintf(p, "--log-file: cannot open %s: %s", o.log_file,
                                 strerror(errno)));
    }
    rq_log_set_level(o.log_level);
    rc = run(&o, p);
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
