"""A runner that computes nothing: the ceiling of the Ray Serve benchmarks.

The same MlprtDeployment (HTTP, codec, @serve.batch merging) with runner=
"serve_echo_runner:EchoRunner" answers every row with zeros of the output's shape, so its
requests/s is what Ray Serve and the deployment's Python code allow on the machine with no
engine at all. Its answers are not checked (they are not the model's). Replicas import this
module: the benchmarks put bench/ on the cluster's PYTHONPATH.
"""

import numpy as np


class EchoRunner:
    def __init__(self, inputs: dict, outputs: dict, max_batch: int = 256):
        # inputs / outputs: name -> (numpy dtype name, shape with -1 for the batch)
        self.inputs = {n: (np.dtype(d), tuple(s)) for n, (d, s) in inputs.items()}
        self._outputs = {n: (np.dtype(d), tuple(s)) for n, (d, s) in outputs.items()}
        self.outputs = list(self._outputs)
        self.max_batch = max_batch
        self.description = {"runner": "echo (no engine: zeros)"}

    def run(self, feed: dict) -> dict:
        rows = next(iter(feed.values())).shape[0]
        return {n: np.zeros((rows, *s[1:]), d) for n, (d, s) in self._outputs.items()}

    @staticmethod
    def is_client_error(error: BaseException) -> bool:
        return isinstance(error, (ValueError, KeyError))
