/* The wait channel: framing, malformed and oversized frames, short reads and
 * EINTR, the server's answers, duplicates and conflicts, socket files. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_portable.h>
#include <apr_strings.h>

#include "rq_log.h"
#include "rq_tap.h"
#include "rq_wait.h"

static const char *HASH_A =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *HASH_B =
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static apr_time_t soon(void)
{
    return apr_time_now() + apr_time_from_sec(10);
}

static void test_codec(apr_pool_t *p)
{
    rq_wait_msg_t m = { RQ_WAIT_DONE, "r-1", NULL, NULL, "12345", 1, NULL }, out;
    unsigned char hdr[8] = { 'R', 'Q', 1, RQ_WAIT_DONE, 0, 0, 0, 0 };
    char *buf;
    apr_size_t len, plen;
    const char *why;
    int type;

    RQ_OK(rq_wait_encode(&buf, &len, p, &m) == APR_SUCCESS, "a DONE frame encodes");
    RQ_OK(rq_wait_header_parse(&type, &plen, &why, (unsigned char *)buf) == APR_SUCCESS,
          "its header parses");
    RQ_IS_INT(plen, len - RQ_WAIT_HEADER_LEN, "length prefix is the payload's");
    RQ_OK(rq_wait_payload_parse(&out, &why, p, type, buf + 8, plen) == APR_SUCCESS,
          "its payload parses");
    RQ_IS_STR(out.req_id, "r-1", "req_id round-trips");
    RQ_IS_STR(out.seq, "12345", "seq round-trips");
    RQ_IS_INT(out.applied, 1, "applied round-trips");

    hdr[0] = 'X';
    RQ_OK(rq_wait_header_parse(&type, &plen, &why, hdr) == RQ_WAIT_EBADFRAME, "bad magic");
    hdr[0] = 'R';
    hdr[2] = 9;
    RQ_OK(rq_wait_header_parse(&type, &plen, &why, hdr) == RQ_WAIT_EBADFRAME, "bad version");
    hdr[2] = 1;
    hdr[3] = 77;
    RQ_OK(rq_wait_header_parse(&type, &plen, &why, hdr) == RQ_WAIT_EBADFRAME, "unknown type");
    hdr[3] = RQ_WAIT_REGISTER;
    hdr[5] = 1; /* 65536 bytes */
    RQ_OK(rq_wait_header_parse(&type, &plen, &why, hdr) == RQ_WAIT_EBADFRAME,
          "oversized length refused before reading");
    RQ_IS_STR(why, "frame too large", "and said why");
    hdr[4] = 0xff;
    RQ_OK(rq_wait_header_parse(&type, &plen, &why, hdr) == RQ_WAIT_EBADFRAME,
          "huge length refused");
}

static int payload_bad(apr_pool_t *p, int type, const char *json)
{
    rq_wait_msg_t m;
    const char *why;

    return rq_wait_payload_parse(&m, &why, p, type, json, strlen(json)) == RQ_WAIT_EBADFRAME;
}

