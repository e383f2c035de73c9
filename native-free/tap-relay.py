#!/usr/bin/env python3
"""podwire's TAP opener for hosts where the addon could not be built.

Node has no ioctl(), so this helper opens the TAP (TUNSETIFF) and relays frames between
the device and its stdin/stdout, as records of [u32 big-endian length][payload]. With
--vnet-hdr the payload starts with the 10-byte virtio_net_hdr the kernel reads and writes,
passed through untouched. The first record on stdout is a JSON handshake:
{"name": <kernel's device name>, "vnetHdrLen": 0 or 10}.

The device lives as long as this process; it exits when stdin closes (the node process
closed the port or died). Errors during setup go to stderr with exit status 2.

usage: tap-relay.py NAME [--vnet-hdr] [--offload]
"""
import errno
import fcntl
import json
import os
import select
import struct
import sys
import threading

TUNSETIFF = 0x400454CA  # _IOW('T', 202, int)
TUNSETOFFLOAD = 0x400454D0  # _IOW('T', 208, unsigned int)
TUNSETVNETHDRSZ = 0x400454D8  # _IOW('T', 216, int)
TUNSETVNETLE = 0x400454DC  # _IOW('T', 220, int)
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6 = 0x01, 0x02, 0x04

VNET_HDR_LEN = 10
READ_SIZE = 65553 + VNET_HDR_LEN + 1  # a GSO super-frame, its header, one byte to spot truncation
BATCH = 256  # frames per write to stdout
PREFIX = struct.Struct(">I")


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def open_tap(name, vnet_hdr, offload):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    flags = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
    ifr = fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), flags))
    if vnet_hdr:
        fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HDR_LEN))
        try:
            fcntl.ioctl(fd, TUNSETVNETLE, struct.pack("i", 1))
        except OSError:
            if sys.byteorder != "little":
                raise  # pre-4.1 kernels use host order, which is little-endian anyway
        fcntl.ioctl(fd, TUNSETOFFLOAD, (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) if offload else 0)
    os.set_blocking(fd, False)
    return fd, ifr[:16].rstrip(b"\0").decode()


def tap_to_stdout(tap):
    """Waits for the TAP, reads every ready frame (up to BATCH), writes them in one go."""
    poller = select.poll()
    poller.register(tap, select.POLLIN)
    out = []
    while True:
        poller.poll()
        for _ in range(BATCH):
            try:
                frame = os.read(tap, READ_SIZE)
            except BlockingIOError:
                break
            except OSError as e:
                # EBADFD: the device was deleted under us. Exiting tells the node process.
                sys.stderr.write("tap-relay: read: %s\n" % e)
                sys.stderr.flush()
                os._exit(1)
            if 0 < len(frame) < READ_SIZE:  # a read that fills the buffer was truncated
                out.append(PREFIX.pack(len(frame)))
                out.append(frame)
        if out:
            try:
                write_all(1, b"".join(out))
            except BrokenPipeError:
                os._exit(0)
            out.clear()


def stdin_to_tap(tap):
    """Parses records from stdin and writes each frame to the TAP; returns at EOF."""
    pending = b""
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            return
        data = pending + chunk if pending else chunk
        pos = 0
        while len(data) - pos >= 4:
            (length,) = PREFIX.unpack_from(data, pos)
            if len(data) - pos - 4 < length:
                break
            try:
                os.write(tap, data[pos + 4:pos + 4 + length])
            except OSError as e:
                # A full queue or a frame the kernel refuses is a dropped frame, as on a NIC.
                if e.errno not in (errno.EAGAIN, errno.ENOBUFS, errno.EINVAL, errno.EIO):
                    raise
            pos += 4 + length
        pending = data[pos:]


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.stderr.write(__doc__)
        return 2
    name, vnet_hdr, offload = args[0], "--vnet-hdr" in args, "--offload" in args
    try:
        tap, real_name = open_tap(name, vnet_hdr or offload, offload)
    except OSError as e:
        sys.stderr.write("tap-relay: open TAP %s: %s\n" % (name, e))
        return 2
    hello = json.dumps({"name": real_name, "vnetHdrLen": VNET_HDR_LEN if (vnet_hdr or offload) else 0}).encode()
    write_all(1, PREFIX.pack(len(hello)) + hello)
    threading.Thread(target=tap_to_stdout, args=(tap,), daemon=True).start()
    stdin_to_tap(tap)
    return 0


if __name__ == "__main__":
    # os._exit: the reader thread may be blocked in poll(); nothing needs unwinding.
    os._exit(main())
