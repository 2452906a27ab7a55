/* revoke.c: see revoke.h.  Layout: a header (magic, slot count, the
 * whole-host mark) and REVOKE_SLOTS slots {seq, user_id, not_before_ms}, all
 * 64-bit words read and written with __atomic builtins. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "revoke.h"

#define REVOKE_MAGIC 0x73686f707265766bULL   /* "shoprevk" */

typedef struct revoke_slot {
    uint64_t seq;            /* odd: a writer is in the slot */
    int64_t user_id;         /* the key: > 0 a user, < 0 a login (revoke_sid_key);
                                0: never used (ends a probe chain) */
    int64_t not_before_ms;
} revoke_slot;

typedef struct revoke_region {
    uint64_t magic;
    uint64_t slots;
    int64_t all_before_ms;   /* every token issued before this is void */
    uint64_t reserved;
    revoke_slot slot[REVOKE_SLOTS];
} revoke_region;

static revoke_region *region;
static bool region_writable;
static int writer_fd = -1;
static char reader_path[512];
static time_t reader_next_try;

int64_t revoke_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (int64_t)time(NULL) * 1000;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t revoke_home(int64_t key)
{
    return ((uint64_t)key * 0x9E3779B97F4A7C15ULL) >> 48;   /* 16 bits: REVOKE_SLOTS */
}

/* A login's key: its sid's 64-bit FNV-1a hash, made negative (never 0 or
 * a user id).  A sid holds 128 random bits: two logins share a key with
 * odds of about 2^-63, and then one's reuse voids the other's tokens too. */
static int64_t revoke_sid_key(const char *sid)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)sid; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return -(int64_t)(h >> 1) - 1;
}

static int64_t load(const int64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

void revoke_reader_init(const char *path)
{
    snprintf(reader_path, sizeof reader_path, "%s", path ? path : "");
    reader_next_try = 0;
}

/* Maps the reader's file when it exists and is complete. */
static void revoke_reader_map(void)
{
    time_t now = time(NULL);
    if (!reader_path[0] || now < reader_next_try)
        return;
    reader_next_try = now + 1;
    int fd = open(reader_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_warn("revoke: cannot open %s (errno %d): no token is refused for revocation yet",
                 reader_path, errno);
        return;
    }
    struct stat st;
    void *m = MAP_FAILED;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(revoke_region))
        m = mmap(NULL, sizeof(revoke_region), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return;              /* not initialized by its writer yet */
    region = m;
    region_writable = false;
}

/* True when `key` has an entry whose not_before is after iat_ms. */
static bool revoke_key_is_revoked(int64_t key, int64_t iat_ms)
{
    uint64_t h = revoke_home(key);
    for (uint64_t i = 0; i < REVOKE_PROBES; i++) {
        revoke_slot *s = &region->slot[(h + i) & (REVOKE_SLOTS - 1)];
        int64_t uid = 0, nb = 0;
        for (int tries = 0;; tries++) {
            uint64_t s1 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
            uid = load(&s->user_id);
            nb = load(&s->not_before_ms);
            uint64_t s2 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
            if (s1 == s2 && !(s1 & 1))
                break;
            if (tries > 1000)        /* a writer died inside: take what is there */
                break;
        }
        if (uid == 0)
            return false;
        if (uid == key)
            return iat_ms < nb;
    }
    return false;
}

bool revoke_is_revoked(int64_t user_id, const char *sid, int64_t iat_ms)
{
    if (!region)
        revoke_reader_map();
    if (!region || __atomic_load_n(&region->magic, __ATOMIC_ACQUIRE) != REVOKE_MAGIC)
        return false;
    if (iat_ms < load(&region->all_before_ms))
        return true;
    if (revoke_key_is_revoked(user_id, iat_ms))
        return true;
    return sid && sid[0] && revoke_key_is_revoked(revoke_sid_key(sid), iat_ms);
}

int revoke_writer_open(const char *path, int64_t now_ms)
{
    revoke_close();
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_error("revoke: cannot open %s (errno %d)", path, errno);
        return -1;
    }
    if (flock(fd, LOCK_EX) != 0) {
        log_error("revoke: cannot lock %s (errno %d)", path, errno);
        close(fd);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || ((size_t)st.st_size < sizeof(revoke_region) &&
                                ftruncate(fd, sizeof(revoke_region)) != 0)) {
        log_error("revoke: cannot size %s (errno %d)", path, errno);
        flock(fd, LOCK_UN);
        close(fd);
        return -1;
    }
    void *m = mmap(NULL, sizeof(revoke_region), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        log_error("revoke: cannot map %s (errno %d)", path, errno);
        flock(fd, LOCK_UN);
        close(fd);
        return -1;
    }
    region = m;
    region_writable = true;
    if (region->magic != REVOKE_MAGIC || region->slots != REVOKE_SLOTS) {
        /* New (or foreign) file: the events before now never reached it. */
        memset(region, 0, sizeof *region);
        region->slots = REVOKE_SLOTS;
        region->all_before_ms = now_ms;
        __atomic_store_n(&region->magic, REVOKE_MAGIC, __ATOMIC_RELEASE);
        log_info("revoke: new list %s: tokens issued before now are void on this host", path);
    }
    for (size_t i = 0; i < REVOKE_SLOTS; i++)     /* a writer that died inside a slot */
        if (region->slot[i].seq & 1)
            __atomic_fetch_add(&region->slot[i].seq, 1, __ATOMIC_ACQ_REL);
    flock(fd, LOCK_UN);
    writer_fd = fd;
    return 0;
}

