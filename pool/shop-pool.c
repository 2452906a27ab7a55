/* shop-pool.c: one service's FastCGI worker pool, run as that service's own
 * system user.  lighttpd's mod_fastcgi can spawn and respawn workers, but
 * only as lighttpd's own user, so three services under one lighttpd would
 * share one identity (and product could read auth's signing key).  Instead
 * each pool runs under this small supervisor, and lighttpd connects to the
 * pool's socket:
 *
 *   shop-pool -s SOCKET -n WORKERS [-u USER] [-g GROUP] -- PROGRAM [ARG...]
 *
 * Started as root, it binds SOCKET (a Unix socket, mode 0660, owned by
 * USER:GROUP, where GROUP is lighttpd's: only lighttpd and the pool may
 * connect), then drops to USER (its primary group and supplementary groups)
 * for good, and only then forks the workers: nothing of the pool keeps root.
 * Started by anyone else it runs as that user and -u/-g must be omitted.
 *
 * Each worker gets the listening socket as fd 0 (FastCGI's convention, as
 * lighttpd does) and execs PROGRAM.  A worker that exits or is killed is
 * replaced at once, or after a second when it died within a second of its
 * start (a bad config or a missing binary must not become a fork storm).
 * Because the supervisor keeps the socket open, lighttpd's connects keep
 * succeeding while a worker is being replaced: requests wait in the
 * socket's backlog.  SIGTERM or SIGINT: the workers get SIGTERM (SIGKILL
 * after 10 s), the socket is removed when the directory allows, exit 0.
 * Events are JSON log lines on stderr (lib/log.c), like the services'. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define POOL_MAX_WORKERS 256
#define POOL_BACKLOG 1024

typedef struct pool_slot {
    pid_t pid;              /* 0: empty */
    struct timespec started;
    struct timespec respawn_at;
} pool_slot;

static void pool_usage(void)
{
    fprintf(stderr, "usage: shop-pool -s SOCKET -n WORKERS [-u USER] [-g GROUP] -- PROGRAM [ARG...]\n");
}

static double pool_now(struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    return (double)ts->tv_sec + ts->tv_nsec / 1e9;
}

static double pool_secs(const struct timespec *ts)
{
    return (double)ts->tv_sec + ts->tv_nsec / 1e9;
}

/* Binds the listening socket at path (a stale socket file is replaced).
 * Returns the fd or -1. */
