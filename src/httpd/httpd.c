/* httpd.c - the program's HTTP/1.1 server on epoll, one event loop per worker.
 *
 * Per connection the worker keeps an input buffer (bytes not yet consumed start
 * at in_off; the request being parsed is described by offsets relative to
 * in_off, so compaction never invalidates them), an output buffer, and at most
 * one pending reply: waiting on a latency timer, or deferred (answered from another
 * thread through the worker's queue and eventfd). Requests on one connection are
 * handled one at a time: while a reply waits, the connection's later (pipelined)
 * requests stay in the input buffer, so replies leave in request order.
 *
 * Sockets are edge-triggered (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET, registered
 * once). conn_drive() is the only place that reads, parses, answers and
 * flushes; it is called on every socket event and when a timer fires, and it
 * reads only when the parser needs more bytes, so a connection that stopped
 * reading (timer, full output) resumes from conn_drive() without an event.
 */
#include "httpd/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/timeu.h"

#define HDR_MAX (64u * 1024) /* request line + headers */
#define IN_MAX (HDR_MAX + AD_MAX_REQUEST + 64u * 1024)
#define OUT_HIGH (256u * 1024) /* stop answering pipelined requests above this */
#define PATH_MAX_LEN 2048
#define STOP_GRACE_US (5 * 1000000LL)

struct worker;

struct conn {
  int fd;
  struct worker *w;
  struct conn *prev, *next;
  /* input: unconsumed bytes are in[in_off, in_len) */
  char *in;
  size_t in_len, in_cap, in_off;
  /* the request being parsed; offsets relative to in + in_off */
  int have_hdr;
  size_t scan;    /* where to resume the search for the end of the headers */
  size_t hdr_len; /* bytes of request line + headers + blank line */
  size_t clen;    /* Content-Length */
  int chunked;    /* Transfer-Encoding: chunked */
  int cstate;     /* chunked decoder state (CH_*) */
  size_t crem;    /* bytes left in the current chunk */
  size_t cpos;    /* next raw byte to decode */
  size_t dec;     /* decoded body bytes, at hdr_len (decoded in place) */
  int keepalive, expect, continued;
  char method[16];
  char path[PATH_MAX_LEN];
  /* output: unsent bytes are out[out_off, out_len) */
  char *out;
  size_t out_len, out_cap, out_off;
  /* the reply waiting on a timer */
  int waiting;
  int heap_idx;
  int64_t due_us;
  char *pend;
  size_t pend_len;
  int pend_close;
  int close_after; /* close once the output is flushed; read no more requests */
  int rd_eof;
  int deferred; /* a deferred reply is pending (httpd_defer): the connection stays */
  int broken;   /* the socket failed while deferred: close once it is answered */
};

struct httpd_pending {
  struct conn *c;
  int keepalive;
  int status;
  const char *ctype;
  char *body;
  size_t len;
  struct httpd_pending *next;
};

struct worker {
  struct httpd *srv;
  int idx;
  int ep;
  int lfd;
  int spare_fd; /* kept open to shed connections when out of descriptors */
  struct conn *conns;
  struct conn **heap;
  size_t nheap, capheap;
  int stopping;
  struct httpd_stats st;
  pthread_t th;
  int wfd;                     /* eventfd: deferred replies are ready */
  pthread_mutex_t mu;          /* guards ready */
  struct httpd_pending *ready; /* answered deferred replies, newest first */
  size_t n_deferred;           /* deferred replies not yet sent */
  int mu_ok;
};

struct httpd {
  struct httpd_opts o;
  size_t max_body;
  char host[256];
  int port;
  int family;
  int efd; /* eventfd: readable = stop */
  atomic_int stop;
  int nworkers;
  struct worker *w;
};

static char tag_listen, tag_stop, tag_wake;

/* ---------------------------------------------------------------- timer heap */

static int heap_less(struct conn *a, struct conn *b) { return a->due_us < b->due_us; }

static void heap_swap(struct worker *w, size_t i, size_t j) {
  struct conn *t = w->heap[i];
  w->heap[i] = w->heap[j];
  w->heap[j] = t;
  w->heap[i]->heap_idx = (int)i;
  w->heap[j]->heap_idx = (int)j;
}

static void heap_up(struct worker *w, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!heap_less(w->heap[i], w->heap[p])) break;
    heap_swap(w, i, p);
    i = p;
  }
}

