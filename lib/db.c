/* db.c: the worker's MariaDB connections.  A FastCGI worker serves one
 * request at a time, so one writer connection per process is enough and a
 * global is honest; a second, read-only one (when DB_READ_* names the host's
 * own Galera node) serves db_read().  Each connection ("link") prepares its
 * statements once and caches them by SQL pointer; results are buffered as
 * text so callers never touch MYSQL_BIND.
 *
 * Galera facts this rests on (docs/ARCHITECTURE.md): writes all go to one node, yet a
 * transaction can still fail with 1213 at any statement or at COMMIT after a
 * failover or a certification conflict, so the unit of retry is the whole
 * transaction (db_tx), never one statement. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mysql.h>
#include <sodium.h>

#include "config.h"
#include "db.h"
#include "log.h"

#define DB_CACHE_MAX 96
#define DB_MAX_PARAMS 32
#define DB_TX_ATTEMPTS 10
#define DB_TX_BUDGET_MS 5000   /* > a Galera failover (~2.5 s): then answer 503 */

typedef struct db_cell {
    char *s;        /* NULL for SQL NULL */
    size_t len;
} db_cell;

struct db_res {
    int rows, cols;
    db_cell *cells;
};

/* One connection and its statement cache.  Everything below db_ensure()
 * works on db_cur: the writer, except for the moment db_read() points it at
 * the reader. */
typedef struct db_link {
    MYSQL *conn;
    struct {
        const char *sql;
        MYSQL_STMT *stmt;
    } cache[DB_CACHE_MAX];
    int cached;
    char host[256], socket[256];
    unsigned port;
    bool read_only;
} db_link;

static db_link db_writer;
static db_link db_reader = {.read_only = true};
static db_link *db_cur = &db_writer;
/* The reader is used only when configured, and not before db_reader_retry_ms
 * after it failed (down, not Synced): until then reads go to the writer
 * without paying a connect attempt each. */
static bool db_reader_on;
static long long db_reader_retry_ms, db_reader_checked_ms;
static unsigned db_last_errno;
static int64_t db_insert_id;
static bool db_in_tx;
static uint64_t db_retries;

/* Connection settings, read once by db_init() (a worker's config does not
 * change under it). */
static struct {
    char user[128], password[256], name[128];
} db_cfg;

