/* SPDX-License-Identifier: MIT */
/*
** repl.c: `lupine repl [SCRIPT [ARGS...]]`, a Lua 5.4 read-eval-print loop
** on a Lupine runtime, with `lupine` and `client` (a lupine.Client()) as
** globals. It reads and evaluates lines as lua.c's doREPL does: a line is
** first tried as `return <line>;`, a statement that ends early goes on
** with a ">> " prompt, returned values are printed (tables through
** lupine.pretty), errors with a traceback; the loop goes on after them.
** The first value a statement returns is kept in the global `_`; help()
** tells what the session has, help(x) what x is (lupine.help).
**
** On a terminal it edits lines with libedit (BSD-licensed; GNU readline is
** GPL, which would bind everyone who links the library or the CLI), keeps
** history in <catalog>/repl_history and completes names with Tab. Ctrl-C
** stops the statement running (lupine_interrupt) or clears the line being
** typed; Ctrl-D at the prompt ends the session. From a pipe it reads lines
** without prompts, editing or history, and evaluates them the same way.
**
** Uses only the public header: the REPL is what a host program could build.
*/
#define _POSIX_C_SOURCE 200809L   /* sigaction, getline, isatty */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <editline/readline.h>
#include "lauxlib.h"
#include "lupine.h"

#define EXIT_USAGE 2
#define HISTORY_LINES 1000
#define RETURN "return "   /* what "=" at the start of a statement stands for */

/* Signal handlers and libedit's callbacks take no user data: the session
** they act on is in these (the REPL's only globals). */
static lupine *session;                     /* the runtime being evaluated in */
static lua_State *session_L;                /* its Lua state */
static int session_tty;                     /* stdin is a terminal */
static volatile sig_atomic_t got_sigint;    /* Ctrl-C since it was last cleared */
static volatile sig_atomic_t in_run;        /* a pipeline run is in progress */
static volatile sig_atomic_t resized;       /* the terminal changed size */

/* Registry keys: the function that formats results (lupine.pretty.repl),
** and the functions of lupine.help that help(x) and completion call. */
static const char pretty_key = 0, help_text_key = 0, help_fields_key = 0;

static const char session_help[] =
  "Lua 5.4 with Lupine. Ready in this session:\n"
  "  lupine    the module: steps, pipelines, artifacts (help(lupine))\n"
  "  client    lupine.Client() on this catalog: runs, versions, stacks (help(client))\n"
  "  help(x)   what x is: its fields and methods, and what each is\n"
  "  _         the last result: the first value a statement returned, if not nil\n"
  "To start: client:list_pipeline_runs(), client:list_artifact_versions(),\n"
  "client:get_artifact_version(\"NAME\"), then help(_) for what it has.\n"
  "Tab completes globals, fields (x.), methods (x:) and artifact names in quotes.\n"
  "=x prints x. Ctrl-C stops a statement or clears the line; Ctrl-D exits.";

/* Stop the Lua code running, as lua.c does on Ctrl-C. */
static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