static void test_payloads(apr_pool_t *p)
{
    const char *ok = apr_psprintf(p, "{\"req_id\":\"r\",\"user_id\":\"u\",\"hash\":\"%s\"}",
                                  HASH_A);

    RQ_OK(!payload_bad(p, RQ_WAIT_REGISTER, ok), "a good REGISTER passes");
    RQ_OK(payload_bad(p, RQ_WAIT_REGISTER, "not json"), "not JSON");
    RQ_OK(payload_bad(p, RQ_WAIT_REGISTER, "[1,2]"), "not an object");
    RQ_OK(payload_bad(p, RQ_WAIT_REGISTER, "{\"user_id\":\"u\"}"), "req_id missing");
    RQ_OK(payload_bad(p, RQ_WAIT_REGISTER,
                      apr_psprintf(p, "{\"req_id\":\"a b\",\"user_id\":\"u\",\"hash\":\"%s\"}",
                                   HASH_A)),
          "req_id with a space");
    RQ_OK(payload_bad(p, RQ_WAIT_REGISTER,
                      apr_psprintf(p, "{\"req_id\":7,\"user_id\":\"u\",\"hash\":\"%s\"}",
                                   HASH_A)),
          "req_id not a string");
    RQ_OK(payload_bad(p, RQ_WAIT_REGISTER,
                      "{\"req_id\":\"r\",\"user_id\":\"u\",\"hash\":\"abc\"}"),
          "short hash");
    RQ_OK(payload_bad(p, RQ_WAIT_REGISTER,
                      apr_psprintf(p, "{\"req_id\":\"r\",\"req_id\":\"s\",\"user_id\":\"u\","
                                   "\"hash\":\"%s\"}", HASH_A)),
          "duplicate keys");
    RQ_OK(payload_bad(p, RQ_WAIT_REGISTER,
                      apr_psprintf(p, "{\"req_id\":\"r\\u0000x\",\"user_id\":\"u\","
                                   "\"hash\":\"%s\"}", HASH_A)),
          "embedded NUL");
    RQ_OK(payload_bad(p, RQ_WAIT_DONE, "{\"req_id\":\"r\",\"seq\":\"1\"}"),
          "DONE without applied");
    RQ_OK(payload_bad(p, RQ_WAIT_DONE, "{\"req_id\":\"r\",\"seq\":\"1x\",\"applied\":true}"),
          "seq not digits");
    RQ_OK(rq_wait_id_valid(apr_pstrcat(p, "x", apr_psprintf(p, "%0127d", 0), NULL)),
          "128 characters is a valid id");
    RQ_OK(!rq_wait_id_valid(apr_psprintf(p, "x%0128d", 0)), "129 is not");
    RQ_IS_STR(rq_wait_hash(p, "abc", 3),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
              "hash is SHA-256 hex");
}

/* ---- short reads and EINTR over a socketpair ---- */

typedef struct dribble_t {
    int fd;
    const char *buf;
    apr_size_t len;
    pthread_t reader;
    int close_at; /* close after this many bytes, -1: never */
} dribble_t;

static void on_usr1(int sig)
{
    (void)sig;
}

static void *dribble_main(void *data)
{
    dribble_t *d = data;
    apr_size_t i;

    for (i = 0; i < d->len; i++) {
        if ((int)i == d->close_at) {
            break;
        }
        usleep(2000);
        pthread_kill(d->reader, SIGUSR1);
        if (write(d->fd, d->buf + i, 1) != 1) {
            break;
        }
    }
    close(d->fd);
    return NULL;
}

static apr_status_t recv_dribbled(rq_wait_msg_t *m, apr_pool_t *p, const char *buf,
                                  apr_size_t len, int close_at, apr_time_t deadline)
{
    int sv[2];
    apr_socket_t *s = NULL;
    dribble_t d;
    pthread_t t;
    apr_status_t rv;

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    apr_os_sock_put(&s, &sv[0], p);
    d.fd = sv[1];
    d.buf = buf;
    d.len = len;
    d.reader = pthread_self();
    d.close_at = close_at;
    pthread_create(&t, NULL, dribble_main, &d);
    rv = rq_wait_recv(m, s, p, deadline);
    pthread_join(t, NULL);
    close(sv[0]);
    return rv;
}

static void test_short_reads(apr_pool_t *p)
{
    rq_wait_msg_t m = { RQ_WAIT_WAITING, "req-short", NULL, NULL, NULL, 0, NULL }, out;
    struct sigaction sa;
    char *buf;
    apr_size_t len;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1; /* no SA_RESTART: reads see EINTR */
    sigaction(SIGUSR1, &sa, NULL);

    rq_wait_encode(&buf, &len, p, &m);
    RQ_OK(recv_dribbled(&out, p, buf, len, -1, soon()) == APR_SUCCESS,
          "a frame arriving one byte at a time, with signals between, is read whole");
    RQ_IS_STR(out.req_id, "req-short", "and decoded");
    RQ_OK(recv_dribbled(&out, p, buf, len, 5, soon()) == RQ_WAIT_EBADFRAME,
          "a peer closing inside the header is a bad frame");
    RQ_OK(recv_dribbled(&out, p, buf, len, 12, soon()) == RQ_WAIT_EBADFRAME,
          "a peer closing inside the payload is a bad frame");
    RQ_OK(recv_dribbled(&out, p, buf, len, 0, soon()) == RQ_WAIT_ECLOSED,
          "a peer closing between frames is a close");
    RQ_OK(APR_STATUS_IS_TIMEUP(recv_dribbled(&out, p, buf, len, -1,
                                             apr_time_now() + apr_time_from_msec(5))),
          "a deadline passing is APR_TIMEUP");
}