static int db_cfg_copy(char *dst, size_t n, const char *key, const char *def)
{
    const char *v = config_get(key, def);
    if (!v)
        v = "";
    if (strlen(v) >= n) {
        log_error("db: %s is too long", key);
        return -1;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int db_cfg_port(const char *key, long long def, unsigned *out)
{
    long long port = config_int(key, def);
    if (port <= 0 || port > 65535) {
        log_error("db: %s %lld is not a port", key, port);
        return -1;
    }
    *out = (unsigned)port;
    return 0;
}

int db_init(void)
{
    if (db_cfg_port("DB_PORT", 3306, &db_writer.port) != 0 ||
        db_cfg_copy(db_writer.host, sizeof db_writer.host, "DB_HOST", "127.0.0.1") != 0 ||
        db_cfg_copy(db_writer.socket, sizeof db_writer.socket, "DB_SOCKET", "") != 0 ||
        db_cfg_copy(db_cfg.user, sizeof db_cfg.user, "DB_USER", "root") != 0 ||
        db_cfg_copy(db_cfg.password, sizeof db_cfg.password, "DB_PASSWORD", "") != 0 ||
        db_cfg_copy(db_cfg.name, sizeof db_cfg.name, "DB_NAME", "") != 0)
        return -1;
    if (db_cfg_port("DB_READ_PORT", 3306, &db_reader.port) != 0 ||
        db_cfg_copy(db_reader.host, sizeof db_reader.host, "DB_READ_HOST", "") != 0 ||
        db_cfg_copy(db_reader.socket, sizeof db_reader.socket, "DB_READ_SOCKET", "") != 0)
        return -1;
    db_reader_on = db_reader.host[0] || db_reader.socket[0];
    db_reader_retry_ms = db_reader_checked_ms = 0;
    return 0;
}

static void db_link_drop(db_link *l)
{
    for (int i = 0; i < l->cached; i++)
        mysql_stmt_close(l->cache[i].stmt);
    l->cached = 0;
    if (l->conn)
        mysql_close(l->conn);
    l->conn = NULL;
}

static void db_drop_connection(void)
{
    db_link_drop(db_cur);
}

void db_close(void)
{
    db_link_drop(&db_reader);
    db_link_drop(&db_writer);
}

/* Errors after which the connection is not usable any more. */
static bool db_conn_lost(unsigned e)
{
    return e == 2002 || e == 2003 || e == 2006 || e == 2013 || e == 2055 || e == 1927 ||
           e == 1053 || e == 4031;
}

bool db_retryable(void)
{
    unsigned e = db_last_errno;
    /* 1213 deadlock / certification failure, 1205 lock wait, 1047 Galera
     * node not ready (non-Primary), 1180 error during COMMIT, 1040 too many
     * connections, 1290 read-only (a node that is not the writer). */
    return e == 1213 || e == 1205 || e == 1047 || e == 1180 || e == 1040 || e == 1290 ||
           db_conn_lost(e);
}

int db_int_pairs(db_res *r, int64_t *a, int64_t *b, int max)
{
    if (!r)
        return DB_ERROR;
    int n = db_rows(r) < max ? db_rows(r) : max;
    for (int i = 0; i < n; i++) {
        a[i] = db_int(r, i, 0);
        b[i] = db_int(r, i, 1);
    }
    db_free(r);
    return n;
}

unsigned db_errno(void)
{
    return db_last_errno;
}

uint64_t db_retry_count(void)
{
    return db_retries;
}

static void (*db_retry_hook)(void);

void db_on_retry(void (*hook)(void))
{
    db_retry_hook = hook;
}

/* Records the error of the last failed call and drops a dead connection. */
static void db_fail(unsigned e, const char *what, const char *err)
{
    db_last_errno = e;
    if (e == 1062)
        log_info("db: %s: duplicate key", what);
    else if (db_cur->read_only)
        log_warn("db: reader %s: %u %s", what, e, err);
    else if (e == 1213 || e == 1205)
        log_warn("db: %s: %u %s", what, e, err);
    else
        log_error("db: %s: %u %s", what, e, err);
    if (db_conn_lost(e) || e == 1047)
        db_drop_connection();
}

/* Makes sure a connection is open.  Returns false (db_last_errno set) when
 * the server cannot be reached. */
static unsigned db_idle_timeout;

void db_set_idle_timeout(unsigned seconds)
{
    db_idle_timeout = seconds;
}

static bool db_ensure(void)
{
    db_link *l = db_cur;
    if (l->conn)
        return true;
    /* The transaction's connection is gone: a new one would run the rest of
     * it outside the transaction, each statement committed on its own. */
    if (db_in_tx) {
        db_last_errno = 2006;
        return false;
    }
    MYSQL *c = mysql_init(NULL);
    if (!c) {
        db_last_errno = 2008;
        log_error("db: mysql_init: out of memory");
        return false;
    }
    unsigned int connect_timeout = 2, rw_timeout = 10;
    my_bool yes = 1;
    mysql_optionsv(c, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_optionsv(c, MYSQL_OPT_READ_TIMEOUT, &rw_timeout);
    mysql_optionsv(c, MYSQL_OPT_WRITE_TIMEOUT, &rw_timeout);
    mysql_optionsv(c, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_optionsv(c, MYSQL_REPORT_DATA_TRUNCATION, &yes);
    /* Timestamps are stored and read as UTC whatever the server's zone. */
    mysql_optionsv(c, MYSQL_INIT_COMMAND, "SET time_zone='+00:00'");
    /* Every stock or state check runs on rows locked with FOR UPDATE, so
     * REPEATABLE READ's gap locks buy nothing here and only add deadlocks
     * (e.g. on reservation ids that do not exist yet). */
    mysql_optionsv(c, MYSQL_INIT_COMMAND, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
    if (db_idle_timeout > 0) {
        char idle[64];
        snprintf(idle, sizeof idle, "SET SESSION wait_timeout = %u", db_idle_timeout);
        mysql_optionsv(c, MYSQL_INIT_COMMAND, idle);
    }
    /* The reader can never write, whatever a caller passes to db_read(). */
    if (l->read_only)
        mysql_optionsv(c, MYSQL_INIT_COMMAND, "SET SESSION TRANSACTION READ ONLY");
    if (!mysql_real_connect(c, l->host[0] ? l->host : NULL, db_cfg.user, db_cfg.password,
                            db_cfg.name[0] ? db_cfg.name : NULL, l->port,
                            l->socket[0] ? l->socket : NULL, CLIENT_FOUND_ROWS)) {
        db_last_errno = mysql_errno(c);
        if (l->read_only)
            log_warn("db: reader: connect to %s:%u: %u %s", l->host, l->port, db_last_errno,
                     mysql_error(c));
        else
            log_error("db: connect to %s:%u: %u %s", l->host, l->port, db_last_errno,
                      mysql_error(c));
        mysql_close(c);
        return false;
    }
    l->conn = c;
    return true;
}

bool db_ping(void)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!db_ensure())
            continue;
        if (mysql_query(db_cur->conn, "SELECT 1") == 0) {
            MYSQL_RES *r = mysql_store_result(db_cur->conn);
            mysql_free_result(r);
            return true;
        }
        db_fail(mysql_errno(db_cur->conn), "ping", mysql_error(db_cur->conn));
        db_drop_connection();
    }
    return false;
}

static MYSQL_STMT *db_prepare(const char *sql)
{
    db_link *l = db_cur;
    for (int i = 0; i < l->cached; i++)
        if (l->cache[i].sql == sql)
            return l->cache[i].stmt;
    if (!db_ensure())
        return NULL;
    MYSQL_STMT *st = mysql_stmt_init(l->conn);
    if (!st) {
        db_fail(mysql_errno(l->conn), "stmt_init", mysql_error(l->conn));
        return NULL;
    }
    if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0) {
        unsigned e = mysql_stmt_errno(st);
        char err[256];
        snprintf(err, sizeof err, "%s [%.120s]", mysql_stmt_error(st), sql);
        mysql_stmt_close(st);
        db_fail(e, "prepare", err);
        return NULL;
    }
    if (l->cached == DB_CACHE_MAX) {
        /* Full: evict the oldest.  Services use far fewer statements. */
        mysql_stmt_close(l->cache[0].stmt);
        memmove(l->cache, l->cache + 1, sizeof l->cache[0] * (DB_CACHE_MAX - 1));
        l->cached--;
    }
    l->cache[l->cached].sql = sql;
    l->cache[l->cached].stmt = st;
    l->cached++;
    return st;
}

typedef struct db_params {
    MYSQL_BIND bind[DB_MAX_PARAMS];
    long long ints[DB_MAX_PARAMS];
    unsigned long lens[DB_MAX_PARAMS];
    my_bool nulls[DB_MAX_PARAMS];
} db_params;

/* Binds the variadic parameters described by `types`.  Returns 0 or -1. */
static int db_bind(MYSQL_STMT *st, const char *types, va_list ap, db_params *p)
{
    size_t n = types ? strlen(types) : 0;
    if (n > DB_MAX_PARAMS || n != mysql_stmt_param_count(st)) {
        log_error("db: %zu parameters given, statement wants %lu", n, mysql_stmt_param_count(st));
        db_last_errno = 2031;
        return -1;
    }
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        MYSQL_BIND *b = &p->bind[i];
        switch (types[i]) {
        case 'i':
            p->ints[i] = (long long)va_arg(ap, int64_t);
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &p->ints[i];
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            b->buffer_type = MYSQL_TYPE_STRING;
            if (!s) {
                p->nulls[i] = 1;
                b->is_null = &p->nulls[i];
            } else {
                b->buffer = (void *)s;
                p->lens[i] = (unsigned long)strlen(s);
                b->buffer_length = p->lens[i];
                b->length = &p->lens[i];
            }
            break;
        }
        case 'b': {
            const void *v = va_arg(ap, const void *);
            size_t len = va_arg(ap, size_t);
            b->buffer_type = MYSQL_TYPE_BLOB;
            b->buffer = (void *)v;
            p->lens[i] = (unsigned long)len;
            b->buffer_length = p->lens[i];
            b->length = &p->lens[i];
            break;
        }
        default:
            log_error("db: bad parameter type '%c'", types[i]);
            db_last_errno = 2031;
            return -1;
        }
    }
    if (n && mysql_stmt_bind_param(st, p->bind) != 0) {
        db_fail(mysql_stmt_errno(st), "bind", mysql_stmt_error(st));
        return -1;
    }
    return 0;
}

