/* test_events_broker.c: broker_open's walk over AMQP_HOSTS (events/broker.c).
 * Three local listeners stand in for the nodes: each accepts a connection
 * and closes it at once, so every try fails at the AMQP handshake, and the
 * order in which they were tried is what the listeners saw.  Every call
 * must try each node exactly once, starting after the last that failed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include "cunit_main.h"
#include "broker.h"

#define NODES 3

static int lfd[NODES];
static int tried[32];           /* listener index per accepted connection */
static int ntried;
static volatile int stop;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *acceptor(void *arg)
{
    (void)arg;
    struct pollfd p[NODES];
    for (int i = 0; i < NODES; i++)
        p[i] = (struct pollfd){.fd = lfd[i], .events = POLLIN};
    while (!stop) {
        if (poll(p, NODES, 20) <= 0)
            continue;
        for (int i = 0; i < NODES; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            int c = accept(lfd[i], NULL, NULL);
            if (c < 0)
                continue;
            close(c);
            pthread_mutex_lock(&mu);
            if (ntried < (int)(sizeof tried / sizeof tried[0]))
                tried[ntried++] = i;
            pthread_mutex_unlock(&mu);
        }
    }
    return NULL;
}

static pthread_t thread;

static int setup(void)
{
    char hosts[128] = "";
    for (int i = 0; i < NODES; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        lfd[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (lfd[i] < 0 || bind(lfd[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            listen(lfd[i], 8) != 0 || getsockname(lfd[i], (struct sockaddr *)&a, &len) != 0)
            return -1;
        size_t used = strlen(hosts);
        snprintf(hosts + used, sizeof hosts - used, "%s127.0.0.1:%d", i ? "," : "", ntohs(a.sin_port));
    }
    if (setenv("SHOP_AMQP_HOSTS", hosts, 1) != 0)
        return -1;
    return pthread_create(&thread, NULL, acceptor, NULL) == 0 ? 0 : -1;
}

static int teardown(void)
{
    stop = 1;
    pthread_join(thread, NULL);
    for (int i = 0; i < NODES; i++)
        close(lfd[i]);
    return 0;
}

/* One broker_open against nodes that all fail: the listener indexes it
 * reached, in order, into out (at most NODES + 1 of them). */
static int open_once(int *out)
{
    pthread_mutex_lock(&mu);
    ntried = 0;
    pthread_mutex_unlock(&mu);
    broker b;
    CU_ASSERT_EQUAL(broker_open(&b, "test"), -1);
    usleep(100 * 1000);             /* the acceptor's last poll round */
    pthread_mutex_lock(&mu);
    int n = ntried;
    memcpy(out, tried, sizeof(int) * (size_t)(n > NODES + 1 ? NODES + 1 : n));
    pthread_mutex_unlock(&mu);
    return n;
}

static void test_every_node_is_tried_once_per_open_starting_after_the_last_failed(void)
{
    int got[NODES + 1];
    for (int round = 0; round < 4; round++) {
        int n = open_once(got);
        CU_ASSERT_EQUAL_FATAL(n, NODES);
        int seen[NODES] = {0};
        for (int i = 0; i < n; i++)
            seen[got[i]]++;
        for (int k = 0; k < NODES; k++)
            CU_ASSERT_EQUAL(seen[k], 1);
        /* Consecutive: each try the node after the one before. */
        for (int i = 1; i < n; i++)
            CU_ASSERT_EQUAL(got[i], (got[i - 1] + 1) % NODES);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("broker_open", setup, teardown);
    CU_add_test(s, "every node is tried once per open, in turn",
                test_every_node_is_tried_once_per_open_starting_after_the_last_failed);
    return cunit_run_all();
}