static void slot_write(revoke_slot *s, int64_t user_id, int64_t nb)
{
    __atomic_fetch_add(&s->seq, 1, __ATOMIC_ACQ_REL);     /* odd */
    __atomic_store_n(&s->user_id, user_id, __ATOMIC_RELEASE);
    __atomic_store_n(&s->not_before_ms, nb, __ATOMIC_RELEASE);
    __atomic_fetch_add(&s->seq, 1, __ATOMIC_ACQ_REL);     /* even */
}

static int revoke_add_key(int64_t key, int64_t not_before_ms, int64_t now_ms, int64_t keep_ms)
{
    if (!region || !region_writable || writer_fd < 0 || key == 0)
        return -1;
    if (flock(writer_fd, LOCK_EX) != 0) {
        log_error("revoke: cannot lock the list (errno %d)", errno);
        return -1;
    }
    uint64_t h = revoke_home(key);
    revoke_slot *reuse = NULL, *found = NULL;
    for (uint64_t i = 0; i < REVOKE_PROBES; i++) {
        revoke_slot *s = &region->slot[(h + i) & (REVOKE_SLOTS - 1)];
        if (s->user_id == key) {
            found = s;
            break;
        }
        if (s->user_id == 0) {
            if (!reuse)
                reuse = s;
            break;
        }
        if (!reuse && s->not_before_ms < now_ms - keep_ms)
            reuse = s;
    }
    int rc = 0;
    if (found) {
        if (found->not_before_ms < not_before_ms)
            slot_write(found, key, not_before_ms);
    } else if (reuse) {
        slot_write(reuse, key, not_before_ms);
    } else {
        log_warn("revoke: no free slot for key %lld: every token issued before %lld is void",
                 (long long)key, (long long)not_before_ms);
        if (region->all_before_ms < not_before_ms)
            __atomic_store_n(&region->all_before_ms, not_before_ms, __ATOMIC_RELEASE);
        rc = 1;
    }
    flock(writer_fd, LOCK_UN);
    return rc;
}

int revoke_add(int64_t user_id, int64_t not_before_ms, int64_t now_ms, int64_t keep_ms)
{
    return user_id > 0 ? revoke_add_key(user_id, not_before_ms, now_ms, keep_ms) : -1;
}

int revoke_add_session(const char *sid, int64_t not_before_ms, int64_t now_ms, int64_t keep_ms)
{
    return sid && sid[0] ? revoke_add_key(revoke_sid_key(sid), not_before_ms, now_ms, keep_ms) : -1;
}

void revoke_close(void)
{
    if (region)
        munmap(region, sizeof *region);
    region = NULL;
    region_writable = false;
    if (writer_fd >= 0)
        close(writer_fd);
    writer_fd = -1;
    reader_next_try = 0;
}
