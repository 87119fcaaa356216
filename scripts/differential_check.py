#!/usr/bin/env python3
"""Checks relayguard probe's verdicts against Postfix's own log.

argv: config name, instance directory (probe.json, probe.rc, maillog), sink
port. Ground truth, from the log: the probe tokens (X-Relayguard-Probe,
logged by a header_checks WARN rule, top-level headers only) of each queue
id, which queue ids Postfix handed to the sink (smtp, relay=...:SINK,
status=sent) and which it delivered to local files. Prints one markdown
row of the matrix; prints every disagreement on stderr.
"""
import json
import re
import sys

name, d, sink_port = sys.argv[1], sys.argv[2], sys.argv[3]
doc = json.load(open(f"{d}/probe.json"))
rc = open(f"{d}/probe.rc").read().strip()
log = open(f"{d}/maillog", errors="replace").read().splitlines()

tokens = {}  # queue id -> set of tokens
to_sink, local = set(), set()
forwarded = {}  # queue id -> the queue ids local(8) forwarded it as
victims = set()  # smuggled recipients Postfix was asked for (commands run)
for line in log:
    m = re.search(r" ([0-9A-F]{6,}): to=<[^>]*>,.* status=sent \(forwarded as ([0-9A-F]+)\)", line)
    if m:
        forwarded.setdefault(m.group(1), set()).add(m.group(2))
    m = re.search(r"to=<(victim-[^@>]+)@", line)
    if m:
        victims.add(m.group(1))
    m = re.search(r" ([0-9A-F]{6,}): warning: header X-Relayguard-Probe: (\S+) ", line)
    if m:
        tokens.setdefault(m.group(1), set()).add(m.group(2))
    m = re.search(r" ([0-9A-F]{6,}): to=<[^>]*>,.* relay=[^,]*:%s,.* status=sent" % sink_port, line)
    if m:
        to_sink.add(m.group(1))
    m = re.search(r" ([0-9A-F]{6,}): to=<[^>]*>,.* status=sent \(delivered to file", line)
    if m:
        local.add(m.group(1))

# A forwarded copy (an alias to the sink) skips header_checks: it carries
# the tokens of the message it was forwarded from.
changed = True
while changed:
    changed = False
    for q, news in forwarded.items():
        for n in news:
            if not tokens.get(q, set()) <= tokens.get(n, set()):
                tokens.setdefault(n, set()).update(tokens.get(q, set()))
                changed = True

accepted = set().union(*tokens.values()) if tokens else set()
sent_sink = {t for q in to_sink for t in tokens.get(q, ())}
sent_local = {t for q in local for t in tokens.get(q, ())}

def err(msg):
    print(f"{name}: {msg}", file=sys.stderr)

for t in doc["transcripts"]:
    n, v = t["transcript"], t["verdict"]
    for a in t["attempts"]:
        tok = a["token"]
        if a["arrived_at_sink"] != (tok in sent_sink):
            err(f"{n}: attempt {a['rcpt']!r}: probe says arrived={a['arrived_at_sink']}, Postfix sent it to the sink: {tok in sent_sink}")
        if a["verdict"] == "confirmed" and tok not in sent_sink:
            err(f"{n}: confirmed but Postfix never sent {tok} to the sink")
        if t["from"] == "outside" and tok in sent_sink and a["verdict"] != "confirmed":
            err(f"{n}: Postfix relayed {tok} for an outsider, probe says {a['verdict']}")
    s = t["smuggling"]
    if s:
        tok1, tok2 = s["tokens"]
        base = tok1[: -len("-1")]
        # Postfix split the message: the smuggled one was accepted (its
        # header was checked), or its recipient was asked for as a command.
        smuggled = tok2 in accepted or f"victim-{base}" in victims
        if smuggled and not s["outbound"] and v not in ("confirmed", "suspected"):
            err(f"{n}: Postfix accepted the smuggled message ({tok2}), probe says {v}")
        if s["outbound"]:
            if v == "confirmed" and tok1 not in sent_sink:
                err(f"{n}: confirmed, but Postfix did not send {tok1} to the sink")
            continue
        if not smuggled and v in ("confirmed", "suspected"):
            err(f"{n}: probe says {v}, but Postfix never saw a smuggled message")
        if v == "confirmed" and not s["outbound"] and tok2 not in sent_sink:
            err(f"{n}: confirmed, but Postfix did not send {tok2} to the sink")

s = doc["summary"]
tot = [sum(c[k] for c in s.values()) for k in ("confirmed", "suspected", "refused", "skipped", "error")]
def names(verdict):
    out = [t["transcript"].removesuffix(".smtp") for t in doc["transcripts"] if t["verdict"] == verdict]
    return ", ".join(out[:6]) + (f" (+{len(out) - 6})" if len(out) > 6 else "")
outside_relayed = {a["token"] for t in doc["transcripts"] if t["from"] == "outside" for a in t["attempts"]} & sent_sink
smuggled = sum(1 for t in doc["transcripts"] if t["smuggling"] and not t["smuggling"]["outbound"]
               and (t["smuggling"]["tokens"][1] in accepted or f"victim-{t['smuggling']['tokens'][0][:-2]}" in victims))
print(f"| {name} | {rc} | {tot[0]} | {tot[1]} | {tot[2]} | {tot[3]} | {tot[4]} | "
      f"{len(outside_relayed)} | {smuggled} | {len(sent_local)} | {names('confirmed') or '-'} | {names('suspected') or '-'} |")
