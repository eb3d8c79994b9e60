"""The Ray Serve deployment: a plan per replica, HTTP in JSON or .npy, concurrent requests
merged into batches that fit the engine's optimization profiles.

Batching is Ray Serve's own (``@serve.batch``) counted in rows: a batch takes requests until
their rows would pass the largest profile's max batch or ``max_wait_ms`` has passed since its
first request. A request joins a batch only when its inputs are exactly the engine's (names,
dtype, every non-batch dim) and it has at most max-batch rows; any other request runs alone,
so the engine itself accepts it or refuses it with its own message (400), and one bad request
never spoils a batch. The engine runs on one worker thread per replica (one execution context),
so the replica's event loop keeps reading requests while a batch runs.

Every answer carries ``x-mlprt-replica``, ``x-mlprt-node``, ``x-mlprt-batch`` (the replica's
batch number) and ``x-mlprt-batch-rows`` (rows of the batch that answered it), so a client can
count the batches the replicas ran and where they ran. ``GET`` answers the replica's engine
description and its counters.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import os
import time

import numpy as np
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from . import codec

DEFAULT_MAX_BODY_BYTES = 16 << 20
DEFAULT_MAX_WAIT_MS = 2.0


def load_runner(runner: str, kwargs: dict):
    """'module:Class' -> an instance (the default is mlprt's EngineRunner)."""
    module, _, name = runner.partition(":")
    return getattr(importlib.import_module(module), name)(**kwargs)


def _rows(items) -> int:
    return sum(item[0] for item in items)


@serve.deployment(name="mlprt")
class MlprtDeployment:
    def __init__(self, runner_kwargs: dict, max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, max_batch: int | None = None,
                 runner: str = "mlprt.serve.runner:EngineRunner"):
        # A plan that does not load raises here with the loader's message: the replica's start
        # fails, and with it the deployment (Ray Serve reports the exception).
        self.runner = load_runner(runner, runner_kwargs)
        limit = self.runner.max_batch
        if max_batch is not None:
            if not 1 <= max_batch <= limit:
                raise ValueError(f"max_batch={max_batch}: must be 1..{limit} (the largest "
                                 "optimization profile's max batch)")
            limit = max_batch
        self.max_batch = limit
        self.max_body_bytes = int(max_body_bytes)
        self._run_batch.set_max_batch_size(limit)
        self._run_batch.set_batch_wait_timeout_s(max_wait_ms / 1000.0)
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mlprt")
        context = serve.get_replica_context()
        self.replica = getattr(context, "replica_tag", None) or str(context.replica_id.unique_id)
        import ray
        self.node = ray.get_runtime_context().get_node_id()
        self.stats = {"requests": 0, "batches": 0, "rows": 0, "alone": 0, "refused": 0,
                      "batch_rows": {}}
        self._headers = {"x-mlprt-replica": self.replica, "x-mlprt-node": self.node}

    # ---- HTTP -------------------------------------------------------------------------------

    async def __call__(self, request: Request) -> Response:
        if request.method == "GET":
            return Response(self._describe(), media_type=codec.JSON, headers=self._headers)
        self.stats["requests"] += 1
        content_type = request.headers.get("content-type")
        query = dict(request.query_params)
        try:
            body = await self._read_body(request)
            feed, single = codec.decode(body, content_type, query, self.runner.inputs)
            rows = self._batchable_rows(feed)
            if rows:
                answer = await self._run_batch((rows, feed))
                if isinstance(answer, codec.RequestError):
                    raise answer
                outputs, batch, batch_rows = answer
            else:
                outputs, batch, batch_rows = await self._run_alone(feed)
            npy = codec.wants_npy(content_type, request.headers.get("accept"))
            payload, kind = codec.encode(outputs, single, npy, query)
        except codec.RequestError as e:
            self.stats["refused"] += 1
            return Response(codec.error_body(e.status, e.code, str(e)), status_code=e.status,
                            media_type=codec.JSON, headers=self._headers)
        headers = dict(self._headers)
        headers["x-mlprt-batch"] = str(batch)
        headers["x-mlprt-batch-rows"] = str(batch_rows)
        return Response(payload, media_type=kind, headers=headers)

    async def _read_body(self, request: Request) -> bytes:
        limit = self.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise codec.RequestError(413, "body_too_large",
                                     f"request body of {int(declared)} bytes is over the limit "
                                     f"of {limit} bytes (max_body_bytes)")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise codec.RequestError(413, "body_too_large",
                                         f"request body is over the limit of {limit} bytes "
                                         "(max_body_bytes)")
            chunks.append(chunk)
        return b"".join(chunks)

    def _batchable_rows(self, feed: dict) -> int:
        """Rows of a request that can share a batch, 0 for one that must run alone."""
        if feed.keys() != self.runner.inputs.keys():
            return 0
        rows = None
        for name, array in feed.items():
            dtype, shape = self.runner.inputs[name]
            if (array.dtype != dtype or array.ndim != len(shape)
                    or any(d < 0 or a != d for a, d in zip(array.shape[1:], shape[1:]))):
                return 0
            if rows is None:
                rows = array.shape[0]
            elif rows != array.shape[0]:
                return 0
        return rows if rows is not None and 1 <= rows <= self.max_batch else 0

    # ---- the engine -------------------------------------------------------------------------

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.002, batch_size_fn=_rows)
    async def _run_batch(self, items: list) -> list:
        names = list(items[0][1])
        if len(items) == 1:
            feed = items[0][1]
        else:
            feed = {n: np.concatenate([item[1][n] for item in items]) for n in names}
        total = sum(item[0] for item in items)
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.runner.run, feed)
        except Exception as e:  # noqa: BLE001
            if not self.runner.is_client_error(e):
                raise
            # The engine refused the merged batch (e.g. a profile's min above its rows): each
            # request runs alone and gets its own answer or refusal.
            return [await self._alone_or_error(item[1]) for item in items]
        batch = self._count_batch(total)
        answers, start = [], 0
        for rows, _ in items:
            answers.append(({k: v[start:start + rows] for k, v in outputs.items()}, batch, total))
            start += rows
        return answers

    async def _run_alone(self, feed: dict):
        """A request that cannot share a batch: the engine answers it or refuses it."""
        self.stats["alone"] += 1
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.runner.run, feed)
        except Exception as e:  # noqa: BLE001  (sorted into the client's and ours just below)
            if self.runner.is_client_error(e):
                raise codec.RequestError(400, getattr(e, "code", type(e).__name__),
                                         str(e)) from None
            raise
        rows = next(iter(outputs.values())).shape[0] if outputs else 0
        return outputs, self._count_batch(rows), rows

    async def _alone_or_error(self, feed: dict):
        try:
            return await self._run_alone(feed)
        except codec.RequestError as e:
            return e

    def _count_batch(self, rows: int) -> int:
        self.stats["batches"] += 1
        self.stats["rows"] += rows
        histogram = self.stats["batch_rows"]
        histogram[rows] = histogram.get(rows, 0) + 1
        return self.stats["batches"]

    def _describe(self) -> bytes:
        import json
        return json.dumps({
            "replica": self.replica, "node": self.node, "pid": os.getpid(),
            "max_batch": self.max_batch, "max_body_bytes": self.max_body_bytes,
            "inputs": {n: {"dtype": np.dtype(d).name, "shape": list(s)}
                       for n, (d, s) in self.runner.inputs.items()},
            "outputs": self.runner.outputs, "engine": self.runner.description,
            "stats": self.stats, "time": time.time()}).encode()

    def check_health(self):
        if self._executor._shutdown:  # noqa: SLF001
            raise RuntimeError("the engine's worker thread is gone")
