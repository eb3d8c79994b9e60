"""mlprt's Python side: train, save, export, a float64 ONNX reference, and test fixtures.

Run each module as ``python3 -m mlprt_tools.<module> --help`` with ``PYTHONPATH=python``.
"""