/* Prepares, binds and executes.  Returns the statement or NULL. */
static MYSQL_STMT *db_run(const char *sql, const char *types, va_list ap)
{
    db_params p;
    MYSQL_STMT *st = db_prepare(sql);
    if (!st)
        return NULL;
    if (db_bind(st, types, ap, &p) != 0)
        return NULL;
    if (mysql_stmt_execute(st) != 0) {
        unsigned e = mysql_stmt_errno(st);
        char err[256];
        snprintf(err, sizeof err, "%s [%.120s]", mysql_stmt_error(st), sql);
        db_fail(e, "execute", err);
        return NULL;
    }
    db_last_errno = 0;
    return st;
}

int64_t db_exec(const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    MYSQL_STMT *st = db_run(sql, types, ap);
    va_end(ap);
    if (!st)
        return db_last_errno == 1062 ? DB_CONFLICT : DB_ERROR;
    db_insert_id = (int64_t)mysql_stmt_insert_id(st);
    int64_t n = (int64_t)mysql_stmt_affected_rows(st);
    mysql_stmt_free_result(st);
    return n;
}

/* ids[0..n) as a full DB_IDS list in c, padded with the last id. */
static void db_ids_chunk(int64_t c[DB_IDS_MAX], const int64_t *ids, int n)
{
    for (int i = 0; i < DB_IDS_MAX; i++)
        c[i] = ids[i < n ? i : n - 1];
}