static int pool_listen(const char *path, uid_t uid, gid_t gid, bool chown_it)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        log_error("pool: socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        log_error("pool: socket: %s", strerror(errno));
        return -1;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        log_error("pool: cannot remove the old %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* Created with no access for anyone, opened up once owned right. */
    mode_t old = umask(0777);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc != 0) {
        log_error("pool: bind %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if ((chown_it && chown(path, uid, gid) != 0) || chmod(path, 0660) != 0
        || listen(fd, POOL_BACKLOG) != 0) {
        log_error("pool: preparing %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Becomes uid/gid with user's supplementary groups, irrevocably. */
static int pool_drop(const char *user, uid_t uid, gid_t gid)
{
    if (initgroups(user, gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        log_error("pool: cannot become %s: %s", user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0 || geteuid() == 0) {
        log_error("pool: still root after dropping to %s", user);
        return -1;
    }
    return 0;
}

static pid_t pool_spawn(int lfd, char **argv, const sigset_t *oldmask)
{
    pid_t pid = fork();
    if (pid != 0) {
        if (pid < 0)
            log_error("pool: fork: %s", strerror(errno));
        return pid;
    }
    /* Child: the socket on fd 0, default signals, then the worker. */
    if (lfd != 0) {
        if (dup2(lfd, 0) < 0)
            _exit(126);
        close(lfd);
    }
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    execv(argv[0], argv);
    log_error("pool: exec %s: %s", argv[0], strerror(errno));
    _exit(127);
}

int main(int argc, char **argv)
{
    const char *sock = NULL, *user = NULL, *group = NULL;
    long workers = 0;
    int opt;
    log_init("pool", LOG_INFO);
    while ((opt = getopt(argc, argv, "+s:n:u:g:")) != -1) {
        switch (opt) {
        case 's': sock = optarg; break;
        case 'n': workers = strtol(optarg, NULL, 10); break;
        case 'u': user = optarg; break;
        case 'g': group = optarg; break;
        default: pool_usage(); return 2;
        }
    }
    if (!sock || workers < 1 || workers > POOL_MAX_WORKERS || optind >= argc
        || (group && !user)) {
        pool_usage();
        return 2;
    }
    char **prog = argv + optind;
    if (prog[0][0] != '/') {
        log_error("pool: PROGRAM must be an absolute path: %s", prog[0]);
        return 2;
    }

    uid_t uid = getuid();
    gid_t gid = getgid(), sock_gid = getgid();
    if (user) {
        struct passwd *pw = getpwnam(user);
        if (!pw) {
            log_error("pool: no such user: %s", user);
            return 1;
        }
        uid = pw->pw_uid;
        gid = sock_gid = pw->pw_gid;
        if (geteuid() != 0) {
            log_error("pool: -u %s needs root (omit -u to run as the invoking user)", user);
            return 1;
        }
    }
    if (group) {
        struct group *gr = getgrnam(group);
        if (!gr) {
            log_error("pool: no such group: %s", group);
            return 1;
        }
        sock_gid = gr->gr_gid;
    }

    /* Signals arrive through sigtimedwait only. */
    sigset_t mask, oldmask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, &oldmask) != 0) {
        log_error("pool: sigprocmask: %s", strerror(errno));
        return 1;
    }

    int lfd = pool_listen(sock, uid, sock_gid, user != NULL);
    if (lfd < 0)
        return 1;
    if (user && pool_drop(user, uid, gid) != 0)
        return 1;

    static pool_slot slots[POOL_MAX_WORKERS];
    struct timespec now;
    pool_now(&now);
    for (long i = 0; i < workers; i++)
        slots[i].respawn_at = now;
    log_info("pool: %ld workers of %s on %s", workers, prog[0], sock);

    bool stopping = false;
    while (!stopping) {
        double t = pool_now(&now);
        for (long i = 0; i < workers; i++) {
            if (slots[i].pid == 0 && pool_secs(&slots[i].respawn_at) <= t) {
                pid_t pid = pool_spawn(lfd, prog, &oldmask);
                if (pid > 0) {
                    slots[i].pid = pid;
                    slots[i].started = now;
                } else {
                    slots[i].respawn_at.tv_sec = now.tv_sec + 1;
                    slots[i].respawn_at.tv_nsec = now.tv_nsec;
                }
            }
        }
        struct timespec wait = { 1, 0 };
        siginfo_t si;
        int sig = sigtimedwait(&mask, &si, &wait);
        if (sig == SIGTERM || sig == SIGINT) {
            stopping = true;
        } else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            log_error("pool: sigtimedwait: %s", strerror(errno));
            stopping = true;
        }
        /* Reap every exited worker (one SIGCHLD may stand for several). */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            t = pool_now(&now);
            for (long i = 0; i < workers; i++) {
                if (slots[i].pid != pid)
                    continue;
                slots[i].pid = 0;
                bool young = t - pool_secs(&slots[i].started) < 1.0;
                slots[i].respawn_at = now;
                if (young)
                    slots[i].respawn_at.tv_sec += 1;
                if (!stopping) {
                    if (WIFSIGNALED(status))
                        log_warn("pool: worker %d of %s killed by signal %d: replacing it",
                                 (int)pid, prog[0], WTERMSIG(status));
                    else
                        log_warn("pool: worker %d of %s exited with %d: replacing it%s",
                                 (int)pid, prog[0], WEXITSTATUS(status),
                                 young ? " in 1 s" : "");
                }
            }
        }
    }

    /* Shutdown: SIGTERM to every worker, SIGKILL to any left after 10 s. */
    for (long i = 0; i < workers; i++)
        if (slots[i].pid > 0)
            kill(slots[i].pid, SIGTERM);
    double deadline = pool_now(&now) + 10.0;
    bool killed = false;
    for (;;) {
        bool left = false;
        for (long i = 0; i < workers; i++) {
            if (slots[i].pid > 0 && waitpid(slots[i].pid, NULL, WNOHANG) == slots[i].pid)
                slots[i].pid = 0;
            left = left || slots[i].pid > 0;
        }
        if (!left)
            break;
        if (!killed && pool_now(&now) >= deadline) {
            for (long i = 0; i < workers; i++)
                if (slots[i].pid > 0)
                    kill(slots[i].pid, SIGKILL);
            killed = true;
        }
        struct timespec nap = { 0, 50 * 1000 * 1000 };
        nanosleep(&nap, NULL);
    }
    close(lfd);
    if (unlink(sock) != 0 && errno != ENOENT && errno != EACCES)
        log_warn("pool: cannot remove %s: %s", sock, strerror(errno));
    log_info("pool: %s stopped", prog[0]);
    return 0;
}
