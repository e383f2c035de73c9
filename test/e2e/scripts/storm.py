# A broadcast storm from a pod: COUNT ARP requests for TARGET_IP (an address no pod
# holds), with our own MAC and address OWN_IP so only the flood limit stands in their
# way, sent through a raw AF_PACKET socket at RATE frames a second (in bursts of 100).
import socket, struct, sys, time

count, target, own, rate = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
mac = bytes.fromhex(open('/sys/class/net/eth0/address').read().strip().replace(':', ''))
frame = b'\xff' * 6 + mac + b'\x08\x06' + struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) + mac + socket.inet_aton(own) + b'\0' * 6 + socket.inet_aton(target)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
started = time.monotonic()
sent = 0
while sent < count:
    for _ in range(min(100, count - sent)):
        s.send(frame)
        sent += 1
    ahead = started + sent / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
print('sent', sent, 'in', round(time.monotonic() - started, 2), 's')
