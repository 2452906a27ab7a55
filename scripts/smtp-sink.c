/*
 * scripts/smtp-sink.c: the local stack's mail relay (scripts/stack starts
 * it; it stands in for the operator's MTA).  A small SMTP server (RFC 5321:
 * EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; PIPELINING) that keeps
 * every message it accepts in a maildir: MAILDIR/tmp/<name>, then renamed
 * to MAILDIR/new/<name>, headed by Return-Path and one Delivered-To per
 * recipient, with '\n' line ends as local delivery writes them.  The notifier sends to it, `make monitor`'s Alertmanager too,
 * and the tests read what it kept.  No TLS, no AUTH, no relaying rules: it
 * listens on the stack's loopback address only.
 *
 * Why not aiosmtpd's Mailbox (Python), which it replaces: under a stream of
 * order emails that server took a tenth of the two-core machine, as much
 * as the notifier and the shop's order workers together; this one does the
 * same in a few system calls per command.
 *
 * usage: smtp-sink ADDRESS PORT MAILDIR
 * One process, poll() over up to MAX_CLIENTS sessions; a message larger
 * than MAX_MESSAGE is refused (552) and the session goes on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define LINE_MAX_ 4096                  /* the input buffer: a command line fits */
#define MAX_MESSAGE (10 * 1024 * 1024)
#define MAX_RCPT 100
#define IDLE_S 300                      /* RFC 5321's server timeout */

typedef struct session {
    int fd;
    char in[LINE_MAX_];
    size_t in_len;
    bool data;                          /* reading a message (after 354) */
    bool at_bol;                        /* the next data byte starts a line */
    bool too_big;
    bool broken;                        /* a reply could not be sent */
    char from[512];
    bool has_from;
    char *rcpt[MAX_RCPT];
    int n_rcpt;
    char *msg;
    size_t msg_len, msg_cap;
    time_t last;
} session;

static session sessions[MAX_CLIENTS];
static const char *maildir;
static unsigned long seq;
static pid_t pid;