/* ---- the server ---- */

/* The store's answers: "applied-before" with a body hash, "legacy" without. */
static apr_status_t lookup(rq_wait_found_t *pfound, void *baton, apr_pool_t *p,
                           const char *req_id)
{
    (void)baton;
    if (strcmp(req_id, "applied-before") == 0 || strcmp(req_id, "applied-before-2") == 0) {
        pfound->user_id = "user-1";
        pfound->seq = apr_pstrdup(p, "777");
        pfound->hash = HASH_A;
        pfound->applied = 1;
        return APR_SUCCESS;
    }
    if (strcmp(req_id, "legacy") == 0) {
        pfound->user_id = "user-2";
        pfound->seq = apr_pstrdup(p, "778");
        pfound->applied = 1;
        return APR_SUCCESS;
    }
    return APR_NOTFOUND;
}

static apr_socket_t *client(apr_pool_t *p, const char *path)
{
    apr_socket_t *s = NULL;

    rq_wait_connect(&s, NULL, NULL, p, path, NULL);
    return s;
}

static int reg(apr_socket_t *s, apr_pool_t *p, const char *req_id, const char *hash)
{
    rq_wait_msg_t m = { RQ_WAIT_REGISTER, req_id, "user-1", hash, NULL, 0, NULL }, out;

    if (!s || rq_wait_send(s, p, &m, soon()) != APR_SUCCESS
        || rq_wait_recv(&out, s, p, soon()) != APR_SUCCESS) {
        return -1;
    }
    return out.type;
}

static int answer(apr_socket_t *s, apr_pool_t *p, rq_wait_msg_t *out)
{
    if (rq_wait_recv(out, s, p, soon()) != APR_SUCCESS) {
        return -1;
    }
    return out->type;
}

static rq_wait_stats_t stats_when(rq_wait_server_t *srv, int field, int want)
{
    rq_wait_stats_t st;
    int i;

    for (i = 0; i < 500; i++) {
        int v;

        rq_wait_server_stats(&st, srv);
        v = field == 0 ? st.conns : field == 1 ? st.waiters : (int)st.rejected;
        if (v == want) {
            break;
        }
        apr_sleep(apr_time_from_msec(10));
    }
    return st;
}

static void test_server_answers(apr_pool_t *p, rq_wait_server_t *srv, const char *path)
{
    apr_socket_t *a = client(p, path), *b = client(p, path), *c = client(p, path);
    apr_socket_t *late, *gone;
    rq_wait_msg_t out;

    RQ_IS_INT(reg(a, p, "req-1", HASH_A), RQ_WAIT_WAITING, "first REGISTER waits");
    RQ_IS_INT(reg(b, p, "req-1", HASH_A), RQ_WAIT_WAITING, "same req_id, same body waits");
    RQ_IS_INT(reg(c, p, "req-1", HASH_B), RQ_WAIT_CONFLICT, "same req_id, other body conflicts");
    gone = client(p, path);
    RQ_IS_INT(reg(gone, p, "req-1", HASH_A), RQ_WAIT_WAITING, "a third waiter");
    apr_socket_close(gone);
    stats_when(srv, 1, 2);

    rq_wait_server_done(srv, "req-1", HASH_A, "100", 1);
    RQ_IS_INT(answer(a, p, &out), RQ_WAIT_DONE, "waiter 1 woken with DONE");
    RQ_IS_STR(out.seq, "100", "with the sequence number");
    RQ_IS_INT(answer(b, p, &out), RQ_WAIT_DONE, "waiter 2 woken too");
    RQ_IS_INT(out.applied, 1, "told it was applied");

    late = client(p, path);
    RQ_IS_INT(reg(late, p, "req-1", HASH_A), RQ_WAIT_DONE, "a late duplicate is answered at once");
    apr_socket_close(late);
    late = client(p, path);
    RQ_IS_INT(reg(late, p, "req-1", HASH_B), RQ_WAIT_CONFLICT,
              "a late duplicate with another body conflicts");
    apr_socket_close(late);
    late = client(p, path);
    RQ_IS_INT(reg(late, p, "applied-before", HASH_A), RQ_WAIT_DONE,
              "a req_id applied before the server started is found in storage");
    apr_socket_close(late);
    late = client(p, path);
    RQ_IS_INT(reg(late, p, "applied-before", HASH_A), RQ_WAIT_DONE, "and remembered");
    apr_socket_close(late);
    late = client(p, path);
    RQ_IS_INT(reg(late, p, "applied-before-2", HASH_B), RQ_WAIT_CONFLICT,
              "found in storage with another body hash: a conflict at once");
    apr_socket_close(late);
    late = client(p, path);
    RQ_IS_INT(reg(late, p, "legacy", HASH_A), RQ_WAIT_CONFLICT,
              "found in storage without a hash, for another user: a conflict at once");
    apr_socket_close(late);
    apr_socket_close(a);
    apr_socket_close(b);
    apr_socket_close(c);
}

