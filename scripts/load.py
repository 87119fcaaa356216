#!/usr/bin/env python3
"""Load for the kill -9 test, and its check.

load:  load.py --port P --source IP --messages N --connections C --out FILE
       Sends N messages over C concurrent connections (smtplib, from IP), each
       with a unique id and a body derived from it; writes one line per message
       answered 250 after DATA ("acked ID") or tried without a 250 ("tried ID").
       Connection failures (the server being killed) are expected: the message
       is left unacked and the worker goes on with a new connection.
check: load.py --check FILE --sink DIR
       Prints "ok" when every acked message is in the sink, intact, and every
       message in the sink is one that was sent (acked, or in flight when the
       server died); otherwise says what is wrong. Delivery is at least once:
       a message the exchanger took just before the kill, but that the spool
       had not yet forgotten, goes again after the restart (RFC 5321 6.1);
       such duplicates are counted, not failed.
"""
import argparse
import os
import re
import smtplib
import threading


def body(i):
    lines = [f"Subject: load {i}", f"X-Load-Id: {i}", ""]
    lines += [f"load message {i} line {k} ." + "x" * (k % 50) for k in range(40)]
    lines += [".leading dot line", "end"]
    return ("\r\n".join(lines) + "\r\n").encode()


def load(args):
    results = []
    lock = threading.Lock()
    ids = iter(range(args.messages))

    def worker():
        conn = None
        while True:
            with lock:
                i = next(ids, None)
            if i is None:
                break
            status = "tried"
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", args.port, source_address=(args.source, 0), timeout=20)
                    conn.ehlo("load.lan")
                refused = conn.sendmail("load@lan.example", [f"sink{i}@nmap.scanme.org"], body(i))
                if not refused:
                    status = "acked"
            except (OSError, smtplib.SMTPException):
                conn = None
            with lock:
                results.append(f"{status} {i}")
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass

    threads = [threading.Thread(target=worker) for _ in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(args.out, "w") as f:
        f.write("\n".join(r for r in results if r.startswith("acked")) + "\n")
    with open(args.out + ".tried", "w") as f:
        f.write("\n".join(r for r in results if r.startswith("tried")) + "\n")


def check(args):
    acked = {int(l.split()[1]) for l in open(args.check) if l.strip()}
    tried = {int(l.split()[1]) for l in open(args.check + ".tried") if l.strip()}
    seen = {}
    problems = []
    for name in sorted(os.listdir(args.sink)):
        data = open(os.path.join(args.sink, name), "rb").read()
        m = re.search(rb"X-Load-Id: (\d+)", data)
        if not m:
            continue
        i = int(m.group(1))
        seen[i] = seen.get(i, 0) + 1
        expected = body(i).split(b"\r\n\r\n", 1)[1]
        text = data.replace(b"\r\n", b"\n")
        if expected.replace(b"\r\n", b"\n") not in text:
            problems.append(f"message {i} damaged")
    for i in sorted(acked):
        if i not in seen:
            problems.append(f"acked message {i} lost")
    duplicates = sum(n - 1 for n in seen.values())
    for i in sorted(seen):
        if i not in acked and i not in tried:
            problems.append(f"message {i} at the sink was never sent")
    if problems:
        print("; ".join(problems[:10]))
    else:
        print(f"ok: {len(acked)} acked, {len(seen)} distinct at the sink, {duplicates} duplicate deliveries from the crash window")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int)
    p.add_argument("--source")
    p.add_argument("--messages", type=int, default=200)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--out")
    p.add_argument("--check")
    p.add_argument("--sink")
    a = p.parse_args()
    check(a) if a.check else load(a)
