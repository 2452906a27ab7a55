/* store.c: all of the product service's SQL (shop_product database).
 *
 * Reads are single prepared statements.  Every write that depends on the
 * current row runs inside db_tx() and first locks that row with SELECT ...
 * FOR UPDATE, so version checks and stock arithmetic are serialized per
 * product; stock can never go below zero (and the schema's CHECK constraint
 * backs that up).  Several products are always locked in ascending id order,
 * so two transactions never wait on each other in a cycle.  db_tx reruns a
 * transaction function from the start on deadlock, so each function resets
 * its outputs first.
 *
 * Times are written as UTC_TIMESTAMP(3), never column defaults, so the
 * stored DATETIMEs are UTC whatever the session time zone is. */
#include "store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

#define PRODUCT_COLS \
    "id, sku, name, description, price_cents, currency, stock, status, " \
    "seller_id, version, created_at, updated_at"

static const char SQL_PRODUCT_GET[] =
    "SELECT " PRODUCT_COLS " FROM products WHERE id = ?";
static const char SQL_PRODUCT_LOCK[] =
    "SELECT " PRODUCT_COLS " FROM products WHERE id = ? FOR UPDATE";

void product_clear(product *p)
{
    free(p->description);
    memset(p, 0, sizeof *p);
}

/* Copies src (may be NULL) into a fixed buffer, truncating. */
/* Fills *p from row `row` of a PRODUCT_COLS result.  Returns 0 or -1 (OOM). */
static int load_product(const db_res *r, int row, product *p)
{
    product_clear(p);
    p->id = db_int(r, row, 0);
    db_copy(p->sku, sizeof p->sku, r, row, 1);
    db_copy(p->name, sizeof p->name, r, row, 2);
    const char *d = db_str(r, row, 3);
    p->description = strdup(d ? d : "");
    p->price_cents = db_int(r, row, 4);
    db_copy(p->currency, sizeof p->currency, r, row, 5);
    p->stock = db_int(r, row, 6);
    db_copy(p->status, sizeof p->status, r, row, 7);
    p->seller_id = db_int(r, row, 8);
    p->version = db_int(r, row, 9);
    db_time_rfc3339(db_str(r, row, 10), p->created_at, sizeof p->created_at);
    db_time_rfc3339(db_str(r, row, 11), p->updated_at, sizeof p->updated_at);
    return p->description ? 0 : -1;
}

/* Runs a one-product statement (get or lock) on the writer, or on the
 * reader for `replica`.  Returns 1, 0 or DB_ERROR. */
static int fetch_product_from(const char *sql, int64_t id, bool replica, product *out)
{
    db_res *r = replica ? db_read(sql, "i", id) : db_query(sql, "i", id);
    if (!r)
        return DB_ERROR;
    int rc = 0;
    if (db_rows(r) > 0)
        rc = load_product(r, 0, out) == 0 ? 1 : DB_ERROR;
    db_free(r);
    return rc;
}

static int fetch_product(const char *sql, int64_t id, product *out)
{
    return fetch_product_from(sql, id, false, out);
}

int store_product_get(int64_t id, bool latest, product *out)
{
    int rc = latest ? 0 : fetch_product_from(SQL_PRODUCT_GET, id, true, out);
    /* Not on the replica (yet): the writer decides. */
    if (rc == 0)
        rc = fetch_product(SQL_PRODUCT_GET, id, out);
    if (rc == DB_ERROR && db_retryable())
        return DB_UNAVAILABLE;
    return rc;
}

/* ------------------------------------------------------------ list */

/* Name search runs on the FULLTEXT index products_name_ft (schema.sql).
 * InnoDB's parser splits a name into words at every character that is not a
 * letter, digit or '_', and indexes the words of STORE_SEARCH_MIN_WORD
 * (innodb_ft_min_token_size) to STORE_SEARCH_MAX_WORD (innodb_ft_max_token_size)
 * characters; galera/node.cnf.in keeps both at their defaults and turns the
 * stopword list off, so every such word is indexed and these constants are
 * the whole rule.  The user's text never reaches the boolean-mode parser as
 * syntax: q is cut into words at the same (ASCII) separators, which include
 * every operator character (+ - < > ( ) ~ * " @), and each word becomes
 * "+word*", so all must match, each as the start of a word of the name.
 * Non-ASCII bytes stay inside words (letters of any script); InnoDB splits
 * further at non-ASCII punctuation, and each part must then match too. */
