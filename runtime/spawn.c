/* SPDX-License-Identifier: MIT */
/*
** spawn.c: the process that forks a run's workers.
**
** A fork copies the page tables of the process that calls it and makes
** every page of it copy-on-write: the coordinator, which writes its heap
** and sqlite's page cache between any two steps, then takes a fault for
** each page it touches after every fork. So the coordinator forks once,
** when its run first needs a worker, and this copy of it (which writes
** nothing) forks each worker: every worker still starts from the loaded
** script, in a process of its own. The spawner keeps one worker forked
** ahead, waiting for its start frame, so a fork is not on the way from
** one step to the next. The protocol is fixed-size messages on a
** SOCK_SEQPACKET socket: the coordinator asks for a worker; the spawner
** answers with its pid and the coordinator's ends of its three channels
** (SCM_RIGHTS), and later with its exit status (the workers are its
** children, not the coordinator's).
*/

#ifndef _GNU_SOURCE   /* the ThreadSanitizer build defines it for every file */
#define _GNU_SOURCE   /* signalfd, MSG_CMSG_CLOEXEC: the spawner is Linux's */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
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

/* Send a message with descriptors (nfds of them, 0 or 3). */
static int send_with(int sock, const message *m, const int *fds, int nfds) {
  char control[CMSG_SPACE(3 * sizeof(int))];
  struct iovec iov;
  struct msghdr msg;
  ssize_t n;
  memset(&msg, 0, sizeof msg);
  memset(control, 0, sizeof control);
  iov.iov_base = (void *)m, iov.iov_len = sizeof *m;
  msg.msg_iov = &iov, msg.msg_iovlen = 1;
  if (nfds > 0) {
    struct cmsghdr *c;
    msg.msg_control = control, msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
  }
  while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
  return n == (ssize_t)sizeof *m ? 0 : -1;
}

/* A new worker: its channels (the coordinator's ends go to ours[]), then
** the fork. The worker's pid, or -errno. */
static int fork_worker(lp_spawn_fn fn, void *ud, int sock, int sfd, int ours[3]) {
  int fc[2], tc[2], out[2], e;
  pid_t pid, spawner;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fc) != 0) return -errno;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tc) != 0) {
    e = errno;
    close(fc[0]), close(fc[1]);
    return -e;
  }
  if (pipe2(out, O_CLOEXEC) != 0) {
    e = errno;
    close(fc[0]), close(fc[1]), close(tc[0]), close(tc[1]);
    return -e;
  }
  spawner = getpid();
  if ((pid = fork()) == 0) {
    int theirs[3] = {fc[1], tc[0], out[1]};
    sigset_t none;
    /* a worker forked ahead ends with the spawner: the coordinator's ends
    ** of its channels may live on in other processes (a host's other
    ** threads fork too), so it would never see them close */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != spawner) _exit(0);
    close(sock), close(sfd), close(fc[0]), close(tc[1]), close(out[0]);
    /* no signal blocked, whatever the host blocks: a step and the
    ** programs it runs start as from a shell */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    /* its own process group: ending a worker ends what it started too */
    setpgid(0, 0);
    fn(ud, theirs);
    _exit(70);
  }
  e = errno;
  close(fc[1]), close(tc[0]), close(out[1]);
  if (pid < 0) {
    close(fc[0]), close(tc[1]), close(out[0]);
    return -e;
  }
  setpgid(pid, pid);   /* before the coordinator can signal the group */
  ours[0] = fc[0], ours[1] = tc[1], ours[2] = out[0];
  return (int)pid;
}

/*
** The signal settings of the spawner, whatever the host's are: it learns
** of its workers' ends by SIGCHLD, which a host may ignore (a daemon that
** does not want zombies; SA_NOCLDWAIT alike), and then the kernel reaps
** the workers without a signal and the coordinator would wait forever.
** The host's handlers are not for this process nor its workers (they
** would run the host's code in a copy of it), so every handled signal
** goes back to its default, as exec would do; ignored ones stay ignored
** (a host run under nohup keeps SIGHUP away from the steps too), but for
** SIGCHLD. Blocked: SIGCHLD only, read through a signalfd.
*/
static void own_signals(sigset_t *chld) {
  struct sigaction sa, dfl;
  int sig;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (sig = 1; sig < NSIG; sig++)
    if (sig == SIGCHLD ||
        (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN))
      sigaction(sig, &dfl, NULL);
  /* Ctrl-C and SIGTERM are the coordinator's to answer; it ends us by
  ** closing the socket (or by dying, which closes it too) */
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  sigemptyset(chld);
  sigaddset(chld, SIGCHLD);
  sigprocmask(SIG_SETMASK, chld, NULL);
}

