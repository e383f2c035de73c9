# Sends one UDP datagram of SIZE bytes to HOST:PORT (the kernel fragments it when it is
# larger than the interface MTU). With "refused", it then waits for an answer and prints
# "refused" when the kernel reports ICMP port unreachable (ECONNREFUSED), else "silence".
import socket, sys

host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mode = sys.argv[4] if len(sys.argv) > 4 else 'send'
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port))
s.send(bytes(i & 0xff for i in range(size)))
if mode == 'refused':
    s.settimeout(3)
    try:
        s.recv(65535)
        print('answered')
    except ConnectionRefusedError:
        print('refused')
    except socket.timeout:
        print('silence')