static bool search_word_byte(unsigned char c)
{
    return c >= 0x80 || c == '_' || (c >= '0' && c <= '9') ||
           (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int store_search_query(const char *q, char *out, size_t n)
{
    int words = 0;
    bool too_long = false;
    size_t used = 0;
    /* each kept word w (>= 3 bytes) costs |w| + 3 and is followed by a
     * separator or the end, so 2 |q| + 2 bytes always hold the query */
    assert(!out || n >= 2 * strlen(q) + 2);
    if (out)
        out[0] = '\0';
    for (const char *c = q; *c;) {
        if (!search_word_byte((unsigned char)*c)) {
            c++;
            continue;
        }
        const char *w = c;
        size_t chars = 0;
        for (; *c && search_word_byte((unsigned char)*c); c++)
            chars += ((unsigned char)*c & 0xC0) != 0x80;   /* UTF-8 lead bytes */
        if (chars < STORE_SEARCH_MIN_WORD)
            continue;
        if (chars > STORE_SEARCH_MAX_WORD)
            too_long = true;
        words++;
        if (out)
            used += (size_t)snprintf(out + used, n - used, "%s+%.*s*", used ? " " : "",
                                     (int)(c - w), w);
    }
    return too_long ? -1 : words;
}

/* The list statement is one fixed shape with every parameter always bound
 * (after, viewer, status, seller, q, limit: types "iisisi"), so a single call
 * site serves every filter combination.  An absent filter becomes a constant
 * predicate on its parameter ("? IS NULL" bound to NULL), which the optimizer
 * folds away per execution, leaving `id > ?` plus the real conditions: the
 * anonymous list walks products_status_id, admin lists walk the primary key,
 * and either stops after limit+1 rows.  With q the FULLTEXT index drives
 * instead: it yields the matching rows (few for a rare word), which are
 * filtered by visibility and the cursor and sorted by id; so the cost grows
 * with the number of names matching q, not with the table.
 * (A seller's unfiltered list has its own shape: store_list_own_sql.)
 * The strings are built once into static storage: db.h caches prepared
 * statements by SQL text pointer. */
const char *store_list_sql(product_vis vis, bool status, bool seller, bool q)
{
    static char cache[3][2][2][2][512];
    char *sql = cache[vis][status][seller][q];
    if (sql[0])
        return sql;
    static const char *const vis_sql[] = {
        [VIS_ACTIVE] = "status = 'active' AND ? >= 0",
        [VIS_OWN] = "(status = 'active' OR seller_id = ?)",
        [VIS_ALL] = "? >= 0",
    };
    snprintf(sql, sizeof cache[0][0][0][0],
             "SELECT " PRODUCT_COLS " FROM products WHERE id > ? AND %s AND %s AND %s"
             " AND %s ORDER BY id LIMIT ?",
             vis_sql[vis],
             status ? "status = ?" : "? IS NULL",
             seller ? "seller_id = ?" : "? = 0",
             q ? "MATCH(name) AGAINST(? IN BOOLEAN MODE)" : "? IS NULL");
    return sql;
}

/* The same list with q, two ways.  The FULLTEXT index yields every name with
 * the words before the page can stop: fast for a rare word, seconds for one
 * that nearly every name holds.  So the index gets STORE_SEARCH_BUDGET
 * seconds; past that the word is common by definition, and walking the id
 * order with a substring test fills the page at once: the longest word must
 * occur in the name (a superset of the word-prefix rule; documented). */
#define STORE_SEARCH_BUDGET "0.5"
static const char *store_search_sql(product_vis vis, bool status, bool seller, bool scan)
{
    static char cache[3][2][2][2][600];
    char *sql = cache[vis][status][seller][scan];
    if (sql[0])
        return sql;
    const char *base = store_list_sql(vis, status, seller, true);
    if (!scan) {
        snprintf(sql, sizeof cache[0][0][0][0],
                 "SET STATEMENT max_statement_time = " STORE_SEARCH_BUDGET " FOR %s", base);
        return sql;
    }
    const char *m = strstr(base, "MATCH(name) AGAINST(? IN BOOLEAN MODE)");
    snprintf(sql, sizeof cache[0][0][0][0], "%.*sname LIKE ?%s", (int)(m - base), base,
             m + strlen("MATCH(name) AGAINST(? IN BOOLEAN MODE)"));
    return sql;
}

/* "%word%" for the longest word of q (LIKE's own wildcards escaped). */
static void store_search_like(const char *q, char *out, size_t n)
{
    const char *best = "", *w = NULL;
    size_t best_len = 0;
    for (const char *c = q;; c++) {
        bool in = *c && search_word_byte((unsigned char)*c);
        if (in && !w)
            w = c;
        if (!in && w) {
            if ((size_t)(c - w) > best_len) {
                best = w;
                best_len = (size_t)(c - w);
            }
            w = NULL;
        }
        if (!*c)
            break;
    }
    size_t used = 0;
    out[used++] = '%';
    for (size_t i = 0; i < best_len && used + 4 < n; i++) {
        if (best[i] == '_')         /* the one LIKE wildcard a word may hold */
            out[used++] = '\\';
        out[used++] = best[i];
    }
    out[used++] = '%';
    out[used] = '\0';
}

/* A seller's unfiltered list without q (VIS_OWN) as three index walks instead
 * of one OR: the public rows along products_status_id and the seller's own
 * drafts and archived rows along products_seller_status_id, each a plain
 * range that stops at limit+1, merged by id.  Types "ii" + 2 x "iii" + "i":
 * after, limit, then viewer, after, limit twice, then the final limit.  (With
 * q the FULLTEXT index drives, and the general shape's OR is a mere filter.) */
const char *store_list_own_sql(void)
{
    return "SELECT * FROM ("
           "(SELECT " PRODUCT_COLS " FROM products WHERE status = 'active' AND id > ?"
           " ORDER BY id LIMIT ?) UNION ALL "
           "(SELECT " PRODUCT_COLS " FROM products WHERE seller_id = ? AND status = 'draft'"
           " AND id > ? ORDER BY id LIMIT ?) UNION ALL "
           "(SELECT " PRODUCT_COLS " FROM products WHERE seller_id = ? AND status = 'archived'"
           " AND id > ? ORDER BY id LIMIT ?)) AS page ORDER BY id LIMIT ?";
}

void product_page_free(product_page *p)
{
    for (int i = 0; i < p->n; i++)
        product_clear(&p->items[i]);
    free(p->items);
    memset(p, 0, sizeof *p);
}

int store_product_list(const product_query *q, product_page *out)
{
    memset(out, 0, sizeof *out);
    char *terms = NULL;
    if (q->q) {
        size_t n = 2 * strlen(q->q) + 2;     /* "+w*" per word of >= 3 bytes, spaces */
        if (!(terms = malloc(n)))
            return DB_ERROR;
        int words = store_search_query(q->q, terms, n);
        if (words <= 0) {
            /* -1: a word longer than any indexed one, so no name has it;
             * 0: the caller should have refused q (handlers.c) */
            free(terms);
            out->items = calloc(1, sizeof *out->items);
            return out->items ? DB_OK : DB_ERROR;
        }
    }
    int64_t rows_wanted = (int64_t)q->limit + 1;
    db_res *r;
    db_res *(*query)(const char *, const char *, ...) = q->latest ? db_query : db_read;
    if (q->vis == VIS_OWN && !q->status && q->seller_id <= 0 && !terms)
        r = query(store_list_own_sql(), "iiiiiiiii",
                  q->after_id, rows_wanted,
                  q->viewer_id, q->after_id, rows_wanted,
                  q->viewer_id, q->after_id, rows_wanted, rows_wanted);
    else if (!terms)
        r = query(store_list_sql(q->vis, q->status != NULL, q->seller_id > 0, false),
                  "iisisi", q->after_id, q->viewer_id, q->status, q->seller_id, terms,
                  rows_wanted);
    else {
        r = query(store_search_sql(q->vis, q->status != NULL, q->seller_id > 0, false),
                  "iisisi", q->after_id, q->viewer_id, q->status, q->seller_id, terms,
                  rows_wanted);
        if (!r && db_errno() == 1969) {     /* ER_STATEMENT_TIMEOUT: a common word */
            char like[2 * 84 * 4 + 3];
            store_search_like(q->q, like, sizeof like);
            r = query(store_search_sql(q->vis, q->status != NULL, q->seller_id > 0, true),
                      "iisisi", q->after_id, q->viewer_id, q->status, q->seller_id, like,
                      rows_wanted);
        }
    }
    free(terms);
    if (!r)
        return db_retryable() ? DB_UNAVAILABLE : DB_ERROR;
    int rows = db_rows(r);
    int n = rows > q->limit ? q->limit : rows;
    out->more = rows > q->limit;
    out->items = calloc(n > 0 ? (size_t)n : 1, sizeof *out->items);
    int rc = out->items ? DB_OK : DB_ERROR;
    for (int i = 0; rc == DB_OK && i < n; i++) {
        out->n = i + 1;
        if (load_product(r, i, &out->items[i]) != 0)
            rc = DB_ERROR;
    }
    db_free(r);
    if (rc != DB_OK)
        product_page_free(out);
    return rc;
}

/* ------------------------------------------------------------ writes */

struct create_tx {
    const product_fields *f;
    product *out;
};

/* The last attempt's COMMIT got no answer and the SKU is now taken: the
 * product in the way is that attempt's own when it holds every field the
 * create wrote, at version 1 (then DB_OK with it in *out); else DB_CONFLICT. */
static int create_landed(const product_fields *f, product *out)
{
    db_res *r = db_query("SELECT id FROM products WHERE sku = ?", "s", f->sku);
    if (!r)
        return DB_ERROR;
    int64_t id = db_rows(r) ? db_int(r, 0, 0) : 0;
    db_free(r);
    int rc = id ? fetch_product(SQL_PRODUCT_GET, id, out) : 0;
    if (rc < 0)
        return rc;
    const char *desc = f->description ? f->description : "";
    if (rc == 1 && out->version == 1 && out->seller_id == f->seller_id &&
        out->price_cents == f->price_cents && out->stock == f->stock &&
        strcmp(out->name, f->name) == 0 && strcmp(out->currency, f->currency) == 0 &&
        strcmp(out->status, f->status) == 0 &&
        strcmp(out->description ? out->description : "", desc) == 0)
        return DB_OK;
    product_clear(out);
    return DB_CONFLICT;
}

static int create_fn(void *arg)
{
    struct create_tx *t = arg;
    const product_fields *f = t->f;
    product_clear(t->out);
    int64_t n = db_exec(
        "INSERT INTO products (sku, name, description, price_cents, currency, stock,"
        " status, seller_id, version, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
        "sssisisi", f->sku, f->name, f->description, f->price_cents, f->currency,
        f->stock, f->status, f->seller_id);
    if (n == DB_CONFLICT && db_tx_outcome_unknown())
        return create_landed(f, t->out);
    if (n < 0)
        return (int)n;
    int rc = fetch_product(SQL_PRODUCT_GET, db_last_id(), t->out);
    return rc == 1 ? DB_OK : DB_ERROR;
}

int store_product_create(const product_fields *f, product *out)
{
    struct create_tx t = {f, out};
    return db_tx(create_fn, &t);
}

/* One locked-row write: update, archive or stock. */
enum row_op { OP_UPDATE, OP_ARCHIVE, OP_STOCK };

struct row_tx {
    enum row_op op;
    int64_t id;
    const product_edit *edit;
    int64_t delta;
    store_guard guard;
    void *ctx;
    product *out;
};

/* Whether edit e changes anything of row cur: an edit that sets every field
 * it names to the value it has (an empty PATCH included) is no change, and
 * keeps the version and with it every client's ETag. */
static bool edit_changes(const product_edit *e, const product *cur)
{
    const char *desc = cur->description ? cur->description : "";
    return (e->name && strcmp(e->name, cur->name) != 0) ||
           (e->description && strcmp(e->description, desc) != 0) ||
           (e->has_price && e->price_cents != cur->price_cents) ||
           (e->currency && strcmp(e->currency, cur->currency) != 0) ||
           (e->status && strcmp(e->status, cur->status) != 0);
}

/* Applies t->op to the locked row cur.  Returns DB_OK, a business code, or a
 * db.h code. */
static int apply_row_op(struct row_tx *t, product *cur)
{
    const product_edit *e = t->edit;
    int64_t n = 0;
    switch (t->op) {
    case OP_UPDATE:
        if (!edit_changes(e, cur))
            return DB_OK;
        n = db_exec("UPDATE products SET name = ?, description = ?, price_cents = ?,"
                    " currency = ?, status = ?, version = version + 1,"
                    " updated_at = UTC_TIMESTAMP(3) WHERE id = ?",
                    "ssissi",
                    e->name ? e->name : cur->name,
                    e->description ? e->description : cur->description,
                    e->has_price ? e->price_cents : cur->price_cents,
                    e->currency ? e->currency : cur->currency,
                    e->status ? e->status : cur->status, t->id);
        break;
    case OP_ARCHIVE:
        if (strcmp(cur->status, "archived") == 0)
            return DB_OK;
        n = db_exec("UPDATE products SET status = 'archived', version = version + 1,"
                    " updated_at = UTC_TIMESTAMP(3) WHERE id = ?", "i", t->id);
        break;
    case OP_STOCK:
        if (cur->stock + t->delta < 0)
            return STORE_INSUFFICIENT;
        /* The most a seller may put in; a cancel's returned stock may have
         * taken it past that, and a decrease is always welcome. */
        if (t->delta > 0 && cur->stock + t->delta > STORE_STOCK_MAX)
            return STORE_TOO_MUCH;
        n = db_exec("UPDATE products SET stock = stock + ?, version = version + 1,"
                    " updated_at = UTC_TIMESTAMP(3) WHERE id = ?", "ii", t->delta, t->id);
        break;
    }
    return n < 0 ? (int)n : DB_OK;
}

/* Whether the row already is what t would make it: an edit or archive that
 * needs no change.  (A stock delta always changes the row.) */
static bool row_holds(const struct row_tx *t, const product *cur)
{
    switch (t->op) {
    case OP_UPDATE:
        return !edit_changes(t->edit, cur);
    case OP_ARCHIVE:
        return strcmp(cur->status, "archived") == 0;
    default:
        return false;
    }
}

/* When db_tx runs this again after a COMMIT that got no answer (the
 * connection lost at that moment), the first run's write may stand.  A stock
 * delta cannot tell whether it does and must not be applied twice:
 * STORE_UNKNOWN.  An edit or archive that the row already holds is answered
 * as done, even though its If-Match named the version before it. */
static int row_fn(void *arg)
{
    struct row_tx *t = arg;
    bool again = db_tx_outcome_unknown();
    product_clear(t->out);
    int rc = fetch_product(SQL_PRODUCT_LOCK, t->id, t->out);
    if (rc <= 0)
        return rc == 0 ? STORE_NOT_FOUND : rc;
    if (again && t->op == OP_STOCK)
        return STORE_UNKNOWN;
    if (t->guard && (rc = t->guard(t->out, t->ctx)) != 0)
        return again && row_holds(t, t->out) ? DB_OK : rc;
    rc = apply_row_op(t, t->out);
    if (rc != DB_OK)
        return rc;     /* STORE_INSUFFICIENT, _TOO_MUCH leave the unchanged row in out */
    rc = fetch_product(SQL_PRODUCT_GET, t->id, t->out);
    return rc == 1 ? DB_OK : DB_ERROR;
}

int store_product_update(int64_t id, const product_edit *e, store_guard guard,
                         void *ctx, product *out)
{
    struct row_tx t = {.op = OP_UPDATE, .id = id, .edit = e, .guard = guard,
                       .ctx = ctx, .out = out};
    return db_tx(row_fn, &t);
}

int store_product_archive(int64_t id, store_guard guard, void *ctx, product *out)
{
    struct row_tx t = {.op = OP_ARCHIVE, .id = id, .guard = guard, .ctx = ctx, .out = out};
    return db_tx(row_fn, &t);
}

int store_product_add_stock(int64_t id, int64_t delta, store_guard guard,
                            void *ctx, product *out)
{
    struct row_tx t = {.op = OP_STOCK, .id = id, .delta = delta, .guard = guard,
                       .ctx = ctx, .out = out};
    return db_tx(row_fn, &t);
}

/* ------------------------------------------------------------ reservations */

void reservation_free(reservation *r)
{
    free(r->lines);
    memset(r, 0, sizeof *r);
}

/* Locks reservation `id` and copies its status.  Returns 1, 0 absent, or
 * DB_ERROR. */
static int lock_reservation(int64_t id, char *status, size_t n)
{
    db_res *r = db_query("SELECT status FROM reservations WHERE id = ? FOR UPDATE", "i", id);
    if (!r)
        return DB_ERROR;
    int found = db_rows(r) > 0;
    if (found)
        db_copy(status, n, r, 0, 0);
    db_free(r);
    return found;
}

/* Loads the stored lines of reservation `id` (request order) into out->lines. */
static int load_lines(int64_t id, reservation *out)
{
    db_res *r = db_query("SELECT product_id, quantity, sku, name, unit_price_cents, currency"
                         " FROM reservation_items WHERE reservation_id = ? ORDER BY line_no",
                         "i", id);
    if (!r)
        return DB_ERROR;
    int n = db_rows(r);
    free(out->lines);
    out->lines = calloc(n > 0 ? (size_t)n : 1, sizeof *out->lines);
    out->n = out->lines ? n : 0;
    for (int i = 0; i < out->n; i++) {
        resv_line *l = &out->lines[i];
        l->product_id = db_int(r, i, 0);
        l->quantity = db_int(r, i, 1);
        db_copy(l->sku, sizeof l->sku, r, i, 2);
        db_copy(l->name, sizeof l->name, r, i, 3);
        l->unit_price_cents = db_int(r, i, 4);
        db_copy(l->currency, sizeof l->currency, r, i, 5);
    }
    db_free(r);
    return out->lines ? DB_OK : DB_ERROR;
}

struct reserve_tx {
    int64_t id, user_id;
    int ttl_s;
    resv_line *req;
    int n;
    int *order;          /* indexes of req sorted by product_id */
    reservation *out;
};

/* Answers a repeated reserve from the stored reservation. */
static int replay_reservation(struct reserve_tx *t)
{
    int rc = lock_reservation(t->id, t->out->status, sizeof t->out->status);
    if (rc <= 0)      /* absent right after a duplicate key cannot happen */
        return rc == 0 ? DB_ERROR : rc;
    if (strcmp(t->out->status, "released") == 0)
        return STORE_INVALID_STATE;
    return load_lines(t->id, t->out);
}

/* Takes every line through schema.sql's reserve_line (ascending product
 * id; the first call also writes the reservation row), copying the sale data
 * each answers.  Returns DB_OK, STORE_UNAVAILABLE, STORE_MIXED (active
 * lines in more than one currency: one reservation is one order's) or
 * STORE_INSUFFICIENT, in that order of precedence (lines marked bad: the
 * caller's rollback undoes the lines taken), DB_CONFLICT when the
 * reservation row exists already, or DB_ERROR. */
static int take_lines(struct reserve_tx *t)
{
    int unavailable = 0, short_lines = 0;
    bool mixed = false;
    const char *currency = NULL;
    for (int k = 0; k < t->n; k++) {
        int i = t->order[k];
        resv_line *l = &t->req[i];
        db_res *r = db_query("CALL reserve_line(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             "iiiiiiissssss", t->id, t->user_id, (int64_t)t->ttl_s,
                             (int64_t)(k == 0), (int64_t)i, l->product_id,
                             (int64_t)l->quantity, NULL, NULL, NULL, NULL, NULL, NULL);
        if (!r)
            return k == 0 && db_errno() == 1062 ? DB_CONFLICT : DB_ERROR;
        if (db_rows(r) != 1) {
            db_free(r);
            return DB_ERROR;
        }
        if (db_null(r, 0, 5) || strcmp(db_str(r, 0, 5), "active") != 0) {
            l->bad = true;
            l->available = -1;      /* not for sale, rather than short */
            unavailable++;
        } else {
            db_copy(l->sku, sizeof l->sku, r, 0, 0);
            db_copy(l->name, sizeof l->name, r, 0, 1);
            l->unit_price_cents = db_int(r, 0, 2);
            db_copy(l->currency, sizeof l->currency, r, 0, 3);
            l->available = db_int(r, 0, 4);
            if (currency && strcmp(currency, l->currency) != 0)
                mixed = true;
            currency = currency ? currency : l->currency;
            if (l->quantity > l->available) {
                l->bad = true;
                short_lines++;
            }
        }
        db_free(r);
    }
    if (unavailable) {
        /* The answer names the lines not for sale; a short one is for sale. */
        for (int i = 0; i < t->n; i++)
            if (t->req[i].available >= 0)
                t->req[i].bad = false;
        return STORE_UNAVAILABLE;
    }
    if (mixed)
        return STORE_MIXED;
    return short_lines ? STORE_INSUFFICIENT : DB_OK;
}

static int reserve_fn(void *arg)
{
    struct reserve_tx *t = arg;
    reservation_free(t->out);
    t->out->id = t->id;
    t->out->user_id = t->user_id;
    for (int i = 0; i < t->n; i++) {
        t->req[i].bad = false;
        t->req[i].available = 0;
    }
    int rc = take_lines(t);
    if (rc == DB_CONFLICT)
        return replay_reservation(t);
    if (rc != DB_OK)
        return rc;
    snprintf(t->out->status, sizeof t->out->status, "%s", "held");
    t->out->lines = malloc((size_t)t->n * sizeof *t->out->lines);
    if (!t->out->lines)
        return DB_ERROR;
    memcpy(t->out->lines, t->req, (size_t)t->n * sizeof *t->req);
    t->out->n = t->n;
    return DB_OK;
}

static const resv_line *sort_base;

static int cmp_by_product(const void *a, const void *b)
{
    int64_t x = sort_base[*(const int *)a].product_id;
    int64_t y = sort_base[*(const int *)b].product_id;
    return (x > y) - (x < y);
}

int store_reserve(int64_t id, int64_t user_id, int ttl_s, resv_line *req, int n,
                  reservation *out)
{
    memset(out, 0, sizeof *out);
    int *order = malloc((n > 0 ? (size_t)n : 1) * sizeof *order);
    if (!order)
        return DB_ERROR;
    for (int i = 0; i < n; i++)
        order[i] = i;
    sort_base = req;
    qsort(order, (size_t)n, sizeof *order, cmp_by_product);
    struct reserve_tx t = {id, user_id, ttl_s, req, n, order, out};
    int rc = db_tx(reserve_fn, &t);
    free(order);
    if (rc != DB_OK)
        reservation_free(out);
    return rc;
}

struct confirm_tx {
    const int64_t *ids;
    int n;
    char (*status)[10];
};

/* Two statements per DB_IDS_MAX reservations: the held ones confirmed,
 * then every one's status read (the sweep asks for orders the settle
 * consumer has mostly confirmed already). */
int store_confirm_many_in_tx(const int64_t *all, int n, char (*status)[10])
{
    for (int at = 0; at < n; at += DB_IDS_MAX) {
        int m = n - at < DB_IDS_MAX ? n - at : DB_IDS_MAX;
        const int64_t *ids = all + at;
        if (db_exec_ids("UPDATE reservations SET status = 'confirmed', updated_at = UTC_TIMESTAMP(3)"
                        " WHERE id IN " DB_IDS " AND status = 'held'", ids, m) < 0)
            return DB_ERROR;
        db_res *r = db_query_ids("SELECT id, status FROM reservations WHERE id IN " DB_IDS, ids, m);
        if (!r)
            return DB_ERROR;
        for (int i = 0; i < m; i++) {
            snprintf(status[at + i], 10, "missing");
            for (int k = 0; k < db_rows(r); k++)
                if (db_int(r, k, 0) == ids[i])
                    db_copy(status[at + i], 10, r, k, 1);
        }
        db_free(r);
    }
    return DB_OK;
}

static int confirm_fn(void *arg)
{
    struct confirm_tx *t = arg;
    return store_confirm_many_in_tx(t->ids, t->n, t->status);
}

int store_confirm_many(const int64_t *ids, int n, char (*status)[10])
{
    struct confirm_tx t = {ids, n, status};
    return db_tx(confirm_fn, &t);
}

/* Gives back every line's quantity, locking products in ascending id order. */
static int return_stock(int64_t id)
{
    db_res *r = db_query("SELECT product_id, quantity FROM reservation_items"
                         " WHERE reservation_id = ? ORDER BY product_id", "i", id);
    if (!r)
        return DB_ERROR;
    int rc = DB_OK;
    for (int i = 0; rc == DB_OK && i < db_rows(r); i++) {
        int64_t pid = db_int(r, i, 0);
        db_res *lock = db_query("SELECT id FROM products WHERE id = ? FOR UPDATE", "i", pid);
        if (!lock) {
            rc = DB_ERROR;
            break;
        }
        db_free(lock);
        if (db_exec("UPDATE products SET stock = stock + ?, version = version + 1,"
                    " updated_at = UTC_TIMESTAMP(3) WHERE id = ?",
                    "ii", db_int(r, i, 1), pid) < 0)
            rc = DB_ERROR;
    }
    db_free(r);
    return rc;
}

int store_release_in_tx(int64_t id)
{
    char status[10];
    int rc = lock_reservation(id, status, sizeof status);
    if (rc == 0) {
        /* No reservation yet: leave a tombstone so a late reserve takes
         * nothing.  A reserve racing us makes this insert wait and then
         * conflict: the row is there now, so release it like any other. */
        int64_t ins = db_exec("INSERT INTO reservations (id, status, expires_at, created_at,"
                              " updated_at) VALUES (?, 'released', UTC_TIMESTAMP(3),"
                              " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))", "i", id);
        if (ins >= 0)
            return DB_OK;
        if (ins != DB_CONFLICT)
            return (int)ins;
        rc = lock_reservation(id, status, sizeof status);
        if (rc == 0)
            return DB_ERROR;
    }
    if (rc < 0)
        return rc;
    if (strcmp(status, "released") == 0)
        return DB_OK;
    if ((rc = return_stock(id)) != DB_OK)
        return rc;
    if (db_exec("UPDATE reservations SET status = 'released', updated_at = UTC_TIMESTAMP(3)"
                " WHERE id = ?", "i", id) < 0)
        return DB_ERROR;
    return DB_OK;
}

static int release_fn(void *arg)
{
    return store_release_in_tx(*(int64_t *)arg);
}

int store_release(int64_t id)
{
    return db_tx(release_fn, &id);
}

int store_expired(int64_t *ids, int64_t *user_ids, int max)
{
    db_res *r = db_query("SELECT id, user_id FROM reservations WHERE status = 'held'"
                         " AND expires_at < UTC_TIMESTAMP(3) ORDER BY expires_at LIMIT ?",
                         "i", (int64_t)max);
    if (!r)
        return db_retryable() ? DB_UNAVAILABLE : DB_ERROR;
    return db_int_pairs(r, ids, user_ids, max);
}

int store_reservation_status(int64_t id, char *status, size_t n)
{
    db_res *r = db_query("SELECT status FROM reservations WHERE id = ?", "i", id);
    if (!r)
        return db_retryable() ? DB_UNAVAILABLE : DB_ERROR;
    int found = db_rows(r) > 0;
    if (found)
        db_copy(status, n, r, 0, 0);
    db_free(r);
    return found;
}