/*
** Ctrl-C while a statement runs. A pipeline run in progress is stopped
** with lupine_interrupt (its workers end, it is marked stopped). Other Lua
** code is stopped with a hook of our own, as lua.c does.
*/
static void on_sigint_eval(int sig) {
  (void)sig;
  got_sigint = 1;
  if (in_run) lupine_interrupt(session);
  else lua_sethook(session_L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  if (session_tty) (void)!write(STDOUT_FILENO, "\n", 1);   /* after the "^C" the terminal shows */
}

static void on_sigint_prompt(int sig) {
  (void)sig;
  got_sigint = 1;
}

/* libedit's own signal handling is off (it would pass Ctrl-C on to the
** whole process group), so a new size is taken at the next prompt. */
static void on_sigwinch(int sig) {
  (void)sig;
  resized = 1;
}

/* Install handler for SIGINT, without SA_RESTART: a read in progress fails
** with EINTR, so the prompt sees Ctrl-C at once. */
static void catch_sigint(void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}

/* A run's events tell when one is in progress (Ctrl-C then stops it). */
static void on_event(void *ud, const lupine_event *ev) {
  (void)ud;
  if (ev->type == LUPINE_EVENT_RUN_START) in_run = 1;
  else if (ev->type == LUPINE_EVENT_RUN_END) in_run = 0;
}

/* Run summaries, settled steps and what steps print go to stdout;
** warnings and errors to stderr. */
static void log_line(void *ud, int level, const char *msg) {
  (void)ud;
  if (level <= LUPINE_LOG_WARN) fprintf(stderr, "lupine: %s\n", msg);
  else if (level == LUPINE_LOG_INFO || level == LUPINE_LOG_OUTPUT) {
    printf("%s\n", msg);
    fflush(stdout);
  }
}

/* ---- reading lines ---- */

typedef struct repl {
  lupine *rt;
  lua_State *L;
  int tty;              /* stdin is a terminal: prompts, editing, history */
  int eq;               /* the statement was typed "=x": read as "return x" */
  char *history;        /* the history file (malloc'd), or NULL */
  char *buf;            /* getline's buffer, when stdin is not a terminal */
  size_t bufsz;
} repl;

/* The prompt: _PROMPT or _PROMPT2 if they are strings, as lua.c allows. */
static const char *get_prompt(lua_State *L, int firstline) {
  const char *p;
  lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2");
  p = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1);   /* the string stays alive in the global */
  return p != NULL ? p : firstline ? "> " : ">> ";
}

/*
** Push the next line, without its newline. Returns 0 at end of input, 2
** when Ctrl-C was pressed at the prompt (nothing pushed: the caller drops
** what was typed), else 1.
*/
static int pushline(repl *r, int firstline) {
  if (r->tty) {
    char *line;
    const char *prompt = get_prompt(r->L, firstline);
    got_sigint = 0;
    catch_sigint(on_sigint_prompt);
    if (resized) {
      resized = 0;
      rl_resize_terminal();
    }
    line = readline(prompt);
    if (got_sigint) {
      free(line);
      if (line == NULL) fputc('\n', stdout);
      fflush(stdout);
      return 2;
    }
    if (line == NULL) return 0;
    lua_pushstring(r->L, line);
    free(line);
  } else {
    ssize_t n;
    signal(SIGINT, SIG_DFL);
    if ((n = getline(&r->buf, &r->bufsz, stdin)) < 0) return 0;
    if (n > 0 && r->buf[n - 1] == '\n') n--;
    lua_pushlstring(r->L, r->buf, (size_t)n);
  }
  if (firstline) r->eq = lua_tostring(r->L, -1)[0] == '=';
  if (firstline && r->eq) {   /* "=x" means "return x" (5.1) */
    lua_pushfstring(r->L, "%s%s", RETURN, lua_tostring(r->L, -1) + 1);
    lua_remove(r->L, -2);
  }
  return 1;
}

/* Keep the statement (as typed: "=x", not "return x") in the history and
** save it, on a terminal. */
static void save_line(repl *r, const char *line) {
  if (!r->tty || line[0] == '\0') return;
  if (r->eq) {
    lua_pushfstring(r->L, "=%s", line + sizeof RETURN - 1);
    add_history(lua_tostring(r->L, -1));
    lua_pop(r->L, 1);
  } else {
    add_history(line);
  }
  if (r->history != NULL) write_history(r->history);
}

/* Try the line on top of the stack as `return <line>;`. On success the
** chunk replaces it; else the stack is as it was. */
static int addreturn(repl *r) {
  lua_State *L = r->L;
  const char *line = lua_tostring(L, -1);
  const char *retline = lua_pushfstring(L, "return %s;", line);
  int status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
  if (status == LUA_OK) {
    lua_remove(L, -2);   /* the return line */
    save_line(r, line);
    lua_remove(L, -2);   /* the line */
  } else {
    lua_pop(L, 2);       /* the error and the return line */
  }
  return status;
}

