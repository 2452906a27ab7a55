/*
 * galera/health.c: the Galera node health endpoint HAProxy's DB listener
 * checks (`option httpchk`, one `check port` per node).  It runs next to
 * its node (one per node), keeps one connection to it, and answers every
 * connection on its port with
 *   200 "synced primary"  when the node is Synced (wsrep_local_state 4) and
 *                         in the Primary component: it may take writes;
 *   503 and the reason    otherwise (joining, donor, non-primary, no answer).
 *
 * Why not a check program HAProxy forks per check: a fork of a shell and
 * the mariadb client costs 0.4-0.5 s on a busy two-core machine, HAProxy
 * kills an external check after about a second, and three such timeouts in
 * a row took every DB node out of the listener at once under load (all
 * sessions cut).  This answers from a kept connection in well under a
 * millisecond.
 *
 * usage: galera-health LISTEN_ADDR LISTEN_PORT NODE_ADDR NODE_PORT PASSWORD_FILE [USER]
 * The node is reached over TCP as user shop_monitor (schema.sql grants it
 * nothing but the connection); the password is read once from
 * PASSWORD_FILE.  Started as root with USER, it becomes USER once it has
 * read the password and bound its port, so the file may stay root's.  Each verdict change is logged to stderr with the time.
 * One request at a time: HAProxy checks each node a few times a second.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <mysql.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DB_TIMEOUT_S 1          /* connect, read and write, per operation */

static const char *node_addr, *password;
static unsigned node_port;
static MYSQL *conn;
static char last_verdict[256];

static void logf_(const char *fmt, const char *arg)
{
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    fprintf(stderr, "%s %s:%u ", ts, node_addr, node_port);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
}

static void drop_conn(void)
{
    if (conn) {
        mysql_close(conn);
        conn = NULL;
    }
}

static int connect_node(char *why, size_t len)
{
    unsigned int t = DB_TIMEOUT_S;
    conn = mysql_init(NULL);
    if (!conn) {
        snprintf(why, len, "no answer: out of memory");
        return -1;
    }
    if (mysql_optionsv(conn, MYSQL_OPT_CONNECT_TIMEOUT, &t) || mysql_optionsv(conn, MYSQL_OPT_READ_TIMEOUT, &t)
        || mysql_optionsv(conn, MYSQL_OPT_WRITE_TIMEOUT, &t)
        || !mysql_real_connect(conn, node_addr, "shop_monitor", password, NULL, node_port, NULL, 0)) {
        snprintf(why, len, "no answer: %s", mysql_error(conn));
        drop_conn();
        return -1;
    }
    return 0;
}

/* Fills why with the verdict; returns 1 when the node may take writes. */
static int node_writable(char *why, size_t len)
{
    static const char q[] =
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state', 'wsrep_cluster_status')";
    if (!conn && connect_node(why, len) < 0)
        return 0;
    MYSQL_RES *res = NULL;
    if (mysql_real_query(conn, q, sizeof q - 1) || !(res = mysql_store_result(conn))) {
        snprintf(why, len, "no answer: %s", mysql_error(conn));
        drop_conn();
        return 0;
    }
    const char *state = "?", *status = "?";
    char sbuf[16] = "", cbuf[32] = "";
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        if (!row[0] || !row[1])
            continue;
        if (!strcmp(row[0], "wsrep_local_state"))
            state = strncpy(sbuf, row[1], sizeof sbuf - 1);
        else if (!strcmp(row[0], "wsrep_cluster_status"))
            status = strncpy(cbuf, row[1], sizeof cbuf - 1);
    }
    mysql_free_result(res);
    if (strcmp(state, "4") || strcmp(status, "Primary")) {
        snprintf(why, len, "not writable: state=%s cluster=%s", state, status);
        return 0;
    }
    snprintf(why, len, "synced primary");
    return 1;
}

static void answer(int fd)
{
    char buf[1024], why[200], reply[400];
    struct timeval tv = {.tv_sec = 1};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0
        || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return;
    /* The request itself does not matter; read what has come so the close
     * below is not a reset. */
    if (recv(fd, buf, sizeof buf, 0) < 0)
        return;
    int ok = node_writable(why, sizeof why);
    if (strcmp(why, last_verdict)) {
        logf_("%s", why);
        snprintf(last_verdict, sizeof last_verdict, "%s", why);
    }
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s\n",
                     ok ? "200 OK" : "503 Service Unavailable", strlen(why) + 1, why);
    if (n > 0 && send(fd, reply, (size_t)n < sizeof reply ? (size_t)n : sizeof reply - 1, MSG_NOSIGNAL) < 0)
        logf_("send: %s", strerror(errno));
}

static char *read_password(const char *path)
{
    static char pw[256];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *got = fgets(pw, sizeof pw, f);
    fclose(f);
    if (!got)
        return NULL;
    pw[strcspn(pw, "\r\n")] = '\0';
    return pw;
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: galera-health LISTEN_ADDR LISTEN_PORT NODE_ADDR NODE_PORT PASSWORD_FILE [USER]\n");
        return 2;
    }
    node_addr = argv[3];
    node_port = (unsigned)strtoul(argv[4], NULL, 10);
    if (!(password = read_password(argv[5]))) {
        fprintf(stderr, "galera-health: cannot read %s: %s\n", argv[5], strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (mysql_library_init(0, NULL, NULL)) {
        fprintf(stderr, "galera-health: mysql_library_init failed\n");
        return 1;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    int one = 1, s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1
        || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
        || bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 64) < 0) {
        fprintf(stderr, "galera-health: cannot listen on %s:%s: %s\n", argv[1], argv[2], strerror(errno));
        return 1;
    }
    if (argc == 7) {
        struct passwd *pw = getpwnam(argv[6]);
        if (!pw || initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0
            || setuid(pw->pw_uid) < 0) {
            fprintf(stderr, "galera-health: cannot become %s: %s\n", argv[6],
                    pw ? strerror(errno) : "no such user");
            return 1;
        }
    }
    logf_("listening on port %s", argv[2]);
    for (;;) {
        int fd = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != ECONNABORTED)
                logf_("accept: %s", strerror(errno));
            continue;
        }
        answer(fd);
        close(fd);
    }
}
