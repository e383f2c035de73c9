/**
 * The load generator of the new-flow benchmark, a C program compiled with gcc when the
 * benchmark starts (Node cannot offer hundreds of thousands of raw packets per second):
 *
 *   newflow syn DST DPORT SECONDS MAX_RATE FIRST_PORT PORTS COUNT_NETNS COUNT_IF NETNS SRC [NETNS SRC]...
 *       -> "SENT ELAPSED_S REFUSED RX_START RX_END CPU_US"
 *   newflow ctflush   -> flushes the connection table of the network namespace it runs in
 *
 * `syn` sends TCP SYNs (20-byte IPv4 header, 20-byte TCP header, no options) from raw
 * sockets (IPPROTO_RAW), each from a source (an address in a network namespace: the socket
 * is opened there with setns) and a source port never used before in the run, so every
 * SYN is a new connection to the dataplane between. Tuples: for each port of
 * FIRST_PORT .. FIRST_PORT+PORTS-1, one SYN from every source, in sendmmsg() batches of
 * 64 consecutive ports from one source, the batches going round the sources. It stops
 * after SECONDS or when the tuples run out, whichever comes first, and never sends faster
 * than MAX_RATE SYNs per second (0: no limit).
 *
 * The count of what arrived is read by the sender itself, from COUNT_IF's rx_packets in
 * COUNT_NETNS's /proc/net/dev, right before its first and right after its last send: the
 * window of the rate is exactly the sending window, and frames a dataplane still had
 * queued when the sender stopped are not counted in it. CPU_US is the sender's own CPU time
 * (user + system) over the window: where a kernel path runs in the sender's system calls
 * (veth transmit processes the packet on the spot), that is the whole path's cost too.
 *
 * `ctflush` is `conntrack -F` in thirty lines of netlink (IPCTNL_MSG_CT_DELETE without
 * attributes), so that conntrack-tools is not needed.
 */
import { compileC, run } from '../dataplane/proc.js';

const TOOL_C = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PKT_LEN 40
#define MAX_SOURCES 64

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) { perror(what); exit(1); }

static void enter(const char *netns) {
  char path[512];
  snprintf(path, sizeof path, "/run/netns/%s", netns);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(path);
  if (setns(fd, CLONE_NEWNET) < 0) die("setns");
  close(fd);
}

/* rx_packets of ifname in the current network namespace, from /proc/self/net/dev. */
static unsigned long long rx_packets(const char *ifname) {
  FILE *f = fopen("/proc/self/net/dev", "r");
  if (f == NULL) die("/proc/self/net/dev");
  char line[512];
  size_t n = strlen(ifname);
  unsigned long long bytes = 0, packets = 0;
  int found = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    char *p = line;
    while (*p == ' ') p++;
    if (strncmp(p, ifname, n) == 0 && p[n] == ':' && sscanf(p + n + 1, "%llu %llu", &bytes, &packets) == 2) { found = 1; break; }
  }
  fclose(f);
  if (!found) { fprintf(stderr, "no interface %s\n", ifname); exit(1); }
  return packets;
}

static double cpu_us(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}

static uint32_t sum16(const uint8_t *p, int len, uint32_t acc) {
  for (int i = 0; i + 1 < len; i += 2) acc += (uint32_t)p[i] << 8 | p[i + 1];
  return acc;
}

static uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return (uint16_t)~acc;
}

