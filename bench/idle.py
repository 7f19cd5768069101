"""bench/idle.py - revokd's memory with many idle keep-alive connections open.

  idle.py PORT PID COUNT

Opens COUNT connections to 127.0.0.1:PORT, sends one GET /healthz on each and reads the answer,
so each is a served keep-alive connection, then, with all of them still open and idle, prints
"open=N rss_kib=R" where N counts the connections that were answered and are still open, and R is
VmRSS of process PID. Bounded: 10 s per connection step; closes everything before it exits."""
import resource
import socket
import sys
import time

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: keep-alive\r\n\r\n"


def read_response(sock):
    """Reads one response with a Content-Length body; True when its status is 2xx."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        body += chunk
    return head.split(b" ", 2)[1].startswith(b"2")


def still_open(sock):
    """An idle connection the server has not closed: nothing to read, no EOF."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""   # data on an idle connection is as wrong as EOF
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    port, pid, count = int(argv[1]), int(argv[2]), int(argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))
    socks, error = [], ""
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(s)
            s.sendall(REQUEST)
            if not read_response(s):
                error = " error=not_answered"
                break
    except OSError as e:  # refused or timed out: report how far it got
        error = f" error={e.__class__.__name__}"
    try:
        time.sleep(1.0)  # let the server settle with every connection idle
        open_now = sum(1 for s in socks if still_open(s))
        print(f"open={open_now} rss_kib={vm_rss_kib(pid)}{error}")
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    main(sys.argv)
