#!/usr/bin/env python3
"""Hostile-client probes against a running fhegpt-server on this machine.

Usage: scripts/probe-server.py http://127.0.0.1:PORT SERVER_PID

Each probe prints what the server answered, how long that took, and the server's peak and
current resident memory (VmHWM, VmRSS from /proc/PID/status) afterwards:
  gzip       a 1 MiB gzip body that expands to 1 GiB (Content-Encoding: gzip)
  chunked    128 MiB sent chunked (Transfer-Encoding: chunked)
  no-length  128 MiB with no Content-Length, ended by closing
  huge       10 connections announcing Content-Length: 10^10, sending nothing
  slow       64 connections sending a header byte every 2 s, while GET /v1/info is timed
The tests (tests/test-net-http.cpp) check the same behaviours; this script measures them.
"""
import socket
import sys
import threading
import time
import zlib
from urllib.parse import urlparse

MIB = 1 << 20


def memory(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0]) / 1024
    return f"VmHWM {fields['VmHWM']:.0f} MiB, VmRSS {fields['VmRSS']:.0f} MiB"


def connect(host, port, timeout=30):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def status_of(data):
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    return line if line else "(no answer)"


def send_then_read(host, port, head, body_chunks, timeout=60, half_close=True):
    """Sends the head, then the body chunks (stopping if the server closes), and returns the
    answer's status line and the seconds until it came. half_close: end the body by closing
    the sending side (what a body without a length needs)."""
    start = time.monotonic()
    s = connect(host, port, timeout)
    try:
        s.sendall(head)
        for chunk in body_chunks:
            s.sendall(chunk)
        if half_close:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
    except OSError as e:
        sent_error = f" (send stopped: {e.strerror})"
    else:
        sent_error = ""
    try:
        data = s.recv(4096)
    except OSError:
        data = b""
    s.close()
    return status_of(data) + sent_error, time.monotonic() - start


def gzip_bomb():
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    zeros = bytes(MIB)
    out = [comp.compress(zeros) for _ in range(1024)]
    out.append(comp.flush())
    return b"".join(out)


def main():
    url, pid = urlparse(sys.argv[1]), int(sys.argv[2])
    host, port = url.hostname, url.port
    print(f"start: {memory(pid)}")

    bomb = gzip_bomb()
    head = (f"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n").encode()
    status, seconds = send_then_read(host, port, head, [bomb])
    print(f"gzip ({len(bomb) / MIB:.1f} MiB -> 1 GiB): {status} in {seconds:.2f} s; {memory(pid)}")

    def chunked():
        piece = b"y" * MIB
        for _ in range(128):
            yield b"%x\r\n" % len(piece) + piece + b"\r\n"
        yield b"0\r\n\r\n"
    head = b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    status, seconds = send_then_read(host, port, head, chunked())
    print(f"chunked (128 MiB): {status} in {seconds:.2f} s; {memory(pid)}")

    head = b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, seconds = send_then_read(host, port, head, (b"n" * MIB for _ in range(128)))
    print(f"no-length (128 MiB): {status} in {seconds:.2f} s; {memory(pid)}")

    results = []
    def huge():
        results.append(send_then_read(host, port, b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n"
                                      b"Content-Length: 10000000000\r\n\r\n", [], timeout=120,
                                      half_close=False))
    threads = [threading.Thread(target=huge) for _ in range(10)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"huge (10 x Content-Length 10^10, no body): {sorted(set(r[0] for r in results))}, "
          f"slowest answer {max(r[1] for r in results):.2f} s, all in {time.monotonic() - start:.2f} s; {memory(pid)}")

    slow = [connect(host, port) for _ in range(64)]
    for s in slow:
        s.sendall(b"GET /v1/info HTTP/1.1\r\nX-Slow: ")
    stop = threading.Event()
    def trickle():
        while not stop.wait(2):
            for s in slow:
                try:
                    s.sendall(b"a")
                except OSError:
                    pass
    t = threading.Thread(target=trickle)
    t.start()
    time.sleep(1)
    latencies = []
    for _ in range(5):
        start = time.monotonic()
        status, _ = send_then_read(host, port, b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n", [], timeout=10,
                                   half_close=False)
        latencies.append((status, time.monotonic() - start))
        time.sleep(0.5)
    stop.set()
    t.join()
    for s in slow:
        s.close()
    print(f"slow (64 trickling connections): GET /v1/info {sorted(set(l[0] for l in latencies))}, "
          f"slowest {max(l[1] for l in latencies):.3f} s; {memory(pid)}")


if __name__ == "__main__":
    main()