#define DB_IDS_TYPES "iiiiiiiiiiiiiiii"
#define DB_IDS_ARGS(c) c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], \
                       c[11], c[12], c[13], c[14], c[15]

int64_t db_exec_ids(const char *sql, const int64_t *ids, int n)
{
    int64_t total = 0;
    for (int at = 0; at < n; at += DB_IDS_MAX) {
        int64_t c[DB_IDS_MAX];
        db_ids_chunk(c, ids + at, n - at < DB_IDS_MAX ? n - at : DB_IDS_MAX);
        int64_t k = db_exec(sql, DB_IDS_TYPES, DB_IDS_ARGS(c));
        if (k < 0)
            return k;
        total += k;
    }
    return total;
}

int64_t db_last_id(void)
{
    return db_insert_id;
}

/* Fetches every row of an executed statement as text. */
static db_res *db_fetch_all(MYSQL_STMT *st)
{
    my_bool yes = 1;
    mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &yes);
    if (mysql_stmt_store_result(st) != 0) {
        db_fail(mysql_stmt_errno(st), "store_result", mysql_stmt_error(st));
        return NULL;
    }
    MYSQL_RES *meta = mysql_stmt_result_metadata(st);
    if (!meta) {
        db_last_errno = 2053;
        log_error("db: query returned no result set");
        mysql_stmt_free_result(st);
        return NULL;
    }
    int cols = (int)mysql_num_fields(meta);
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    int rows = (int)mysql_stmt_num_rows(st);
    db_res *r = calloc(1, sizeof *r);
    MYSQL_BIND *bind = calloc((size_t)cols ? (size_t)cols : 1, sizeof *bind);
    unsigned long *lens = calloc((size_t)cols ? (size_t)cols : 1, sizeof *lens);
    my_bool *nulls = calloc((size_t)cols ? (size_t)cols : 1, sizeof *nulls);
    char **bufs = calloc((size_t)cols ? (size_t)cols : 1, sizeof *bufs);
    bool ok = r && bind && lens && nulls && bufs;
    if (ok) {
        r->rows = rows;
        r->cols = cols;
        r->cells = calloc((size_t)rows * (size_t)cols + 1, sizeof *r->cells);
        ok = r->cells != NULL;
    }
    for (int c = 0; ok && c < cols; c++) {
        size_t cap = fields[c].max_length + 1;
        bufs[c] = malloc(cap);
        ok = bufs[c] != NULL;
        bind[c].buffer_type = MYSQL_TYPE_STRING;
        bind[c].buffer = bufs[c];
        bind[c].buffer_length = (unsigned long)cap;
        bind[c].length = &lens[c];
        bind[c].is_null = &nulls[c];
    }
    if (ok && cols && mysql_stmt_bind_result(st, bind) != 0) {
        db_fail(mysql_stmt_errno(st), "bind_result", mysql_stmt_error(st));
        ok = false;
    }
    for (int row = 0; ok && row < rows; row++) {
        int f = mysql_stmt_fetch(st);
        if (f == 1 || f == MYSQL_NO_DATA) {
            db_fail(mysql_stmt_errno(st), "fetch", mysql_stmt_error(st));
            ok = false;
            break;
        }
        if (f == MYSQL_DATA_TRUNCATED) {
            /* A value longer than its column's max_length: the buffers were
             * sized from it, so copying lens[c] bytes would read past one. */
            db_fail(0, "fetch", "a value is longer than its column's max_length");
            ok = false;
            break;
        }
        for (int c = 0; c < cols; c++) {
            db_cell *cell = &r->cells[row * cols + c];
            if (nulls[c])
                continue;
            cell->len = lens[c];
            cell->s = malloc(lens[c] + 1);
            if (!cell->s) {
                ok = false;
                break;
            }
            memcpy(cell->s, bufs[c], lens[c]);
            cell->s[lens[c]] = '\0';
        }
    }
    for (int c = 0; bufs && c < cols; c++)
        free(bufs[c]);
    free(bufs);
    free(nulls);
    free(lens);
    free(bind);
    mysql_free_result(meta);
    mysql_stmt_free_result(st);
    /* A CALL answers its result set, then a status of its own: read it, or
     * the connection's next command fails "out of sync". */
    while (mysql_stmt_more_results(st)) {
        int more = mysql_stmt_next_result(st);
        if (more > 0) {
            db_fail(mysql_stmt_errno(st), "next_result", mysql_stmt_error(st));
            ok = false;
        }
        if (more != 0)
            break;
        mysql_stmt_free_result(st);
    }
    if (!ok) {
        if (!db_last_errno)
            db_last_errno = 2008;
        db_free(r);
        return NULL;
    }
    return r;
}

