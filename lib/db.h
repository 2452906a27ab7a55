/* db.h: the worker's persistent MariaDB connection (the writer, normally
 * through HAProxy's DB listener), an optional read-only second connection to
 * the host's own Galera node for reads that may be a little behind
 * (db_read()), prepared statements only, and db_tx(): the one way to run a
 * transaction.
 *
 * Statements are prepared once per connection and cached by their SQL text
 * pointer (pass string literals).  Parameters are described by a type string:
 *   'i' int64_t     's' const char * (NUL-terminated; NULL binds SQL NULL)
 *   'b' const void *, size_t (bytes)
 * Results are buffered: every column is fetched as text. */
#ifndef SHOP_DB_H
#define SHOP_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    DB_OK = 0,
    DB_ERROR = -1,        /* a statement failed (see db_errno()) */
    DB_UNAVAILABLE = -2,  /* no database after bounded retries: answer 503 */
    DB_CONFLICT = -3,     /* duplicate key (1062) */
};

/* What a service's store returns besides the DB_* codes: one list for every
 * service, so no two outcomes share a number (a handler that tests for one
 * can never be handed another).  A store's guard callbacks (product) use
 * their own codes <= STORE_GUARD_MIN. */
enum {
    STORE_NOT_FOUND = -10,      /* no such row (user, refresh token, product) */
    STORE_REJECTED = -11,       /* auth: refresh token expired, spent or revoked */
    STORE_INSUFFICIENT = -12,   /* product: stock would go below zero */
    STORE_UNAVAILABLE = -13,    /* product reservation: a product missing or not active */
    STORE_INVALID_STATE = -14,  /* product reservation: released; auth: the last admin */
    STORE_FAILED = -15,         /* order: out of memory or an inconsistent row (500) */
    STORE_STANDING = -16,       /* order: the reservation already has its order */
    STORE_FENCED = -17,         /* order: the reservation was given up (expired) */
    STORE_TOO_MUCH = -18,       /* product: stock would go above STORE_STOCK_MAX */
    STORE_MIXED = -19,          /* product reservation: lines in more than one currency */
    STORE_UNKNOWN = -20,        /* product: a COMMIT got no answer; the write may stand */
    STORE_GUARD_MIN = -100,
};

/* Reads DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME, DB_SOCKET (the
 * writer) and DB_READ_HOST, DB_READ_PORT (default 3306), DB_READ_SOCKET (the
 * reader; unset: none) from config.h for the connections to come (made
 * lazily, remade after a loss).  Returns 0, or -1 when a setting is unusable. */
int db_init(void);
void db_close(void);

/* For connections made from now on: the server closes one after `seconds`
 * without a statement (wait_timeout; 0: the server's default).  A process
 * that holds a named lock (db_try_lock) as a lease and may freeze (SIGSTOP,
 * a stuck broker call) sets it short, so the lease passes on. */
void db_set_idle_timeout(unsigned seconds);

/* True when a connection can be made and the server answers (health). */
bool db_ping(void);

/* Runs a statement.  Returns affected rows (>= 0) or DB_ERROR / DB_CONFLICT. */
int64_t db_exec(const char *sql, const char *types, ...);

/* One statement for many ids: sql holds the list as DB_IDS, e.g.
 * "UPDATE t SET x = 1 WHERE id IN " DB_IDS, and no other parameter.  Runs
 * it for ids[0..n) DB_IDS_MAX at a time, padding a short chunk with its last
 * id (a repeated id names the same row), so a batch of 64 rows is 4 round
 * trips, not 64.  sql must be a literal (statements are cached by address).
 * Returns the rows affected in all, or DB_ERROR / DB_CONFLICT. */
#define DB_IDS_MAX 16
#define DB_IDS "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
int64_t db_exec_ids(const char *sql, const int64_t *ids, int n);

/* AUTO_INCREMENT id of the last insert on this connection. */
int64_t db_last_id(void);

typedef struct db_res db_res;

/* Runs a query and buffers all rows.  Returns NULL on error (db_errno()).
 * Outside a transaction a lost connection is reconnected and the query
 * retried once. */
db_res *db_query(const char *sql, const char *types, ...);

/* db_query for 1..DB_IDS_MAX ids in a DB_IDS list, padded as db_exec_ids
 * does (a row matched by a repeated id comes back once).  NULL on error,
 * or when n is out of range. */
db_res *db_query_ids(const char *sql, const int64_t *ids, int n);

