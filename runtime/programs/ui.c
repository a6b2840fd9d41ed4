/* SPDX-License-Identifier: MIT */
/*
** ui.c: `lupine ui`, a read-only dashboard of the catalog over HTTP.
**
** libmicrohttpd speaks HTTP (a well-kept implementation of the protocol's
** details: parsing, keep-alive, timeouts, limits); the pages and the JSON
** API are Lua code, lua/lupine/ui.lua, run in the runtime's one lua_State.
** MHD runs no thread of its own: the main thread waits in select() on
** MHD's sockets and calls MHD_run_from_select, so every request handler,
** and so every Lua call, happens on this thread, one at a time.
**
** Connections. One thread answers every request, so what must be bounded
** is the connections held open: a client that opens many and sends
** nothing (or a request never finished) must not lock others out. Each
** connection is tracked from accept to close. One that has sent no
** complete request times out after FIRST_TIMEOUT seconds of silence, one
** idle after a request after IDLE_TIMEOUT. An address holds at most
** PER_ADDRESS connections and all addresses together MAX_CONNECTIONS;
** rather than refuse a connection past either limit (which would lock
** out the very client, or everyone, a flood comes from), it is accepted
** and the least useful connection within the limit is closed: first the
** oldest that never sent a complete request, then the one idle longest
** after its last. So a new request is always answered, however many
** connections sit open, from the same address or not.
**
** Uses only lupine.h, the Lua headers and microhttpd.h, as main.c does.
*/
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <microhttpd.h>
#include "lauxlib.h"
#include "lupine.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define MAX_ARGS 32     /* query arguments passed on; more is a 400 */

#define MAX_CONNECTIONS 256   /* open connections, from all addresses */
#define PER_ADDRESS 32        /* open connections from one client address */
#define SLACK 16              /* closed by us, not yet by libmicrohttpd */
#define FIRST_TIMEOUT 5       /* seconds of silence before a first complete request */
#define IDLE_TIMEOUT 30       /* seconds idle after a request */

static volatile sig_atomic_t stopping;

static void on_stop(int sig) {
  (void)sig;
  stopping = 1;
}

/* One request, as the handler sees it. */
typedef struct request {
  const char *method, *url, *host, *version;
  int nargs, too_many, hosts;   /* hosts: how many Host headers */
  const char *keys[MAX_ARGS], *values[MAX_ARGS];
  struct MHD_Response *response;   /* out */
  unsigned status;                 /* out */
} request;

/* An open connection (conn NULL: a free slot). */
typedef struct slot {
  struct MHD_Connection *conn;
  MHD_socket fd;
  int family;                 /* of addr: AF_INET (4 bytes) or AF_INET6 (16) */
  unsigned char addr[16];
  int answered;               /* it has sent a complete request */
  int closing;                /* we shut it down; libmicrohttpd has yet to see */
  struct timespec since;      /* accepted, or its last request */
} slot;

typedef struct server {
  lua_State *L;
  int handler;   /* registry reference: lupine.ui's handler function */
  slot slots[MAX_CONNECTIONS + SLACK];
} server;

