/*
** spawn.c: the process that forks a run's workers.
**
** A fork copies the page tables of the process that calls it and makes
** every page of it copy-on-write: the coordinator, which writes its heap
** and sqlite's page cache between any two steps, then takes a fault for
** each page it touches after every fork. So the coordinator forks once,
** when its run first needs a worker, and this copy of it (which writes
** nothing) forks each worker: every worker still starts from the loaded
** script, in a process of its own. The protocol is fixed-size messages on
** a SOCK_SEQPACKET socket: a request carries the worker's three
** descriptors (SCM_RIGHTS); the spawner answers with the new pid, and
** later with its exit status (the workers are its children, not ours).
*/

#ifndef _GNU_SOURCE   /* the ThreadSanitizer build defines it for every file */
#define _GNU_SOURCE   /* signalfd, MSG_CMSG_CLOEXEC: the spawner is Linux's */
#endif
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lupine_int.h"

typedef struct message {
  int kind;       /* 'S': started (pid, or -errno); 'X': exited (pid, status) */
  int pid;
  int status;
} message;

static int send_message(int sock, int kind, int pid, int status) {
  message m;
  ssize_t n;
  memset(&m, 0, sizeof m);
  m.kind = kind, m.pid = pid, m.status = status;
  while ((n = send(sock, &m, sizeof m, MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
  return n == (ssize_t)sizeof m ? 0 : -1;
}

/* Receive one request; its descriptors go to fds. 0 at end of file. */
static int receive_request(int sock, int fds[3]) {
  char byte, control[CMSG_SPACE(3 * sizeof(int))];
  struct iovec iov = {&byte, 1};
  struct msghdr msg;
  struct cmsghdr *c;
  ssize_t n;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov, msg.msg_iovlen = 1;
  msg.msg_control = control, msg.msg_controllen = sizeof control;
  while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
  if (n <= 0) return 0;
  c = CMSG_FIRSTHDR(&msg);
  if (c == NULL || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(3 * sizeof(int)))
    return -1;
  memcpy(fds, CMSG_DATA(c), 3 * sizeof(int));
  return 1;
}

/* The spawner's loop: fork a worker per request, report each one's end.
** Never returns. */
static void serve(int sock, lp_spawn_fn fn, void *ud) {
  sigset_t chld, old;
  struct pollfd p[2];
  int sfd;
  /* Ctrl-C and SIGTERM are the coordinator's to answer; it ends us by
  ** closing the socket (or by dying, which closes it too) */
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  if ((sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) _exit(71);
  p[0].fd = sock, p[0].events = POLLIN;
  p[1].fd = sfd, p[1].events = POLLIN;
  for (;;) {
    int fds[3], got, status, started;
    pid_t pid;
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(71);
    }
    if (p[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {}
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        if (send_message(sock, 'X', (int)pid, status) != 0) _exit(0);
    }
    if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    if ((got = receive_request(sock, fds)) == 0) _exit(0);   /* the run is over */
    if (got < 0) _exit(72);
    pid = fork();
    started = pid > 0 ? (int)pid : -errno;
    if (pid == 0) {
      close(sock);
      close(sfd);
      sigprocmask(SIG_SETMASK, &old, NULL);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      /* its own process group: ending a worker ends what it started too */
      setpgid(0, 0);
      fn(ud, fds);
      _exit(70);
    }
    if (pid > 0) setpgid(pid, pid);   /* before the coordinator can signal the group */
    close(fds[0]), close(fds[1]), close(fds[2]);
    if (send_message(sock, 'S', started, 0) != 0) _exit(0);
  }
}

int lp_spawner_start(lp_spawner *sp, lp_spawn_fn fn, void *ud, char *err, size_t errsz) {
  int sv[2];
  pid_t pid;
  sp->pid = 0, sp->sock = -1, sp->nexits = sp->nforgotten = 0;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    lp_errf(err, errsz, "cannot start the worker spawner (%s)", strerror(errno));
    return LUPINE_IO;
  }
  if ((pid = fork()) < 0) {
    lp_errf(err, errsz, "cannot start the worker spawner (%s)", strerror(errno));
    close(sv[0]), close(sv[1]);
    return LUPINE_IO;
  }
  if (pid == 0) {
    close(sv[0]);
    serve(sv[1], fn, ud);
  }
  close(sv[1]);
  sp->pid = pid, sp->sock = sv[0];
  return LUPINE_OK;
}

/* Wait for the next message from the spawner; the exits that are not the
** one being waited for are kept for lp_spawner_wait. */
static int next_message(lp_spawner *sp, message *m) {
  ssize_t n;
  while ((n = recv(sp->sock, m, sizeof *m, 0)) < 0 && errno == EINTR) {}
  if (n != (ssize_t)sizeof *m) return -1;
  return 0;
}

static void keep_exit(lp_spawner *sp, const message *m) {
  int i;
  for (i = 0; i < sp->nforgotten; i++) {
    if (sp->forgotten[i] == m->pid) {
      sp->forgotten[i] = sp->forgotten[--sp->nforgotten];
      return;
    }
  }
  if (sp->nexits < LP_SPAWNER_EXITS) {
    sp->exits[sp->nexits].pid = m->pid;
    sp->exits[sp->nexits].status = m->status;
    sp->nexits++;
  }
}

int lp_spawner_spawn(lp_spawner *sp, const int fds[3], pid_t *pid) {
  char byte = 0, control[CMSG_SPACE(3 * sizeof(int))];
  struct iovec iov = {&byte, 1};
  struct msghdr msg;
  struct cmsghdr *c;
  message m;
  ssize_t n;
  memset(&msg, 0, sizeof msg);
  memset(control, 0, sizeof control);
  msg.msg_iov = &iov, msg.msg_iovlen = 1;
  msg.msg_control = control, msg.msg_controllen = sizeof control;
  c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(3 * sizeof(int));
  memcpy(CMSG_DATA(c), fds, 3 * sizeof(int));
  while ((n = sendmsg(sp->sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
  if (n != 1) return errno != 0 ? errno : EPIPE;
  for (;;) {
    if (next_message(sp, &m) != 0) return EPIPE;
    if (m.kind == 'X') keep_exit(sp, &m);
    else break;
  }
  if (m.pid < 0) return -m.pid;
  *pid = (pid_t)m.pid;
  return 0;
}

int lp_spawner_wait(lp_spawner *sp, pid_t pid, int *status) {
  message m;
  int i;
  for (i = 0; i < sp->nexits; i++) {
    if (sp->exits[i].pid == (int)pid) {
      *status = sp->exits[i].status;
      sp->exits[i] = sp->exits[--sp->nexits];
      return 0;
    }
  }
  for (;;) {
    if (next_message(sp, &m) != 0) return -1;
    if (m.kind != 'X') continue;
    if (m.pid == (int)pid) {
      *status = m.status;
      return 0;
    }
    keep_exit(sp, &m);
  }
}

void lp_spawner_forget(lp_spawner *sp, pid_t pid) {
  int i;
  for (i = 0; i < sp->nexits; i++) {
    if (sp->exits[i].pid == (int)pid) {
      sp->exits[i] = sp->exits[--sp->nexits];
      return;
    }
  }
  if (sp->nforgotten < LP_SPAWNER_EXITS) sp->forgotten[sp->nforgotten++] = (int)pid;
}

void lp_spawner_stop(lp_spawner *sp) {
  if (sp == NULL || sp->pid <= 0) return;
  /* not just the end of file: a spawner forked later (a run after an
  ** error, before this one was collected) holds a copy of our end */
  kill(sp->pid, SIGKILL);
  close(sp->sock);
  while (waitpid(sp->pid, NULL, 0) < 0 && errno == EINTR) {}
  sp->pid = 0, sp->sock = -1, sp->nexits = sp->nforgotten = 0;
}