/* A syntax error that ends at <eof>: the statement goes on in the next line. */
static int incomplete(lua_State *L, int status) {
  static const char mark[] = "<eof>";
  size_t len, n = sizeof mark - 1;
  const char *msg;
  if (status != LUA_ERRSYNTAX) return 0;
  msg = lua_tolstring(L, -1, &len);
  if (len < n || strcmp(msg + len - n, mark) != 0) return 0;
  lua_pop(L, 1);
  return 1;
}

/* Compile the text on top of the stack as a statement, reading more lines
** while it is incomplete. Leaves the chunk or the error message in its
** place (at the end of input, the error of the unfinished statement).
** Returns the load status, or -2 for Ctrl-C (the text is dropped). */
static int multiline(repl *r) {
  lua_State *L = r->L;
  for (;;) {
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    int status = luaL_loadbuffer(L, text, len, "=stdin"), more;
    if (incomplete(L, status)) {
      if ((more = pushline(r, 0)) == 2) {
        lua_pop(L, 1);
        return -2;
      }
      if (more == 1) {
        lua_pushliteral(L, "\n");
        lua_insert(L, -2);
        lua_concat(L, 3);   /* text .. "\n" .. next line */
        continue;
      }
      status = luaL_loadbuffer(L, text, len, "=stdin");   /* end of input: the message again */
    }
    save_line(r, text);
    lua_remove(L, -2);   /* the text, under the chunk or the message */
    return status;
  }
}

/* Read one statement and compile it: pushes the chunk (LUA_OK) or the
** error message. Returns -1 at end of input, -2 on Ctrl-C (nothing
** pushed). */
static int loadline(repl *r) {
  int status = pushline(r, 1);
  if (status == 0) return -1;
  if (status == 2) return -2;
  if ((status = addreturn(r)) != LUA_OK) status = multiline(r);
  return status;
}

/* ---- evaluating ---- */

/* The message handler of lua.c: a traceback after a string message; an
** error object is shown as its __tostring gives it. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Call the chunk on top of the stack with Ctrl-C wired to
** lupine_interrupt; leaves its results (or the error message). */
static int docall(repl *r) {
  lua_State *L = r->L;
  int base = lua_gettop(L), status;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  got_sigint = 0;
  catch_sigint(on_sigint_eval);
  status = lua_pcall(L, 0, LUA_MULTRET, base);
  catch_sigint(on_sigint_prompt);
  in_run = 0;   /* a run that raised before its summary is over too */
  /* a Ctrl-C that came as the call ended leaves the stop hook set */
  if (got_sigint) lua_sethook(L, NULL, 0, 0);
  lua_remove(L, base);
  return status;
}

/* Print the values from index base up, as lupine.pretty.repl formats them. */
static void print_results(lua_State *L, int base) {
  int n = lua_gettop(L) - base + 1;
  if (n <= 0) return;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &pretty_key);
  lua_insert(L, base);
  if (lua_pcall(L, n, 1, 0) != LUA_OK) {
    fprintf(stderr, "error calling 'print' (%s)\n", lua_tostring(L, -1));
  } else {
    fputs(lua_tostring(L, -1), stdout);
    fputc('\n', stdout);
  }
  fflush(stdout);
  lua_settop(L, base - 1);
}

static void report(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "%s\n", msg != NULL ? msg : "(error object is not a string)");
  fflush(stderr);
  lua_pop(L, 1);
}

/* The loop, in a protected call as lua.c's pmain: the stack work between
** evaluations may raise (out of memory) and must not panic. */
static int doREPL(lua_State *L) {
  repl *r = lua_touserdata(L, 1);
  int status, base;
  lua_settop(L, 0);
  base = lua_gettop(L) + 1;
  while ((status = loadline(r)) != -1) {
    if (status == -2) continue;
    if (status == LUA_OK) status = docall(r);
    if (status == LUA_OK) {
      if (lua_gettop(L) >= base && !lua_isnil(L, base)) {   /* `_`: the last result */
        lua_pushvalue(L, base);
        lua_setglobal(L, "_");
      }
      print_results(L, base);
    } else {
      report(L);
    }
    lua_settop(L, base - 1);
  }
  if (r->tty) fputc('\n', stdout);
  fflush(stdout);
  return 0;
}