static int earlier(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static int same_address(const slot *a, const slot *b) {
  return a->family == b->family &&
         memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

/*
** Keep the limits after the connection in s was accepted: if its address
** holds more than PER_ADDRESS connections, close one of that address's
** others, else if there are more than MAX_CONNECTIONS, one of any. The one
** closed is the oldest that never sent a complete request, else the one
** idle longest; it is shut down, and libmicrohttpd, reading its end, closes
** it on its next turn.
*/
static void make_room(server *srv, const slot *s) {
  slot *victim = NULL;
  int all = 0, mine = 0, i, own;
  for (i = 0; i < MAX_CONNECTIONS + SLACK; i++) {
    const slot *t = &srv->slots[i];
    if (t->conn == NULL || t->closing) continue;
    all++;
    mine += same_address(t, s);
  }
  if (mine <= PER_ADDRESS && all <= MAX_CONNECTIONS) return;
  own = mine > PER_ADDRESS;
  for (i = 0; i < MAX_CONNECTIONS + SLACK; i++) {
    slot *t = &srv->slots[i];
    if (t->conn == NULL || t->closing || t == s || (own && !same_address(t, s))) continue;
    if (victim == NULL || t->answered < victim->answered ||
        (t->answered == victim->answered && earlier(&t->since, &victim->since)))
      victim = t;
  }
  if (victim != NULL) {
    victim->closing = 1;
    shutdown(victim->fd, SHUT_RDWR);
  }
}

/* libmicrohttpd's word that a connection was accepted or closed. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **context,
                          enum MHD_ConnectionNotificationCode code) {
  server *srv = cls;
  const union MHD_ConnectionInfo *fd, *addr;
  slot *s = NULL;
  int i;
  if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
    if (*context != NULL) ((slot *)*context)->conn = NULL;
    return;
  }
  for (i = 0; i < MAX_CONNECTIONS + SLACK && s == NULL; i++)
    if (srv->slots[i].conn == NULL) s = &srv->slots[i];
  fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  addr = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (s == NULL || fd == NULL || addr == NULL) {   /* never: libmicrohttpd keeps the limit */
    if (fd != NULL) shutdown(fd->connect_fd, SHUT_RDWR);
    return;
  }
  memset(s, 0, sizeof *s);
  s->conn = conn;
  s->fd = fd->connect_fd;
  s->family = addr->client_addr->sa_family;
  if (s->family == AF_INET)
    memcpy(s->addr, &((const struct sockaddr_in *)addr->client_addr)->sin_addr, 4);
  else if (s->family == AF_INET6)
    memcpy(s->addr, &((const struct sockaddr_in6 *)addr->client_addr)->sin6_addr, 16);
  clock_gettime(CLOCK_MONOTONIC, &s->since);
  *context = s;
  make_room(srv, s);
}

/* A complete request came on conn: from now on it times out only when
** idle between requests, and only after IDLE_TIMEOUT. */
static void answered(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *info =
    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  slot *s = info != NULL ? info->socket_context : NULL;
  if (s == NULL) return;
  if (!s->answered)
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int)IDLE_TIMEOUT);
  s->answered = 1;
  clock_gettime(CLOCK_MONOTONIC, &s->since);
}

static enum MHD_Result count_host(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value) {
  (void)kind;
  (void)value;
  if (key != NULL && strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) ++*(int *)cls;
  return MHD_YES;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
  request *rq = cls;
  (void)kind;
  if (rq->nargs == MAX_ARGS) {
    rq->too_many = 1;
    return MHD_NO;
  }
  rq->keys[rq->nargs] = key != NULL ? key : "";
  rq->values[rq->nargs++] = value != NULL ? value : "";
  return MHD_YES;
}

