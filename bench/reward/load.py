#!/usr/bin/env python3
"""load.py PORT BODIES_JSONL INFLIGHT TOTAL SERVER_PID: TOTAL POST /v1/reward requests from
INFLIGHT keep-alive connections at once (each sends its next request when its reply is in),
cycling through BODIES_JSONL ({"body": {...}} per line). Prints requests/s and the server's
CPU time per request (from /proc/SERVER_PID/stat). Standard library only."""
import asyncio
import json
import os
import resource
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK  # utime + stime


async def worker(port, bodies, next_i, total, stats):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while True:
        i = next_i[0]
        if i >= total:
            break
        next_i[0] += 1
        data = json.dumps(bodies[i % len(bodies)]).encode()
        writer.write(b"POST /v1/reward HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(data)
                     + data)
        head = await reader.readuntil(b"\r\n\r\n")
        clen = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                clen = int(line.split(b":")[1])
        await reader.readexactly(clen)
        status = int(head.split(b" ")[1])
        stats[status] = stats.get(status, 0) + 1
    writer.close()


async def main():
    port, path, inflight, total, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    bodies = [json.loads(l)["body"] for l in open(path) if l.strip()]
    stats, next_i = {}, [0]
    c0, t0 = cpu_s(pid), time.monotonic()
    await asyncio.gather(*(worker(int(port), bodies, next_i, total, stats) for _ in range(inflight)))
    wall, cpu = time.monotonic() - t0, cpu_s(pid) - c0
    ok = stats.get(200, 0)
    print(f"{total} requests at {inflight} in flight: {total / wall:.0f} requests/s, "
          f"server CPU {1e3 * cpu / total:.3f} ms per request ({cpu:.2f} s over {wall:.2f} s), "
          f"status {dict(sorted(stats.items()))}")
    sys.exit(0 if ok == total else 1)


asyncio.run(main())
