#!/usr/bin/env python3
"""reward_load.py PORT REQUESTS_JSONL N [--bench SECONDS]: send N POST /v1/reward requests
at once over loopback (one connection each, all in flight together), cycling through the
request bodies of REQUESTS_JSONL ({"body": {...}} per line). Prints one JSON line:
{"sent", "answered", "status": {code: n}, "twice": connections that got more than one
reply, "scores": [the scores of each answer, by request index]}. Standard library only."""
import asyncio
import json
import resource
import sys
import time


async def one(port, body):
    data = json.dumps(body).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
    await writer.drain()
    raw = await reader.read()  # until the server closes: a second reply would show here
    writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head else 0
    clen = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            clen = int(v)
    twice = len(rest) > clen
    try:
        scores = json.loads(rest[:clen]).get("scores")
    except ValueError:
        scores = None
    return status, twice, scores


async def main():
    port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    bodies = [json.loads(l)["body"] for l in open(path) if l.strip()]
    t0 = time.monotonic()
    cpu0 = time.process_time()
    res = await asyncio.gather(*(one(port, bodies[i % len(bodies)]) for i in range(n)),
                               return_exceptions=True)
    wall = time.monotonic() - t0
    out = {"sent": n, "answered": 0, "status": {}, "twice": 0, "scores": [], "errors": 0,
           "seconds": round(wall, 3), "client_cpu_s": round(time.process_time() - cpu0, 3)}
    for r in res:
        if isinstance(r, Exception):
            out["errors"] += 1
            out["scores"].append(None)
            continue
        status, twice, scores = r
        out["answered"] += 1
        out["status"][str(status)] = out["status"].get(str(status), 0) + 1
        out["twice"] += int(twice)
        out["scores"].append(scores)
    print(json.dumps(out))


asyncio.run(main())