static void heap_down(struct worker *w, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < w->nheap && heap_less(w->heap[l], w->heap[m])) m = l;
    if (r < w->nheap && heap_less(w->heap[r], w->heap[m])) m = r;
    if (m == i) break;
    heap_swap(w, i, m);
    i = m;
  }
}

static void heap_push(struct worker *w, struct conn *c) {
  if (w->nheap == w->capheap) {
    w->capheap = w->capheap ? w->capheap * 2 : 256;
    w->heap = xrealloc(w->heap, w->capheap * sizeof *w->heap);
  }
  w->heap[w->nheap] = c;
  c->heap_idx = (int)w->nheap++;
  heap_up(w, (size_t)c->heap_idx);
}

static void heap_remove(struct worker *w, struct conn *c) {
  size_t i = (size_t)c->heap_idx;
  c->heap_idx = -1;
  if (i >= w->nheap) return;
  w->nheap--;
  if (i == w->nheap) return;
  w->heap[i] = w->heap[w->nheap];
  w->heap[i]->heap_idx = (int)i;
  heap_down(w, i);
  heap_up(w, (size_t)w->heap[i]->heap_idx);
}

/* ---------------------------------------------------------------- buffers */

/* Make *p hold at least need bytes (at most max): 0 or AD_ETOOBIG. */
static int grow(char **p, size_t *cap, size_t need, size_t max) {
  if (need <= *cap) return 0;
  if (need > max) return AD_ETOOBIG;
  size_t nc = *cap ? *cap : 4096;
  while (nc < need) nc *= 2;
  if (nc > max) nc = max;
  *p = xrealloc(*p, nc);
  *cap = nc;
  return 0;
}

/* 0, or AD_ETOOBIG past 1 TiB of unsent output. */
static int out_append(struct conn *c, const void *p, size_t n) {
  if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
  int rc = grow(&c->out, &c->out_cap, c->out_len + n, (size_t)1 << 40);
  if (rc) return rc;
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
  return 0;
}

/* ---------------------------------------------------------------- replies */

static const char *reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 413: return "Payload Too Large";
  case 414: return "URI Too Long";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}

/* Render a whole reply into a buf. send_len receives how many bytes to send
 * (all, or headers + half the body when truncate). */
static int render(struct buf *b, int status, const char *ctype, const char *body, size_t len,
                  int keepalive, int http10, int retry_after) {
  int rc = buf_printf(b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
                      reason(status), ctype ? ctype : "application/json", len);
  if (!rc && retry_after >= 0) rc = buf_printf(b, "Retry-After: %d\r\n", retry_after);
  if (!rc && !keepalive) rc = buf_puts(b, "Connection: close\r\n");
  if (!rc && keepalive && http10) rc = buf_puts(b, "Connection: keep-alive\r\n");
  if (!rc) rc = buf_puts(b, "\r\n");
  if (!rc) rc = buf_append(b, body, len);
  return rc;
}

static void conn_close(struct conn *c);
static void conn_drive(struct conn *c);

/* Queue a reply (now, or after delay_us); truncate sends the headers and half the
 * body. 0, or out_append()'s error. */
static int queue_reply(struct conn *c, struct buf *b, size_t body_len, int truncate,
                       int64_t delay_us, int close_after) {
  size_t n;
  char *p = buf_take(b, &n);
  if (truncate) n -= body_len - body_len / 2;
  if (delay_us > 0) {
    c->pend = p;
    c->pend_len = n;
    c->pend_close = close_after;
    c->due_us = time_now_us() + delay_us;
    c->waiting = 1;
    heap_push(c->w, c);
    return 0;
  }
  int rc = out_append(c, p, n);
  free(p);
  if (close_after) c->close_after = 1;
  return rc;
}

/* An HTTP-level error: JSON body, Connection: close. */
static void http_error(struct conn *c, int status, const char *msg) {
  struct buf body = BUF_INIT, b = BUF_INIT;
  c->w->st.requests++;
  c->w->st.bad++;
  if (!buf_printf(&body, "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\"}}",
                  msg) &&
      !render(&b, status, NULL, body.data, body.len, 0, 0, -1))
    (void)queue_reply(c, &b, body.len, 0, 0, 1);
  c->close_after = 1;
  buf_release(&body);
  buf_release(&b);
}

/* Refuse the request being parsed: queue the error reply (http_error) and return the
 * code for it: AD_ETOOBIG (413, 414, 431), AD_EINVAL (501, 505: not supported) or
 * AD_EPARSE (400: malformed). */
