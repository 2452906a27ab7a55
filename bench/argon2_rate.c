/* argon2_rate.c: the login row's ceiling.  Runs crypto_pwhash_str (Argon2id)
 * with the given opslimit/memlimit on N threads for S seconds and prints the
 * total hash rate: the most logins per second this machine could verify if a
 * login cost nothing but its password hash.  bench/run reads opslimit and
 * memlimit from a password hash the auth service stored ($argon2id$...m=,t=),
 * so the parameters are exactly the service's (cgi/auth/handlers.c).
 *
 *   argon2_rate OPSLIMIT MEMLIMIT_BYTES THREADS SECONDS
 *   -> "hashes=N seconds=S rate=R"
 * Built by bench/run: cc -O2 -pthread bench/argon2_rate.c -lsodium */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct worker {
    pthread_t tid;
    unsigned long long ops;
    size_t mem;
    double deadline;
    long count;
    int failed;
} worker;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Hashes a fixed password until the deadline; counts completed hashes. */
static void *run_worker(void *arg)
{
    worker *w = arg;
    char out[crypto_pwhash_STRBYTES];
    static const char pw[] = "correct horse battery";
    while (now_seconds() < w->deadline) {
        if (crypto_pwhash_str_alg(out, pw, strlen(pw), w->ops, w->mem,
                                  crypto_pwhash_ALG_ARGON2ID13) != 0) {
            w->failed = 1;      /* out of memory: report, do not spin */
            break;
        }
        w->count++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s OPSLIMIT MEMLIMIT_BYTES THREADS SECONDS\n", argv[0]);
        return 2;
    }
    unsigned long long ops = strtoull(argv[1], NULL, 10);
    size_t mem = (size_t)strtoull(argv[2], NULL, 10);
    int n = atoi(argv[3]);
    double secs = atof(argv[4]);
    if (sodium_init() < 0 || n < 1 || n > 256 || secs <= 0 || ops < 1 || mem < 8192) {
        fprintf(stderr, "argon2_rate: bad arguments or sodium_init failed\n");
        return 2;
    }
    worker *ws = calloc((size_t)n, sizeof *ws);
    if (!ws)
        return 1;
    double start = now_seconds();
    for (int i = 0; i < n; i++) {
        ws[i] = (worker){.ops = ops, .mem = mem, .deadline = start + secs};
        if (pthread_create(&ws[i].tid, NULL, run_worker, &ws[i]) != 0) {
            fprintf(stderr, "argon2_rate: pthread_create failed\n");
            return 1;
        }
    }
    long total = 0;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(ws[i].tid, NULL);
        total += ws[i].count;
        failed |= ws[i].failed;
    }
    double elapsed = now_seconds() - start;
    free(ws);
    if (failed) {
        fprintf(stderr, "argon2_rate: crypto_pwhash_str failed\n");
        return 1;
    }
    printf("hashes=%ld seconds=%.3f rate=%.2f\n", total, elapsed, (double)total / elapsed);
    return 0;
}