static void logf_(const char *fmt, ...)
{
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    fprintf(stderr, "%s smtp-sink: ", ts);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Sends a reply (the socket does not block: a client that stopped reading
 * replies until its socket buffer is full loses its session). */
static void reply(session *s, const char *text)
{
    size_t n = strlen(text), off = 0;
    while (off < n && !s->broken) {
        ssize_t w = send(s->fd, text + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            s->broken = true;
        else
            off += (size_t)w;
    }
}

static void reset_transaction(session *s)
{
    s->has_from = false;
    s->from[0] = '\0';
    for (int i = 0; i < s->n_rcpt; i++)
        free(s->rcpt[i]);
    s->n_rcpt = 0;
    s->msg_len = 0;
    s->too_big = false;
}

static void close_session(session *s)
{
    reset_transaction(s);
    free(s->msg);
    close(s->fd);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* The address of "MAIL FROM:<a> ..." / "RCPT TO:<a> ...": the text between
 * the angle brackets after the colon (or the bare word), into out. */
static bool path_arg(const char *arg, char *out, size_t n)
{
    while (*arg == ' ')
        arg++;
    const char *end;
    if (*arg == '<') {
        arg++;
        if (!(end = strchr(arg, '>')))
            return false;
    } else {
        end = arg + strcspn(arg, " ");
    }
    size_t len = (size_t)(end - arg);
    if (len >= n || memchr(arg, '\r', len) || memchr(arg, '\n', len))
        return false;
    memcpy(out, arg, len);
    out[len] = '\0';
    return true;
}

static bool append(session *s, const char *p, size_t n)
{
    if (s->too_big || s->msg_len + n > MAX_MESSAGE) {
        s->too_big = true;
        return false;
    }
    if (s->msg_len + n > s->msg_cap) {
        size_t cap = s->msg_cap ? s->msg_cap : 8192;
        while (cap < s->msg_len + n)
            cap *= 2;
        char *m = realloc(s->msg, cap);
        if (!m) {
            s->too_big = true;
            return false;
        }
        s->msg = m;
        s->msg_cap = cap;
    }
    memcpy(s->msg + s->msg_len, p, n);
    s->msg_len += n;
    return true;
}

/* The message, its envelope as headers first, into the maildir. */
static bool deliver(session *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char name[128], tmp[4096], dst[4096];
    snprintf(name, sizeof name, "%lld.M%ldP%dQ%lu.smtp-sink", (long long)ts.tv_sec,
             ts.tv_nsec / 1000, (int)pid, ++seq);
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", maildir, name);
    snprintf(dst, sizeof dst, "%s/new/%s", maildir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        logf_("%s: %s", tmp, strerror(errno));
        return false;
    }
    /* The envelope as headers, then the message, in one write. */
    size_t hn = strlen("Return-Path: <>\n") + strlen(s->from);
    for (int i = 0; i < s->n_rcpt; i++)
        hn += strlen("Delivered-To: \n") + strlen(s->rcpt[i]);
    char *head = malloc(hn + 1), *h = head;
    bool ok = head != NULL;
    if (ok) {
        h += sprintf(h, "Return-Path: <%s>\n", s->from);
        for (int i = 0; i < s->n_rcpt; i++)
            h += sprintf(h, "Delivered-To: %s\n", s->rcpt[i]);
        struct iovec iov[2] = {{head, hn}, {s->msg, s->msg_len}};
        ssize_t w = writev(fd, iov, 2);
        ok = w == (ssize_t)(hn + s->msg_len);
        if (!ok && w >= 0)
            errno = ENOSPC;
    }
    free(head);
    if (close(fd) != 0)
        ok = false;
    if (ok && rename(tmp, dst) != 0)
        ok = false;
    if (!ok) {
        logf_("%s: %s", dst, strerror(errno));
        unlink(tmp);
    }
    return ok;
}

/* One line of the message (with its line end), dot-unstuffed; the lone
 * "." ends it. */
static void data_line(session *s, const char *p, size_t n, bool complete)
{
    if (s->at_bol && complete && ((n == 3 && memcmp(p, ".\r\n", 3) == 0) ||
                                  (n == 2 && memcmp(p, ".\n", 2) == 0))) {
        s->data = false;
        if (s->too_big)
            reply(s, "552 5.3.4 Message too big\r\n");
        else if (deliver(s))
            reply(s, "250 2.0.0 OK\r\n");
        else
            reply(s, "451 4.3.0 Could not store the message\r\n");
        reset_transaction(s);
        return;
    }
    if (s->at_bol && n > 0 && p[0] == '.') {
        p++;
        n--;
    }
    if (complete && n >= 2 && p[n - 2] == '\r') {     /* stored with the local '\n' */
        append(s, p, n - 2);
        append(s, "\n", 1);
    } else {
        append(s, p, n);
    }
    s->at_bol = complete;
}

static bool verb(const char *line, const char *v)
{
    size_t n = strlen(v);
    return strncasecmp(line, v, n) == 0 && (line[n] == '\0' || line[n] == ' ');
}

/* One command line (its CRLF removed).  Returns false to end the session. */
static bool command(session *s, char *line)
{
    if (verb(line, "EHLO")) {
        reset_transaction(s);
        reply(s, "250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n");
    } else if (verb(line, "HELO")) {
        reset_transaction(s);
        reply(s, "250 smtp-sink\r\n");
    } else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
        if (s->has_from)
            reply(s, "503 5.5.1 Nested MAIL command\r\n");
        else if (!path_arg(line + 10, s->from, sizeof s->from))
            reply(s, "501 5.1.7 Bad sender address syntax\r\n");
        else {
            s->has_from = true;
            reply(s, "250 2.1.0 OK\r\n");
        }
    } else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
        char to[512];
        if (!s->has_from)
            reply(s, "503 5.5.1 MAIL first\r\n");
        else if (!path_arg(line + 8, to, sizeof to) || !to[0])
            reply(s, "501 5.1.3 Bad recipient address syntax\r\n");
        else if (s->n_rcpt == MAX_RCPT)
            reply(s, "452 4.5.3 Too many recipients\r\n");
        else if (!(s->rcpt[s->n_rcpt] = strdup(to)))
            reply(s, "451 4.3.0 Out of memory\r\n");
        else {
            s->n_rcpt++;
            reply(s, "250 2.1.5 OK\r\n");
        }
    } else if (verb(line, "DATA")) {
        if (s->n_rcpt == 0)
            reply(s, "503 5.5.1 RCPT first\r\n");
        else {
            s->data = true;
            s->at_bol = true;
            s->msg_len = 0;
            reply(s, "354 End data with <CR><LF>.<CR><LF>\r\n");
        }
    } else if (verb(line, "RSET")) {
        reset_transaction(s);
        reply(s, "250 2.0.0 OK\r\n");
    } else if (verb(line, "NOOP")) {
        reply(s, "250 2.0.0 OK\r\n");
    } else if (verb(line, "VRFY")) {
        reply(s, "252 2.1.5 Cannot verify, will accept\r\n");
    } else if (verb(line, "QUIT")) {
        reply(s, "221 2.0.0 Bye\r\n");
        return false;
    } else {
        reply(s, "502 5.5.2 Command not recognized\r\n");
    }
    return true;
}

/* What arrived on s: every complete line, in order.  False: close it. */
static bool readable(session *s)
{
    ssize_t r = recv(s->fd, s->in + s->in_len, sizeof s->in - s->in_len, 0);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (r <= 0)
        return false;
    s->in_len += (size_t)r;
    s->last = time(NULL);
    size_t off = 0;
    while (off < s->in_len) {
        char *p = s->in + off, *nl = memchr(p, '\n', s->in_len - off);
        if (!nl)
            break;
        size_t n = (size_t)(nl - p) + 1;
        if (s->data) {
            data_line(s, p, n, true);
        } else {
            size_t len = n - 1;
            if (len > 0 && p[len - 1] == '\r')
                len--;
            p[len] = '\0';
            if (!command(s, p))
                return false;
        }
        off += n;
    }
    if (s->broken)
        return false;
    memmove(s->in, s->in + off, s->in_len - off);
    s->in_len -= off;
    if (s->in_len == sizeof s->in) {        /* a line longer than the buffer */
        if (!s->data) {
            reply(s, "500 5.5.2 Line too long\r\n");
            return false;
        }
        data_line(s, s->in, s->in_len, false);
        s->in_len = 0;
    }
    return true;
}

static int listen_on(const char *addr, const char *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char *end;
    long p = strtol(port, &end, 10);
    if (*end || p < 1 || p > 65535 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        logf_("bad address %s:%s", addr, port);
        return -1;
    }
    sa.sin_port = htons((unsigned short)p);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0) {
        logf_("listen on %s:%s: %s", addr, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: smtp-sink ADDRESS PORT MAILDIR\n");
        return 2;
    }
    maildir = argv[3];
    pid = getpid();
    char sub[4096];
    for (int i = 0; i < 4; i++) {
        snprintf(sub, sizeof sub, "%s/%s", maildir, (const char *[]){"", "tmp", "new", "cur"}[i]);
        if (mkdir(sub, 0750) != 0 && errno != EEXIST) {
            logf_("%s: %s", sub, strerror(errno));
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on(argv[1], argv[2]);
    if (lfd < 0)
        return 1;
    for (int i = 0; i < MAX_CLIENTS; i++)
        sessions[i].fd = -1;
    logf_("listening on %s:%s, keeping messages in %s", argv[1], argv[2], maildir);

    struct pollfd pfd[MAX_CLIENTS + 1];
    for (;;) {
        int n = 0, idx[MAX_CLIENTS];
        pfd[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (sessions[i].fd >= 0) {
                idx[n - 1] = i;
                pfd[n++] = (struct pollfd){.fd = sessions[i].fd, .events = POLLIN};
            }
        if (poll(pfd, (nfds_t)n, 10000) < 0) {
            if (errno == EINTR)
                continue;
            logf_("poll: %s", strerror(errno));
            return 1;
        }
        time_t now = time(NULL);
        for (int k = 1; k < n; k++) {
            session *s = &sessions[idx[k - 1]];
            if (pfd[k].revents && !readable(s))
                close_session(s);
            else if (!pfd[k].revents && now - s->last > IDLE_S) {
                reply(s, "421 4.4.2 Idle for too long\r\n");
                close_session(s);
            }
        }
        if (pfd[0].revents & POLLIN) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0)
                continue;
            session *s = NULL;
            for (int i = 0; i < MAX_CLIENTS && !s; i++)
                if (sessions[i].fd < 0)
                    s = &sessions[i];
            if (!s) {
                static const char busy[] = "421 4.3.2 Too many sessions\r\n";
                (void)!send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL);
                close(fd);
                continue;
            }
            s->fd = fd;
            s->last = now;
            reply(s, "220 smtp-sink ESMTP\r\n");
        }
    }
}
