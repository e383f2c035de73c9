// IoPort: batched, non-blocking frame I/O over one file descriptor (a TAP or a UDP socket).
//
// Receive: a uv_poll_t watches the fd; on wake, every frame the kernel has ready (up to
// `batch`) is read into a slab allocated once, its length and metadata go into typed arrays
// allocated once, and JavaScript is called once with the count. Nothing is allocated per
// frame and nothing crosses into JavaScript per frame.
//
// Transmit: JavaScript copies frames into the transmit slab and fills the transmit
// metadata arrays, then calls flush(count): one native call that hands every frame to the
// kernel (write/writev per frame for a TAP, sendmmsg for UDP).
//
// UDP segmentation offload (option `udpOffload`, for the loopback overlay): on transmit, a
// run of equal-sized datagrams to one peer leaves as one message with UDP_SEGMENT, so the
// kernel builds, routes and delivers a single skb for up to kMaxGsoSegments datagrams; on
// receive, the socket has UDP_GRO, such a glued datagram arrives whole with its segment
// size in a control message, and ReceiveUdp splits it back into one entry per datagram.
// JavaScript sees exactly the datagrams that were sent, in order. The cost is on the
// wire: `tcpdump -i lo` shows one glued datagram per run, as it shows TSO super-packets on
// a NIC (`ethtool -K lo tx-udp-segmentation off` makes the kernel split them before lo).
//
// Forwarding without copying: every port's receive slab is registered under a small
// number (`rxSlab`), and a transmit entry may name a range of any registered slab as the
// frame's body (txRefSlab/txRefOffsets/txRefLengths), after an optional head in its own
// transmit slab (a VXLAN header, say). The kernel then gathers head and body straight
// from where the frame was received: a 64 KiB super-frame crosses the node without a copy
// in userspace. JavaScript must flush before the source slab is read into again, which
// the pipeline does at the end of every batch.
//
// The slabs and arrays are typed arrays created here and exposed as read-only properties
// of the wrapper object, so they live exactly as long as this object.
#pragma once

#include <napi.h>
#include <uv.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace podwire {

// struct virtio_net_hdr_mrg_rxbuf from include/uapi/linux/virtio_net.h, which C++ cannot
// include (a later struct there has a member named `class`). The first 10 bytes are
// struct virtio_net_hdr; num_buffers only exists with TUNSETVNETHDRSZ 12. openTap sets
// TUNSETVNETLE, so the 16-bit fields are little-endian whatever the host.
struct VnetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
  uint16_t num_buffers;
};
static_assert(sizeof(VnetHdr) == 12 && offsetof(VnetHdr, num_buffers) == 10, "virtio_net_hdr layout");
constexpr uint32_t kVnetHdrLen = 10;
constexpr uint32_t kVnetHdrMrgLen = 12;
constexpr uint8_t kGsoNone = 0;

// Datagrams glued into one UDP_SEGMENT send: UDP_MAX_SEGMENTS of every kernel since 4.18
// (later ones allow 128).
constexpr uint32_t kMaxGsoSegments = 64;
// Datagrams one received (GRO) datagram may split into, per recvmmsg slot; a sender that
// glued more loses the excess, counted in rxErrors.
constexpr uint32_t kMaxGroSegments = 128;

enum class Kind : uint32_t { Tap = 0, Udp = 1 };

// Slots of the shared Float64Array `stats`; src/io/native.ts reads the same order.
enum Stat : uint32_t {
  kRxFrames,
  kRxBytes,
  kRxBatches,
  kTxFrames,
  kTxBytes,
  kTxDropped,
  kRxErrors,
  kTxGlued,  // datagrams that left glued to others (UDP_SEGMENT)
  kRxGlued,  // datagrams that arrived glued to others (UDP_GRO) and were split
  kStatCount,
};

// Receive slabs by number, per Node environment (napi instance data): what a transmit
// entry's body may point into. Number 0 is never used: it means "no body".
class SlabRegistry {
 public:
  uint32_t Add(uint8_t* buf, size_t len);
  void Remove(uint32_t id);
  // The slab's memory when [offset, offset + length) lies inside it; nullptr otherwise.
  uint8_t* Range(uint32_t id, uint32_t offset, uint32_t length) const;

