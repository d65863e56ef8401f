#!/usr/bin/env python3
"""shuffle_proxy.py PORT UPSTREAM SEED BANK - an ablation for tests/e2e/t_sim_world.sh.

Forwards Chat Completions requests to UPSTREAM (a `autodata sim-server` base URL ending in
/v1) after shuffling the numbers of the feedback block between items: every item line
("N. [type] "question" - weak avg: ..., strong avg: ..., gap: ...") keeps its heading and
question but gets the statistics of another item, drawn from BANK (a file of lines
"<group>\t<stats text>", e.g. "Questions that were TOO EASY\tweak avg: 83%", taken from
another run's feedback; the group is ignored: numbers move between groups too), by a hash of
SEED, the heading and the question, so the run is deterministic. The feedback still
reads like feedback, with realistic numbers, but they no longer belong to its questions.
Nothing else is changed. Prints "ready" once listening on 127.0.0.1:PORT."""
import json, random, re, sys, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, UPSTREAM, SEED = int(sys.argv[1]), sys.argv[2].rstrip("/"), int(sys.argv[3])
BANK = {}
for line in open(sys.argv[4]):
    g, _, st = line.rstrip("\n").partition("\t")
    BANK.setdefault(g, []).append(st)
BANK_ALL = [st for v in BANK.values() for st in v]
ITEM = re.compile(r"^(\s*\d+\.\s.*?)(weak avg:.*)$")


def shuffle_block(text, rnd):
    out, group, n = [], "", 0
    for l in text.split("\n"):
        if l.startswith("Questions that"):
            group = l.split(" (")[0]
        m = ITEM.match(l)
        if m and BANK_ALL:
            bank = BANK_ALL
            r = random.Random(f"{SEED}/{group}/{m.group(1)}")
            st = bank[r.randrange(len(bank))]
            for _ in range(4):  # another item's numbers
                if st != m.group(2):
                    break
                st = bank[r.randrange(len(bank))]
            l = m.group(1) + st
            n += 1
        out.append(l)
    return "\n".join(out), n


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        self.forward(None)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(n)
        try:
            req = json.loads(body)
            rnd = random.Random(f"{SEED}/{req.get('seed')}")
            for m in req.get("messages", []):
                if m.get("role") == "user" and isinstance(m.get("content"), str):
                    m["content"], _ = shuffle_block(m["content"], rnd)
            body = json.dumps(req).encode()
        except ValueError:
            pass
        self.forward(body)

    def forward(self, body):
        url = UPSTREAM + self.path[len("/v1"):] if self.path.startswith("/v1") else UPSTREAM + self.path
        r = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                   headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(r, timeout=60) as resp:
                status, data = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


srv = ThreadingHTTPServer(("127.0.0.1", PORT), H)
print("ready", flush=True)
srv.serve_forever()
