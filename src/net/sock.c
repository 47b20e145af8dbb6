#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/*
** getaddrinfo reports in its own codes, not in errno: the text comes from
** gai_strerror, except for EAI_SYSTEM, whose cause is in errno.
*/
int sl_sock_resolve(const char *host, int star_is_any, struct sockaddr_in *sa,
                    const char **why) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  if (star_is_any && (host == NULL || strcmp(host, "*") == 0)) {
    sa->sin_addr.s_addr = htonl(INADDR_ANY);
    return 0;
  }
  if (host == NULL) {
    *why = "no address given";
    return -1;
  }
  if (inet_pton(AF_INET, host, &sa->sin_addr) == 1) return 0;
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_INET;
  int rc = getaddrinfo(host, NULL, &hints, &res);
  if (rc != 0) {
    *why = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
    return -1;
  }
  if (res == NULL) {
    *why = "no IPv4 address";
    return -1;
  }
  sa->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
  freeaddrinfo(res);
  return 0;
}

int sl_sock_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL, 0);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int sl_sock_listen(const struct sockaddr_in *sa, uint32_t port, int *out_fd) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = *sa;
  a.sin_port = htons((uint16_t)port);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
      sl_sock_nonblocking(fd) != 0) {
    int e = errno;
    close(fd);
    return e;
  }
  *out_fd = fd;
  return 0;
}

uint32_t sl_sock_port(int fd) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) return 0;
  return ntohs(sa.sin_port);
}

/*
** Only a taken P+1 is worth another try with a new P; any other failure
** (EMFILE above all) is the answer, with the port it happened on.
*/
int sl_sock_listen_pair(const struct sockaddr_in *sa, uint32_t *port, int fd[2],
                        uint32_t *failed) {
  int e = EADDRINUSE;
  for (int attempt = 0; attempt < 50; attempt++) {
    *failed = *port;
    e = sl_sock_listen(sa, *port, &fd[0]);
    if (e != 0) return e;
    uint32_t p = *port != 0 ? *port : sl_sock_port(fd[0]);
    *failed = p + 1;
    e = p < 65535 ? sl_sock_listen(sa, p + 1, &fd[1]) : EADDRINUSE;
    if (e == 0) {
      *port = p;
      return 0;
    }
    close(fd[0]);
    fd[0] = -1;
    if (*port != 0 || e != EADDRINUSE) return e;   /* no retry can help */
  }
  return e;
}

void sl_sock_error(char *err, size_t len, const char *what, const char *addr,
                   uint32_t port, int e) {
  sl_sock_error_text(err, len, what, addr, port, strerror(e));
}

void sl_sock_error_text(char *err, size_t len, const char *what,
                        const char *addr, uint32_t port, const char *why) {
  if (err != NULL && len > 0)
    snprintf(err, len, "%s %s:%u: %s", what, addr, (unsigned)port, why);
}

int sl_sock_udp_drops(int fd, uint32_t *drops) {
  uint32_t mi[SK_MEMINFO_VARS] = {0};
  socklen_t len = sizeof mi;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mi, &len) == 0 &&
      len > SK_MEMINFO_DROPS * sizeof mi[0]) {
    *drops = mi[SK_MEMINFO_DROPS];
    return 0;
  }
  return sl_sock_udp_drops_proc(fd, drops);
}

/*
** A line of /proc/net/udp: "sl local remote st tx:rx tr:when retrnsmt uid
** timeout inode ref pointer drops"; the socket's is the one with its inode.
*/
int sl_sock_udp_drops_proc(int fd, uint32_t *drops) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -1;
  FILE *fp = fopen("/proc/self/net/udp", "r");
  if (fp == NULL) return -1;
  char line[512];
  int found = -1;
  while (found != 0 && fgets(line, sizeof line, fp) != NULL) {
    unsigned long long ino;
    unsigned d;
    if (sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %*s %*s %u", &ino, &d) == 2 &&
        ino == (unsigned long long)st.st_ino) {
      *drops = d;
      found = 0;
    }
  }
  fclose(fp);
  return found;
}
