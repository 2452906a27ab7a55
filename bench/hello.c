/* hello.c: the FastCGI no-op of bench/ (the "hello" row).  It answers every
 * request with a tiny JSON body and does nothing else, so its rate through
 * HAProxy -> lighttpd -> FastCGI is the ceiling of that layer: what any
 * service endpoint could reach if its own work cost nothing.  The product
 * rows are reported as a ratio to it.
 *
 * Built by bench/run (not the Makefile) into build/hello.fcgi:
 *   cc -O2 -o build/hello.fcgi bench/hello.c -lfcgi */
#include <fcgi_stdio.h>

int main(void)
{
    /* FCGI_Accept returns < 0 when lighttpd closes the listening socket. */
    while (FCGI_Accept() >= 0)
        printf("Status: 200 OK\r\n"
               "Content-Type: application/json\r\n"
               "Cache-Control: no-store\r\n"
               "Content-Length: 15\r\n"
               "\r\n"
               "{\"hello\":true}\n");
    return 0;
}
