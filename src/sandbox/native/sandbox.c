/*
 * podwire-sandbox: what a container runtime does for a pod, without images.
 *
 *   podwire-sandbox pause --netns PATH --hostname NAME
 *     The pod's pause container. Joins the pod's network namespace, makes the pod's UTS,
 *     IPC and PID namespaces, sets the hostname and forks the pod's init (PID 1 of the pod),
 *     which reaps orphans and ends the pod when it ends. Prints the init's pid on stdout,
 *     then waits for it.
 *
 *   podwire-sandbox run --pause PID --pod-dir DIR [options] -- ARGV...
 *     One container process. Joins the pause's network, UTS, IPC and PID namespaces, makes
 *     its own mount namespace whose root is the host's root under a copy-on-write overlay
 *     (writes stay in the container, as an image's writable layer), with a private /run,
 *     a minimal /dev, the pod's /tmp and /dev/shm, the pod's /etc/hosts, /etc/resolv.conf
 *     and /etc/hostname, the pod's volumes, a /proc of the pod's PID namespace and a
 *     read-only /sys. The host's own state (podwire's directory, /run/netns, the old root)
 *     is not reachable from it. Then the process drops to its user, groups and capability
 *     bounding set and runs ARGV. The launcher stays as its parent, forwards signals sent
 *     to it and exits as the container did.
 *
 *     --mount SRC:DST:ro|rw   bind SRC (a path outside the sandbox) at DST inside
 *     --hide PATH             cover PATH with an empty read-only tmpfs (if it exists)
 *     --uid N --gid N --groups N,N   the user (default 0:0, no supplementary groups)
 *     --caps N,N|none         capability numbers kept in the bounding set (default: keep all)
 *     --no-new-privs          PR_SET_NO_NEW_PRIVS (allowPrivilegeEscalation: false)
 *     --read-only-root        the root (the overlay) read-only (readOnlyRootFilesystem)
 *     --workdir DIR           the working directory (default /)
 *
 * Exit codes of the launcher itself: 125 for a sandbox that could not be set up (with the
 * reason on stderr), 126/127 for an ARGV that could not be run, else the container's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define SETUP_FAILED 125
#define MAX_LIST 64

static const char *self = "podwire-sandbox";

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", self);
  vfprintf(stderr, fmt, ap);
  if (errno != 0) fprintf(stderr, ": %s", strerror(errno));
  fputc('\n', stderr);
  va_end(ap);
  _exit(SETUP_FAILED);
}

static void usage(const char *why) {
  fprintf(stderr, "%s: %s\nusage: %s pause --netns PATH --hostname NAME\n       %s run --pause PID --pod-dir DIR [options] -- ARGV...\n", self, why, self, self);
  _exit(2);
}

static long number(const char *text, long min, long max, const char *what) {
  char *end;
  errno = 0;
  long n = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || n < min || n > max) {
    errno = 0;
    fprintf(stderr, "%s: %s: not a number in [%ld, %ld]: %s\n", self, what, min, max, text);
    _exit(2);
  }
  return n;
}

/* "1,2,3" into out[]; "none" or "" is the empty list. */
static int number_list(const char *text, long *out, long max, const char *what) {
  if (strcmp(text, "none") == 0 || *text == '\0') return 0;
  int count = 0;
  char *copy = strdup(text);
  if (copy == NULL) die("out of memory");
  for (char *save = NULL, *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
    if (count == MAX_LIST) usage("too many list items");
    out[count++] = number(item, 0, max, what);
  }
  free(copy);
  return count;
}

/* ---------------------------------------------------------------------------------------
 * Signals: the launcher forwards what is sent to it (kill, not the terminal: a terminal's
 * ^C already reaches the whole foreground process group, the container included).
 */

static volatile pid_t forward_to = 0;

static void forward(int sig, siginfo_t *info, void *context) {
  (void)context;
  if (forward_to > 0 && info->si_code != SI_KERNEL) kill(forward_to, sig);
}

static void forward_signals(void) {
  static const int signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaction(signals[i], &sa, NULL);
}

