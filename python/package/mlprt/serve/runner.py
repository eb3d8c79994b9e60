"""What a replica runs: an mlprt engine behind a small interface the deployment batches for.

A runner describes its inputs (name -> numpy dtype and shape as built, -1 for dynamic dims), the
largest batch it takes, runs a feed {name: ndarray} (blocking; called from one thread at a
time) and says which of its exceptions are the client's fault (answered with 400). The
benchmarks plug ONNX Runtime into the same deployment through this interface
(bench/serve_ort_runner.py), so the peers differ only in the runner.
"""

from __future__ import annotations

import mlprt


class EngineRunner:
    """One mlprt engine and one execution context, loaded from a plan file.

    ``Engine.load_file`` raises the loader's ``mlprt.PlanError`` / ``IoError`` for a plan that
    cannot be loaded here; the deployment lets it fail the replica's start unchanged. A cuda plan
    loads on the GPU Ray gave the replica (CUDA_VISIBLE_DEVICES makes it device 0)."""

    def __init__(self, plan: str, threads: int | None = None):
        del threads  # the plan records its thread count (mlprt build --threads)
        self.engine = mlprt.Engine.load_file(str(plan))
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == mlprt.TensorIOMode.INPUT for n in names}
        self.inputs = {n: (mlprt.nptype(self.engine.get_tensor_dtype(n)),
                           tuple(self.engine.get_tensor_shape(n))) for n in names if is_input[n]}
        self.outputs = [n for n in names if not is_input[n]]
        self.max_batch = self._largest_profile_batch()
        self.description = {
            "runner": "mlprt", "plan": str(plan), "backend": self.engine.backend,
            "device": self.engine.device, "precision": self.engine.precision,
            "profiles": [{n: [list(s) for s in self.engine.get_tensor_profile_shape(n, p)]
                          for n in self.inputs}
                         for p in range(self.engine.num_optimization_profiles)]}

    def _largest_profile_batch(self) -> int:
        """The largest batch (dim 0 of the profiles' max shapes) every input takes."""
        best = 0
        for p in range(self.engine.num_optimization_profiles):
            best = max(best, min(int(self.engine.get_tensor_profile_shape(n, p)[2][0])
                                 for n in self.inputs))
        return max(best, 1)

    def run(self, feed: dict) -> dict:
        return self.context.infer(feed)

    @staticmethod
    def is_client_error(error: BaseException) -> bool:
        """Refusals of the request itself (shape, dtype, name): 400. Anything else is ours."""
        return isinstance(error, (mlprt.ShapeError, mlprt.InvalidArgumentError,
                                  mlprt.NotFoundError, mlprt.UnsupportedError))