static int syn(int argc, char **argv) {
  if (argc < 12 || (argc - 10) % 2 != 0) {
    fprintf(stderr, "usage: newflow syn DST DPORT SECONDS MAX_RATE FIRST_PORT PORTS COUNT_NETNS COUNT_IF NETNS SRC [NETNS SRC]...\n");
    return 2;
  }
  struct sockaddr_in dst;
  memset(&dst, 0, sizeof dst);
  dst.sin_family = AF_INET;
  if (inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[2]); return 2; }
  int dport = atoi(argv[3]);
  double seconds = atof(argv[4]), max_rate = atof(argv[5]);
  long first_port = atol(argv[6]), ports = atol(argv[7]);
  const char *count_netns = argv[8], *count_if = argv[9];
  int nsrc = (argc - 10) / 2;
  if (nsrc > MAX_SOURCES || first_port < 1 || ports < 1 || first_port + ports > 65536) { fprintf(stderr, "bad sources or port range\n"); return 2; }
  int fds[MAX_SOURCES];
  uint8_t srcs[MAX_SOURCES][4];
  for (int k = 0; k < nsrc; k++) {
    enter(argv[10 + 2 * k]);
    if (inet_pton(AF_INET, argv[11 + 2 * k], srcs[k]) != 1) { fprintf(stderr, "bad address %s\n", argv[11 + 2 * k]); return 2; }
    fds[k] = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (fds[k] < 0) die("socket");
    int n = 4 << 20;
    if (setsockopt(fds[k], SOL_SOCKET, SO_SNDBUFFORCE, &n, sizeof n) < 0) setsockopt(fds[k], SOL_SOCKET, SO_SNDBUF, &n, sizeof n);
  }
  /* The sockets keep the namespaces they were opened in; the counter is read from here on. */
  enter(count_netns);

  static uint8_t pkts[BATCH][PKT_LEN];
  struct iovec iovs[BATCH];
  struct mmsghdr msgs[BATCH];
  memset(pkts, 0, sizeof pkts);
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    iovs[i].iov_base = pkts[i];
    iovs[i].iov_len = PKT_LEN;
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &dst;
    msgs[i].msg_hdr.msg_namelen = sizeof dst;
  }
  const uint8_t *daddr = (const uint8_t *)&dst.sin_addr;
  uint32_t seq = 0x9e3779b9u;
  unsigned long long sent = 0, refused = 0;
  long blocks = (ports + BATCH - 1) / BATCH;
  long batches = blocks * nsrc;
  const struct timespec pause = { 0, 20000 };

  unsigned long long rx_start = rx_packets(count_if);
  double cpu_start = cpu_us();
  double start = now(), end = start;
  for (long b = 0; b < batches;) {
    end = now();
    if (end - start >= seconds) break;
    if (max_rate > 0 && (double)(sent + refused) >= max_rate * (end - start)) { nanosleep(&pause, NULL); continue; }
    int k = (int)(b % nsrc);
    long base = (b / nsrc) * BATCH;
    int count = 0;
    for (; count < BATCH && base + count < ports; count++) {
      long port = first_port + base + count;
      uint8_t *ip = pkts[count], *tcp = ip + 20;
      /* IPv4: the kernel fills in the total length, the ID and the header checksum (IP_HDRINCL). */
      ip[0] = 0x45; ip[3] = PKT_LEN; ip[6] = 0x40; ip[8] = 64; ip[9] = IPPROTO_TCP;
      memcpy(ip + 12, srcs[k], 4);
      memcpy(ip + 16, daddr, 4);
      tcp[0] = port >> 8; tcp[1] = port & 0xff; tcp[2] = dport >> 8; tcp[3] = dport & 0xff;
      seq = seq * 1664525u + 1013904223u;
      tcp[4] = seq >> 24; tcp[5] = seq >> 16; tcp[6] = seq >> 8; tcp[7] = seq;
      tcp[12] = 5 << 4; tcp[13] = 0x02; tcp[14] = 0xfa; tcp[15] = 0xf0;
      tcp[16] = 0; tcp[17] = 0;
      /* Pseudo-header (addresses, protocol, TCP length) plus the header. */
      uint16_t c = fold(sum16(tcp, 20, sum16(ip + 12, 8, 0) + IPPROTO_TCP + 20));
      tcp[16] = c >> 8; tcp[17] = c & 0xff;
    }
    b++;
    int r = sendmmsg(fds[k], msgs, count, 0);
    if (r < 0) {
      /* A full queue is load the path refused, not a reason to stop. */
      if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) { refused += count; continue; }
      die("sendmmsg");
    }
    sent += r;
    refused += count - r;
  }
  end = now();
  double cpu = cpu_us() - cpu_start;
  unsigned long long rx_end = rx_packets(count_if);
  printf("%llu %.6f %llu %llu %llu %.0f\n", sent, end - start, refused, rx_start, rx_end, cpu);
  return 0;
}

