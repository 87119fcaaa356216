#!/usr/bin/env python3
"""Messages for the disk and kernel fault checks of conformance-disk.sh.

send:  disk_faults.py send --port P --source IP --sender S --to ADDR --count N
                           --size BYTES --tag T --out FILE [--connections C]
       Sends N messages (each with "X-Disk-Id: T-i" and a body of about
       BYTES derived from its id) over C concurrent connections. Writes one
       line per message to FILE: "acked ID", or "refused CODE ID" for a
       reply other than 250 (a 4xx while the disk is full is correct).
check: disk_faults.py check --acked FILE --dir DIR [--once] [--absent ID ...]
       Prints "ok ..." when every acked message is in a file under DIR with
       its body intact (and, with --once, exactly once), and no --absent
       message is there; otherwise says what is wrong.
"""
import argparse
import os
import re
import smtplib
import sys
import threading


def body(mid, size):
    lines = [f"Subject: disk {mid}", f"X-Disk-Id: {mid}", ""]
    k = 0
    total = 0
    while total < size:
        line = f"{mid} line {k} " + "abcdefghij" * (k % 7 + 1)
        lines.append(line)
        total += len(line) + 2
        k += 1
    lines.append("end")
    return ("\r\n".join(lines) + "\r\n").encode()


def send(a):
    ids = iter(range(a.count))
    lock = threading.Lock()
    results = []

    def worker():
        conn = None
        while True:
            with lock:
                i = next(ids, None)
            if i is None:
                break
            mid = f"{a.tag}-{i}"
            status = f"refused none {mid}"
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", a.port, source_address=(a.source, 0), timeout=60)
                    conn.ehlo("disk.lan")
                conn.sendmail(a.sender, [a.to.replace("{i}", str(i))], body(mid, a.size))
                status = f"acked {mid}"
            except smtplib.SMTPResponseException as e:
                status = f"refused {e.smtp_code} {mid}"
                try:
                    conn.rset()
                except (OSError, smtplib.SMTPException):
                    conn = None
            except (OSError, smtplib.SMTPException) as e:
                status = f"refused {type(e).__name__} {mid}"
                conn = None
            with lock:
                results.append(status)
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass

    threads = [threading.Thread(target=worker) for _ in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(a.out, "w") as f:
        f.write("".join(r + "\n" for r in results))
    acked = sum(r.startswith("acked") for r in results)
    print(f"sent {a.count}: {acked} acked, {a.count - acked} refused")


def check(a):
    acked = [l.split()[-1] for l in open(a.acked) if l.startswith("acked")]
    seen = {}
    problems = []
    for d, _, files in os.walk(a.dir):
        for name in files:
            data = open(os.path.join(d, name), "rb").read()
            m = re.search(rb"X-Disk-Id: (\S+)", data)
            if not m:
                continue
            mid = m.group(1).decode()
            seen[mid] = seen.get(mid, 0) + 1
            size = int(a.size)
            expected = body(mid, size).split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
            if expected not in data.replace(b"\r\n", b"\n"):
                problems.append(f"{mid} damaged")
    for mid in acked:
        if mid not in seen:
            problems.append(f"acked {mid} missing")
        elif a.once and seen[mid] > 1:
            problems.append(f"{mid} delivered {seen[mid]} times")
    for mid in a.absent or []:
        if mid in seen:
            problems.append(f"{mid} should not have been delivered")
    if problems:
        print("; ".join(problems[:10]) + (f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""))
    else:
        print(f"ok: {len(acked)} acked, {len(seen)} distinct found")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["send", "check"])
    p.add_argument("--port", type=int)
    p.add_argument("--source", default="127.0.0.2")
    p.add_argument("--sender", default="pc@lan.example")
    p.add_argument("--to")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--size", type=int, default=2000)
    p.add_argument("--tag", default="m")
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--out")
    p.add_argument("--acked")
    p.add_argument("--dir")
    p.add_argument("--once", action="store_true")
    p.add_argument("--absent", nargs="*")
    a = p.parse_args()
    sys.exit(send(a) if a.cmd == "send" else check(a))
