# Receives UDP datagrams on PORT for SECONDS and prints "ready" once bound, then one line
# per datagram: its source and its length, so the test sees whether a fragmented datagram
# arrived whole.
import socket, sys, time

port, seconds = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', port))
print('ready', flush=True)
deadline = time.monotonic() + seconds
while (left := deadline - time.monotonic()) > 0:
    s.settimeout(left)
    try:
        data, (addr, _) = s.recvfrom(65535)
    except socket.timeout:
        break
    print(f'{addr} {len(data)}', flush=True)
