# A local user forging overlay traffic: binds BIND_ADDR:BIND_PORT (a peer node's underlay
# address, any port but its VTEP's) and sends COUNT VXLAN datagrams to DST_ADDR:4789
# carrying a UDP datagram INNER_SRC -> INNER_DST:DPORT framed from the peer's VTEP MAC to
# the receiving VTEP's. Or, with "bind-only", tries to bind BIND_ADDR:BIND_PORT and prints
# "bound" or the error's name.
import errno, socket, struct, sys

bind_addr, bind_port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.bind((bind_addr, bind_port))
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
    sys.exit(0)
if sys.argv[3] == 'bind-only':
    print('bound')
    sys.exit(0)
dst_addr, vni, dst_mac, src_mac, inner_src, inner_dst, dport, count = sys.argv[3:11]

def checksum(b):
    s = sum(struct.unpack(f'!{len(b) // 2}H', b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

payload = b'forged over the overlay'
udp = struct.pack('!HHHH', 40000, int(dport), 8 + len(payload), 0) + payload
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0x77, 0, 64, 17, 0, socket.inet_aton(inner_src), socket.inet_aton(inner_dst))
ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
eth = bytes.fromhex(dst_mac.replace(':', '')) + bytes.fromhex(src_mac.replace(':', '')) + b'\x08\x00'
vxlan = struct.pack('!II', 0x08000000, int(vni) << 8)
for _ in range(int(count)):
    s.sendto(vxlan + eth + ip + udp, (dst_addr, 4789))
print('sent', count, 'from', s.getsockname())
