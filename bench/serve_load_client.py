#!/usr/bin/env python3
"""One load-generator process: CONCURRENCY aiohttp clients POST single rows (.npy bodies) to
URL for DURATION seconds, each sending its next request when the last is answered (closed
loop). Every answer is recorded: latency, HTTP status, the batch that answered it
(x-mlprt-replica / x-mlprt-batch / x-mlprt-batch-rows / x-mlprt-node), and for answered rows
the rel. L2 error against the float64 reference of that row (every --check-every'th answer; 1 =
all). A request that gets no answer within --timeout, or a connection error, is an error with
its kind: nothing is dropped without being counted. Writes one JSON to --out.

    python bench/serve_load_client.py --url http://127.0.0.1:8000/mlprt --concurrency 32 \
        --duration 30 --rows rows.npy --reference ref.npy --out client0.json
"""
import argparse
import asyncio
import io
import json
import time

import aiohttp
import numpy as np


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


async def client(session, args, bodies, reference, seed, stop_at, records):
    rng = np.random.default_rng(seed)
    n = 0
    while time.perf_counter() < stop_at:
        i = int(rng.integers(len(bodies)))
        start = time.perf_counter()
        record = {"t": time.time(), "row": i}
        try:
            async with session.post(args.url, data=bodies[i],
                                    headers={"content-type": "application/x-npy"}) as answer:
                payload = await answer.read()
                record["status"] = answer.status
                h = answer.headers
                if answer.status == 200:
                    record["batch"] = (h.get("x-mlprt-replica"), int(h.get("x-mlprt-batch", -1)),
                                       int(h.get("x-mlprt-batch-rows", -1)))
                    record["node"] = h.get("x-mlprt-node")
                    if n % args.check_every == 0:
                        y = np.load(io.BytesIO(payload)).astype(np.float64)
                        ref = reference[i]
                        record["rel_l2"] = float(np.linalg.norm(y - ref) / np.linalg.norm(ref))
                else:
                    record["error"] = payload[:200].decode(errors="replace")
        except asyncio.TimeoutError:
            record["status"], record["error"] = -1, "timeout"
        except aiohttp.ClientError as e:
            record["status"], record["error"] = -2, f"{type(e).__name__}: {e}"[:200]
        record["latency_ms"] = (time.perf_counter() - start) * 1e3
        records.append(record)
        n += 1


async def main_async(args):
    rows = np.load(args.rows)
    reference = np.load(args.reference)
    bodies = [npy(r) for r in rows]
    records = []
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        # Start together: the parent releases all processes at --start-at (epoch seconds).
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
        stop_at = time.perf_counter() + args.duration
        await asyncio.gather(*(client(session, args, bodies, reference, args.seed * 1000 + c,
                                      stop_at, records) for c in range(args.concurrency)))
    return records


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--rows", required=True)
    p.add_argument("--reference", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check-every", type=int, default=1)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--start-at", type=float, default=0.0)
    args = p.parse_args()
    records = asyncio.run(main_async(args))
    with open(args.out + ".tmp", "w") as f:
        json.dump(records, f)
    import os
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