 private:
  struct Slab {
    uint8_t* buf;
    size_t len;
  };
  std::vector<Slab> slabs_{Slab{nullptr, 0}};
  std::vector<uint32_t> free_;
};

// One direction's shared memory. Unused arrays (addresses on a TAP, offload metadata on
// UDP) stay null.
struct Side {
  uint8_t* buf = nullptr;
  size_t buf_len = 0;
  uint32_t* offsets = nullptr;
  uint32_t* lengths = nullptr;
  uint8_t* flags = nullptr;
  uint8_t* gso_type = nullptr;
  uint16_t* gso_size = nullptr;
  uint16_t* csum_start = nullptr;
  uint16_t* csum_offset = nullptr;
  uint32_t* addrs = nullptr;  // IPv4, host order
  uint16_t* ports = nullptr;  // host order
  // Transmit only: the body each entry takes from a registered slab (0: none).
  uint32_t* ref_slab = nullptr;
  uint32_t* ref_offsets = nullptr;
  uint32_t* ref_lengths = nullptr;
};

class IoPort : public Napi::ObjectWrap<IoPort> {
 public:
  // Defines the class and gives the environment its slab registry.
  static Napi::Function Init(Napi::Env env);

  // new IoPort(fd, kind, { batch, frameCap, vnetHdrLen }). Takes ownership of fd at once:
  // it is closed by close(), by garbage collection, or here if the arguments are bad.
  explicit IoPort(const Napi::CallbackInfo& info);
  ~IoPort() override;

 private:
  // start(onBatch(count), onError(message, errno)): begins polling.
  Napi::Value Start(const Napi::CallbackInfo& info);
  // flush(count): sends tx frames [0, count); returns how many the kernel took.
  Napi::Value Flush(const Napi::CallbackInfo& info);
  // close(): stops polling and closes the fd; idempotent.
  Napi::Value Close(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  void HandleReadable(int poll_status);
  // Return the number of frames now in the rx arrays, or -errno for an error that ends
  // reception (the fd is dead, polling it again would spin).
  int64_t ReceiveTap();
  int64_t ReceiveUdp();
  uint32_t SendTap(uint32_t count);
  uint32_t SendUdp(uint32_t count);
  void Fail(Napi::Env env, const char* what, int err);
  void Shutdown();

  template <typename T>
  T* Share(Napi::Env env, Napi::Object self, const char* name, size_t count);
  // Entry i's head (in the tx slab) and body (in a registered slab, or empty); false when
  // either lies outside its slab or the two together exceed frame_cap_.
  bool Parts(uint32_t i, iovec* head, iovec* body) const;

  Kind kind_ = Kind::Tap;
  int fd_ = -1;
  uint32_t vnet_hdr_len_ = 0;
  uint32_t batch_ = 0;
  uint32_t frame_cap_ = 0;
  // UDP only: glue runs of equal datagrams on send, split glued ones on receive.
  bool udp_offload_ = false;
  // Entries the rx arrays hold: batch_, or batch_ * kMaxGroSegments with udp_offload_.
  uint32_t rx_entries_ = 0;

  uv_poll_t* poll_ = nullptr;  // freed by uv_close's callback, which may run after we are gone
  bool started_ = false;
  Napi::FunctionReference on_batch_;
  Napi::FunctionReference on_error_;
  std::unique_ptr<Napi::AsyncContext> async_;

  Side rx_, tx_;
  double* stats_ = nullptr;
  // Shared with the environment: whichever is finalised last frees it.
  std::shared_ptr<SlabRegistry> registry_;
  uint32_t rx_slab_ = 0;
  // Keeps the receive slab's memory alive until it is out of the registry, whatever order
  // garbage collection finalises the wrapper and the array in.
  Napi::Reference<Napi::ArrayBuffer> rx_memory_;

  // recvmmsg/sendmmsg descriptors, built once (UDP only).
  std::vector<mmsghdr> rx_msgs_, tx_msgs_;
  std::vector<iovec> rx_iovs_, tx_iovs_;  // tx: two per datagram (head, body)
  std::vector<sockaddr_in> rx_names_, tx_names_;
  // Control messages (UDP_GRO on receive, UDP_SEGMENT on transmit), one slot per message,
  // and how many datagrams each transmit message carries.
  std::vector<uint64_t> rx_ctrl_, tx_ctrl_;
  std::vector<uint32_t> tx_segments_;
};

}  // namespace podwire
