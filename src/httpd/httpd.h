/* httpd.h - a small HTTP/1.1 server on epoll, for the program's own servers
 * (`autodata sim-server`, `autodata reward-server`).
 *
 * N worker threads, each with its own epoll instance and its own SO_REUSEPORT listener
 * on the same address, so the kernel spreads new connections over the workers and the
 * workers share nothing but counters they sum at the end. It speaks HTTP/1.1 with
 * keep-alive and pipelining (replies leave in request order), Content-Length and chunked
 * request bodies (413 past max_body), `Expect: 100-continue`, and answers malformed
 * requests with 400 (a JSON error body) and a closed connection.
 *
 * Every complete request goes to the handler, on the worker thread that read it. The
 * handler fills the reply (httpd_reply_set), possibly to be sent after a delay (a timer
 * in the worker's min-heap, never a sleep), or defers it (httpd_defer) and answers later
 * from any thread with httpd_answer(). While a reply is pending (a timer or deferred),
 * the connection's later (pipelined) requests wait, so replies leave in request order.
 */
#ifndef AD_HTTPD_H
#define AD_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#define HTTPD_MAX_THREADS 64

struct httpd_conn;
struct httpd_pending;

/* A parsed request: borrowed for the handler's call only. */
struct httpd_req {
  const char *method, *path; /* path as sent (query included) */
  const char *body;          /* decoded body, body[len] is not guaranteed to be NUL */
  size_t len;
  int worker;              /* index of the worker thread handling it (0..threads-1) */
  struct httpd_conn *conn; /* private: for httpd_defer() */
};

/* The reply a handler fills (zeroed before the call). */
struct httpd_reply {
  int status;                       /* HTTP status */
  char *body;                       /* owned (httpd_reply_set copies); freed by the server */
  size_t len;                       /* body length */
  const char *ctype;                /* a static string, NULL = application/json */
  int64_t delay_us;                 /* > 0: send it after this delay */
  int has_retry_after, retry_after; /* a Retry-After header with these seconds */
  int close;                        /* close the connection after it */
  int truncate; /* send the headers and half the body, then close (fault injection) */
  int drop;     /* send nothing, close the connection (fault injection) */
  int deferred; /* set by httpd_defer(): the reply comes with httpd_answer() */
};
/* Set the reply's status and a copy of body[0, len). */
void httpd_reply_set(struct httpd_reply *r, int status, const char *body, size_t len);

typedef void (*httpd_handler)(void *ud, const struct httpd_req *req, struct httpd_reply *rep);

struct httpd_opts {
  const char *host; /* numeric or resolvable; NULL = "127.0.0.1" */
  int port;         /* 0 = let the kernel pick (see httpd_port) */
  int threads;      /* worker threads, 1..HTTPD_MAX_THREADS; 0 = 2 */
  size_t max_body;  /* request body limit (413 past it); 0 = AD_MAX_REQUEST */
  httpd_handler handler;
  void *ud;
};

struct httpd_stats {
  uint64_t connections; /* accepted */
  uint64_t requests;    /* HTTP requests parsed (including bad ones) */
  uint64_t bad;         /* malformed requests answered 400/413/414/431/501/505 */
};

struct httpd;

/* Resolve host, raise RLIMIT_NOFILE to its hard limit, create and bind the listeners.
 * Returns 0, or with a message in err AD_EINVAL (bad options, a host that does not
 * resolve) or AD_EIO (socket, bind/listen - e.g. the address in use -, eventfd or epoll
 * failed). The server does not serve until httpd_run(). */
int httpd_open(const struct httpd_opts *opts, struct httpd **out, char *err, size_t errlen);
/* The bound port (the kernel's choice when opts.port was 0). */
int httpd_port(const struct httpd *s);
/* "http://HOST:PORT" + suffix into out. */
void httpd_url(const struct httpd *s, const char *suffix, char *out, size_t outlen);
/* Serve until httpd_stop(): starts the workers and joins them. On stop, listeners close,
 * idle connections close, and replies waiting on a timer are still sent (for at most
 * 5 s); a worker with deferred replies waits for every one of them. Returns 0, or
 * AD_ENOMEM when the system cannot start a worker thread (the server is then stopped). */
int httpd_run(struct httpd *s);
/* Ask a running server to stop. Async-signal-safe (one write to an eventfd). */
void httpd_stop(struct httpd *s);
/* Counters summed over workers; exact after httpd_run() returns. */
void httpd_stats(const struct httpd *s, struct httpd_stats *out);
void httpd_free(struct httpd *s);

/* From the handler only: the reply will come later. Returns the token httpd_answer()
 * takes; every deferred reply must be answered exactly once (also after httpd_stop()). */
struct httpd_pending *httpd_defer(const struct httpd_req *req, struct httpd_reply *rep);
/* Answer a deferred request from any thread (body copied; ctype static or NULL). The
 * token is consumed. */
void httpd_answer(struct httpd_pending *p, int status, const char *ctype, const char *body,
                  size_t len);

#endif