/* db_query on db_cur, with the parameters as a va_list (left unconsumed). */
static db_res *db_vquery(const char *sql, const char *types, va_list ap)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        va_list cp;
        va_copy(cp, ap);
        MYSQL_STMT *st = db_run(sql, types, cp);
        va_end(cp);
        if (st)
            return db_fetch_all(st);
        /* A read outside a transaction is safe to repeat on a new connection. */
        if (db_in_tx || !db_conn_lost(db_last_errno))
            return NULL;
    }
    return NULL;
}

db_res *db_query(const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    db_res *r = db_vquery(sql, types, ap);
    va_end(ap);
    return r;
}

db_res *db_query_ids(const char *sql, const int64_t *ids, int n)
{
    if (n < 1 || n > DB_IDS_MAX) {
        log_error("db: db_query_ids takes 1..%d ids, not %d", DB_IDS_MAX, n);
        db_last_errno = 2031;
        return NULL;
    }
    int64_t c[DB_IDS_MAX];
    db_ids_chunk(c, ids, n);
    return db_query(sql, DB_IDS_TYPES, DB_IDS_ARGS(c));
}

#define DB_READER_RETRY_MS 1000   /* a failed reader is left alone this long */
#define DB_READER_CHECK_MS 1000   /* its Galera state is re-read this often */

/* True when the reader's node answers as a Synced Galera node (or as a plain
 * server without wsrep, e.g. a test database).  wsrep_ready OFF (non-Primary,
 * joining) would fail every query with 1047 anyway; a Donor or Desynced node
 * may lag far behind, so only state 4 (Synced) is good enough to read from. */
