"""bench/idle.py - revokd's memory with many idle keep-alive connections open.

  idle.py PORT PID COUNT

Opens COUNT connections to 127.0.0.1:PORT at once and sends one GET /healthz on each, so that
each becomes a served keep-alive connection; waits up to 10 s for the answers; then, with every
connection still open and idle, prints "open=N rss_kib=R unanswered=U": N connections were
answered and are still open, R is VmRSS of process PID, U connections got no answer in time
(or were closed). Closes everything before it exits. Python standard library only."""
import errno
import resource
import selectors
import socket
import sys
import time

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: keep-alive\r\n\r\n"
ANSWER_WITHIN = 10.0


def complete(buf):
    """True once buf holds a whole response with a Content-Length body."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return True


def still_open(sock):
    """An idle connection the server has not closed: nothing to read, no EOF."""
    try:
        return sock.recv(1) != b""   # data on an idle connection is as wrong as EOF
    except BlockingIOError:
        return True
    except OSError:
        return False


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

    sel = selectors.DefaultSelector()
    socks, answered = [], []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            socks.append(s)
            if s.connect_ex(("127.0.0.1", port)) not in (0, errno.EINPROGRESS):
                continue
            sel.register(s, selectors.EVENT_WRITE, b"")
        deadline = time.monotonic() + ANSWER_WITHIN
        while sel.get_map() and time.monotonic() < deadline:
            for key, events in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                s = key.fileobj
                if events & selectors.EVENT_WRITE:   # connected (or failed to)
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                        sel.unregister(s)
                        continue
                    s.sendall(REQUEST)   # small enough for an empty socket buffer
                    sel.modify(s, selectors.EVENT_READ, b"")
                    continue
                try:
                    chunk = s.recv(4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(s)
                    continue
                buf = key.data + chunk
                if complete(buf):
                    sel.unregister(s)
                    if buf.split(b" ", 2)[1].startswith(b"2"):
                        answered.append(s)
                else:
                    sel.modify(s, selectors.EVENT_READ, buf)
        time.sleep(1.0)  # let the server settle with every connection idle
        open_now = sum(1 for s in answered if still_open(s))
        print(f"open={open_now} rss_kib={vm_rss_kib(pid)} unanswered={count - len(answered)}")
    finally:
        sel.close()
        for s in socks:
            s.close()


if __name__ == "__main__":
    main(sys.argv)
