/*
** Socket helpers shared by the network endpoints (internal to src/net):
** address lookup, non-blocking mode, listeners on one port or on Rogue's
** consecutive pair, and the "<what> <addr>:<port>: <reason>" error text.
*/
#ifndef STREAMLUA_SOCK_H_INCLUDED_
#define STREAMLUA_SOCK_H_INCLUDED_

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

/* IPv4 address of host (a dotted quad or a name); with star_is_any, "*"
** or NULL means every interface. 0, or -1 if it cannot be resolved, with
** *why set to the resolver's reason (static text). */
int sl_sock_resolve(const char *host, int star_is_any, struct sockaddr_in *sa,
                    const char **why);

int sl_sock_nonblocking(int fd);

/* A non-blocking TCP listener on sa's address and `port`. 0 or an errno. */
int sl_sock_listen(const struct sockaddr_in *sa, uint32_t port, int *fd);

/* The local port a socket is bound to. */
uint32_t sl_sock_port(int fd);

/* Listeners on *port and *port + 1; port 0 picks a free pair and stores
** it in *port. 0, or an errno (nothing left open) with *failed set to the
** port that failed. */
int sl_sock_listen_pair(const struct sockaddr_in *sa, uint32_t *port, int fd[2],
                        uint32_t *failed);

/* The count of datagrams the kernel dropped on UDP socket fd for want of
** buffer room: from SO_MEMINFO, or where that is missing (kernels before
** 4.6, qemu-user) from the socket's line in /proc/self/net/udp, which
** sl_sock_udp_drops_proc reads alone. 0, or -1 if neither tells it. */
int sl_sock_udp_drops(int fd, uint32_t *drops);
int sl_sock_udp_drops_proc(int fd, uint32_t *drops);

/* err = "<what> <addr>:<port>: <strerror(e)>" (nothing if err is NULL). */
void sl_sock_error(char *err, size_t len, const char *what, const char *addr,
                   uint32_t port, int e);
/* The same with the reason given as text. */
void sl_sock_error_text(char *err, size_t len, const char *what,
                        const char *addr, uint32_t port, const char *why);

#endif
