// podwire_io: TAP and UDP I/O for podwire's dataplane, without a thread-pool round trip
// per frame. Setup calls (openTap, openUdp) throw JavaScript errors carrying errno; the
// per-frame work lives in IoPort (port.cc).
#include <napi.h>

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "port.h"

namespace podwire {
namespace {

// Throws `what: strerror` with .errno and .code (e.g. "EPERM") and returns undefined.
Napi::Value ThrowErrno(Napi::Env env, const std::string& what, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* name = strerrorname_np(err);
  if (name != nullptr) e.Set("code", Napi::String::New(env, name));
#endif
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// openTap(name, vnetHdrLen, offload) -> { fd, name }
//
// Creates (or attaches to a persistent) TAP with IFF_NO_PI, so that a read is exactly one
// Ethernet frame. vnetHdrLen 10 or 12 adds IFF_VNET_HDR: every frame is then preceded by
// a virtio_net_hdr, which IoPort moves into metadata arrays. offload asks the kernel to
// hand us unsegmented TSO/GSO super-frames and partial checksums (it needs the header).
// The fd is non-blocking and close-on-exec; the device lives as long as the fd, wherever
// the caller later moves or renames it.
Napi::Value OpenTap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsBoolean()) {
    Napi::TypeError::New(env, "openTap(name, vnetHdrLen, offload)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>();
  uint32_t vnet_hdr_len = info[1].As<Napi::Number>().Uint32Value();
  bool offload = info[2].As<Napi::Boolean>();
  if (name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos) {
    Napi::RangeError::New(env, "TAP name must be at most 15 bytes").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (vnet_hdr_len != 0 && vnet_hdr_len != kVnetHdrLen && vnet_hdr_len != kVnetHdrMrgLen) {
    Napi::RangeError::New(env, "vnetHdrLen must be 0, 10 or 12").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (offload && vnet_hdr_len == 0) {
    Napi::RangeError::New(env, "offload needs the virtio header").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, "open /dev/net/tun", errno);

  ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet_hdr_len != 0 ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, name.data(), name.size());
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "TUNSETIFF " + name, err);
  }
  if (vnet_hdr_len != 0) {
    int size = static_cast<int>(vnet_hdr_len);
    if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) {
      int err = errno;
      close(fd);
      return ThrowErrno(env, "TUNSETVNETHDRSZ", err);
    }
    // Legacy virtio headers are in host order; ask for little-endian so that IoPort's
    // le16toh is right on every host. Kernels before 4.1 lack the ioctl, and on a
    // little-endian host they already use little-endian, so only a big-endian host fails.
    int le = 1;
    if (ioctl(fd, TUNSETVNETLE, &le) < 0 && htole16(1) != 1) {
      int err = errno;
      close(fd);
      return ThrowErrno(env, "TUNSETVNETLE", err);
    }
  }
  // Without TUNSETOFFLOAD the device offers no offloads, so the kernel segments and
  // checksums everything before it reaches us (the header then only says GSO_NONE).
  unsigned long features = offload ? (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) : 0;
  if (vnet_hdr_len != 0 && ioctl(fd, TUNSETOFFLOAD, features) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "TUNSETOFFLOAD", err);
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("fd", Napi::Number::New(env, fd));
  result.Set("name", Napi::String::New(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)));
  return result;
}

// Asks for `bytes` of socket buffer; as root the *FORCE options pass net.core.rmem_max.
// Returns what the kernel granted (it reports twice the request, counting its overhead).
int SetBuffer(int fd, int force_opt, int opt, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) < 0) {
    // EPERM without CAP_NET_ADMIN: the plain option, capped by the sysctl, is still worth it.
    setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
  }
  int granted = 0;
  socklen_t len = sizeof granted;
  if (getsockopt(fd, SOL_SOCKET, opt, &granted, &len) < 0) return -1;
  return granted;
}

// Turns on UDP_GRO (glued datagrams arrive whole) after checking that the kernel also
// takes UDP_SEGMENT; false, with both off, where either is missing (before Linux 5.0).
bool EnableUdpOffload(int fd) {
  int no_segmentation = 0;
  if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &no_segmentation, sizeof no_segmentation) < 0) return false;
  int on = 1;
  return setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
}

// openUdp(addr, port, bufferBytes, udpOffload) -> { fd, port, rcvbuf, sndbuf, udpOffload }
//
// A non-blocking, close-on-exec UDP socket bound to one IPv4 address (host-order uint32)
// and port (0 picks one). No SO_REUSEADDR/SO_REUSEPORT: a second bind to the same address
// must fail, so that two clusters can never share an overlay socket. udpOffload asks for
// UDP_GRO (see IoPort's udpOffload); the result says whether the kernel has it.
Napi::Value OpenUdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() ||
      !info[3].IsBoolean()) {
    Napi::TypeError::New(env, "openUdp(addr, port, bufferBytes, udpOffload)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double addr = info[0].As<Napi::Number>().DoubleValue();
  double port = info[1].As<Napi::Number>().DoubleValue();
  double bytes = info[2].As<Napi::Number>().DoubleValue();
  if (!(addr >= 0 && addr <= 0xffffffffu) || !(port >= 0 && port <= 0xffff) ||
      !(bytes >= 0 && bytes <= (1 << 30))) {
    Napi::RangeError::New(env, "openUdp: argument out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, "socket", errno);
  int rcvbuf = -1, sndbuf = -1;
  if (bytes > 0) {
    rcvbuf = SetBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, static_cast<int>(bytes));
    sndbuf = SetBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, static_cast<int>(bytes));
  }
  bool udp_offload = info[3].As<Napi::Boolean>() && EnableUdpOffload(fd);
  sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(static_cast<uint32_t>(addr));
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    int err = errno;
    close(fd);
    char text[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &sa.sin_addr, text, sizeof text);
    return ThrowErrno(env, "bind " + std::string(text) + ":" + std::to_string(static_cast<int>(port)), err);
  }
  socklen_t len = sizeof sa;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "getsockname", err);
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("fd", Napi::Number::New(env, fd));
  result.Set("port", Napi::Number::New(env, ntohs(sa.sin_port)));
  result.Set("rcvbuf", Napi::Number::New(env, rcvbuf));
  result.Set("sndbuf", Napi::Number::New(env, sndbuf));
  result.Set("udpOffload", Napi::Boolean::New(env, udp_offload));
  return result;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("openTap", Napi::Function::New<OpenTap>(env, "openTap"));
  exports.Set("openUdp", Napi::Function::New<OpenUdp>(env, "openUdp"));
  exports.Set("IoPort", IoPort::Init(env));
  exports.Set("KIND_TAP", Napi::Number::New(env, static_cast<uint32_t>(Kind::Tap)));
  exports.Set("KIND_UDP", Napi::Number::New(env, static_cast<uint32_t>(Kind::Udp)));
  exports.Set("STAT_COUNT", Napi::Number::New(env, kStatCount));
  return exports;
}

}  // namespace podwire

// The macro pastes its argument into an identifier, so it cannot take a qualified name.
static Napi::Object InitPodwireIo(Napi::Env env, Napi::Object exports) {
  return podwire::Init(env, exports);
}
NODE_API_MODULE(podwire_io, InitPodwireIo)