/* Waits for the child and leaves as it left: its exit code, or killed by its signal. */
static int wait_and_mirror(pid_t child) {
  int status;
  for (;;) {
    pid_t got = waitpid(child, &status, 0);
    if (got == child) break;
    if (got < 0 && errno != EINTR) die("waitpid");
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  int sig = WTERMSIG(status);
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  kill(getpid(), sig);
  return 128 + sig;
}

/* ---------------------------------------------------------------------------------------
 * pause
 */

/* PID 1 of the pod: reaps every orphan; a SIGTERM or SIGINT ends it, and with it, as the
 * kernel ends a PID namespace whose init exits, every process of the pod. */
static void pod_init(void) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  prctl(PR_SET_NAME, "pause", 0, 0, 0);
  for (;;) {
    siginfo_t info;
    if (sigwaitinfo(&all, &info) < 0) continue;
    if (info.si_signo == SIGCHLD) {
      while (waitpid(-1, NULL, WNOHANG) > 0) {
      }
    } else if (info.si_signo == SIGTERM || info.si_signo == SIGINT) {
      _exit(0);
    }
  }
}

static int pause_main(int argc, char **argv) {
  const char *netns = NULL, *hostname = NULL;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--netns") == 0 && i + 1 < argc) netns = argv[++i];
    else if (strcmp(argv[i], "--hostname") == 0 && i + 1 < argc) hostname = argv[++i];
    else usage("pause: unknown argument");
  }
  if (netns == NULL || hostname == NULL) usage("pause needs --netns and --hostname");
  if (strlen(hostname) == 0 || strlen(hostname) > 64) usage("pause: a hostname has 1 to 64 characters");

  int fd = open(netns, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open %s", netns);
  if (setns(fd, CLONE_NEWNET) != 0) die("join the network namespace %s", netns);
  close(fd);
  if (unshare(CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID) != 0) die("make the pod's UTS, IPC and PID namespaces");
  if (sethostname(hostname, strlen(hostname)) != 0) die("sethostname %s", hostname);

  /* The init must not outlive this process: PDEATHSIG does that once it is set, and this
   * pipe covers the moment before. The init says it is armed through it; when this
   * process died first, the pipe has no reader and the init leaves at once (its own
   * SIGPIPE would not end it: a namespace's init ignores signals it has no handler for). */
  int armed[2];
  if (pipe2(armed, O_CLOEXEC) != 0) die("pipe");
  pid_t init = fork();
  if (init < 0) die("fork the pod's init");
  if (init == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    close(armed[0]);
    signal(SIGPIPE, SIG_IGN);
    if (write(armed[1], "1", 1) != 1) _exit(1);
    close(armed[1]);
    signal(SIGPIPE, SIG_DFL);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      if (null > 2) close(null);
    }
    pod_init();
  }
  close(armed[1]);
  char ok;
  ssize_t got;
  do got = read(armed[0], &ok, 1);
  while (got < 0 && errno == EINTR);
  if (got != 1) die("the pod's init did not start");
  close(armed[0]);
  forward_to = init;
  forward_signals();
  printf("%d\n", (int)init);
  fflush(stdout);
  int null = open("/dev/null", O_WRONLY);
  if (null >= 0) dup2(null, 1);
  return wait_and_mirror(init);
}

/* ---------------------------------------------------------------------------------------
 * run: the container's mount namespace
 */

static char *join(const char *a, const char *b) {
  char *out;
  if (asprintf(&out, "%s%s%s", a, (b[0] == '/' || a[strlen(a) - 1] == '/') ? "" : "/", b) < 0) die("out of memory");
  return out;
}

static void mount_or_die(const char *source, const char *target, const char *type, unsigned long flags, const char *data) {
  if (mount(source, target, type, flags, data) != 0) die("mount %s on %s", source != NULL ? source : type, target);
}

/* A read-only bind: the flags of a bind mount change only by remounting it. */
static void bind_mount(const char *source, const char *target, int read_only) {
  mount_or_die(source, target, NULL, MS_BIND | MS_REC, NULL);
  if (read_only) mount_or_die(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
}

/* mkdir -p, inside the new root (which is the overlay: directories land in its upper layer). */
static void make_dirs(const char *path, mode_t mode) {
  char buf[PATH_MAX];
  if (strlen(path) >= sizeof buf) die("path too long: %s", path);
  strcpy(buf, path);
  for (char *p = buf + 1; *p != '\0'; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, mode) != 0 && errno != EEXIST) die("mkdir %s", buf);
    *p = '/';
  }
  if (mkdir(buf, mode) != 0 && errno != EEXIST) die("mkdir %s", buf);
  errno = 0;
}