static void test_server_pending(apr_pool_t *p, rq_wait_server_t *srv, const char *path)
{
    apr_socket_t *a = client(p, path), *b;
    rq_wait_msg_t out;

    RQ_IS_INT(reg(a, p, "req-2", HASH_A), RQ_WAIT_WAITING, "a REGISTER never followed by SENT");
    apr_socket_close(a);
    stats_when(srv, 1, 0);
    b = client(p, path);
    RQ_IS_INT(reg(b, p, "req-2", HASH_B), RQ_WAIT_WAITING,
              "is forgotten when its client leaves: another body may use the id");
    rq_wait_server_done(srv, "req-2", HASH_A, "200", 1);
    RQ_IS_INT(answer(b, p, &out), RQ_WAIT_CONFLICT,
              "but if the applied message carried another body, the waiter is told");
    apr_socket_close(b);
    rq_wait_server_done(srv, "nobody-waits", HASH_A, "300", 1);
    RQ_OK(1, "waking a req_id nobody waits for is no error");
}

static void raw_send(apr_socket_t *s, const void *buf, apr_size_t len)
{
    apr_socket_send(s, buf, &len);
}

static void test_server_rejects(apr_pool_t *p, rq_wait_server_t *srv, const char *path)
{
    unsigned char huge[8] = { 'R', 'Q', 1, RQ_WAIT_REGISTER, 0x7f, 0xff, 0xff, 0xff };
    char bad[] = "RQ\001\001\000\000\000\005hello";
    apr_socket_t *s;
    rq_wait_msg_t out;
    rq_wait_stats_t st;

    s = client(p, path);
    raw_send(s, "GET / HTTP/1.0\r\n\r\n", 18);
    RQ_IS_INT(answer(s, p, &out), RQ_WAIT_ERROR, "garbage gets an ERROR frame");
    RQ_OK(rq_wait_recv(&out, s, p, soon()) == RQ_WAIT_ECLOSED, "then the connection closes");
    apr_socket_close(s);

    s = client(p, path);
    raw_send(s, huge, sizeof(huge));
    RQ_IS_INT(answer(s, p, &out), RQ_WAIT_ERROR, "an oversized length gets an ERROR frame");
    RQ_IS_STR(out.message, "frame too large", "naming the fault");
    apr_socket_close(s);

    s = client(p, path);
    raw_send(s, bad, sizeof(bad) - 1);
    RQ_IS_INT(answer(s, p, &out), RQ_WAIT_ERROR, "a payload that is not JSON is rejected");
    apr_socket_close(s);

    st = stats_when(srv, 2, 3);
    RQ_IS_INT(st.rejected, 3, "three frames counted as rejected");
    s = client(p, path);
    RQ_IS_INT(reg(s, p, "req-3", HASH_A), RQ_WAIT_WAITING, "the server still serves");
    apr_socket_close(s);
    st = stats_when(srv, 0, 0);
    RQ_IS_INT(st.conns, 0, "every connection was cleaned up");
}

/*
 * With the bound on remembered ids reached and every older id awaited, a new
 * REGISTER must keep its own entry: its waiter is woken when it is done.
 */