/* db_query() on the read-only connection, for a single statement that may
 * see data a little behind the writer (Galera applies a commit on the other
 * nodes a moment after the writer returns it).  Goes to the writer instead
 * when no reader is configured, inside a transaction, when the reader's node
 * is down or not Synced (checked on connect and then once a second), or when
 * the statement fails there; a failed reader is left alone for a second.
 * Never use it for a read that decides a write. */
db_res *db_read(const char *sql, const char *types, ...);

int db_rows(const db_res *r);
const char *db_str(const db_res *r, int row, int col);    /* NULL for SQL NULL */
int64_t db_int(const db_res *r, int row, int col);        /* 0 for NULL */
/* Copies a column's text into dst[n], cut to fit, always terminated ("" for
 * NULL). */
void db_copy(char *dst, size_t n, const db_res *r, int row, int col);

/* A cluster-wide "only one at a time" (the sweeps, one Idempotency-Key): a
 * named lock on the writer, held by this connection until db_unlock() or
 * until the connection ends.  db_try_lock() waits up to wait_s seconds (0:
 * not at all): 1 taken, 0 held elsewhere, DB_ERROR when the database does
 * not answer. */
int db_try_lock(const char *name, int wait_s);
void db_unlock(const char *name);
size_t db_len(const db_res *r, int row, int col);
bool db_null(const db_res *r, int row, int col);
void db_free(db_res *r);

/* Copies columns 0 and 1 of up to max rows of r as integers into a[] and
 * b[], then frees r.  Returns the count, or DB_ERROR when r is NULL (the
 * query failed). */
int db_int_pairs(db_res *r, int64_t *a, int64_t *b, int max);

/* MariaDB error number of the last failure on this connection (0 if none). */
unsigned db_errno(void);
/* True when the last error is one a whole-transaction retry can cure:
 * deadlock 1213, lock wait timeout 1205, lost/refused connection, and Galera's
 * not-Primary/not-ready answers (1047 and friends). */
bool db_retryable(void);

/* Runs fn(arg) inside BEGIN ... COMMIT.  fn returns >= 0 to commit (that
 * value is returned), DB_ERROR after a failed statement, or any other
 * negative value to roll back and return it unchanged (business outcome such
 * as "insufficient stock").  A retryable failure, in fn or at COMMIT, rolls
 * back and reruns fn from the start, with jittered exponential backoff, up to
 * a bound; then DB_UNAVAILABLE.  A non-retryable DB error returns DB_ERROR. */
typedef int (*db_tx_fn)(void *arg);
int db_tx(db_tx_fn fn, void *arg);

/* True when the last db_tx() failed after a COMMIT that got no answer (the
 * connection lost: errors 2006, 2013) and no later attempt ran its
 * statements again: its changes may or may not have landed.  A caller whose
 * transaction can tell (a unique key it writes) runs it again, later. */
bool db_tx_outcome_unknown(void);

/* Tests only: makes the next db_tx() COMMIT succeed and then look lost with
 * its connection (2013), so db_tx() runs the transaction again with
 * db_tx_outcome_unknown() true.  lib/server.c sets it for a request with
 * `X-Fault-Inject: commit-lost` when ALLOW_FAULT_INJECTION=1. */
void db_fault_lose_next_commit(bool on);

/* Retention: runs `sql`, a DELETE that takes two parameters (the age in
 * seconds past which a row goes, and the batch size: "... < UTC_TIMESTAMP(3)
 * - INTERVAL ? SECOND ORDER BY <indexed column> LIMIT ?"), again and again
 * while a batch comes back full, each batch its own short transaction through
 * db_tx(), so no lock is held for longer than one batch takes; at most
 * max_batches per call (the rest waits for the next call).  Returns the rows
 * deleted, or a negative DB_* code when a batch failed (rows of the batches
 * before it stay deleted). */
int64_t db_purge(const char *sql, int64_t age_s, int batch, int max_batches);

/* A DATETIME(3) as the services store it (UTC, since every session runs with
 * time_zone '+00:00'), "2026-11-24 19:30:00.123", as RFC 3339:
 * "2026-11-24T19:30:00.123Z".  NULL gives "". */
void db_time_rfc3339(const char *dbtime, char *out, size_t n);

/* Counters for metrics: transactions retried since start. */
uint64_t db_retry_count(void);

/* Calls hook (NULL: none) on every whole-transaction retry, so a layer above
 * (server.c wires metrics) can count retries without db depending on it. */
void db_on_retry(void (*hook)(void));

#endif
