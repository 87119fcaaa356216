#!/usr/bin/env python3
"""Hostile peers against `relayguard serve`, on loopback, with bounded loops.

slowloris:  hostile.py slowloris --port P --sources 127.0.0.10 --count N --every S --limit T
            N connections (source addresses counted up from the first, so
            that the per-address limit is not what stops them), each sending
            one octet of a never-ending command line every S seconds, or of a
            message with --data. Prints how long each lasted before the
            server closed it ("lasted MIN MAX CUT/N"), giving up after T s.
slowreader: hostile.py slowreader --port P --source IP --limit T
            EHLO after EHLO without ever reading (a small receive buffer;
            EHLO, unlike NOOP, is not cut by max_junk_commands, so only the
            write deadline can end it);
            prints "dropped after X s" when the server drops the connection,
            or "held T s" if it did not within T seconds.
guess:      hostile.py guess --port P --source IP --tries N --limit T
            N wrong AUTH PLAIN passwords for carol, reconnecting whenever the
            server closes; prints "tries N 535 A refused R in X s, min gap G s"
            (G: the shortest time between a 535 and the next reply).
"""
import argparse
import base64
import ipaddress
import socket
import threading
import time


def connect(port, source, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def reply(s, f):
    """One whole reply (the last line of a multi-line one)."""
    while True:
        line = f.readline()
        if not line:
            return b""
        if len(line) < 4 or line[3:4] != b"-":
            return line


def slowloris(a):
    results = [None] * a.count
    first = ipaddress.ip_address(a.sources)

    def one(i):
        start = time.monotonic()
        try:
            s = connect(a.port, str(first + i))
            f = s.makefile("rb")
            reply(s, f)
            if a.data:
                for c in [b"EHLO slow.example", b"MAIL FROM:<s@outside.example>",
                          b"RCPT TO:<alice@example.com>", b"DATA"]:
                    s.sendall(c + b"\r\n")
                    reply(s, f)
                octet = b"x"
            else:
                s.sendall(b"E")
                octet = b"H"
            s.settimeout(a.every)
            while time.monotonic() - start < a.limit:
                try:
                    if not s.recv(4096):
                        results[i] = time.monotonic() - start
                        return
                except socket.timeout:
                    s.sendall(octet)
        except OSError:
            results[i] = time.monotonic() - start

    threads = [threading.Thread(target=one, args=(i,)) for i in range(a.count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cut = [r for r in results if r is not None]
    if cut:
        print(f"lasted {min(cut):.1f} {max(cut):.1f} {len(cut)}/{a.count}")
    else:
        print(f"lasted - - 0/{a.count}")


def slowreader(a):
    start = time.monotonic()
    s = connect(a.port, a.source, rcvbuf=4096)
    s.sendall(b"EHLO slowreader.example\r\n")
    s.settimeout(0.5)
    burst = b"EHLO slowreader.example\r\n" * 1000
    while time.monotonic() - start < a.limit:
        try:
            s.send(burst)
        except socket.timeout:
            continue
        except OSError:
            print(f"dropped after {time.monotonic() - start:.1f} s")
            return
    print(f"held {a.limit} s")


def guess(a):
    start = time.monotonic()
    counts = {"535": 0, "refused": 0}
    gaps = []
    tries = 0
    while tries < a.tries and time.monotonic() - start < a.limit:
        try:
            s = connect(a.port, a.source)
            f = s.makefile("rb")
            if not reply(s, f).startswith(b"220"):
                counts["refused"] += 1
                tries += 1
                continue
            s.sendall(b"EHLO guess.example\r\n")
            reply(s, f)
            last_535 = None
            while tries < a.tries:
                pw = base64.b64encode(f"\0carol\0guess{tries}".encode()).decode()
                s.sendall(f"AUTH PLAIN {pw}\r\n".encode())
                r = reply(s, f)
                tries += 1
                now = time.monotonic()
                if last_535 is not None:
                    gaps.append(now - last_535)
                if r.startswith(b"535"):
                    counts["535"] += 1
                    last_535 = now
                else:
                    counts["refused"] += 1
                    last_535 = None
                    if not r or r.startswith(b"421"):
                        break
            s.close()
        except OSError:
            time.sleep(0.1)
    gap = f"{min(gaps):.2f}" if gaps else "-"
    print(f"tries {tries} 535 {counts['535']} refused {counts['refused']} "
          f"in {time.monotonic() - start:.2f} s, min gap {gap} s")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sl = sub.add_parser("slowloris")
    sl.add_argument("--port", type=int, required=True)
    sl.add_argument("--sources", default="127.0.0.10")
    sl.add_argument("--count", type=int, default=10)
    sl.add_argument("--every", type=float, default=3)
    sl.add_argument("--limit", type=float, default=60)
    sl.add_argument("--data", action="store_true")
    sr = sub.add_parser("slowreader")
    sr.add_argument("--port", type=int, required=True)
    sr.add_argument("--source", default="127.0.0.3")
    sr.add_argument("--limit", type=float, default=60)
    g = sub.add_parser("guess")
    g.add_argument("--port", type=int, required=True)
    g.add_argument("--source", default="127.0.0.3")
    g.add_argument("--tries", type=int, default=200)
    g.add_argument("--limit", type=float, default=120)
    a = p.parse_args()
    {"slowloris": slowloris, "slowreader": slowreader, "guess": guess}[a.cmd](a)


if __name__ == "__main__":
    main()