static int reject(struct conn *c, int status, const char *msg) {
  http_error(c, status, msg);
  if (status == 413 || status == 414 || status == 431) return AD_ETOOBIG;
  return status == 501 || status == 505 ? AD_EINVAL : AD_EPARSE;
}

void httpd_reply_set(struct httpd_reply *r, int status, const char *body, size_t len) {
  free(r->body);
  r->status = status;
  r->body = xmalloc(len + 1);
  if (len) memcpy(r->body, body, len);
  r->body[len] = 0;
  r->len = len;
}

/* Answer the parsed request whose body is body[0, len) through the handler: 0, or
 * AD_ETOOBIG when the reply does not fit its buffer. */
static int answer(struct conn *c, const char *body, size_t len) {
  struct worker *w = c->w;
  struct httpd *s = w->srv;
  w->st.requests++;
  struct httpd_req req = {c->method, c->path, body, len, w->idx, (struct httpd_conn *)c};
  struct httpd_reply rep;
  memset(&rep, 0, sizeof rep);
  s->o.handler(s->o.ud, &req, &rep);
  if (rep.deferred) return 0;
  if (rep.drop) {
    free(rep.body);
    c->close_after = 1;
    return 0;
  }
  int ka = c->keepalive && !c->close_after && !rep.close && !rep.truncate;
  struct buf b = BUF_INIT;
  int rc = render(&b, rep.status ? rep.status : 500, rep.ctype, rep.body ? rep.body : "", rep.len,
                  ka, 0, rep.has_retry_after ? rep.retry_after : -1);
  if (!rc) rc = queue_reply(c, &b, rep.len, rep.truncate, rep.delay_us, !ka);
  buf_release(&b);
  free(rep.body);
  return rc;
}

struct httpd_pending *httpd_defer(const struct httpd_req *req, struct httpd_reply *rep) {
  struct conn *c = (struct conn *)req->conn;
  struct httpd_pending *p = xcalloc(1, sizeof *p);
  p->c = c;
  p->keepalive = c->keepalive && !c->close_after;
  c->waiting = 1;
  c->deferred = 1;
  c->w->n_deferred++;
  rep->deferred = 1;
  return p;
}

void httpd_answer(struct httpd_pending *p, int status, const char *ctype, const char *body,
                  size_t len) {
  struct worker *w = p->c->w;
  p->status = status;
  p->ctype = ctype;
  p->body = xmalloc(len + 1);
  if (len) memcpy(p->body, body, len);
  p->len = len;
  pthread_mutex_lock(&w->mu);
  p->next = w->ready;
  w->ready = p;
  pthread_mutex_unlock(&w->mu);
  uint64_t one = 1;
  ssize_t r = write(w->wfd, &one, sizeof one);
  (void)r;
}

/* The worker's answered deferred replies: queue each on its connection. */
static void take_answers(struct worker *w) {
  uint64_t v;
  ssize_t r = read(w->wfd, &v, sizeof v);
  (void)r;
  pthread_mutex_lock(&w->mu);
  struct httpd_pending *list = w->ready;
  w->ready = NULL;
  pthread_mutex_unlock(&w->mu);
  struct httpd_pending *rev = NULL; /* oldest first */
  while (list) {
    struct httpd_pending *n = list->next;
    list->next = rev;
    rev = list;
    list = n;
  }
  while (rev) {
    struct httpd_pending *p = rev;
    rev = p->next;
    struct conn *c = p->c;
    c->deferred = 0;
    c->waiting = 0;
    w->n_deferred--;
    if (c->broken) {
      conn_close(c);
    } else {
      struct buf b = BUF_INIT;
      if (render(&b, p->status, p->ctype, p->body, p->len, p->keepalive, 0, -1) ||
          queue_reply(c, &b, p->len, 0, 0, !p->keepalive))
        c->close_after = 1;
      buf_release(&b);
      conn_drive(c);
    }
    free(p->body);
    free(p);
  }
}

/* ---------------------------------------------------------------- parsing */

enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

static int token_in(const char *v, const char *tok) {
  size_t tl = strlen(tok);
  while (*v) {
    while (*v == ' ' || *v == '\t' || *v == ',') v++;
    size_t n = strcspn(v, ",");
    size_t m = n;
    while (m > 0 && (v[m - 1] == ' ' || v[m - 1] == '\t')) m--;
    if (m == tl && !strncasecmp(v, tok, tl)) return 1;
    v += n;
  }
  return 0;
}

static int is_tchar(unsigned char ch) {
  return ch > 32 && ch < 127 && !strchr("\"(),/:;<=>?@[\\]{}", ch);
}