static int is_under(const char *path, const char *dir) {
  size_t n = strlen(dir);
  if (n == 1 && dir[0] == '/') return 1;
  return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* /proc/self/mountinfo writes space, tab, newline and backslash as \ooo. */
static void unescape(char *s) {
  char *out = s;
  for (char *in = s; *in != '\0'; in++) {
    if (in[0] == '\\' && in[1] >= '0' && in[1] <= '7' && in[2] >= '0' && in[2] <= '7' && in[3] >= '0' && in[3] <= '7') {
      *out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
      in += 3;
    } else {
      *out++ = *in;
    }
  }
  *out = '\0';
}

/* Places the sandbox makes afresh, or the host's own state: the host's mounts there stay out. */
static const char *const NOT_FROM_HOST[] = {"/proc", "/sys", "/dev", "/run", "/var/run", "/tmp"};

/*
 * The overlay holds only the root filesystem. Every other filesystem the host has mounted
 * (a separate /home, /usr or /work) is bound into the sandbox read-only at its place, so the
 * host's files stay visible as the issue asks, but the sandbox cannot change them.
 */
static void bind_host_mounts(const char *root, const char *scratch, char *const *hidden, int hidden_count) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (f == NULL) die("open /proc/self/mountinfo");
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    /* id parent major:minor root mount-point options ... */
    char *fields[5];
    char *save = NULL, *p = line;
    int n = 0;
    for (char *tok; n < 5 && (tok = strtok_r(p, " ", &save)) != NULL; p = NULL) fields[n++] = tok;
    if (n < 5) continue;
    char *point = fields[4];
    unescape(point);
    if (strcmp(point, "/") == 0 || is_under(point, scratch)) continue;
    int skip = 0;
    for (size_t i = 0; i < sizeof NOT_FROM_HOST / sizeof NOT_FROM_HOST[0] && !skip; i++) skip = is_under(point, NOT_FROM_HOST[i]);
    for (int i = 0; i < hidden_count && !skip; i++) skip = is_under(point, hidden[i]);
    if (skip) continue;
    char *target = join(root, point);
    struct stat st;
    /* A mount point the overlay does not show (under another host mount) is reached once
       its parent is bound: mountinfo lists parents first. */
    if (stat(target, &st) == 0 && stat(point, &st) == 0) {
      if (mount(point, target, NULL, MS_BIND, NULL) == 0) mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
    }
    free(target);
  }
  free(line);
  fclose(f);
  errno = 0;
}

static void make_dev(const char *root, const char *pod_dir) {
  char *dev = join(root, "/dev");
  mount_or_die("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536k");
  static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
    char *host = join("/dev", nodes[i]);
    char *inside = join(dev, nodes[i]);
    int fd = open(inside, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) die("create %s", inside);
    close(fd);
    mount_or_die(host, inside, NULL, MS_BIND, NULL);
    free(host);
    free(inside);
  }
  char *pts = join(dev, "pts");
  make_dirs(pts, 0755);
  mount_or_die("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  char *shm = join(dev, "shm");
  make_dirs(shm, 01777);
  char *pod_shm = join(pod_dir, "shm");
  mount_or_die(pod_shm, shm, NULL, MS_BIND, NULL);
  mount_or_die(NULL, shm, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV, NULL);
  static const char *const links[][2] = {{"ptmx", "pts/ptmx"}, {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}};
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    char *at = join(dev, links[i][0]);
    if (symlink(links[i][1], at) != 0) die("symlink %s", at);
    free(at);
  }
  free(pts);
  free(shm);
  free(pod_shm);
  free(dev);
}

struct run_options {
  long pause_pid;
  const char *pod_dir;
  char *mounts[MAX_LIST];
  int mount_count;
  char *hidden[MAX_LIST];
  int hidden_count;
  long uid, gid;
  long groups[MAX_LIST];
  int group_count;
  int caps_given;
  long caps[MAX_LIST];
  int cap_count;
  int no_new_privs;
  int read_only_root;
  const char *workdir;
  char **argv;
};