static bool db_reader_synced(void)
{
    db_res *r = db_query("SELECT @@global.wsrep_on,"
                         " (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
                         "  WHERE VARIABLE_NAME = 'wsrep_local_state'),"
                         " (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
                         "  WHERE VARIABLE_NAME = 'wsrep_ready')", NULL);
    if (!r)
        return false;
    bool ok = db_rows(r) == 1 &&
              (db_int(r, 0, 0) == 0 ||
               (db_int(r, 0, 1) == 4 && db_str(r, 0, 2) && strcmp(db_str(r, 0, 2), "ON") == 0));
    db_free(r);
    return ok;
}

/* Tries the query on the reader; NULL (reader left alone for a while) when
 * it is not usable or the query failed there. */
static db_res *db_reader_query(const char *sql, const char *types, va_list ap)
{
    long long now = config_now_ms();
    if (!db_reader_on || db_in_tx || now < db_reader_retry_ms)
        return NULL;
    db_cur = &db_reader;
    db_res *r = NULL;
    bool fresh = db_reader.conn == NULL;
    if (fresh || now - db_reader_checked_ms >= DB_READER_CHECK_MS) {
        if (!db_reader_synced()) {
            if (db_reader.conn)
                log_warn("db: reader %s:%u is not a Synced node; reading from the writer",
                         db_reader.host, db_reader.port);
            goto out;
        }
        db_reader_checked_ms = now;
    }
    r = db_vquery(sql, types, ap);
out:
    if (!r) {
        db_link_drop(&db_reader);
        db_reader_retry_ms = now + DB_READER_RETRY_MS;
    }
    db_cur = &db_writer;
    return r;
}

db_res *db_read(const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    db_res *r = db_reader_query(sql, types, ap);
    if (!r)
        r = db_vquery(sql, types, ap);
    va_end(ap);
    return r;
}

int db_rows(const db_res *r)
{
    return r ? r->rows : 0;
}

static const db_cell *db_cell_at(const db_res *r, int row, int col)
{
    if (!r || row < 0 || row >= r->rows || col < 0 || col >= r->cols)
        return NULL;
    return &r->cells[row * r->cols + col];
}

const char *db_str(const db_res *r, int row, int col)
{
    const db_cell *c = db_cell_at(r, row, col);
    return c ? c->s : NULL;
}

int64_t db_int(const db_res *r, int row, int col)
{
    const char *s = db_str(r, row, col);
    return s ? (int64_t)strtoll(s, NULL, 10) : 0;
}

size_t db_len(const db_res *r, int row, int col)
{
    const db_cell *c = db_cell_at(r, row, col);
    return c ? c->len : 0;
}

bool db_null(const db_res *r, int row, int col)
{
    return db_str(r, row, col) == NULL;
}

void db_free(db_res *r)
{
    if (!r)
        return;
    if (r->cells)
        for (int i = 0; i < r->rows * r->cols; i++)
            free(r->cells[i].s);
    free(r->cells);
    free(r);
}

/* Sleeps a random time in [base/2, base] ms: jitter keeps the workers that
 * collided from colliding again in lockstep. */