/* ---- completion ---- */

static const char *const keywords[] = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
  "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
  NULL
};

/* Functions whose first argument is an artifact name: inside their string
** argument, Tab completes artifact names. */
static const char *const name_takers[] = {
  "get_artifact_version", "update_artifact_version", "update_artifact",
  "delete_artifact_version", "delete_artifact", "get_lineage", NULL
};

/* The matches being handed to libedit, one at a time. */
static struct {
  char **list;
  size_t n, cap, next;
} matches;

static void clear_matches(void) {
  size_t i;
  for (i = 0; i < matches.n; i++) free(matches.list[i]);
  matches.n = matches.next = 0;
}

static void add_match(const char *s) {
  char *copy;
  if (matches.n == matches.cap) {
    size_t cap = matches.cap ? matches.cap * 2 : 32;
    char **list = realloc(matches.list, cap * sizeof *list);
    if (list == NULL) return;
    matches.list = list;
    matches.cap = cap;
  }
  if ((copy = strdup(s)) != NULL) matches.list[matches.n++] = copy;
}

static int is_ident_char(int c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Whether the value at idx is one of Lupine's objects: its metatable is
** named "lupine.*". Reading their fields runs at most a catalog query
** (fields computed when first read), so completion may walk through them;
** another value's __index function could do anything, and is not called. */
static int is_lupine_object(lua_State *L, int idx) {
  int yes = 0;
  if (lua_getmetatable(L, idx)) {
    lua_pushliteral(L, "__name");
    if (lua_rawget(L, -2) == LUA_TSTRING) yes = strncmp(lua_tostring(L, -1), "lupine.", 7) == 0;
    lua_pop(L, 2);
  }
  return yes;
}

/*
** In a protected call: stack 1 = the prefix path ("a.b", "" for globals),
** 2 = the partial name, 3 = the separator ("." or ":" or ""). Pushes an
** array of the matching names, each followed by the type of its value.
** The path is walked through Lupine's objects as indexing them does, and
** through other values' __index tables only. The names are what
** lupine.help.fields gives: a table's own keys, those of its __index
** chain, and for Lupine's objects every field, also those computed when
** first read (av.tags, run.steps) and not there yet.
*/
static int complete_fields(lua_State *L) {
  const char *path = lua_tostring(L, 1), *partial = lua_tostring(L, 2);
  const char *sep = lua_tostring(L, 3);
  size_t plen = strlen(partial);
  int methods = sep[0] == ':', out, i, hops;
  lua_newtable(L);
  out = lua_gettop(L);
  lua_pushglobaltable(L);
  while (path[0] != '\0') {   /* walk a.b.c */
    const char *dot = strchr(path, '.');
    size_t len = dot ? (size_t)(dot - path) : strlen(path);
    lua_pushlstring(L, path, len);
    if (is_lupine_object(L, -2)) {
      lua_gettable(L, -2);      /* may raise (run.steps.x.output of several): no matches */
    } else {
      for (hops = 0; hops < 8; hops++) {
        if (lua_type(L, -2) == LUA_TTABLE) {
          lua_pushvalue(L, -1);
          if (lua_rawget(L, -3) != LUA_TNIL) break;
          lua_pop(L, 1);
        }
        if (!lua_getmetatable(L, -2)) { lua_pushnil(L); break; }
        if (lua_getfield(L, -1, "__index") != LUA_TTABLE) { lua_pop(L, 2); lua_pushnil(L); break; }
        lua_remove(L, -2);        /* the metatable */
        lua_replace(L, -3);       /* follow __index in place of the table */
      }
      if (hops == 8) lua_pushnil(L);
      lua_remove(L, -2);          /* the name */
    }
    lua_replace(L, -2);           /* the value in place of its table */
    if (lua_isnil(L, -1)) return 1;
    path = dot ? dot + 1 : "";
  }
  /* stack: out, value */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &help_fields_key);
  lua_insert(L, -2);
  lua_call(L, 1, 1);
  lua_pushnil(L);
  while (lua_next(L, -2)) {       /* stack: out, fields, name, kind */
    size_t klen, j;
    const char *k = lua_tolstring(L, -2, &klen), *kind = lua_tostring(L, -1);
    if (klen >= plen && strncmp(k, partial, plen) == 0 && (k[0] != '_' || partial[0] == '_') &&
        (!methods || strcmp(kind, "function") == 0) && !(k[0] >= '0' && k[0] <= '9')) {
      for (j = 0; j < klen && is_ident_char((unsigned char)k[j]); j++) {}
      if (j == klen) {
        lua_pushvalue(L, -2);
        lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
      }
    }
    lua_pop(L, 1);
  }
  lua_settop(L, out);
  if (sep[0] == '\0') {
    for (i = 0; keywords[i] != NULL; i++) {
      if (strncmp(keywords[i], partial, plen) != 0) continue;
      lua_pushstring(L, keywords[i]);
      lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
      lua_pushliteral(L, "keyword");
      lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
    }
  }
  return 1;
}