static int ctflush(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) die("socket(NETLINK_NETFILTER)");
  struct { struct nlmsghdr nh; struct nfgenmsg nf; } req;
  memset(&req, 0, sizeof req);
  req.nh.nlmsg_len = sizeof req;
  req.nh.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.nh.nlmsg_seq = 1;
  req.nf.nfgen_family = AF_INET;
  req.nf.version = NFNETLINK_V0;
  if (send(fd, &req, sizeof req, 0) < 0) die("send");
  char buf[4096];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  if (n < 0) die("recv");
  struct nlmsghdr *nh = (struct nlmsghdr *)buf;
  if (n < (ssize_t)sizeof *nh || nh->nlmsg_type != NLMSG_ERROR) { fprintf(stderr, "ctflush: unexpected answer\n"); return 1; }
  struct nlmsgerr *err = NLMSG_DATA(nh);
  if (err->error != 0) { errno = -err->error; die("ctflush"); }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "syn") == 0) return syn(argc, argv);
  if (argc == 2 && strcmp(argv[1], "ctflush") == 0) return ctflush();
  fprintf(stderr, "usage: newflow syn ... | newflow ctflush\n");
  return 2;
}
`;

/** Compiles the tool into `dir`; returns the executable's path. */
export function buildTool(dir: string): Promise<string> {
  return compileC(dir, 'newflow', TOOL_C);
}

/** One source of SYNs: an address in a network namespace. */
export interface SynSource {
  readonly netns: string;
  readonly ip: string;
}

export interface SynRequest {
  readonly dst: string;
  readonly dport: number;
  readonly seconds: number;
  /** SYNs per second at most; 0 for as fast as the sender goes. */
  readonly maxRate: number;
  readonly firstPort: number;
  readonly ports: number;
  /** Where the arrivals are counted: the backend's interface. */
  readonly countNetns: string;
  readonly countIf: string;
  readonly sources: readonly SynSource[];
}

export interface SynResult {
  /** SYNs the sockets accepted. */
  readonly sent: number;
  /** The sending window (s). */
  readonly seconds: number;
  /** SYNs a full socket or device queue refused. */
  readonly refused: number;
  /** Packets the backend's interface received within the window. */
  readonly arrived: number;
  /** The sender's CPU time over the window (µs), its system calls' kernel work included. */
  readonly cpuUs: number;
}

export function synArgv(tool: string, r: SynRequest): string[] {
  return [
    tool, 'syn', r.dst, String(r.dport), String(r.seconds), String(Math.round(r.maxRate)), String(r.firstPort), String(r.ports),
    r.countNetns, r.countIf, ...r.sources.flatMap((s) => [s.netns, s.ip]),
  ];
}

export function parseSyn(out: string): SynResult {
  const [sent, seconds, refused, rxStart, rxEnd, cpuUs] = out.trim().split(/\s+/).map(Number);
  if (![sent, seconds, refused, rxStart, rxEnd, cpuUs].every(Number.isFinite) || !(seconds > 0)) {
    throw new Error(`newflow syn: unexpected output ${JSON.stringify(out)}`);
  }
  return { sent, seconds, refused, arrived: rxEnd - rxStart, cpuUs };
}

/** Sends SYNs as `r` says; resolves with what the sender and the backend's counter saw. */
export async function sendSyns(tool: string, r: SynRequest): Promise<SynResult> {
  return parseSyn(await run(synArgv(tool, r), { timeoutMs: (r.seconds + 30) * 1000 }));
}
