/**
 * The small-packet UDP load: a C sender and receiver compiled with gcc when the benchmark
 * starts. Node's dgram cannot offer a million packets per second; one sendmmsg() call of
 * 64 datagrams can, and recvmmsg() on the receiving side keeps the receiver from being
 * what is measured.
 *
 *   flood send DST PORT SECONDS SIZE [RATE]  ->  "SENT ELAPSED_S REFUSED"
 *   flood recv PORT MAX_SECONDS IDLE_S ->  "ready", later "RECEIVED SPAN_S"
 *   flood wake COUNT INTERVAL_US       ->  "MEDIAN_US P99_US"
 *
 * The sender stops after SECONDS; the receiver stops IDLE_S after the last datagram (or
 * at MAX_SECONDS) and reports the span from its first to its last datagram, so its rate
 * is not diluted by the time before the sender started.
 *
 * `wake` measures how late a process blocked in read() runs after a pipe write, at
 * ping-like intervals: the floor under every hop a userspace dataplane adds (the kernel's
 * own forwarding runs in softirq and waits for nobody).
 */
import { compileC } from './proc.js';

const FLOOD_C = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_SIZE 1472

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) { perror(what); exit(1); }

/* Large socket buffers: bursts must not be lost to a default-sized buffer. */
static void big_buffer(int fd, int force, int plain) {
  int n = 16 << 20;
  if (setsockopt(fd, SOL_SOCKET, force, &n, sizeof n) < 0) setsockopt(fd, SOL_SOCKET, plain, &n, sizeof n);
}

/* Sleeps until t (CLOCK_MONOTONIC seconds). */
static void sleep_until(double t) {
  struct timespec ts = { (time_t)t, (long)((t - (time_t)t) * 1e9) };
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

/* rate 0: as fast as sendmmsg() goes. Otherwise paced to rate datagrams/s: each batch holds
 * what the schedule owes (at most BATCH), and the sender sleeps while it is ahead, so a
 * paced run leaves the CPU it does not need to the path under test. */
static int sender(const char *ip, int port, double seconds, int size, double rate) {
  static char payload[MAX_SIZE];
  struct mmsghdr msgs[BATCH];
  struct iovec iov = { payload, (size_t)size };
  struct sockaddr_in dst;
  memset(&dst, 0, sizeof dst);
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  if (inet_pton(AF_INET, ip, &dst.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", ip); return 2; }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  big_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);
  if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) die("connect");
  memset(payload, 0x5a, sizeof payload);
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) { msgs[i].msg_hdr.msg_iov = &iov; msgs[i].msg_hdr.msg_iovlen = 1; }
  unsigned long long sent = 0, refused = 0, refused_datagrams = 0;
  double start = now();
  for (double t = start; t - start < seconds; t = now()) {
    int want = BATCH;
    if (rate > 0) {
      double owed = (t - start) * rate - (double)(sent + refused_datagrams);
      /* Sleep until a quarter batch is owed: fewer, fuller sendmmsg() calls, bursts no
       * longer than 16 datagrams beyond the schedule. */
      if (owed < 1) { sleep_until(t + (BATCH / 4 - owed) / rate); continue; }
      if (owed < BATCH) want = (int)owed;
    }
    int r = sendmmsg(fd, msgs, want, 0);
    if (r > 0) sent += r;
    /* A full queue or a stray ICMP error is load the path refused, not a reason to stop;
     * a paced sender counts the batch as offered, so it does not try again faster. */
    else if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED || errno == EINTR) {
      refused++;
      if (rate > 0) refused_datagrams += want;
    } else die("sendmmsg");
  }
  printf("%llu %.6f %llu\n", sent, now() - start, refused);
  return 0;
}

