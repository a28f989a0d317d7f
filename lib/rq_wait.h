/*
 * The wait channel between the module and raceqd: a Unix domain socket on
 * the local host, one connection per waiting request.
 *
 * Frame format (all integers big-endian):
 *
 *     offset 0  2 bytes  magic "RQ"
 *     offset 2  1 byte   version, RQ_WAIT_VERSION
 *     offset 3  1 byte   type, one of rq_wait_type_e
 *     offset 4  4 bytes  payload length, at most RQ_WAIT_FRAME_MAX
 *     offset 8  payload  a JSON object (UTF-8), the fields of the type
 *
 * A conversation (client = the module, server = raceqd):
 *
 *     client REGISTER {"req_id","user_id","hash"}   before sending to SQS
 *     server WAITING  {"req_id"}                    send, then report it:
 *     client SENT     {"req_id","seq"}              the queue accepted it
 *     server DONE     {"req_id","seq","applied"}    applied (or was already)
 *
 * The server may answer REGISTER with DONE at once (the req_id was applied
 * within the remembered window: nothing must be sent, SQS would drop it as a
 * duplicate) or CONFLICT (the req_id is known with another body hash). It
 * may send CONFLICT instead of DONE if the message applied for that req_id
 * carried another body. ERROR {"message"} answers a malformed frame, after
 * which the server closes the connection. "hash" is rq_wait_hash() of the
 * exact message body sent to SQS.
 *
 * A frame with a bad magic, version or type, a length over the limit, a
 * payload that is not a JSON object or fields that are missing or malformed
 * is rejected with RQ_WAIT_EBADFRAME and never acted upon.
 */
#ifndef RQ_WAIT_H
#define RQ_WAIT_H

#include <apr_network_io.h>
#include <apr_pools.h>
#include <apr_time.h>

#define RQ_WAIT_VERSION     1
#define RQ_WAIT_HEADER_LEN  8
#define RQ_WAIT_FRAME_MAX   4096 /* payload bytes */
#define RQ_WAIT_HASH_LEN    64   /* hex SHA-256 */

#define RQ_WAIT_ERR_BASE    (APR_OS_START_USERERR + 5000)
#define RQ_WAIT_EBADFRAME   (RQ_WAIT_ERR_BASE + 1) /* malformed or oversized frame */
#define RQ_WAIT_ECLOSED     (RQ_WAIT_ERR_BASE + 2) /* the peer closed the connection */
#define RQ_WAIT_EUNREACHABLE (RQ_WAIT_ERR_BASE + 3) /* no server accepted the connection */

typedef enum rq_wait_type_e {
    RQ_WAIT_REGISTER = 1,
    RQ_WAIT_SENT = 2,
    RQ_WAIT_WAITING = 3,
    RQ_WAIT_DONE = 4,
    RQ_WAIT_CONFLICT = 5,
    RQ_WAIT_ERROR = 6
} rq_wait_type_e;

/* One decoded frame; fields not carried by its type are NULL / 0. */
typedef struct rq_wait_msg_t {
    int type;
    const char *req_id;
    const char *user_id;
    const char *hash;
    const char *seq;     /* SQS sequence number: decimal digits */
    int applied;         /* DONE: 1 if this delivery wrote, 0 if already applied */
    const char *message; /* ERROR */
} rq_wait_msg_t;

/* Hex SHA-256 of a message body, as carried in "hash". */
const char *rq_wait_hash(apr_pool_t *p, const char *body, apr_size_t len);

/* Checks an id the way SQS does: 1-128 characters from '!' to '~'. */
int rq_wait_id_valid(const char *id);

/* Encodes a frame (header and payload) into *pbuf, *plen bytes from p. */
apr_status_t rq_wait_encode(char **pbuf, apr_size_t *plen, apr_pool_t *p,
                            const rq_wait_msg_t *msg);

/*
 * Checks a frame header. On success *plen is the payload length to read
 * next. Bad magic, version, type or a length over RQ_WAIT_FRAME_MAX give
 * RQ_WAIT_EBADFRAME; why (static text) goes to *pwhy when not NULL.
 */
apr_status_t rq_wait_header_parse(int *ptype, apr_size_t *plen, const char **pwhy,
                                  const unsigned char *hdr);

/* Decodes and validates a payload of the given type; strings from p. */
apr_status_t rq_wait_payload_parse(rq_wait_msg_t *msg, const char **pwhy, apr_pool_t *p,
                                   int type, const char *payload, apr_size_t len);

/* ---- client side (blocking, with deadlines) ---- */

