/*
 * The kernel floor: the same MRT_ADD_MFC loop as floor.ts, in C. Compiled by `npm run bench`
 * (gcc -O2) into a temp dir and run inside the lab's router namespace:  floor N
 * Prints {"n", "ms", "perSec", "closeMs"} like floor.ts. Only the MRT_ADD_MFC loop is timed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/mroute.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void add_vif(int fd, vifi_t vifi, const char *name) {
  struct vifctl v;
  memset(&v, 0, sizeof v);
  v.vifc_vifi = vifi;
  v.vifc_flags = VIFF_USE_IFINDEX;
  v.vifc_threshold = 1;
  v.vifc_lcl_ifindex = (int)if_nametoindex(name);
  if (v.vifc_lcl_ifindex == 0) die(name);
  if (setsockopt(fd, IPPROTO_IP, MRT_ADD_VIF, &v, sizeof v) != 0) die("MRT_ADD_VIF");
}

int main(int argc, char **argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
  if (n <= 0 || n >= (1L << 24)) {
    fprintf(stderr, "usage: floor N\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_IGMP);
  if (fd < 0) die("socket");
  int one = 1;
  if (setsockopt(fd, IPPROTO_IP, MRT_INIT, &one, sizeof one) != 0) die("MRT_INIT");
  add_vif(fd, 0, "up0");
  add_vif(fd, 1, "dn1");

  struct mfcctl m;
  memset(&m, 0, sizeof m);
  inet_pton(AF_INET, "10.1.1.2", &m.mfcc_origin);
  m.mfcc_parent = 0;
  m.mfcc_ttls[1] = 1;
  double t0 = now_ms();
  for (long i = 0; i < n; i++) {
    m.mfcc_mcastgrp.s_addr = htonl((239u << 24) | (uint32_t)i);
    if (setsockopt(fd, IPPROTO_IP, MRT_ADD_MFC, &m, sizeof m) != 0) die("MRT_ADD_MFC");
  }
  double ms = now_ms() - t0;
  double c0 = now_ms();
  setsockopt(fd, IPPROTO_IP, MRT_DONE, NULL, 0);
  close(fd);
  double close_ms = now_ms() - c0;
  printf("{\"n\":%ld,\"ms\":%.3f,\"perSec\":%.0f,\"closeMs\":%.3f}\n", n, ms, n / (ms / 1000.0), close_ms);
  return 0;
}