/*
** In a protected call (arg 1: the server, arg 2: the request): call
** handler(method, url, args, headers) -> status, content type, body,
** headers; args maps each query key to the list of its values, headers
** has host (the first Host header), hosts (how many there are), version
** ("HTTP/1.1") and too_many_args. Makes the
** MHD response once every Lua value is read, so no Lua error can leave it
** half-built.
*/
static int render(lua_State *L) {
  server *srv = lua_touserdata(L, 1);
  request *rq = lua_touserdata(L, 2);
  const char *body, *type;
  size_t len;
  int i, status;
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->handler);
  lua_pushstring(L, rq->method);
  lua_pushstring(L, rq->url);
  lua_createtable(L, 0, rq->nargs);
  for (i = 0; i < rq->nargs; i++) {
    if (lua_getfield(L, -1, rq->keys[i]) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_setfield(L, -3, rq->keys[i]);
    }
    lua_pushstring(L, rq->values[i]);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
  }
  lua_createtable(L, 0, 4);
  if (rq->host != NULL) {
    lua_pushstring(L, rq->host);
    lua_setfield(L, -2, "host");
  }
  lua_pushinteger(L, rq->hosts);
  lua_setfield(L, -2, "hosts");
  lua_pushstring(L, rq->version);
  lua_setfield(L, -2, "version");
  lua_pushboolean(L, rq->too_many);
  lua_setfield(L, -2, "too_many_args");
  lua_call(L, 4, 4);
  /* stack: server, request, status, content type, body, headers */
  status = (int)luaL_checkinteger(L, 3);
  type = luaL_checkstring(L, 4);
  body = luaL_checklstring(L, 5, &len);
  luaL_checktype(L, 6, LUA_TTABLE);
  luaL_argcheck(L, status >= 100 && status <= 599, 3, "not an HTTP status");
  lua_pushnil(L);
  while (lua_next(L, 6) != 0) {   /* check before anything is made */
    luaL_argcheck(L, lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING, 6,
                  "headers must map strings to strings");
    lua_pop(L, 1);
  }
  rq->response = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (rq->response == NULL) return luaL_error(L, "out of memory");
  rq->status = (unsigned)status;
  MHD_add_response_header(rq->response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  lua_pushnil(L);
  while (lua_next(L, 6) != 0) {
    MHD_add_response_header(rq->response, lua_tostring(L, -2), lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  static const char failed[] = "500 internal error: see the server's log\n";
  server *srv = cls;
  lua_State *L = srv->L;
  request rq;
  enum MHD_Result ret;
  int top = lua_gettop(L);
  (void)upload_data;
  (void)con_cls;
  /* A request body is never read: every request is answered at once. */
  *upload_data_size = 0;
  answered(conn);
  memset(&rq, 0, sizeof rq);
  rq.method = method;
  rq.url = url;
  rq.version = version;
  rq.host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
  MHD_get_connection_values(conn, MHD_HEADER_KIND, count_host, &rq.hosts);
  MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &rq);
  lua_pushcfunction(L, render);
  lua_pushlightuserdata(L, srv);
  lua_pushlightuserdata(L, &rq);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "lupine ui: %s %s: %s\n", method, url, lua_tostring(L, -1));
    if (rq.response != NULL) MHD_destroy_response(rq.response);
    rq.response = MHD_create_response_from_buffer(sizeof failed - 1, (void *)failed,
                                                  MHD_RESPMEM_PERSISTENT);
    if (rq.response == NULL) {
      lua_settop(L, top);
      return MHD_NO;
    }
    MHD_add_response_header(rq.response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    rq.status = MHD_HTTP_INTERNAL_SERVER_ERROR;
  }
  lua_settop(L, top);
  ret = MHD_queue_response(conn, rq.status, rq.response);
  MHD_destroy_response(rq.response);
  return ret;
}

/* In a protected call (arg 1: config table): the handler function, made
** by require("lupine.ui").handler(config), which also opens the catalog. */
static int make_handler(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lupine.ui");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "handler");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  luaL_checktype(L, -1, LUA_TFUNCTION);
  return 1;
}

/*
** Listen on host:port (port "0": any free one). Writes the listening socket
** into *fd, the address as a URL authority ("127.0.0.1:8237",
** "[::1]:8237") into where, and whether it is a loopback address.
*/
static int listen_on(const char *host, const char *port, int *fd, char *where, size_t wsz,
                     int *loopback) {
  struct addrinfo hints, *res, *ai;
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof ss;
  char addr[INET6_ADDRSTRLEN];
  int rc, one = 1, saved = 0;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
    fprintf(stderr, "lupine: ui: cannot use host '%s' (%s)\n", host, gai_strerror(rc));
    return EXIT_USAGE;
  }
  *fd = -1;
  for (ai = res; ai != NULL && *fd < 0; ai = ai->ai_next) {
    int s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (s < 0) {
      saved = errno;
      continue;
    }
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, 64) == 0) *fd = s;
    else {
      saved = errno;
      close(s);
    }
  }
  freeaddrinfo(res);
  if (*fd < 0) {
    fprintf(stderr, "lupine: ui: cannot listen on %s port %s (%s)\n", host, port,
            strerror(saved));
    return EXIT_FAILED;
  }
  getsockname(*fd, (struct sockaddr *)&ss, &sslen);
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof addr);
    snprintf(where, wsz, "[%s]:%u", addr, (unsigned)ntohs(a->sin6_port));
    *loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
                (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &a->sin_addr, addr, sizeof addr);
    snprintf(where, wsz, "%s:%u", addr, (unsigned)ntohs(a->sin_port));
    *loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  return 0;
}