static void test_server_bound(apr_pool_t *p, const char *dir)
{
    rq_wait_server_opts_t o;
    rq_wait_server_t *srv;
    const char *path = apr_pstrcat(p, dir, "/bound.sock", NULL);
    apr_socket_t *a, *b, *c;
    rq_wait_msg_t out;

    memset(&o, 0, sizeof(o));
    o.path = path;
    o.uid = -1;
    o.gid = -1;
    o.remember_max = 2;
    if (rq_wait_server_create(&srv, p, &o) != APR_SUCCESS
        || rq_wait_server_start(srv) != APR_SUCCESS) {
        RQ_OK(0, "bounded server starts");
        return;
    }
    a = client(p, path);
    b = client(p, path);
    c = client(p, path);
    RQ_IS_INT(reg(a, p, "bound-1", HASH_A), RQ_WAIT_WAITING, "bound: first waits");
    RQ_IS_INT(reg(b, p, "bound-2", HASH_A), RQ_WAIT_WAITING, "bound: second waits");
    RQ_IS_INT(reg(c, p, "bound-3", HASH_A), RQ_WAIT_WAITING,
              "bound reached, every older id awaited: a third still waits");
    rq_wait_server_done(srv, "bound-3", HASH_A, "303", 1);
    RQ_IS_INT(answer(c, p, &out), RQ_WAIT_DONE, "and is woken when it is done");
    RQ_IS_STR(out.seq, "303", "with its sequence number");
    rq_wait_server_done(srv, "bound-1", HASH_A, "301", 1);
    RQ_IS_INT(answer(a, p, &out), RQ_WAIT_DONE, "the older waiters too");
    apr_socket_close(a);
    apr_socket_close(b);
    apr_socket_close(c);
    rq_wait_server_stop(srv);
}

static void test_socket_files(apr_pool_t *p, const char *dir)
{
    rq_wait_server_opts_t o;
    rq_wait_server_t *srv, *other;
    const char *path = apr_pstrcat(p, dir, "/files.sock", NULL);
    struct stat st;
    apr_status_t rv, last = 0;
    apr_socket_t *s;
    int tries = 0;
    FILE *f;

    memset(&o, 0, sizeof(o));
    o.path = path;
    o.mode = 0600;
    o.uid = -1;
    o.gid = -1;
    RQ_OK(rq_wait_server_create(&srv, p, &o) == APR_SUCCESS, "socket created");
    RQ_OK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "it is a socket");
    RQ_IS_INT(st.st_mode & 0777, 0600, "with the asked permissions");
    rv = rq_wait_server_create(&other, p, &o);
    RQ_IS_INT(rv, EADDRINUSE, "a live server's socket is not taken over");
    rq_wait_server_stop(srv);
    RQ_OK(stat(path, &st) != 0, "stop removes the socket file");

    rv = rq_wait_connect(&s, &last, &tries, p, path, NULL);
    RQ_IS_INT(rv, RQ_WAIT_EUNREACHABLE, "no server: unreachable");
    RQ_IS_INT(tries, 5, "after the default 5 tries");
    RQ_OK(APR_STATUS_IS_ENOENT(last), "the last error says the socket is missing");

    f = fopen(path, "w");
    fclose(f);
    RQ_IS_INT(rq_wait_server_create(&other, p, &o), APR_EEXIST,
              "a regular file in the way is never removed");
    unlink(path);
}

int main(void)
{
    apr_pool_t *p;
    rq_wait_server_opts_t o;
    rq_wait_server_t *srv;
    char dir[] = "/tmp/rq-wait-XXXXXX";
    const char *path;

    apr_initialize();
    apr_pool_create(&p, NULL);
    rq_log_set_level(RQ_LOG_CRIT); /* rejected frames log warnings on purpose */
    signal(SIGPIPE, SIG_IGN);
    test_codec(p);
    test_payloads(p);
    test_short_reads(p);

    mkdtemp(dir);
    path = apr_pstrcat(p, dir, "/raceqd.sock", NULL);
    memset(&o, 0, sizeof(o));
    o.path = path;
    o.uid = -1;
    o.gid = -1;
    o.lookup = lookup;
    RQ_OK(rq_wait_server_create(&srv, p, &o) == APR_SUCCESS
          && rq_wait_server_start(srv) == APR_SUCCESS, "server starts");
    test_server_answers(p, srv, path);
    test_server_pending(p, srv, path);
    test_server_rejects(p, srv, path);
    rq_wait_server_stop(srv);
    test_server_bound(p, dir);
    test_socket_files(p, dir);
    rmdir(dir);
    apr_pool_destroy(p);
    apr_terminate();
    return rq_tap_done();
}