/* 413 naming the server's body limit. */
static int too_big(struct conn *c) {
  char msg[96];
  size_t m = c->w->srv->max_body;
  if (m >= 1024 * 1024 && m % (1024 * 1024) == 0)
    snprintf(msg, sizeof msg, "request body exceeds the %zu MiB limit", m / (1024 * 1024));
  else snprintf(msg, sizeof msg, "request body exceeds the %zu-byte limit", m);
  return reject(c, 413, msg);
}

/* Parse request line and headers in p[0, hdr_len). 0, or reject()'s code. */
static int parse_head(struct conn *c, char *p, size_t hdr_len) {
  char *end = p + hdr_len - 2; /* the blank line's CRLF */
  char *eol = memchr(p, '\r', (size_t)(end - p));
  if (!eol || eol[1] != '\n') goto bad;
  /* request line */
  char *sp1 = memchr(p, ' ', (size_t)(eol - p));
  if (!sp1 || sp1 == p || (size_t)(sp1 - p) >= sizeof c->method) goto bad;
  for (char *q = p; q < sp1; q++)
    if (!is_tchar((unsigned char)*q)) goto bad;
  char *tgt = sp1 + 1;
  char *sp2 = memchr(tgt, ' ', (size_t)(eol - tgt));
  if (!sp2 || sp2 == tgt) goto bad;
  if ((size_t)(sp2 - tgt) >= sizeof c->path) {
    return reject(c, 414, "request target too long");
  }
  for (char *q = tgt; q < sp2; q++)
    if ((unsigned char)*q <= 32 || (unsigned char)*q == 127) goto bad;
  size_t vlen = (size_t)(eol - sp2 - 1);
  int http10;
  if (vlen == 8 && !memcmp(sp2 + 1, "HTTP/1.1", 8)) http10 = 0;
  else if (vlen == 8 && !memcmp(sp2 + 1, "HTTP/1.0", 8)) http10 = 1;
  else if (vlen == 8 && !memcmp(sp2 + 1, "HTTP/", 5)) {
    return reject(c, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
  } else goto bad;
  memcpy(c->method, p, (size_t)(sp1 - p));
  c->method[sp1 - p] = 0;
  memcpy(c->path, tgt, (size_t)(sp2 - tgt));
  c->path[sp2 - tgt] = 0;

  int have_cl = 0, conn_close = 0, conn_ka = 0;
  c->clen = 0;
  c->chunked = 0;
  c->expect = 0;
  for (char *line = eol + 2; line < end;) {
    char *le = memchr(line, '\r', (size_t)(end - line));
    if (!le || le[1] != '\n') goto bad;
    char *colon = memchr(line, ':', (size_t)(le - line));
    if (!colon || colon == line) goto bad;
    for (char *q = line; q < colon; q++)
      if (!is_tchar((unsigned char)*q)) goto bad; /* also rejects obs-fold and "Name :" */
    char *v = colon + 1, *ve = le;
    while (v < ve && (*v == ' ' || *v == '\t')) v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    for (char *q = v; q < ve; q++)
      if ((unsigned char)*q < 32 && *q != '\t') goto bad;
    size_t nl = (size_t)(colon - line);
    char val[1024];
    size_t vl = (size_t)(ve - v);
    if (vl >= sizeof val) vl = sizeof val - 1;
    memcpy(val, v, vl);
    val[vl] = 0;
    if (nl == 14 && !strncasecmp(line, "content-length", 14)) {
      if (!vl) goto bad;
      unsigned long long x = 0;
      int over = 0;
      for (size_t i = 0; i < vl; i++) {
        if (val[i] < '0' || val[i] > '9') goto bad;
        if (x > (1ull << 50)) over = 1;
        else x = x * 10 + (unsigned)(val[i] - '0');
      }
      if (over) x = ~0ull;
      if (have_cl && x != c->clen) goto bad;
      have_cl = 1;
      c->clen = x > SIZE_MAX ? SIZE_MAX : (size_t)x;
    } else if (nl == 17 && !strncasecmp(line, "transfer-encoding", 17)) {
      if (strcasecmp(val, "chunked") || c->chunked) {
        return reject(c, 501, "unsupported Transfer-Encoding (only chunked is accepted)");
      }
      c->chunked = 1;
    } else if (nl == 10 && !strncasecmp(line, "connection", 10)) {
      if (token_in(val, "close")) conn_close = 1;
      if (token_in(val, "keep-alive")) conn_ka = 1;
    } else if (nl == 6 && !strncasecmp(line, "expect", 6)) {
      if (!strcasecmp(val, "100-continue")) c->expect = 1;
    }
    line = le + 2;
  }
  if (have_cl && c->chunked) {
    return reject(c, 400, "both Content-Length and Transfer-Encoding given");
  }
  if (have_cl && c->clen > c->w->srv->max_body) return too_big(c);
  c->keepalive = http10 ? (conn_ka && !conn_close) : !conn_close;
  return 0;
bad:
  return reject(c, 400, "malformed HTTP request");
}

/* Decode chunked framing in place from cpos; 1 when the body is complete, 0
 * for more data, or reject()'s code. */
static int decode_chunks(struct conn *c, char *p, size_t avail) {
  for (;;) {
    switch (c->cstate) {
    case CH_SIZE: {
      char *nl = memchr(p + c->cpos, '\n', avail - c->cpos);
      if (!nl) {
        if (avail - c->cpos > 1024) goto bad;
        return 0;
      }
      char *q = p + c->cpos;
      size_t sz = 0;
      int digits = 0;
      for (; q < nl; q++) {
        int d = (*q >= '0' && *q <= '9')   ? *q - '0'
                : (*q >= 'a' && *q <= 'f') ? *q - 'a' + 10
                : (*q >= 'A' && *q <= 'F') ? *q - 'A' + 10
                                           : -1;
        if (d < 0) break;
        if (sz > c->w->srv->max_body) return too_big(c);
        sz = sz * 16 + (size_t)d;
        digits++;
      }
      if (!digits || (*q != ';' && *q != '\r' && *q != ' ' && *q != '\t')) goto bad;
      if (nl[-1] != '\r') goto bad;
      c->cpos = (size_t)(nl + 1 - p);
      if (c->dec + sz > c->w->srv->max_body) return too_big(c);
      c->crem = sz;
      c->cstate = sz ? CH_DATA : CH_TRAILER;
      break;
    }
    case CH_DATA: {
      size_t have = avail - c->cpos;
      size_t n = have < c->crem ? have : c->crem;
      size_t at = c->hdr_len + c->dec;
      if (n && at != c->cpos) memmove(p + at, p + c->cpos, n);
      c->dec += n;
      c->cpos += n;
      c->crem -= n;
      if (c->crem) return 0;
      c->cstate = CH_DATA_END;
      break;
    }
    case CH_DATA_END:
      if (avail - c->cpos < 2) return 0;
      if (p[c->cpos] != '\r' || p[c->cpos + 1] != '\n') goto bad;
      c->cpos += 2;
      c->cstate = CH_SIZE;
      break;
    case CH_TRAILER: {
      char *nl = memchr(p + c->cpos, '\n', avail - c->cpos);
      if (!nl) {
        if (avail - c->cpos > HDR_MAX) goto bad;
        return 0;
      }
      size_t ll = (size_t)(nl - (p + c->cpos));
      c->cpos += ll + 1;
      if (ll == 1 && nl[-1] == '\r') return 1; /* blank line ends the trailers */
      if (ll == 0 || nl[-1] != '\r') goto bad;
      break;
    }
    }
  }
bad:
  return reject(c, 400, "malformed chunked request body");
}

/* Try to parse and answer one request from the input buffer. 1: a request was
 * consumed; 0: need more bytes; a negative AD_E* code: fatal (an error reply, if
 * any, is queued and the connection closes after it). */
static int parse_one(struct conn *c) {
  char *p = c->in + c->in_off;
  size_t avail = c->in_len - c->in_off;
  if (!c->have_hdr) {
    /* RFC 9112 2.2: ignore empty lines before the request line */
    while (avail >= 2 && p[0] == '\r' && p[1] == '\n') {
      c->in_off += 2, p += 2, avail -= 2;
      c->scan = 0;
    }
    size_t from = c->scan > 3 ? c->scan - 3 : 0;
    char *e = avail > from ? memmem(p + from, avail - from, "\r\n\r\n", 4) : NULL;
    if (!e) {
      c->scan = avail;
      if (avail > HDR_MAX) return reject(c, 431, "request headers exceed 64 KiB");
      return 0;
    }
    c->hdr_len = (size_t)(e - p) + 4;
    if (c->hdr_len > HDR_MAX) return reject(c, 431, "request headers exceed 64 KiB");
    int rc = parse_head(c, p, c->hdr_len);
    if (rc) return rc;
    c->have_hdr = 1;
    c->continued = 0;
    c->cstate = CH_SIZE;
    c->cpos = c->hdr_len;
    c->dec = 0;
  }
  size_t body_len, req_len;
  if (c->chunked) {
    int r = decode_chunks(c, p, avail);
    if (r < 0) return r;
    /* drop the framing already decoded so the buffer holds body + unparsed tail */
    size_t hole = c->cpos - (c->hdr_len + c->dec);
    if (hole && r == 0) {
      memmove(p + c->hdr_len + c->dec, p + c->cpos, avail - c->cpos);
      c->in_len -= hole;
      avail -= hole;
      c->cpos -= hole;
    }
    if (r == 0) goto need_more;
    body_len = c->dec;
    req_len = c->cpos;
  } else {
    if (avail < c->hdr_len + c->clen) goto need_more;
    body_len = c->clen;
    req_len = c->hdr_len + c->clen;
  }
  /* a complete request */
  int rc = answer(c, p + c->hdr_len, body_len);
  c->have_hdr = 0;
  c->scan = 0;
  c->in_off += req_len;
  if (c->in_off == c->in_len) c->in_off = c->in_len = 0;
  if (rc) {
    c->close_after = 1;
    return rc;
  }
  if (!c->keepalive) c->close_after = 1;
  return 1;
need_more:
  if (c->expect && !c->continued) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    c->continued = 1;
    return out_append(c, cont, sizeof cont - 1);
  }
  return 0;
}