/* lupine ui, as lupine.cli parsed and checked it (its --help is answered
** there): argv holds pairs, --host HOST, --port PORT, --allowed-host NAME. */
static int ui_main(int argc, char **argv) {
  const char *host = "127.0.0.1", *port = "8237";
  char where[INET6_ADDRSTRLEN + 16];
  struct MHD_Daemon *d = NULL;
  struct sigaction sa;
  server srv;
  lupine *rt = NULL;
  int i, fd = -1, loopback = 0, status = EXIT_FAILED, nallowed = 0;
  for (i = 0; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--host") == 0) host = argv[i + 1];
    else if (strcmp(argv[i], "--port") == 0) port = argv[i + 1];
    else if (strcmp(argv[i], "--allowed-host") == 0) nallowed++;
    else break;
  }
  if (i != argc) {
    fprintf(stderr, "lupine-ui: run it as `lupine ui` (see `lupine ui --help`)\n");
    return EXIT_USAGE;
  }
  if (lupine_open(&rt, NULL) != LUPINE_OK) {
    fprintf(stderr, "lupine: %s\n", lupine_errmsg(rt));
    lupine_close(rt);
    return EXIT_FAILED;
  }
  if ((status = listen_on(host, port, &fd, where, sizeof where, &loopback)) != 0) goto done;
  status = EXIT_FAILED;
  memset(&srv, 0, sizeof srv);
  srv.L = lupine_state(rt);
  lua_pushcfunction(srv.L, make_handler);
  lua_createtable(srv.L, 0, 2);
  lua_pushstring(srv.L, where);
  lua_setfield(srv.L, -2, "address");
  lua_createtable(srv.L, nallowed, 0);
  for (i = 0; i < argc; i += 2) {
    if (strcmp(argv[i], "--allowed-host") == 0) {
      lua_pushstring(srv.L, argv[i + 1]);
      lua_rawseti(srv.L, -2, (lua_Integer)lua_rawlen(srv.L, -2) + 1);
    }
  }
  lua_setfield(srv.L, -2, "allowed_hosts");
  if (lua_pcall(srv.L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "lupine: %s\n", lua_tostring(srv.L, -1));
    close(fd);
    goto done;
  }
  srv.handler = luaL_ref(srv.L, LUA_REGISTRYINDEX);
  d = MHD_start_daemon(MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, &srv,
                       MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)FIRST_TIMEOUT,
                       MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(MAX_CONNECTIONS + SLACK),
                       MHD_OPTION_NOTIFY_CONNECTION, on_connection, &srv, MHD_OPTION_END);
  if (d == NULL) {
    fprintf(stderr, "lupine: ui: cannot start the HTTP server\n");
    close(fd);
    goto done;
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;   /* no SA_RESTART: select returns EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (!loopback)
    fprintf(stderr, "lupine ui: warning: %s can be reached from other machines, and the "
            "dashboard has no login and no encryption: whoever reaches it reads the whole "
            "catalog. Requests are answered under an IP address, localhost%s only.\n", where,
            nallowed > 0 ? " or an --allowed-host name" : " (add names with --allowed-host)");
  printf("lupine ui: serving %s at http://%s/ (Ctrl-C stops it)\n", lupine_catalog_name(rt),
         where);
  fflush(stdout);
  while (!stopping) {
    fd_set rs, ws, es;
    MHD_socket max = 0;
    MHD_UNSIGNED_LONG_LONG ms;
    struct timeval tv = {0, 500000};   /* stopping is looked at twice a second */
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_ZERO(&es);
    if (MHD_get_fdset(d, &rs, &ws, &es, &max) != MHD_YES) {
      fprintf(stderr, "lupine: ui: the HTTP server failed\n");
      break;
    }
    if (MHD_get_timeout(d, &ms) == MHD_YES && ms < 500) tv.tv_usec = (suseconds_t)ms * 1000;
    if (select((int)max + 1, &rs, &ws, &es, &tv) < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "lupine: ui: select: %s\n", strerror(errno));
      break;
    }
    MHD_run_from_select(d, &rs, &ws, &es);
  }
  if (stopping) status = 0;
  MHD_stop_daemon(d);   /* closes the listening socket too */
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  if (status == 0) printf("lupine ui: stopped\n");
done:
  fflush(stdout);
  lupine_close(rt);
  return status;
}

/* The lupine-ui program, which `lupine ui` runs: libmicrohttpd (and what
** it pulls in) is linked here only, so that `lupine run` does not pay for
** loading it. */
int main(int argc, char **argv) {
  return ui_main(argc - 1, argv + 1);
}