/* In a protected call: the artifact names starting with string 1, as an
** array of name, "string" pairs. */
static int complete_artifacts(lua_State *L) {
  size_t plen;
  const char *partial = luaL_checklstring(L, 1, &plen);
  lua_Integer i, n;
  int out;
  lua_newtable(L);
  out = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lupine.core");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "query");
  lua_pushliteral(L, "artifact_names");
  lua_call(L, 1, 1);
  n = (lua_Integer)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    const char *name;
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "name");
    name = lua_tostring(L, -1);
    if (name != NULL && strncmp(name, partial, plen) == 0) {
      lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
      lua_pushliteral(L, "string");
      lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
    } else {
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, out);
  return 1;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run fn (a complete_* function) on the strings args; copy the names it
** returns, with prefix before each, into matches. Returns the type of the
** only match, or NULL. */
static const char *collect(lua_CFunction fn, const char *prefix, int nargs, const char **args) {
  static char only_type[16];
  lua_State *L = session_L;
  int top = lua_gettop(L), i;
  lua_Integer j, n;
  size_t k, w;
  only_type[0] = '\0';
  if (!lua_checkstack(L, nargs + 8)) return NULL;
  lua_pushcfunction(L, fn);
  for (i = 0; i < nargs; i++) lua_pushstring(L, args[i]);
  if (lua_pcall(L, nargs, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TTABLE) {
    n = (lua_Integer)lua_rawlen(L, -1);
    for (j = 1; j + 1 <= n; j += 2) {
      lua_rawgeti(L, -1, j);
      lua_pushstring(L, prefix);
      lua_insert(L, -2);
      lua_concat(L, 2);
      add_match(lua_tostring(L, -1));
      lua_pop(L, 1);
      if (n == 2) {
        lua_rawgeti(L, -1, j + 1);
        snprintf(only_type, sizeof only_type, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
      }
    }
  }
  lua_settop(L, top);
  /* sorted, each once (a name can be in a table and its __index) */
  if (matches.n > 1) qsort(matches.list, matches.n, sizeof *matches.list, cmp_str);
  for (k = w = 0; k < matches.n; k++) {
    if (w > 0 && strcmp(matches.list[w - 1], matches.list[k]) == 0) free(matches.list[k]);
    else matches.list[w++] = matches.list[k];
  }
  matches.n = w;
  return matches.n == 1 && only_type[0] != '\0' ? only_type : NULL;
}

static char *next_match(const char *text, int state) {
  (void)text;
  (void)state;
  if (matches.next >= matches.n) return NULL;
  return strdup(matches.list[matches.next++]);
}

/* If the text before position start is `<name_taker>(` and a quote, that
** quote character; else 0. */
static int in_name_string(const char *line, int start) {
  int i = start - 1, end, q;
  size_t k;
  if (i < 0 || (line[i] != '"' && line[i] != '\'')) return 0;
  q = line[i--];
  while (i >= 0 && line[i] == ' ') i--;
  if (i < 0 || line[i] != '(') return 0;
  i--;
  while (i >= 0 && line[i] == ' ') i--;
  end = i + 1;
  while (i >= 0 && is_ident_char((unsigned char)line[i])) i--;
  for (k = 0; name_takers[k] != NULL; k++) {
    if ((int)strlen(name_takers[k]) == end - i - 1 &&
        strncmp(line + i + 1, name_takers[k], (size_t)(end - i - 1)) == 0)
      return q;
  }
  return 0;
}

/*
** libedit's completion hook. text is the word before the cursor (words
** break at everything but identifier characters, '.' and ':'), from start
** in rl_line_buffer. Completes artifact names in the string argument of
** get_artifact_version and its like; else globals and keywords, the
** fields after `a.b.`, and the methods after `a:`.
*/
static char **complete(const char *text, int start, int end) {
  const char *type = NULL;
  int q;
  (void)end;
  rl_attempted_completion_over = 1;   /* never fall back to file names */
  rl_completion_append_character = '\0';
  clear_matches();
  if (session_L == NULL) return NULL;
  if ((q = in_name_string(rl_line_buffer, start)) != 0) {
    if (collect(complete_artifacts, "", 1, &text) != NULL) rl_completion_append_character = q;
  } else {
    const char *sep = NULL, *p, *args[3];
    char *path, *prefix;
    size_t n;
    for (p = text; *p; p++)
      if (*p == '.' || *p == ':') sep = p;
    /* a ':' can only be the last separator (a:b.c is not an expression),
    ** and something must come before it */
    if (sep == text || (sep != NULL && strchr(text, ':') != sep && strchr(text, ':') != NULL))
      return NULL;
    n = sep != NULL ? (size_t)(sep - text) : 0;
    if ((path = malloc(2 * n + 3)) == NULL) return NULL;
    memcpy(path, text, n);              /* the path to walk: "a.b", or "" for globals */
    path[n] = '\0';
    prefix = path + n + 1;              /* put back before each name: "a.b." or "a:" */
    memcpy(prefix, text, sep != NULL ? n + 1 : 0);
    prefix[sep != NULL ? n + 1 : 0] = '\0';
    args[0] = path;
    args[1] = sep != NULL ? sep + 1 : text;
    args[2] = sep == NULL ? "" : *sep == ':' ? ":" : ".";
    type = collect(complete_fields, prefix, 3, args);
    free(path);
    if (type != NULL && strcmp(type, "function") == 0) rl_completion_append_character = '(';
  }
  if (matches.n == 0) return NULL;
  return rl_completion_matches(text, next_match);
}

/* ---- the session ---- */

/* The history file: <catalog folder>/repl_history (malloc'd), or NULL. */
static char *history_path(lupine *rt) {
  const char *home = lupine_home(rt);
  char *path;
  size_t n;
  if (home == NULL) {
    fprintf(stderr, "lupine: no history (%s)\n", lupine_errmsg(rt));
    return NULL;
  }
  n = strlen(home) + sizeof "/repl_history";
  if ((path = malloc(n)) != NULL) snprintf(path, n, "%s/repl_history", home);
  return path;
}

static void setup_editing(repl *r) {
  static char breaks[] = " \t\n\"'`@$><=;|&{(,)}[]+-*/%^#~";
  struct sigaction sa;
  int fd;
  rl_readline_name = "lupine";
  rl_catch_signals = 0;        /* Ctrl-C is ours: it clears the line */
  rl_attempted_completion_function = complete;
  rl_basic_word_break_characters = breaks;
  rl_completer_word_break_characters = breaks;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigwinch;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGWINCH, &sa, NULL);
  using_history();
  stifle_history(HISTORY_LINES);
  r->history = history_path(r->rt);
  if (r->history == NULL) return;
  /* created readable by its owner only, as shells keep theirs */
  if ((fd = open(r->history, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) close(fd);
  read_history(r->history);   /* an empty file is fine */
}

/* help() prints what the session has; help(x) what x is. */
static int repl_help(lua_State *L) {
  if (lua_gettop(L) == 0) {
    lua_pushstring(L, session_help);
  } else {
    lua_settop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &help_text_key);
    lua_insert(L, 1);
    lua_call(L, 1, 1);
  }
  fputs(lua_tostring(L, -1), stdout);
  fputc('\n', stdout);
  fflush(stdout);
  return 0;
}

/* Push module name's field k into the registry at key. */
static void keep_function(lua_State *L, const char *module, const char *k, const void *key) {
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  lua_call(L, 1, 1);
  lua_getfield(L, -1, k);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
  lua_pop(L, 1);
}

/* In a protected call: the globals `client` and `help`, the formatter and
** what help and completion call. */
static int prepare(lua_State *L) {
  lua_getglobal(L, "lupine");
  lua_getfield(L, -1, "Client");
  lua_call(L, 0, 1);
  lua_setglobal(L, "client");
  lua_register(L, "help", repl_help);
  keep_function(L, "lupine.pretty", "repl", &pretty_key);
  keep_function(L, "lupine.help", "text", &help_text_key);
  keep_function(L, "lupine.help", "fields", &help_fields_key);
  return 0;
}

/* lupine repl [SCRIPT [ARGS...]], as lupine.cli parsed it (its --help is
** answered there): argv is nothing, or "--", the script and its arguments.
** Returns the exit status. */
static int repl_main(int argc, char **argv) {
  repl r;
  int rc, status = 0;
  memset(&r, 0, sizeof r);
  if (argc > 0 && strcmp(argv[0], "--") == 0) argc--, argv++;
  if (lupine_open(&r.rt, NULL) != LUPINE_OK) {
    fprintf(stderr, "lupine: %s\n", lupine_errmsg(r.rt));
    lupine_close(r.rt);
    return 1;
  }
  r.L = lupine_state(r.rt);
  r.tty = isatty(0);
  lupine_set_log(r.rt, log_line, NULL);
  lupine_set_events(r.rt, on_event, NULL);
  lua_pushcfunction(r.L, prepare);
  if (lua_pcall(r.L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "lupine: %s\n", lua_tostring(r.L, -1));
    lupine_close(r.rt);
    return 1;
  }
  session = r.rt;
  session_L = r.L;
  session_tty = r.tty;
  if (argc > 0) {   /* the script, as `lupine run` would run it; its errors are shown */
    got_sigint = 0;
    catch_sigint(on_sigint_eval);
    rc = lupine_exec_file(r.rt, argv[0], argc - 1, (const char *const *)argv + 1);
    signal(SIGINT, SIG_DFL);
    if (got_sigint) lua_sethook(r.L, NULL, 0, 0);
    fflush(stdout);
    if (rc == LUPINE_IO) {
      fprintf(stderr, "lupine: %s\n", lupine_errmsg(r.rt));
      status = EXIT_USAGE;
      goto done;
    }
    if (rc != LUPINE_OK) fprintf(stderr, "lupine: %s\n", lupine_errmsg(r.rt));
  }
  if (r.tty) {
    const char *catalog;
    setup_editing(&r);
    catalog = lupine_catalog_name(r.rt);
    printf("Lupine %s on %s, catalog %s\n"
           "`lupine` and `client` are ready; help() for more. Ctrl-C stops a statement,"
           " Ctrl-D exits.\n",
           LUPINE_VERSION, LUA_RELEASE, catalog != NULL ? catalog : "(none)");
    fflush(stdout);
  }
  lua_pushcfunction(r.L, doREPL);
  lua_pushlightuserdata(r.L, &r);
  if (lua_pcall(r.L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "lupine: %s\n", lua_tostring(r.L, -1));
    status = 1;
  }
done:
  signal(SIGINT, SIG_DFL);
  session = NULL;
  session_L = NULL;
  clear_matches();
  free(matches.list);
  matches.list = NULL;
  matches.cap = 0;
  free(r.history);
  free(r.buf);
  lupine_close(r.rt);
  return status;
}

/* The lupine-repl program, which `lupine repl` runs: libedit is linked
** here only, so that `lupine run` does not pay for loading it. */
int main(int argc, char **argv) {
  return repl_main(argc - 1, argv + 1);
}
