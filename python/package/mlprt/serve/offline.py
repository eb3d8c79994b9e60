"""Offline scoring on Ray Data: ``map_batches`` over actors that each hold an engine.

    from mlprt.serve.offline import score
    stats = score("model.plan", ["shard0.npy", "shard1.npy"], "preds/", concurrency=2)

or ``python -m mlprt.serve.offline --plan model.plan --output preds/ shard0.npy shard1.npy``.

Inputs: ``.npy`` shards (each an array [rows, features...]; written back as ``.npy`` shards of
the output) or Parquet files / folders (the feature column holds one list or array per row;
written back as Parquet with the output column and every other column, e.g. an id, passed
through). Rows keep their order (``preserve_order``), so the output files, sorted by name,
line up with the inputs in the order given. Each actor loads the plan once; a cuda plan needs
``num_gpus`` > 0 per actor.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .runner import EngineRunner


class EngineScorer:
    """The callable class map_batches runs on each actor: one engine, one context."""

    def __init__(self, plan: str, column: str, input_name: str | None = None,
                 output_name: str | None = None):
        self.runner = EngineRunner(plan)
        if input_name is None:
            if len(self.runner.inputs) != 1:
                raise ValueError(f"the engine has inputs {list(self.runner.inputs)}: pass "
                                 "input_name=")
            input_name = next(iter(self.runner.inputs))
        if input_name not in self.runner.inputs:
            raise ValueError(f"input_name='{input_name}' is not an input of the engine; its "
                             f"inputs: {list(self.runner.inputs)}")
        self.input_name = input_name
        self.dtype = self.runner.inputs[input_name][0]
        self.output_name = output_name or self.runner.outputs[0]
        self.column = column
        # Ray Data may hand a batch larger than every profile (a block's tail merged); run it in
        # the largest profile's chunks where the builder proved rows independent.
        try:
            self.runner.context.split_batch = True
        except Exception:  # noqa: BLE001  (rows not independent: batches must fit a profile)
            pass

    def __call__(self, batch: dict) -> dict:
        features = batch[self.column]
        if features.dtype == object:  # Parquet lists arrive as an array of arrays
            features = np.stack(list(features))
        # The one adaptation: a float64 column (Parquet's default) to the engine's dtype.
        features = np.ascontiguousarray(features, dtype=self.dtype)
        result = {k: v for k, v in batch.items() if k != self.column}
        result[self.output_name] = self.runner.run({self.input_name: features})[self.output_name]
        return result


def score(plan: str, inputs, output: str, *, column: str | None = None,
          input_name: str | None = None, concurrency: int = 1, num_cpus: float = 1.0,
          num_gpus: float = 0.0, batch_size: int | None = None) -> dict:
    """Scores every row of ``inputs`` (.npy shards or Parquet) into ``output`` (a folder);
    returns {rows, seconds, rows_per_s, files}. Needs a running Ray (ray.init())."""
    import ray

    paths = [str(p) for p in ([inputs] if isinstance(inputs, (str, Path)) else inputs)]
    if not paths:
        raise ValueError("score: no input files")
    npy = all(p.endswith(".npy") for p in paths)
    if not npy and any(p.endswith(".npy") for p in paths):
        raise ValueError("score: inputs mix .npy and Parquet; give one kind")
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    if npy:
        dataset = ray.data.read_numpy(paths)
        column = column or "data"
    else:
        dataset = ray.data.read_parquet(paths)
        column = column or input_name or "input"
    if batch_size is None:
        batch_size = EngineRunner(plan).max_batch if num_gpus == 0 else 4096
    scorer = {"plan": str(plan), "column": column, "input_name": input_name}
    start = time.perf_counter()
    scored = dataset.map_batches(EngineScorer, fn_constructor_kwargs=scorer,
                                 batch_size=batch_size, batch_format="numpy",
                                 concurrency=concurrency, num_cpus=num_cpus,
                                 num_gpus=num_gpus or None)
    Path(output).mkdir(parents=True, exist_ok=True)
    if npy:
        output_column = _output_name(plan)
        scored.write_numpy(str(output), column=output_column)
    else:
        scored.write_parquet(str(output))
    seconds = time.perf_counter() - start
    files = sorted(str(p) for p in Path(output).iterdir() if p.is_file())
    rows = dataset.count()
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "files": files}


def _output_name(plan: str) -> str:
    import mlprt
    engine = mlprt.Engine.load_file(str(plan))
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == mlprt.TensorIOMode.OUTPUT:
            return name
    raise ValueError(f"plan {plan} has no output")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlprt.serve.offline",
                                description="Score .npy shards or Parquet files on Ray Data.")
    p.add_argument("inputs", nargs="+", help=".npy shards or Parquet files/folders")
    p.add_argument("--plan", required=True)
    p.add_argument("--output", required=True, help="folder for the predictions")
    p.add_argument("--column", help="feature column (default: data for .npy, the input's name "
                   "for Parquet)")
    p.add_argument("--concurrency", type=int, default=1, help="actors, one engine each")
    p.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per actor (cuda plans)")
    p.add_argument("--batch-size", type=int, help="rows per batch (default: max profile batch)")
    p.add_argument("--address", help="an existing Ray cluster; default: start one")
    args = p.parse_args(argv)
    import ray
    ray.init(address=args.address, include_dashboard=False)
    stats = score(args.plan, args.inputs, args.output, column=args.column,
                  concurrency=args.concurrency, num_gpus=args.num_gpus,
                  batch_size=args.batch_size)
    print(json.dumps(stats, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