/* ---------------------------------------------------------------- I/O */

/* What read_more() saw, when it is not an error. */
enum { RD_AGAIN = 0, RD_DATA = 1, RD_EOF = 2 };

/* RD_DATA (bytes read), RD_AGAIN (would block), RD_EOF (the peer closed), or AD_EIO
 * (recv failed) / AD_ETOOBIG (no room: parse_one caps the header size, so it cannot
 * happen). */
static int read_more(struct conn *c) {
  if (c->in_off > 0) {
    memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
    c->in_len -= c->in_off;
    c->in_off = 0;
  }
  size_t want = c->in_len + 16384;
  if (c->have_hdr && !c->chunked && c->hdr_len + c->clen > c->in_len)
    want = c->hdr_len + c->clen; /* room for the whole declared body */
  if (want > IN_MAX) want = IN_MAX;
  int rc = grow(&c->in, &c->in_cap, want, IN_MAX);
  if (rc) return rc;
  if (c->in_cap == c->in_len) return AD_ETOOBIG;
  for (;;) {
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (n > 0) {
      c->in_len += (size_t)n;
      return RD_DATA;
    }
    if (n == 0) return RD_EOF;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return RD_AGAIN;
    return AD_EIO;
  }
}

/* 0 (maybe partially sent), or AD_EIO (send failed: the connection is gone). */
static int flush_out(struct conn *c) {
  while (c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return AD_EIO;
  }
  c->out_off = c->out_len = 0;
  if (c->out_cap > (1u << 20)) {
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
  }
  return 0;
}

