/**
 * A Python script that opens N TCP connections to 127.0.0.1:PORT and holds them, opening a
 * new one for each that closes; after a second it prints how many of the first N were still
 * open, then goes on holding until killed. Run as `python3 -c HOLDER_SCRIPT PORT N`: the DNS
 * port's per-user connection limits are tested with it.
 */
export const HOLDER_SCRIPT = `
import socket, sys, time
port = int(sys.argv[1]); n = int(sys.argv[2])
def connect():
    try: return socket.create_connection(('127.0.0.1', port), timeout=2)
    except OSError: return None
def is_open(s):
    if s is None: return False
    try: return s.recv(1, socket.MSG_DONTWAIT) != b''
    except BlockingIOError: return True
    except OSError: return False
held = [connect() for _ in range(n)]
time.sleep(1)
print(sum(1 for s in held if is_open(s)), flush=True)
while True:
    for i, s in enumerate(held):
        if not is_open(s):
            if s is not None: s.close()
            held[i] = connect()
    time.sleep(0.2)
`;
