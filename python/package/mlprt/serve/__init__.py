"""mlprt on Ray Serve: an engine per replica behind HTTP, with dynamic batching.

    from ray import serve
    import mlprt.serve
    app = mlprt.serve.build_app("model.plan", num_replicas=2, max_wait_ms=2.0)
    serve.run(app, route_prefix="/mlprt")        # POST http://127.0.0.1:8000/mlprt

or from a shell (starts a local Ray cluster unless --address names one):

    python -m mlprt.serve --plan model.plan --replicas 2 --port 8000

or with Ray's own CLI / config files: ``serve run mlprt.serve:app_builder plan=model.plan``.
Bodies: see ``mlprt.serve.codec``; the deployment: ``mlprt.serve.deployment``. Needs
``ray[serve]`` (scripts/install_python.sh --ray).
"""

from __future__ import annotations

try:
    from .deployment import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_WAIT_MS, MlprtDeployment
except ModuleNotFoundError as e:  # pragma: no cover - depends on the environment
    if e.name not in ("ray", "starlette"):
        raise
    raise ModuleNotFoundError(
        f"mlprt.serve needs Ray Serve ({e.name} is not installed): scripts/install_python.sh "
        "--ray, or pip install 'ray[serve]==2.60.0'", name=e.name) from e

__all__ = ["build_app", "app_builder", "deploy", "DeploymentFailed", "MlprtDeployment"]


def build_app(plan: str, *, num_replicas: int | None = 1, autoscaling_config: dict | None = None,
              num_cpus: float = 1.0, num_gpus: float = 0.0, max_batch: int | None = None,
              max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
              max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
              max_ongoing_requests: int | None = None, max_constructor_retry_count: int = 3,
              runner: str = "mlprt.serve.runner:EngineRunner", runner_kwargs: dict | None = None,
              name: str = "mlprt", ray_actor_options: dict | None = None):
    """The deployment bound to a plan, ready for ``serve.run``.

    plan: a plan file readable on every node that may host a replica (a cuda plan needs
    ``num_gpus`` > 0 so Ray places the replica on a GPU and gives it one). num_replicas /
    autoscaling_config: Ray Serve's (give one; autoscaling_config is Ray's dict, e.g.
    ``{"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 32}``). max_batch: rows
    per merged batch (default and upper bound: the largest profile's max batch). max_wait_ms:
    how long a batch waits for more requests after its first. max_body_bytes: larger bodies get
    413. max_ongoing_requests: per replica (default 2 x 256, so batches can fill)."""
    options = dict(ray_actor_options or {})
    options.setdefault("num_cpus", num_cpus)
    if num_gpus:
        options.setdefault("num_gpus", num_gpus)
    deployment_options = {
        "name": name, "ray_actor_options": options,
        "max_ongoing_requests": max_ongoing_requests or 512,
        "max_constructor_retry_count": max_constructor_retry_count,
    }
    if autoscaling_config is not None:
        deployment_options["autoscaling_config"] = autoscaling_config
    else:
        deployment_options["num_replicas"] = num_replicas
    # Another runner (e.g. the benchmarks' ONNX Runtime peer) takes its own arguments.
    kwargs = {"plan": str(plan)} if runner_kwargs is None else dict(runner_kwargs)
    return MlprtDeployment.options(**deployment_options).bind(
        runner_kwargs=kwargs, max_wait_ms=max_wait_ms, max_body_bytes=max_body_bytes,
        max_batch=max_batch, runner=runner)


def app_builder(args: dict):
    """For ``serve run mlprt.serve:app_builder plan=m.plan num_replicas=2 ...`` and Serve config
    files (``import_path: mlprt.serve:app_builder``, ``args: {plan: m.plan}``)."""
    args = dict(args)
    if "plan" not in args:
        raise ValueError("mlprt.serve:app_builder needs plan=PATH")
    plan = args.pop("plan")
    numeric = {"num_replicas": int, "num_cpus": float, "num_gpus": float, "max_batch": int,
               "max_wait_ms": float, "max_body_bytes": int, "max_ongoing_requests": int,
               "max_constructor_retry_count": int}
    unknown = set(args) - set(numeric)
    if unknown:
        raise ValueError(f"mlprt.serve:app_builder: unknown argument(s) {sorted(unknown)}; "
                         f"allowed: plan, {', '.join(sorted(numeric))}")
    return build_app(plan, **{k: numeric[k](v) for k, v in args.items()})


class DeploymentFailed(RuntimeError):
    """serve.run failed: the message is the replica's own error (e.g. the plan loader's)."""


def deploy(app, *, name: str = "mlprt", route_prefix: str = "/"):
    """``serve.run`` that, when a replica fails to start, raises DeploymentFailed with the
    replica's exception (e.g. ``mlprt.PlanError: plan 'x.plan' is truncated ...``) instead of
    Ray's bare "Failed to update the deployments"."""
    from ray import serve
    try:
        return serve.run(app, name=name, route_prefix=route_prefix)
    except RuntimeError as e:
        details = []
        try:
            status = serve.status().applications.get(name)
            if status is not None:
                details = [f"deployment '{d}': {_last_exception(s.message)}"
                           for d, s in status.deployments.items() if s.message]
        except Exception:  # noqa: BLE001  (the status is a courtesy; the failure stands)
            pass
        raise DeploymentFailed(f"application '{name}' failed to start: "
                               + ("; ".join(details) or str(e))) from e


def _last_exception(message: str) -> str:
    """The final exception of a formatted traceback ("mlprt.PlanError: ...", with its lines)."""
    lines = message.rstrip().split("\n")
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if line and not line[0].isspace() and ": " in line and not line.startswith("Traceback"):
            return "\n".join(lines[i:])
    return message