static void conn_drive(struct conn *c) {
  if (c->w->stopping && !c->waiting) c->close_after = 1;
  while (!c->waiting && !c->close_after && c->out_len - c->out_off < OUT_HIGH) {
    int r = parse_one(c);
    if (r > 0) continue;
    if (r < 0) break;
    if (c->rd_eof) break;
    int n = read_more(c);
    if (n == RD_DATA) continue;
    if (n == RD_AGAIN) break;
    if (n == RD_EOF) {
      c->rd_eof = 1;
      break;
    }
    conn_close(c);
    return;
  }
  if (flush_out(c)) {
    conn_close(c);
    return;
  }
  if (!c->waiting && c->out_off == c->out_len && (c->close_after || c->rd_eof)) conn_close(c);
}

static void conn_fire(struct conn *c) {
  c->waiting = 0;
  int rc = out_append(c, c->pend, c->pend_len);
  free(c->pend);
  c->pend = NULL;
  if (c->pend_close || rc) c->close_after = 1;
  conn_drive(c);
}

static void conn_close(struct conn *c) {
  struct worker *w = c->w;
  if (c->deferred) { /* its answer is still to come: close when it does */
    c->broken = 1;
    return;
  }
  if (c->heap_idx >= 0) heap_remove(w, c);
  close(c->fd);
  if (c->prev) c->prev->next = c->next;
  else w->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  free(c->in);
  free(c->out);
  free(c->pend);
  free(c);
}