static void join_pod_namespaces(long pid) {
  static const struct {
    const char *name;
    int type;
  } spaces[] = {{"net", CLONE_NEWNET}, {"uts", CLONE_NEWUTS}, {"ipc", CLONE_NEWIPC}, {"pid", CLONE_NEWPID}};
  int fds[4];
  /* Open all first: once in the pod's namespaces, /proc may be another's. */
  for (int i = 0; i < 4; i++) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/ns/%s", pid, spaces[i].name);
    fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) die("open %s (is the pod's pause running?)", path);
  }
  for (int i = 0; i < 4; i++) {
    if (setns(fds[i], spaces[i].type) != 0) die("join the pod's %s namespace", spaces[i].name);
    close(fds[i]);
  }
}

/* A place the sandbox makes itself must be a real directory in the new root: a symlink there
   (from the host's root, seen through the overlay) would point the mount back at the host. */
static void require_directory(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) die("%s", path);
  if (!S_ISDIR(st.st_mode)) {
    errno = 0;
    die("%s is not a directory (a symlink?): the sandbox mounts its own there", path);
  }
}

/* A bind source taken from the host before the root changes, attached after it. */
struct pending_mount {
  int tree; /* open_tree(OPEN_TREE_CLONE) of the source: a detached copy of its mount */
  int is_dir;
  int read_only;
  const char *target; /* inside the container, resolved there */
};

static int clone_tree(const char *source, int *is_dir) {
  struct stat st;
  if (stat(source, &st) != 0) die("%s", source);
  *is_dir = S_ISDIR(st.st_mode);
  int fd = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (fd < 0) die("open_tree %s", source);
  return fd;
}

/*
 * Attaches a source at a path of the container, after pivot_root: the path is resolved in
 * the container's own root (its symlinks point inside it, never at the host), and what it
 * needs is made in the overlay. /etc files that are symlinks (resolv.conf often is) are
 * replaced by a file of the container's own, as a runtime's bind over them is.
 */
