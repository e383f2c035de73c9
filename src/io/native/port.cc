#include "port.h"

#include <endian.h>
#include <errno.h>
#include <netinet/udp.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace podwire {

namespace {

// Frames are packed into the TAP receive slab at 64-byte boundaries, so each starts on
// its own cache line; 2 KiB per frame of the batch is room for a full batch of MTU-sized
// frames (1518 rounds up to 1536).
constexpr size_t kAlign = 64;
constexpr size_t kPerFrame = 2048;
constexpr uint32_t kMaxBatch = 1024;
constexpr uint32_t kMaxFrameCap = 65536 + 64;

size_t AlignUp(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

// The per-frame system calls, made with syscall(2) rather than through glibc's wrappers:
// those are pthread cancellation points, and in a process with threads (Node always has
// them) each call turns asynchronous cancellation on and off around the syscall. That
// took 2.5% of a node's CPU at 300k small frames/s (perf). podwire never cancels a thread.
// syscall(2) keeps the wrappers' contract: -1 with errno set on failure.
ssize_t SysReadv(int fd, const iovec* iov, int count) {
  return syscall(SYS_readv, fd, iov, count);
}
ssize_t SysWritev(int fd, const iovec* iov, int count) {
  return syscall(SYS_writev, fd, iov, count);
}
int SysRecvmmsg(int fd, mmsghdr* msgs, unsigned count, int flags) {
  return static_cast<int>(syscall(SYS_recvmmsg, fd, msgs, count, flags, nullptr));
}
int SysSendmmsg(int fd, mmsghdr* msgs, unsigned count, int flags) {
  return static_cast<int>(syscall(SYS_sendmmsg, fd, msgs, count, flags));
}

// The largest UDP payload over IPv4, and so the most one glued send may carry.
constexpr size_t kMaxUdpPayload = 65507;
// One control message slot: UDP_SEGMENT's uint16_t or UDP_GRO's int, in 8-byte words.
constexpr size_t kCtrlWords = (CMSG_SPACE(sizeof(int)) + 7) / 8;

bool ReadU32(Napi::Env env, Napi::Object opts, const char* key, uint32_t min, uint32_t max,
             uint32_t* out) {
  Napi::Value v = opts.Get(key);
  if (env.IsExceptionPending()) return false;
  if (v.IsUndefined()) return true;  // keep the default already in *out
  if (!v.IsNumber()) {
    Napi::TypeError::New(env, std::string(key) + " must be a number").ThrowAsJavaScriptException();
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || d != static_cast<double>(static_cast<uint32_t>(d))) {
    Napi::RangeError::New(env, std::string(key) + " must be an integer in [" + std::to_string(min) +
                                   ", " + std::to_string(max) + "]")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<uint32_t>(d);
  return true;
}

// Receive errors after which the fd is no use: polling it again would only spin.
bool IsFatal(int err) {
  return err == EBADF || err == EBADFD || err == EFAULT || err == EINVAL || err == ENOTSOCK ||
         err == EIO || err == ENXIO || err == ENODEV;
}

}  // namespace

uint32_t SlabRegistry::Add(uint8_t* buf, size_t len) {
  Slab slab{buf, len};
  if (!free_.empty()) {
    uint32_t id = free_.back();
    free_.pop_back();
    slabs_[id] = slab;
    return id;
  }
  slabs_.push_back(slab);
  return static_cast<uint32_t>(slabs_.size() - 1);
}

void SlabRegistry::Remove(uint32_t id) {
  if (id == 0 || id >= slabs_.size() || slabs_[id].buf == nullptr) return;
  slabs_[id] = Slab{nullptr, 0};
  free_.push_back(id);
}

uint8_t* SlabRegistry::Range(uint32_t id, uint32_t offset, uint32_t length) const {
  if (id == 0 || id >= slabs_.size()) return nullptr;
  const Slab& slab = slabs_[id];
  if (slab.buf == nullptr || offset > slab.len || length > slab.len - offset) return nullptr;
  return slab.buf + offset;
}

namespace {

// The environment's registry (its napi instance data), shared with every port.
using SharedRegistry = std::shared_ptr<SlabRegistry>;

}  // namespace

template <typename T>
T* IoPort::Share(Napi::Env env, Napi::Object self, const char* name, size_t count) {
  Napi::TypedArrayOf<T> array = Napi::TypedArrayOf<T>::New(env, count);
  if (env.IsExceptionPending()) return nullptr;
  // Read-only and non-configurable: JavaScript cannot swap the array C++ writes into.
  self.DefineProperty(Napi::PropertyDescriptor::Value(name, array, napi_enumerable));
  if (env.IsExceptionPending()) return nullptr;
  return array.Data();
}

Napi::Function IoPort::Init(Napi::Env env) {
  env.SetInstanceData<SharedRegistry>(new SharedRegistry(std::make_shared<SlabRegistry>()));
  return DefineClass(env, "IoPort",
                     {
                         InstanceMethod<&IoPort::Start>("start"),
                         InstanceMethod<&IoPort::Flush>("flush"),
                         InstanceMethod<&IoPort::Close>("close"),
                     });
}

IoPort::IoPort(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IoPort>(info) {
  Napi::Env env = info.Env();
  // Own the fd before anything can fail, so that a throw below still closes it (a throwing
  // constructor deletes the instance, and the destructor closes fd_).
  if (info.Length() > 0 && info[0].IsNumber()) {
    int fd = info[0].As<Napi::Number>().Int32Value();
    if (fd >= 0) fd_ = fd;
  }
  if (fd_ < 0 || info.Length() < 3 || !info[1].IsNumber() || !info[2].IsObject()) {
    Napi::TypeError::New(env, "IoPort(fd, kind, options)").ThrowAsJavaScriptException();
    return;
  }
  uint32_t kind = info[1].As<Napi::Number>().Uint32Value();
  if (kind != static_cast<uint32_t>(Kind::Tap) && kind != static_cast<uint32_t>(Kind::Udp)) {
    Napi::RangeError::New(env, "unknown port kind").ThrowAsJavaScriptException();
    return;
  }
  kind_ = static_cast<Kind>(kind);
  Napi::Object opts = info[2].As<Napi::Object>();
  batch_ = 64;
  frame_cap_ = kMaxFrameCap - 64;
  if (!ReadU32(env, opts, "batch", 1, kMaxBatch, &batch_) ||
      !ReadU32(env, opts, "frameCap", 64, kMaxFrameCap, &frame_cap_) ||
      !ReadU32(env, opts, "vnetHdrLen", 0, 12, &vnet_hdr_len_)) {
    return;
  }
  uint32_t udp_offload = 0;
  if (!ReadU32(env, opts, "udpOffload", 0, 1, &udp_offload)) return;
  if (udp_offload != 0 && kind_ != Kind::Udp) {
    Napi::RangeError::New(env, "udpOffload is for UDP ports").ThrowAsJavaScriptException();
    return;
  }
  udp_offload_ = udp_offload != 0;
  rx_entries_ = udp_offload_ ? batch_ * kMaxGroSegments : batch_;
  if (vnet_hdr_len_ != 0 && (kind_ != Kind::Tap || (vnet_hdr_len_ != kVnetHdrLen && vnet_hdr_len_ != kVnetHdrMrgLen))) {
    Napi::RangeError::New(env, "vnetHdrLen is 0, or 10 or 12 on a TAP").ThrowAsJavaScriptException();
    return;
  }

  Napi::Object self = info.This().As<Napi::Object>();
  // TAP receive packs frames densely and stops when less than one largest frame (plus the
  // byte that detects truncation) is left; UDP receive needs one fixed slot per datagram
  // because recvmmsg places its buffers before it knows the sizes.
  size_t big = AlignUp(frame_cap_ + 1);
  size_t rx_bytes = kind_ == Kind::Tap ? batch_ * kPerFrame + big : batch_ * big;
  size_t tx_bytes = batch_ * kPerFrame + big;
  rx_.buf_len = rx_bytes;
  tx_.buf_len = tx_bytes;
  bool ok = (rx_.buf = Share<uint8_t>(env, self, "rxBuf", rx_bytes)) &&
            (rx_.offsets = Share<uint32_t>(env, self, "rxOffsets", rx_entries_)) &&
            (rx_.lengths = Share<uint32_t>(env, self, "rxLengths", rx_entries_)) &&
            (tx_.buf = Share<uint8_t>(env, self, "txBuf", tx_bytes)) &&
            (tx_.offsets = Share<uint32_t>(env, self, "txOffsets", batch_)) &&
            (tx_.lengths = Share<uint32_t>(env, self, "txLengths", batch_)) &&
            (tx_.ref_slab = Share<uint32_t>(env, self, "txRefSlab", batch_)) &&
            (tx_.ref_offsets = Share<uint32_t>(env, self, "txRefOffsets", batch_)) &&
            (tx_.ref_lengths = Share<uint32_t>(env, self, "txRefLengths", batch_)) &&
            (stats_ = Share<double>(env, self, "stats", kStatCount));
  if (ok) {
    registry_ = *env.GetInstanceData<SharedRegistry>();
    rx_slab_ = registry_->Add(rx_.buf, rx_.buf_len);
    rx_memory_ = Napi::Persistent(self.Get("rxBuf").As<Napi::Uint8Array>().ArrayBuffer());
    self.DefineProperty(Napi::PropertyDescriptor::Value("rxSlab", Napi::Number::New(env, rx_slab_), napi_enumerable));
    ok = !env.IsExceptionPending();
  }
  if (ok && kind_ == Kind::Tap) {
    ok = (rx_.flags = Share<uint8_t>(env, self, "rxFlags", batch_)) &&
         (rx_.gso_type = Share<uint8_t>(env, self, "rxGsoType", batch_)) &&
         (rx_.gso_size = Share<uint16_t>(env, self, "rxGsoSize", batch_)) &&
         (rx_.csum_start = Share<uint16_t>(env, self, "rxCsumStart", batch_)) &&
         (rx_.csum_offset = Share<uint16_t>(env, self, "rxCsumOffset", batch_)) &&
         (tx_.flags = Share<uint8_t>(env, self, "txFlags", batch_)) &&
         (tx_.gso_type = Share<uint8_t>(env, self, "txGsoType", batch_)) &&
         (tx_.gso_size = Share<uint16_t>(env, self, "txGsoSize", batch_)) &&
         (tx_.csum_start = Share<uint16_t>(env, self, "txCsumStart", batch_)) &&
         (tx_.csum_offset = Share<uint16_t>(env, self, "txCsumOffset", batch_));
  } else if (ok) {
    ok = (rx_.addrs = Share<uint32_t>(env, self, "rxAddrs", rx_entries_)) &&
         (rx_.ports = Share<uint16_t>(env, self, "rxPorts", rx_entries_)) &&
         (tx_.addrs = Share<uint32_t>(env, self, "txAddrs", batch_)) &&
         (tx_.ports = Share<uint16_t>(env, self, "txPorts", batch_));
    if (ok) {
      rx_msgs_.assign(batch_, mmsghdr{});
      rx_iovs_.assign(batch_, iovec{});
      rx_names_.assign(batch_, sockaddr_in{});
      tx_msgs_.assign(batch_, mmsghdr{});
      tx_iovs_.assign(2 * batch_, iovec{});
      tx_names_.assign(batch_, sockaddr_in{});
      tx_segments_.assign(batch_, 0);
      if (udp_offload_) {
        rx_ctrl_.assign(batch_ * kCtrlWords, 0);
        tx_ctrl_.assign(batch_ * kCtrlWords, 0);
      }
      for (uint32_t i = 0; i < batch_; i++) {
        rx_iovs_[i] = {rx_.buf + i * big, frame_cap_};
        rx_msgs_[i].msg_hdr.msg_iov = &rx_iovs_[i];
        rx_msgs_[i].msg_hdr.msg_iovlen = 1;
        rx_msgs_[i].msg_hdr.msg_name = &rx_names_[i];
        if (udp_offload_) rx_msgs_[i].msg_hdr.msg_control = &rx_ctrl_[i * kCtrlWords];
        tx_msgs_[i].msg_hdr.msg_name = &tx_names_[i];
        tx_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      }
    }
  }
  (void)ok;  // on failure an exception is pending and the wrapper deletes us
}

IoPort::~IoPort() {
  // Reached by garbage collection (never while started: Start() holds a strong reference)
  // or at environment teardown; Unref() is not ours to call then.
  started_ = false;
  Shutdown();
  if (registry_ != nullptr) registry_->Remove(rx_slab_);
  rx_memory_.Reset();
}

bool IoPort::Parts(uint32_t i, iovec* head, iovec* body) const {
  // JavaScript wrote these numbers; never trust them to stay inside the slabs.
  uint32_t off = tx_.offsets[i];
  uint32_t head_len = tx_.lengths[i];
  if (off > tx_.buf_len || head_len > tx_.buf_len - off) return false;
  *head = {tx_.buf + off, head_len};
  *body = {nullptr, 0};
  if (tx_.ref_slab[i] != 0) {
    uint32_t body_len = tx_.ref_lengths[i];
    uint8_t* at = registry_->Range(tx_.ref_slab[i], tx_.ref_offsets[i], body_len);
    if (at == nullptr) return false;
    *body = {at, body_len};
  }
  return head->iov_len + body->iov_len <= frame_cap_;
}

Napi::Value IoPort::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsFunction() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "start(onBatch, onError)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (fd_ < 0 || started_) {
    Napi::Error::New(env, fd_ < 0 ? "port is closed" : "port already started")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    Napi::Error::New(env, "no event loop").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  poll_ = new uv_poll_t;
  int rc = uv_poll_init(loop, poll_, fd_);
  if (rc != 0) {
    delete poll_;  // never initialised, so not uv_close'd
    poll_ = nullptr;
    Napi::Error::New(env, std::string("uv_poll_init: ") + uv_strerror(rc)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  poll_->data = this;
  rc = uv_poll_start(poll_, UV_READABLE, OnPoll);
  if (rc != 0) {
    Shutdown();
    Napi::Error::New(env, std::string("uv_poll_start: ") + uv_strerror(rc)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  on_batch_ = Napi::Persistent(info[0].As<Napi::Function>());
  on_error_ = Napi::Persistent(info[1].As<Napi::Function>());
  if (!async_) async_ = std::make_unique<Napi::AsyncContext>(env, "podwire:IoPort");
  // A started port keeps itself alive, as a listening socket does, until close().
  Ref();
  started_ = true;
  return env.Undefined();
}

Napi::Value IoPort::Flush(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "flush(count)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double d = info[0].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= batch_)) {
    Napi::RangeError::New(env, "flush: count out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t count = static_cast<uint32_t>(d);
  if (fd_ < 0) {
    stats_[kTxDropped] += count;
    return Napi::Number::New(env, 0);
  }
  uint32_t sent = kind_ == Kind::Tap ? SendTap(count) : SendUdp(count);
  return Napi::Number::New(env, sent);
}

Napi::Value IoPort::Close(const Napi::CallbackInfo& info) {
  Shutdown();
  return info.Env().Undefined();
}

void IoPort::OnPoll(uv_poll_t* handle, int status, int /*events*/) {
  IoPort* self = static_cast<IoPort*>(handle->data);
  if (self == nullptr || self->fd_ < 0) return;
  self->HandleReadable(status);
}

void IoPort::HandleReadable(int poll_status) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  // Read even when poll reports an error (EPOLLERR, which libuv calls EBADF): the read
  // says what really happened (EBADFD: the TAP was deleted), or drains what is left.
  int64_t n = kind_ == Kind::Tap ? ReceiveTap() : ReceiveUdp();
  if (n < 0) {
    Fail(env, kind_ == Kind::Tap ? "read" : "recvmmsg", static_cast<int>(-n));
    return;
  }
  if (poll_status < 0) {
    Fail(env, "poll", -poll_status);  // libuv errors are negated errno on Unix
    return;
  }
  if (n == 0) return;
  stats_[kRxBatches] += 1;
  on_batch_.MakeCallback(Value(), {Napi::Number::New(env, static_cast<double>(n))}, *async_);
  // Nothing up the stack can catch a throw from the handler: report it as Node reports
  // one from an event listener (an 'uncaughtException').
  if (env.IsExceptionPending()) {
    napi_fatal_exception(env, env.GetAndClearPendingException().Value());
  }
}

// Stops the port for good and tells JavaScript why (the TAP was deleted, say).
void IoPort::Fail(Napi::Env env, const char* what, int err) {
  stats_[kRxErrors] += 1;
  Napi::Function on_error = on_error_.IsEmpty() ? Napi::Function() : on_error_.Value();
  // Keep the wrapper alive across the callback: Shutdown() drops our self-reference.
  Napi::Object self = Value();
  Shutdown();
  if (on_error.IsEmpty() || !async_) return;
  std::string message = std::string(what) + ": " + strerror(err);
  on_error.MakeCallback(self, {Napi::String::New(env, message), Napi::Number::New(env, err)}, *async_);
  if (env.IsExceptionPending()) {
    napi_fatal_exception(env, env.GetAndClearPendingException().Value());
  }
}

void IoPort::Shutdown() {
  if (poll_ != nullptr) {
    // uv_close stops the watcher and removes the fd from epoll at once, before we close
    // the fd (so a reused fd number is never confused); the handle's memory must live
    // until the close callback, which may run after this object is gone.
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  if (fd_ >= 0) {
    // Linux releases the fd even when close() reports EINTR or EIO; nothing to retry.
    ::close(fd_);
    fd_ = -1;
  }
  if (started_) {
    started_ = false;
    // async_ stays until the destructor: a handler that closes the port is still running
    // inside a MakeCallback that uses it.
    on_batch_.Reset();
    on_error_.Reset();
    Unref();
  }
}

int64_t IoPort::ReceiveTap() {
  uint32_t n = 0;
  size_t cursor = 0;
  double bytes = 0;
  VnetHdr vh;
  // Reading frame_cap_ + 1 bytes tells a frame of exactly frame_cap_ from a truncated one
  // (read() on a TAP drops whatever does not fit, without saying so).
  while (n < batch_ && rx_.buf_len - cursor >= AlignUp(frame_cap_ + 1)) {
    iovec iov[2];
    int k = 0;
    if (vnet_hdr_len_ != 0) iov[k++] = {&vh, vnet_hdr_len_};
    iov[k++] = {rx_.buf + cursor, frame_cap_ + 1u};
    ssize_t r = SysReadv(fd_, iov, k);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (IsFatal(errno)) return -errno;
      stats_[kRxErrors] += 1;  // e.g. ENOMEM: drop this wake-up, poll will fire again
      break;
    }
    if (static_cast<size_t>(r) <= vnet_hdr_len_ ||
        static_cast<size_t>(r) - vnet_hdr_len_ > frame_cap_) {
      stats_[kRxErrors] += 1;
      continue;
    }
    uint32_t len = static_cast<uint32_t>(r - vnet_hdr_len_);
    rx_.offsets[n] = static_cast<uint32_t>(cursor);
    rx_.lengths[n] = len;
    if (vnet_hdr_len_ != 0) {
      rx_.flags[n] = vh.flags;
      rx_.gso_type[n] = vh.gso_type;
      rx_.gso_size[n] = le16toh(vh.gso_size);
      rx_.csum_start[n] = le16toh(vh.csum_start);
      rx_.csum_offset[n] = le16toh(vh.csum_offset);
    } else {
      rx_.flags[n] = 0;
      rx_.gso_type[n] = kGsoNone;
      rx_.gso_size[n] = 0;
      rx_.csum_start[n] = 0;
      rx_.csum_offset[n] = 0;
    }
    bytes += len;
    cursor += AlignUp(len);
    n++;
  }
  stats_[kRxFrames] += n;
  stats_[kRxBytes] += bytes;
  return n;
}

// The segment size of a glued (GRO) datagram, or 0 when it is a single datagram.
static uint32_t GroSegmentSize(msghdr& h) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int size;
      memcpy(&size, CMSG_DATA(c), sizeof size);
      return size > 0 ? static_cast<uint32_t>(size) : 0;
    }
  }
  return 0;
}

int64_t IoPort::ReceiveUdp() {
  for (uint32_t i = 0; i < batch_; i++) {
    rx_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    if (udp_offload_) rx_msgs_[i].msg_hdr.msg_controllen = kCtrlWords * 8;
  }
  int r;
  do {
    r = SysRecvmmsg(fd_, rx_msgs_.data(), batch_, MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    if (IsFatal(errno)) return -errno;
    stats_[kRxErrors] += 1;  // a queued socket error (ICMP) or ENOMEM: reported once
    return 0;
  }
  uint32_t n = 0;
  double bytes = 0;
  for (int i = 0; i < r; i++) {
    mmsghdr& m = rx_msgs_[i];
    if ((m.msg_hdr.msg_flags & MSG_TRUNC) != 0 || m.msg_hdr.msg_namelen != sizeof(sockaddr_in)) {
      stats_[kRxErrors] += 1;
      continue;
    }
    uint32_t at = static_cast<uint32_t>(static_cast<uint8_t*>(rx_iovs_[i].iov_base) - rx_.buf);
    uint32_t len = m.msg_len;
    // A glued (GRO) datagram is datagrams of `segment` bytes, the last possibly shorter.
    uint32_t segment = udp_offload_ ? GroSegmentSize(m.msg_hdr) : 0;
    if (segment == 0 || segment >= len) segment = len == 0 ? 1 : len;
    uint32_t segments = len == 0 ? 1 : (len + segment - 1) / segment;
    uint32_t room = rx_entries_ - n;
    if (segments > room) {
      stats_[kRxErrors] += segments - room;
      segments = room;
    }
    if (segments > 1) stats_[kRxGlued] += segments;
    for (uint32_t k = 0; k < segments; k++) {
      uint32_t start = k * segment;
      uint32_t length = len - start < segment ? len - start : segment;
      rx_.offsets[n] = at + start;
      rx_.lengths[n] = length;
      rx_.addrs[n] = ntohl(rx_names_[i].sin_addr.s_addr);
      rx_.ports[n] = ntohs(rx_names_[i].sin_port);
      bytes += length;
      n++;
    }
  }
  stats_[kRxFrames] += n;
  stats_[kRxBytes] += bytes;
  return n;
}

uint32_t IoPort::SendTap(uint32_t count) {
  uint32_t sent = 0;
  double bytes = 0;
  VnetHdr vh{};  // num_buffers (the 12-byte form) stays 0 on transmit
  for (uint32_t i = 0; i < count; i++) {
    iovec head, body;
    bool ok = Parts(i, &head, &body);
    size_t len = head.iov_len + body.iov_len;
    if (!ok || len == 0) {
      stats_[kTxDropped] += 1;
      continue;
    }
    iovec iov[3];
    int k = 0;
    if (vnet_hdr_len_ != 0) {
      vh.flags = tx_.flags[i];
      vh.gso_type = tx_.gso_type[i];
      // hdr_len 0: the kernel raises it to csum_start + csum_offset + 2 when NEEDS_CSUM
      // is set, which is all tun uses it for (how much to copy into the linear part).
      vh.hdr_len = 0;
      vh.gso_size = htole16(tx_.gso_size[i]);
      vh.csum_start = htole16(tx_.csum_start[i]);
      vh.csum_offset = htole16(tx_.csum_offset[i]);
      iov[k++] = {&vh, vnet_hdr_len_};
    }
    if (head.iov_len != 0) iov[k++] = head;
    if (body.iov_len != 0) iov[k++] = body;
    ssize_t r;
    do {
      r = SysWritev(fd_, iov, k);
    } while (r < 0 && errno == EINTR);
    // EAGAIN/ENOBUFS (queue full), EIO (link down), EINVAL (a bad virtio header): the
    // frame is lost either way, and a lost frame is what a full NIC queue means too.
    if (r < 0) {
      stats_[kTxDropped] += 1;
      continue;
    }
    sent++;
    bytes += len;
  }
  stats_[kTxFrames] += sent;
  stats_[kTxBytes] += bytes;
  return sent;
}

uint32_t IoPort::SendUdp(uint32_t count) {
  // Entries become messages: one per datagram, or with udp_offload_ one per run of
  // datagrams to the same peer of which all but the last have the same size (what
  // UDP_SEGMENT can express). Every entry keeps two iovecs (head, body; either may be
  // empty), so a run's iovecs are contiguous.
  uint32_t built = 0;
  uint32_t msgs = 0;
  size_t run_bytes = 0;     // of the open run
  size_t segment = 0;       // its datagram size
  bool run_open = false;    // its last datagram had the full size, so it may grow
  for (uint32_t i = 0; i < count; i++) {
    iovec* iov = &tx_iovs_[2 * built];
    if (!Parts(i, &iov[0], &iov[1])) {
      stats_[kTxDropped] += 1;
      continue;
    }
    size_t len = iov[0].iov_len + iov[1].iov_len;
    uint32_t addr = htonl(tx_.addrs[i]);
    uint16_t port = htons(tx_.ports[i]);
    if (run_open && len != 0 && len <= segment && run_bytes + len <= kMaxUdpPayload &&
        tx_segments_[msgs - 1] < kMaxGsoSegments && tx_names_[msgs - 1].sin_addr.s_addr == addr &&
        tx_names_[msgs - 1].sin_port == port) {
      tx_msgs_[msgs - 1].msg_hdr.msg_iovlen += 2;
      tx_segments_[msgs - 1]++;
      run_bytes += len;
      run_open = len == segment;
      built++;
      continue;
    }
    msghdr& h = tx_msgs_[msgs].msg_hdr;
    h.msg_iov = iov;
    h.msg_iovlen = 2;
    h.msg_control = nullptr;
    h.msg_controllen = 0;
    sockaddr_in& to = tx_names_[msgs];
    to.sin_family = AF_INET;
    to.sin_port = port;
    to.sin_addr.s_addr = addr;
    tx_segments_[msgs] = 1;
    run_bytes = len;
    segment = len;
    run_open = udp_offload_ && len != 0;
    built++;
    msgs++;
  }
  for (uint32_t m = 0; m < msgs; m++) {
    if (tx_segments_[m] < 2) continue;
    msghdr& h = tx_msgs_[m].msg_hdr;
    h.msg_control = &tx_ctrl_[m * kCtrlWords];
    h.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
    cmsghdr* c = CMSG_FIRSTHDR(&h);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t size = static_cast<uint16_t>(h.msg_iov[0].iov_len + h.msg_iov[1].iov_len);
    memcpy(CMSG_DATA(c), &size, sizeof size);
  }
  uint32_t sent = 0;
  double bytes = 0;
  uint32_t m = 0;
  while (m < msgs) {
    int r = SysSendmmsg(fd_, &tx_msgs_[m], msgs - m, MSG_DONTWAIT);
    if (r > 0) {
      for (int j = 0; j < r; j++) {
        uint32_t segments = tx_segments_[m + j];
        bytes += tx_msgs_[m + j].msg_len;
        sent += segments;
        if (segments > 1) stats_[kTxGlued] += segments;
      }
      m += r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      // The send buffer is full: the rest of the batch would meet the same fate.
      for (; m < msgs; m++) stats_[kTxDropped] += tx_segments_[m];
      break;
    }
    // This message alone was refused (EINVAL for port 0, EMSGSIZE, ENETUNREACH, ...):
    // sendmmsg stops at the first failure, so skip it and carry on with the rest.
    stats_[kTxDropped] += tx_segments_[m];
    m++;
  }
  stats_[kTxFrames] += sent;
  stats_[kTxBytes] += bytes;
  return sent;
}

}  // namespace podwire