static void do_accept(struct worker *w) {
  for (int i = 0; i < 256; i++) {
    int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && w->spare_fd >= 0) {
        /* shed one connection so the listener does not spin */
        close(w->spare_fd);
        fd = accept(w->lfd, NULL, NULL);
        if (fd >= 0) close(fd);
        w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      }
      return;
    }
    struct conn *c = xcalloc(1, sizeof *c);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->w = w;
    c->heap_idx = -1;
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev)) {
      conn_close(c);
      continue;
    }
    w->st.connections++;
  }
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct epoll_event evs[256];
  int64_t grace_end = 0;
  for (;;) {
    int timeout = -1;
    if (w->nheap) {
      int64_t d = w->heap[0]->due_us - time_now_us();
      timeout = d <= 0 ? 0 : (int)((d + 999) / 1000);
    }
    if (w->stopping) {
      int64_t left = grace_end - time_now_us();
      if (!w->conns || (left <= 0 && !w->n_deferred)) break;
      int t = left > 0 ? (int)((left + 999) / 1000) : 100;
      if (timeout < 0 || timeout > t) timeout = t;
    }
    int n = epoll_wait(w->ep, evs, 256, timeout);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; i++) {
      void *ptr = evs[i].data.ptr;
      if (ptr == &tag_wake) {
        take_answers(w);
      } else if (ptr == &tag_listen) {
        if (!w->stopping) do_accept(w);
      } else if (ptr == &tag_stop) {
        if (w->stopping) continue;
        w->stopping = 1;
        grace_end = time_now_us() + STOP_GRACE_US;
        epoll_ctl(w->ep, EPOLL_CTL_DEL, w->srv->efd, NULL);
        epoll_ctl(w->ep, EPOLL_CTL_DEL, w->lfd, NULL);
        close(w->lfd);
        w->lfd = -1;
        /* idle and half-read connections close now; waiting ones after their reply */
        for (struct conn *c = w->conns, *nx; c; c = nx) {
          nx = c->next;
          if (!c->waiting) conn_drive(c);
        }
        break; /* remaining events may name connections closed just now */
      } else {
        struct conn *c = ptr;
        if (evs[i].events & EPOLLERR) conn_close(c);
        else conn_drive(c);
      }
    }
    int64_t now = time_now_us();
    while (w->nheap && w->heap[0]->due_us <= now) {
      struct conn *c = w->heap[0];
      heap_remove(w, c);
      conn_fire(c);
    }
  }
  for (struct conn *c = w->conns; c; c = c->next) c->deferred = 0; /* (error exits only) */
  while (w->conns) conn_close(w->conns);
  return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

/* A listening socket on sa, port, with SO_REUSEPORT, into *fd_out: 0, or AD_EIO with
 * a message in err. */
static int make_listener(struct httpd *s, const struct sockaddr *sa, socklen_t salen, int port,
                         int *fd_out, char *err, size_t errlen) {
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ad_set_err(err, errlen, "socket: %s", strerror(errno));
    return AD_EIO;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one)) {
    ad_set_err(err, errlen, "SO_REUSEPORT: %s", strerror(errno));
    close(fd);
    return AD_EIO;
  }
  struct sockaddr_storage ss;
  memcpy(&ss, sa, salen);
  if (ss.ss_family == AF_INET) ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
  else ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
  if (bind(fd, (struct sockaddr *)&ss, salen) || listen(fd, 4096)) {
    ad_set_err(err, errlen, "cannot listen on %s port %d: %s", s->host, port, strerror(errno));
    close(fd);
    return AD_EIO;
  }
  *fd_out = fd;
  return 0;
}