/* The spawner's loop: fork a worker per request, report each one's end.
** Never returns. */
static void serve(int sock, lp_spawn_fn fn, void *ud) {
  sigset_t chld;
  struct pollfd p[2];
  int sfd;
  own_signals(&chld);
  if ((sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) _exit(71);
  p[0].fd = sock, p[0].events = POLLIN;
  p[1].fd = sfd, p[1].events = POLLIN;
  for (;;) {
    int ours[3], status, started;
    char request;
    ssize_t n;
    pid_t pid;
    message m;
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(71);
    }
    if (p[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {}
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        memset(&m, 0, sizeof m);
        m.kind = 'X', m.pid = (int)pid, m.status = status;
        if (send_with(sock, &m, NULL, 0) != 0) _exit(0);
      }
    }
    if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    while ((n = recv(sock, &request, 1, 0)) < 0 && errno == EINTR) {}
    if (n <= 0) _exit(0);   /* the run is over */
    started = fork_worker(fn, ud, sock, sfd, ours);
    memset(&m, 0, sizeof m);
    m.kind = 'S', m.pid = started;
    if (send_with(sock, &m, ours, started > 0 ? 3 : 0) != 0) _exit(0);
    if (started > 0) close(ours[0]), close(ours[1]), close(ours[2]);
  }
}

/* Ask for one more worker. */
static int request(lp_spawner *sp) {
  char byte = 'W';
  ssize_t n;
  while ((n = send(sp->sock, &byte, 1, MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
  if (n != 1) return -1;
  sp->requested = 1;
  return 0;
}

int lp_spawner_start(lp_spawner *sp, lp_spawn_fn fn, void *ud, char *err, size_t errsz) {
  int sv[2];
  pid_t pid;
  memset(sp, 0, sizeof *sp);
  sp->sock = -1;
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
  request(sp);   /* the first worker, forked while the coordinator goes on */
  return LUPINE_OK;
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

/* Wait for the next message from the spawner and keep what it says: an
** exit, or the worker asked for (with its descriptors). 0, or -1 if the
** spawner is gone. */
static int pump(lp_spawner *sp) {
  char control[CMSG_SPACE(3 * sizeof(int))];
  struct iovec iov;
  struct msghdr msg;
  struct cmsghdr *c;
  message m;
  ssize_t n;
  memset(&msg, 0, sizeof msg);
  iov.iov_base = &m, iov.iov_len = sizeof m;
  msg.msg_iov = &iov, msg.msg_iovlen = 1;
  msg.msg_control = control, msg.msg_controllen = sizeof control;
  while ((n = recvmsg(sp->sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
  if (n != (ssize_t)sizeof m) return -1;
  if (m.kind == 'X') {
    keep_exit(sp, &m);
    return 0;
  }
  sp->requested = 0;
  sp->ready = 1;
  sp->ready_pid = m.pid;
  c = CMSG_FIRSTHDR(&msg);
  if (m.pid > 0) {
    if (c == NULL || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(3 * sizeof(int)))
      return -1;
    memcpy(sp->ready_fds, CMSG_DATA(c), 3 * sizeof(int));
  }
  return 0;
}

int lp_spawner_spawn(lp_spawner *sp, int fds[3], pid_t *pid) {
  int started;
  if (!sp->ready && !sp->requested && request(sp) != 0) return EPIPE;
  while (!sp->ready)
    if (pump(sp) != 0) return EPIPE;
  started = sp->ready_pid;
  sp->ready = 0;
  request(sp);   /* the next one, forked while this one runs */
  if (started < 0) return -started;
  memcpy(fds, sp->ready_fds, sizeof sp->ready_fds);
  *pid = (pid_t)started;
  return 0;
}

/* How long the coordinator waits for an exit report before it looks
** whether the worker is still there. */
#define EXIT_CHECK_MS 1000

int lp_spawner_wait(lp_spawner *sp, pid_t pid, int *status) {
  struct pollfd p;
  int i, n;
  for (;;) {
    for (i = 0; i < sp->nexits; i++) {
      if (sp->exits[i].pid == (int)pid) {
        *status = sp->exits[i].status;
        sp->exits[i] = sp->exits[--sp->nexits];
        return 0;
      }
    }
    /* the spawner reports every end it reaps; one reaped without it (by
    ** the kernel, were SIGCHLD ignored there after all) is never
    ** reported, and a worker that is gone is not waited for */
    p.fd = sp->sock, p.events = POLLIN, p.revents = 0;
    if ((n = poll(&p, 1, EXIT_CHECK_MS)) == 0 && kill(pid, 0) != 0) return -1;
    if (n > 0 && pump(sp) != 0) return -1;
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
  /* the worker forked ahead sees its channels close, and ends */
  if (sp->ready && sp->ready_pid > 0)
    close(sp->ready_fds[0]), close(sp->ready_fds[1]), close(sp->ready_fds[2]);
  close(sp->sock);
  while (waitpid(sp->pid, NULL, 0) < 0 && errno == EINTR) {}
  memset(sp, 0, sizeof *sp);
  sp->sock = -1;
}