static void attach(const struct pending_mount *m, int replace_symlink) {
  struct stat st;
  if (replace_symlink && lstat(m->target, &st) == 0 && S_ISLNK(st.st_mode) && unlink(m->target) != 0) die("unlink %s", m->target);
  errno = 0;
  if (m->is_dir) {
    make_dirs(m->target, 0755);
  } else {
    char *copy = strdup(m->target);
    if (copy == NULL) die("out of memory");
    char *slash = strrchr(copy, '/');
    if (slash != NULL && slash != copy) {
      *slash = '\0';
      make_dirs(copy, 0755);
    }
    free(copy);
    int fd = open(m->target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EISDIR) die("create %s", m->target);
    if (fd >= 0) close(fd);
    errno = 0;
  }
  if (syscall(SYS_move_mount, m->tree, "", AT_FDCWD, m->target, MOVE_MOUNT_F_EMPTY_PATH) != 0) die("mount on %s", m->target);
  close(m->tree);
  if (m->read_only) mount_or_die(NULL, m->target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
}

/* Builds the container's root at DIR/scratch/root and makes it the root. */
static void make_root(const struct run_options *o) {
  if (unshare(CLONE_NEWNS) != 0) die("make the container's mount namespace");
  /* Nothing mounted here may reach the host's namespace, nor the host's reach here. */
  mount_or_die(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);

  char *scratch = join(o->pod_dir, "scratch");
  mount_or_die("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700");
  char *upper = join(scratch, "upper"), *work = join(scratch, "work"), *root = join(scratch, "root");
  make_dirs(upper, 0755);
  make_dirs(work, 0700);
  make_dirs(root, 0755);
  char *options;
  if (asprintf(&options, "lowerdir=/,upperdir=%s,workdir=%s", upper, work) < 0) die("out of memory");
  mount_or_die("overlay", root, "overlay", 0, options);
  free(options);

  bind_host_mounts(root, scratch, o->hidden, o->hidden_count);

  /* The sandbox's own places, at real directories of the new root. */
  char *dev = join(root, "/dev"), *sys = join(root, "/sys"), *run = join(root, "/run"), *tmp = join(root, "/tmp");
  require_directory(dev);
  require_directory(sys);
  require_directory(run);
  require_directory(tmp);
  make_dev(root, o->pod_dir);
  mount_or_die("sysfs", sys, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_or_die("tmpfs", run, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=65536k");
  char *pod_tmp = join(o->pod_dir, "tmp");
  bind_mount(pod_tmp, tmp, 0);

  /* The pod's files and volumes: taken now, while their host paths are reachable. */
  static const char *const etc_files[] = {"hosts", "resolv.conf", "hostname"};
  enum { ETC_FILES = sizeof etc_files / sizeof etc_files[0] };
  struct pending_mount pending[ETC_FILES + MAX_LIST];
  int count = 0;
  for (size_t i = 0; i < ETC_FILES; i++) {
    char *source = join(o->pod_dir, etc_files[i]);
    pending[count].tree = clone_tree(source, &pending[count].is_dir);
    pending[count].read_only = 0;
    pending[count].target = join("/etc", etc_files[i]);
    count++;
    free(source);
  }
  for (int i = 0; i < o->mount_count; i++) {
    /* SRC:DST:MODE, split at the last two colons (paths may hold colons). */
    char *spec = strdup(o->mounts[i]);
    if (spec == NULL) die("out of memory");
    char *mode = strrchr(spec, ':');
    if (mode == NULL) usage("--mount SRC:DST:ro|rw");
    *mode++ = '\0';
    char *dst = strrchr(spec, ':');
    if (dst == NULL || (strcmp(mode, "ro") != 0 && strcmp(mode, "rw") != 0)) usage("--mount SRC:DST:ro|rw");
    *dst++ = '\0';
    if (dst[0] != '/') usage("--mount: DST must be absolute");
    pending[count].tree = clone_tree(spec, &pending[count].is_dir);
    pending[count].read_only = strcmp(mode, "ro") == 0;
    pending[count].target = dst; /* points into spec, kept until exec */
    count++;
  }

  /* pivot_root(".", "."): the old root is stacked under the new one, then detached, so no
     path leads back to the host's filesystem. */
  if (chdir(root) != 0) die("chdir %s", root);
  if (syscall(SYS_pivot_root, ".", ".") != 0) die("pivot_root");
  if (umount2(".", MNT_DETACH) != 0) die("detach the host's root");
  if (chdir("/") != 0) die("chdir /");

  for (int i = 0; i < count; i++) attach(&pending[i], i < ETC_FILES);
  for (int i = 0; i < o->hidden_count; i++) {
    struct stat st;
    if (lstat(o->hidden[i], &st) == 0 && S_ISDIR(st.st_mode)) mount_or_die("tmpfs", o->hidden[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=4k");
    errno = 0;
  }
  if (o->read_only_root) mount_or_die(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);

  free(scratch);
  free(upper);
  free(work);
  free(root);
  free(dev);
  free(sys);
  free(run);
  free(tmp);
  free(pod_tmp);
}

/* The pod's /proc, with what runc hides and keeps read-only hidden and kept read-only. */
static void make_proc(void) {
  mount_or_die("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  static const char *const masked[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats"};
  for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
    if (access(masked[i], F_OK) == 0) mount_or_die("/dev/null", masked[i], NULL, MS_BIND, NULL);
  }
  static const char *const read_only[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", "/proc/acpi", "/proc/scsi"};
  for (size_t i = 0; i < sizeof read_only / sizeof read_only[0]; i++) {
    if (access(read_only[i], F_OK) != 0) continue;
    mount_or_die(read_only[i], read_only[i], NULL, MS_BIND | MS_REC, NULL);
    mount_or_die(NULL, read_only[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  }
  errno = 0;
}

static int last_capability(void) {
  int last = CAP_LAST_CAP;
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
  if (f != NULL) {
    if (fscanf(f, "%d", &last) != 1) last = CAP_LAST_CAP;
    fclose(f);
  }
  return last;
}

/* The user, then the capabilities: a bounding set that no exec can widen, and for root the
   same set effective, permitted and inheritable (a non-root user keeps none, as with runc). */
static void become_user(const struct run_options *o) {
  int last = last_capability();
  if (o->caps_given) {
    for (int cap = 0; cap <= last; cap++) {
      int keep = 0;
      for (int i = 0; i < o->cap_count && !keep; i++) keep = o->caps[i] == cap;
      if (!keep && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) die("drop capability %d", cap);
    }
    errno = 0;
  }
  gid_t groups[MAX_LIST];
  for (int i = 0; i < o->group_count; i++) groups[i] = (gid_t)o->groups[i];
  if (setgroups((size_t)o->group_count, groups) != 0) die("setgroups");
  if (setresgid((gid_t)o->gid, (gid_t)o->gid, (gid_t)o->gid) != 0) die("setgid %ld", o->gid);
  if (setresuid((uid_t)o->uid, (uid_t)o->uid, (uid_t)o->uid) != 0) die("setuid %ld", o->uid);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (o->uid == 0 && o->caps_given) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    for (int i = 0; i < o->cap_count; i++) {
      int cap = (int)o->caps[i];
      if (cap > last) continue;
      data[cap / 32].effective |= 1u << (cap % 32);
      data[cap / 32].permitted |= 1u << (cap % 32);
      data[cap / 32].inheritable |= 1u << (cap % 32);
    }
    if (syscall(SYS_capset, &header, data) != 0) die("capset");
  }
  if (o->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs");
}

static int run_main(int argc, char **argv) {
  struct run_options o;
  memset(&o, 0, sizeof o);
  o.pause_pid = -1;
  o.workdir = "/";
  int i = 0;
  for (; i < argc; i++) {
    const char *a = argv[i];
    int has = i + 1 < argc;
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (strcmp(a, "--pause") == 0 && has) o.pause_pid = number(argv[++i], 1, INT_MAX, "--pause");
    else if (strcmp(a, "--pod-dir") == 0 && has) o.pod_dir = argv[++i];
    else if (strcmp(a, "--mount") == 0 && has) {
      if (o.mount_count == MAX_LIST) usage("too many --mount");
      o.mounts[o.mount_count++] = argv[++i];
    } else if (strcmp(a, "--hide") == 0 && has) {
      if (o.hidden_count == MAX_LIST) usage("too many --hide");
      if (argv[i + 1][0] != '/') usage("--hide: the path must be absolute");
      o.hidden[o.hidden_count++] = argv[++i];
    } else if (strcmp(a, "--uid") == 0 && has) o.uid = number(argv[++i], 0, INT_MAX, "--uid");
    else if (strcmp(a, "--gid") == 0 && has) o.gid = number(argv[++i], 0, INT_MAX, "--gid");
    else if (strcmp(a, "--groups") == 0 && has) o.group_count = number_list(argv[++i], o.groups, INT_MAX, "--groups");
    else if (strcmp(a, "--caps") == 0 && has) {
      o.caps_given = 1;
      o.cap_count = number_list(argv[++i], o.caps, 63, "--caps");
    } else if (strcmp(a, "--no-new-privs") == 0) o.no_new_privs = 1;
    else if (strcmp(a, "--read-only-root") == 0) o.read_only_root = 1;
    else if (strcmp(a, "--workdir") == 0 && has) o.workdir = argv[++i];
    else usage("run: unknown argument");
  }
  if (o.pause_pid < 0 || o.pod_dir == NULL || o.pod_dir[0] != '/') usage("run needs --pause PID and an absolute --pod-dir");
  if (i >= argc) usage("run needs -- ARGV...");
  o.argv = argv + i;

  join_pod_namespaces(o.pause_pid);
  make_root(&o);

  pid_t child = fork(); /* the first process in the pod's PID namespace: after setns, only children enter it */
  if (child < 0) die("fork");
  if (child == 0) {
    make_proc();
    if (chdir(o.workdir) != 0) die("chdir %s (workingDir)", o.workdir);
    become_user(&o);
    /* After the credentials change, which clears it: the container dies with its launcher. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    umask(022);
    execvp(o.argv[0], o.argv);
    int code = errno == ENOENT ? 127 : 126;
    fprintf(stderr, "%s: exec %s: %s\n", self, o.argv[0], strerror(errno));
    _exit(code);
  }
  forward_to = child;
  forward_signals();
  return wait_and_mirror(child);
}

int main(int argc, char **argv) {
  if (argc < 2) usage("a mode is required");
  if (geteuid() != 0) usage("must run as root (it makes namespaces and mounts)");
  if (strcmp(argv[1], "pause") == 0) return pause_main(argc - 2, argv + 2);
  if (strcmp(argv[1], "run") == 0) return run_main(argc - 2, argv + 2);
  usage("the mode is pause or run");
  return 2;
}