typedef struct rq_wait_connect_opts_t {
    int attempts;                   /* connect tries; 0: a default (5) */
    apr_interval_time_t backoff;    /* first pause between tries; 0: 10 ms */
    apr_interval_time_t backoff_max; /* cap of the doubling pause; 0: 200 ms */
} rq_wait_connect_opts_t;

/*
 * Connects to the server's socket, retrying a refused or missing socket with
 * a doubling, capped pause (a daemon that is restarting). Gives
 * RQ_WAIT_EUNREACHABLE when every try failed; *plast (the last connect
 * error) and *ptries (how many tries were made) are set when not NULL.
 */
apr_status_t rq_wait_connect(apr_socket_t **psock, apr_status_t *plast, int *ptries,
                             apr_pool_t *p, const char *path,
                             const rq_wait_connect_opts_t *opts);

/* Writes a whole frame, surviving short writes and EINTR. */
apr_status_t rq_wait_send(apr_socket_t *sock, apr_pool_t *p, const rq_wait_msg_t *msg,
                          apr_time_t deadline);

/*
 * Reads one whole frame, surviving short reads and EINTR, until deadline
 * (APR_TIMEUP after it). RQ_WAIT_ECLOSED when the peer closed between
 * frames, RQ_WAIT_EBADFRAME for a malformed one.
 */
apr_status_t rq_wait_recv(rq_wait_msg_t *msg, apr_socket_t *sock, apr_pool_t *p,
                          apr_time_t deadline);

/* ---- server side ---- */

typedef struct rq_wait_server_t rq_wait_server_t;

/* What durable storage knows of an applied req_id. */
typedef struct rq_wait_found_t {
    const char *user_id;
    const char *seq;     /* NULL when none was recorded */
    const char *hash;    /* body hash; NULL when none was recorded */
    int applied;         /* for DONE's "applied" */
} rq_wait_found_t;

/*
 * Looks a req_id up in durable storage by itself, for requests applied
 * before the server started (its memory is empty then). Returns APR_SUCCESS
 * and *pfound (strings from p) when the req_id was applied, APR_NOTFOUND
 * else. A REGISTER whose hash differs from the stored one is a CONFLICT;
 * with no stored hash, a different user_id is one.
 */
typedef apr_status_t rq_wait_lookup_fn(rq_wait_found_t *pfound, void *baton, apr_pool_t *p,
                                       const char *req_id);

typedef struct rq_wait_server_opts_t {
    const char *path;           /* socket path */
    int mode;                   /* permission bits, e.g. 0660 */
    int uid;                    /* owner to set, -1 to keep */
    int gid;                    /* group to set, -1 to keep */
    apr_interval_time_t remember; /* keep outcomes at least this long; 0: 10 min */
    int remember_max;           /* bound on remembered req_ids; 0: 200000 */
    int max_conns;              /* bound on open connections; 0: 4096 */
    apr_interval_time_t register_timeout; /* a connection without a REGISTER by then is
                                           * closed; 0: 5 s */
    rq_wait_lookup_fn *lookup;  /* optional */
    void *lookup_baton;
} rq_wait_server_opts_t;

/*
 * Creates the listening socket: a stale socket file left by a dead server
 * is removed, a live one is an error (EADDRINUSE), a path that is not a
 * socket is never removed (APR_EEXIST).
 */
apr_status_t rq_wait_server_create(rq_wait_server_t **psrv, apr_pool_t *p,
                                   const rq_wait_server_opts_t *opts);

/* Serves connections on a thread of its own until rq_wait_server_stop(). */
apr_status_t rq_wait_server_start(rq_wait_server_t *srv);

/* Closes every connection, joins the thread and removes the socket file. */
void rq_wait_server_stop(rq_wait_server_t *srv);

/*
 * Records the outcome for req_id (safe from any thread) and wakes every
 * waiter registered for it: DONE if its hash matches the applied body's,
 * CONFLICT else. A waiter that is gone is skipped. The outcome is remembered
 * so that a late REGISTER is answered at once.
 */
void rq_wait_server_done(rq_wait_server_t *srv, const char *req_id, const char *hash,
                         const char *seq, int applied);

/* Counters, for tests and statistics. */
typedef struct rq_wait_stats_t {
    int conns;       /* open connections */
    int waiters;     /* connections waiting for an answer */
    int remembered;  /* req_ids remembered */
    long rejected;   /* malformed frames since start */
    long woken;      /* DONE/CONFLICT frames sent */
} rq_wait_stats_t;

void rq_wait_server_stats(rq_wait_stats_t *st, rq_wait_server_t *srv);

#endif