static int receiver(int port, double max_seconds, double idle) {
  static char bufs[BATCH][2048];
  struct mmsghdr msgs[BATCH];
  struct iovec iovs[BATCH];
  struct sockaddr_in me;
  memset(&me, 0, sizeof me);
  me.sin_family = AF_INET;
  me.sin_port = htons(port);
  me.sin_addr.s_addr = htonl(INADDR_ANY);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  big_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
  if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0) die("bind");
  struct timeval tv = { 0, 50000 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    iovs[i].iov_base = bufs[i]; iovs[i].iov_len = sizeof bufs[i];
    msgs[i].msg_hdr.msg_iov = &iovs[i]; msgs[i].msg_hdr.msg_iovlen = 1;
  }
  printf("ready\n");
  fflush(stdout);
  unsigned long long got = 0;
  double start = now(), first = 0, last = 0;
  for (;;) {
    double t = now();
    if (t - start > max_seconds || (got > 0 && t - last > idle)) break;
    /* MSG_WAITFORONE: block for the first datagram only, then take what is queued. */
    int r = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, 0);
    if (r > 0) {
      last = now();
      if (got == 0) first = last;
      got += r;
    } else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) die("recvmmsg");
  }
  printf("%llu %.6f\n", got, got > 0 ? last - first : 0.0);
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* A parent writes the time into a pipe every interval; the child, asleep in read(), notes how late it woke. */
static int wake(int count, int interval_us) {
  int p[2];
  if (pipe(p) < 0) die("pipe");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    double *late = malloc(sizeof(double) * count);
    if (late == NULL) die("malloc");
    for (int i = 0; i < count; i++) {
      double t;
      if (read(p[0], &t, sizeof t) != sizeof t) die("read");
      late[i] = (now() - t) * 1e6;
    }
    qsort(late, count, sizeof *late, cmp_double);
    printf("%.1f %.1f\n", late[count / 2], late[count * 99 / 100]);
    exit(0);
  }
  for (int i = 0; i < count; i++) {
    usleep(interval_us);
    double t = now();
    if (write(p[1], &t, sizeof t) != sizeof t) die("write");
  }
  int status;
  if (waitpid(child, &status, 0) < 0) die("waitpid");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
  if ((argc == 6 || argc == 7) && strcmp(argv[1], "send") == 0) {
    int size = atoi(argv[5]);
    if (size < 1 || size > MAX_SIZE) { fprintf(stderr, "size 1..%d\n", MAX_SIZE); return 2; }
    double rate = 0;
    if (argc == 7) {
      char *end;
      rate = strtod(argv[6], &end);
      if (end == argv[6] || *end != '\0' || !(rate >= 0 && rate <= 1e8)) { fprintf(stderr, "rate: a number of datagrams/s, 0..1e8 (0: unpaced)\n"); return 2; }
    }
    return sender(argv[2], atoi(argv[3]), atof(argv[4]), size, rate);
  }
  if (argc == 5 && strcmp(argv[1], "recv") == 0) return receiver(atoi(argv[2]), atof(argv[3]), atof(argv[4]));
  if (argc == 4 && strcmp(argv[1], "wake") == 0) {
    int count = atoi(argv[2]);
    if (count < 1 || count > 1000000) { fprintf(stderr, "count 1..1000000\n"); return 2; }
    return wake(count, atoi(argv[3]));
  }
  fprintf(stderr, "usage: flood send DST PORT SECONDS SIZE [RATE] | flood recv PORT MAX_SECONDS IDLE_SECONDS | flood wake COUNT INTERVAL_US\n");
  return 2;
}
`;

/** Compiles the flood tool into `dir`; returns the executable's path. */
export function buildFlood(dir: string): Promise<string> {
  return compileC(dir, 'flood', FLOOD_C);
}

export interface SendResult {
  readonly sent: number;
  readonly seconds: number;
  readonly refused: number;
}

export function parseSend(out: string): SendResult {
  const [sent, seconds, refused] = out.trim().split(/\s+/).map(Number);
  if (![sent, seconds, refused].every(Number.isFinite)) throw new Error(`flood send: unexpected output ${JSON.stringify(out)}`);
  return { sent, seconds, refused };
}

export interface ReceiveResult {
  readonly received: number;
  readonly span: number;
}

export interface WakeResult {
  readonly medianUs: number;
  readonly p99Us: number;
}

export function parseWake(out: string): WakeResult {
  const [medianUs, p99Us] = out.trim().split(/\s+/).map(Number);
  if (![medianUs, p99Us].every(Number.isFinite)) throw new Error(`flood wake: unexpected output ${JSON.stringify(out)}`);
  return { medianUs, p99Us };
}

export function parseReceive(out: string): ReceiveResult {
  const last = out.trim().split('\n').pop() ?? '';
  const [received, span] = last.split(/\s+/).map(Number);
  if (![received, span].every(Number.isFinite)) throw new Error(`flood recv: unexpected output ${JSON.stringify(out)}`);
  return { received, span };
}
