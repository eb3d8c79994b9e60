"""ONNX Runtime in mlprt.serve's deployment: the peer of the Ray Serve benchmarks.

The same MlprtDeployment (same HTTP, codec, @serve.batch merging, max batch and wait) with
runner="serve_ort_runner:OrtRunner", so the peers differ only in what runs the batch. Replicas
import this module: the benchmarks put bench/ on the cluster's PYTHONPATH.
"""

import numpy as np

_NUMPY = {"tensor(float)": np.float32, "tensor(double)": np.float64,
          "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


class OrtRunner:
    def __init__(self, onnx: str, threads: int = 1, max_batch: int = 256, device: str = "cpu"):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers = ["CUDAExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(onnx), options, providers=providers)
        self.inputs = {i.name: (_NUMPY[i.type], tuple(d if isinstance(d, int) else -1
                                                      for d in i.shape))
                       for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.max_batch = max_batch
        self.description = {"runner": "onnxruntime", "version": ort.__version__,
                            "onnx": str(onnx), "threads": threads,
                            "providers": self.session.get_providers()}

    def run(self, feed: dict) -> dict:
        return dict(zip(self.outputs, self.session.run(self.outputs, feed)))

    @staticmethod
    def is_client_error(error: BaseException) -> bool:
        from onnxruntime.capi import onnxruntime_pybind11_state as state
        return isinstance(error, (state.InvalidArgument, state.Fail, state.InvalidGraph))