int httpd_open(const struct httpd_opts *opts, struct httpd **out, char *err, size_t errlen) {
  *out = NULL;
  if (errlen) err[0] = 0;
  struct httpd *s = xcalloc(1, sizeof *s);
  s->o = *opts;
  s->efd = -1;
  snprintf(s->host, sizeof s->host, "%s", opts->host && *opts->host ? opts->host : "127.0.0.1");
  s->o.host = s->host;
  s->max_body = opts->max_body && opts->max_body < AD_MAX_REQUEST ? opts->max_body : AD_MAX_REQUEST;
  s->nworkers = opts->threads > 0 ? opts->threads : 2;
  int rc = AD_EINVAL;
  struct addrinfo *ai = NULL;
  if (s->nworkers > HTTPD_MAX_THREADS || opts->port < 0 || opts->port > 65535 || !opts->handler) {
    ad_set_err(err, errlen, "invalid server options (threads 1..%d, port 0..65535, a handler)",
               HTTPD_MAX_THREADS);
    goto fail;
  }
  struct rlimit rl;
  if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
  int gai = getaddrinfo(s->host, NULL, &hints, &ai);
  if (gai || !ai) {
    ad_set_err(err, errlen, "cannot resolve host '%s': %s", s->host, gai_strerror(gai));
    goto fail;
  }
  s->family = ai->ai_family;
  s->w = xcalloc((size_t)s->nworkers, sizeof *s->w);
  for (int i = 0; i < s->nworkers; i++)
    s->w[i].lfd = s->w[i].ep = s->w[i].spare_fd = s->w[i].wfd = -1;
  rc = AD_EIO;
  s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->efd < 0) {
    ad_set_err(err, errlen, "out of resources: %s", strerror(errno));
    goto fail;
  }
  int port = opts->port;
  for (int i = 0; i < s->nworkers; i++) {
    struct worker *w = &s->w[i];
    w->srv = s;
    w->idx = i;
    w->mu_ok = !pthread_mutex_init(&w->mu, NULL);
    w->wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if ((rc = make_listener(s, ai->ai_addr, ai->ai_addrlen, port, &w->lfd, err, errlen))) goto fail;
    if (i == 0) {
      struct sockaddr_storage ss;
      socklen_t sl = sizeof ss;
      getsockname(w->lfd, (struct sockaddr *)&ss, &sl);
      port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                           : ((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct epoll_event el = {.events = EPOLLIN, .data.ptr = &tag_listen};
    struct epoll_event es = {.events = EPOLLIN, .data.ptr = &tag_stop};
    struct epoll_event ew = {.events = EPOLLIN, .data.ptr = &tag_wake};
    if (w->ep < 0 || w->wfd < 0 || !w->mu_ok || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &el) ||
        epoll_ctl(w->ep, EPOLL_CTL_ADD, s->efd, &es) ||
        epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wfd, &ew)) {
      ad_set_err(err, errlen, "epoll: %s", strerror(errno));
      rc = AD_EIO;
      goto fail;
    }
  }
  s->port = port;
  freeaddrinfo(ai);
  *out = s;
  return 0;
fail:
  if (ai) freeaddrinfo(ai);
  httpd_free(s);
  return rc;
}

int httpd_port(const struct httpd *s) { return s->port; }

void httpd_url(const struct httpd *s, const char *suffix, char *out, size_t outlen) {
  if (s->family == AF_INET6)
    snprintf(out, outlen, "http://[%s]:%d%s", s->host, s->port, suffix ? suffix : "");
  else snprintf(out, outlen, "http://%s:%d%s", s->host, s->port, suffix ? suffix : "");
}

int httpd_run(struct httpd *s) {
  int started = 0, rc = 0;
  for (; started < s->nworkers; started++)
    if (pthread_create(&s->w[started].th, NULL, worker_main, &s->w[started])) {
      rc = AD_ENOMEM; /* the system has no resources for another thread */
      httpd_stop(s);
      break;
    }
  for (int i = 0; i < started; i++) pthread_join(s->w[i].th, NULL);
  return rc;
}

void httpd_stop(struct httpd *s) {
  uint64_t one = 1;
  if (!s || s->efd < 0) return;
  atomic_store(&s->stop, 1);
  ssize_t r = write(s->efd, &one, sizeof one);
  (void)r;
}

void httpd_stats(const struct httpd *s, struct httpd_stats *out) {
  memset(out, 0, sizeof *out);
  for (int i = 0; i < s->nworkers; i++) {
    const struct httpd_stats *t = &s->w[i].st;
    out->connections += t->connections;
    out->requests += t->requests;
    out->bad += t->bad;
  }
}

void httpd_free(struct httpd *s) {
  if (!s) return;
  for (int i = 0; s->w && i < s->nworkers; i++) {
    struct worker *w = &s->w[i];
    for (struct conn *c = w->conns; c; c = c->next) c->deferred = 0;
    while (w->conns) conn_close(w->conns);
    if (w->lfd >= 0) close(w->lfd);
    if (w->ep >= 0) close(w->ep);
    if (w->spare_fd >= 0) close(w->spare_fd);
    if (w->wfd >= 0) close(w->wfd);
    if (w->mu_ok) pthread_mutex_destroy(&w->mu);
    free(w->heap);
  }
  free(s->w);
  if (s->efd >= 0) close(s->efd);
  free(s);
}