static void db_backoff(long base_ms)
{
    long ms = base_ms / 2 + (long)randombytes_uniform((uint32_t)(base_ms / 2 + 1));
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void db_rollback(void)
{
    if (db_cur->conn && mysql_rollback(db_cur->conn) != 0)
        db_fail(mysql_errno(db_cur->conn), "rollback", mysql_error(db_cur->conn));
}

/* Set when a COMMIT of the last db_tx() got no answer and no later attempt
 * ran its statements again: the transaction may have landed or not. */
static bool db_tx_unknown;

bool db_tx_outcome_unknown(void)
{
    return db_tx_unknown;
}

/* Tests only (X-Fault-Inject: commit-lost): the next COMMIT succeeds, and
 * db_tx then acts as if its answer was lost with the connection (2013). */
static bool db_fault_commit_lost;

void db_fault_lose_next_commit(bool on)
{
    db_fault_commit_lost = on;
}

int db_tx(db_tx_fn fn, void *arg)
{
    long long start = config_now_ms();
    long base = 20;
    db_tx_unknown = false;
    for (int attempt = 0; attempt < DB_TX_ATTEMPTS; attempt++) {
        if (attempt) {
            db_retries++;
            if (db_retry_hook)
                db_retry_hook();
            if (config_now_ms() - start > DB_TX_BUDGET_MS)
                break;
            db_backoff(base);
            base = base * 2 > 1000 ? 1000 : base * 2;
            log_warn("db: retrying transaction (attempt %d) after error %u", attempt + 1, db_last_errno);
        }
        if (!db_ensure())
            continue;
        if (mysql_query(db_cur->conn, "START TRANSACTION") != 0) {
            db_fail(mysql_errno(db_cur->conn), "begin", mysql_error(db_cur->conn));
            if (db_retryable())
                continue;
            return DB_ERROR;
        }
        db_in_tx = true;
        int rc = fn(arg);
        if (rc != DB_ERROR)
            db_tx_unknown = false;      /* this run saw what the last commit did */
        if (rc >= 0) {
            if (db_cur->conn && mysql_commit(db_cur->conn) == 0) {
                db_in_tx = false;
                if (!db_fault_commit_lost)
                    return rc;
                db_fault_commit_lost = false;
                db_tx_unknown = true;
                db_fail(2013, "commit", "(fault injection: the COMMIT's answer is dropped)");
                continue;
            }
            if (db_cur->conn) {
                unsigned e = mysql_errno(db_cur->conn);
                /* The server went away during COMMIT: it may have committed. */
                db_tx_unknown = db_tx_unknown || e == 2006 || e == 2013;
                db_fail(e, "commit", mysql_error(db_cur->conn));
            }
            db_rollback();
            db_in_tx = false;
            if (db_retryable())
                continue;
            return DB_ERROR;
        }
        db_rollback();
        db_in_tx = false;
        if (rc == DB_ERROR && db_retryable())
            continue;
        return rc;
    }
    log_error("db: transaction abandoned after retries (last error %u)", db_last_errno);
    return DB_UNAVAILABLE;
}

typedef struct db_purge_args {
    const char *sql;
    int64_t age_s, batch;
} db_purge_args;

static int db_purge_tx(void *arg)
{
    const db_purge_args *a = arg;
    int64_t n = db_exec(a->sql, "ii", a->age_s, a->batch);
    return n < 0 ? DB_ERROR : (int)n;
}

int64_t db_purge(const char *sql, int64_t age_s, int batch, int max_batches)
{
    db_purge_args a = { sql, age_s < 0 ? 0 : age_s, batch < 1 ? 1 : batch };
    int64_t total = 0;
    for (int i = 0; i < max_batches; i++) {
        int n = db_tx(db_purge_tx, &a);
        if (n < 0)
            return n;
        total += n;
        if (n < a.batch)
            break;
    }
    return total;
}

void db_time_rfc3339(const char *dbtime, char *out, size_t n)
{
    if (n == 0)
        return;
    if (!dbtime || n < 3) {
        out[0] = '\0';
        return;
    }
    size_t len = strlen(dbtime);
    if (len + 2 > n)
        len = n - 2;
    memcpy(out, dbtime, len);
    char *sp = memchr(out, ' ', len);
    if (sp)
        *sp = 'T';
    out[len] = 'Z';
    out[len + 1] = '\0';
}

int db_try_lock(const char *name, int wait_s)
{
    db_res *r = db_query("SELECT GET_LOCK(?, ?)", "si", name, (int64_t)wait_s);
    if (!r)
        return DB_ERROR;
    int held = db_int(r, 0, 0) == 1;
    db_free(r);
    return held;
}

void db_unlock(const char *name)
{
    db_free(db_query("SELECT RELEASE_LOCK(?)", "s", name));
}

void db_copy(char *dst, size_t n, const db_res *r, int row, int col)
{
    const char *s = db_str(r, row, col);
    size_t len = s ? db_len(r, row, col) : 0;
    if (len >= n)
        len = n - 1;
    if (len)
        memcpy(dst, s, len);
    dst[len] = '\0';
}
