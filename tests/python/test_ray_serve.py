"""mlprt on Ray: a local Ray cluster (one per module), the Serve deployment with good and bad
requests checked against float64, a plan that fails to load, and Ray Data offline scoring.

Skipped, saying why, only where ray[serve] is not installed; scripts/test.sh installs it
(scripts/install_python.sh --ray). Ray's start takes ~10 s of this module's ~40 s."""

import concurrent.futures
import io
import socket

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray[serve] is not installed (scripts/install_python.sh "
                          "--ray installs it)")
serve = pytest.importorskip("ray.serve", reason="ray is installed without its serve extra")
requests = pytest.importorskip("requests", reason="requests is not installed")

import mlprt.serve as mserve  # noqa: E402
from conftest import IN, build_plan, rel_l2  # noqa: E402
from mlprt.serve.offline import score  # noqa: E402

OUT = 10
FP32 = 1e-5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def plan_file(onnx_dynamic, tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "mlp.plan"
    plan = build_plan(onnx_dynamic, profiles=[((1, IN), (8, IN), (64, IN)),
                                              ((65, IN), (128, IN), (256, IN))])
    path.write_bytes(bytes(plan))
    return path


@pytest.fixture(scope="module")
def cluster():
    # Logical CPUs: the replica, Ray Data's read tasks and its scoring actor all fit at once.
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def url(cluster, plan_file):
    # A long max wait so that concurrent requests surely meet in one batch.
    mserve.deploy(mserve.build_app(plan_file, max_wait_ms=50, max_body_bytes=1 << 20,
                                   num_cpus=0.5),
                  name="mlprt", route_prefix="/mlp")
    return cluster + "/mlp"


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def rows(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, IN)).astype(np.float32)


def test_describes_engine(url):
    info = requests.get(url, timeout=30).json()
    assert info["max_batch"] == 256  # the second profile's max
    assert info["inputs"] == {"input": {"dtype": "float32", "shape": [-1, IN]}}
    assert info["outputs"] == ["output"] and info["engine"]["backend"] == "cpu"


def test_json_one_row_and_rows(url, reference):
    x = rows(5)
    answer = requests.post(url, json={"inputs": {"input": x[0].tolist()}}, timeout=30)
    assert answer.status_code == 200, answer.text
    one = np.array(answer.json()["outputs"]["output"])
    assert one.shape == (OUT,) and rel_l2(one, reference(x[:1])[0]) <= FP32
    answer = requests.post(url, json={"inputs": {"input": x.tolist()}}, timeout=30)
    assert answer.status_code == 200, answer.text
    many = np.array(answer.json()["outputs"]["output"])
    assert many.shape == (5, OUT) and rel_l2(many, reference(x)) <= FP32


def test_npy_body_and_answer(url, reference):
    x = rows(100, seed=1)  # second profile: 65..256
    answer = requests.post(url, data=npy_bytes(x), timeout=30,
                           headers={"content-type": "application/x-npy"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-npy"
    y = np.load(io.BytesIO(answer.content))
    assert y.shape == (100, OUT) and y.dtype == np.float32 and rel_l2(y, reference(x)) <= FP32
    as_json = requests.post(url, data=npy_bytes(x[:2]), timeout=30,
                            headers={"content-type": "application/x-npy",
                                     "accept": "application/json"}).json()
    assert rel_l2(as_json["outputs"]["output"], reference(x[:2])) <= FP32


def test_concurrent_rows_are_merged_into_batches(url, reference):
    x = rows(48, seed=2)

    def one(i):
        r = requests.post(url, data=npy_bytes(x[i]), timeout=60,
                          headers={"content-type": "application/x-npy"})
        return r.status_code, np.load(io.BytesIO(r.content)), int(r.headers["x-mlprt-batch-rows"])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(len(x))))
    assert all(status == 200 for status, _, _ in answers)
    got = np.stack([y for _, y, _ in answers])
    assert rel_l2(got, reference(x)) <= FP32  # each client got its own row back
    assert max(batch for _, _, batch in answers) > 1, "no two concurrent requests were merged"


@pytest.mark.parametrize("body, content_type, status, says", [
    (b'{"inputs": {"input": [1, 2,', "application/json", 400, "malformed JSON"),
    (b'{"input": [1, 2]}', "application/json", 400, '{"inputs": {name: rows}}'),
    (b'{"inputs": {"input": [[1, "a"]]}}', "application/json", 400, "cannot read"),
    (b'{"inputs": {"pixels": [0.5]}}', "application/json", 400, "'pixels' is not an input"),
    (b"not an npy file", "application/x-npy", 400, "not a readable .npy"),
    (b"<xml/>", "text/xml", 415, "not supported"),
])
def test_bad_body_gets_4xx_with_message(url, body, content_type, status, says):
    answer = requests.post(url, data=body, headers={"content-type": content_type}, timeout=30)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]


def test_wrong_shape_and_dtype_get_the_engines_message(url, reference):
    short = requests.post(url, json={"inputs": {"input": [[0.5] * (IN - 1)]}}, timeout=30)
    assert short.status_code == 400
    assert "outside every optimization profile" in short.json()["error"]  # mlprt's ShapeError
    too_many = requests.post(url, data=npy_bytes(rows(300)), timeout=30,
                             headers={"content-type": "application/x-npy"})
    assert too_many.status_code == 400 and "300x784" in too_many.json()["error"]
    wrong = requests.post(url, data=npy_bytes(rows(2).astype(np.float64)), timeout=30,
                          headers={"content-type": "application/x-npy"})
    assert wrong.status_code == 400
    assert "float64 but the engine's 'input' is float32" in wrong.json()["error"]
    # The replica keeps serving.
    x = rows(3, seed=3)
    ok = requests.post(url, json={"inputs": {"input": x.tolist()}}, timeout=30)
    assert ok.status_code == 200 and rel_l2(ok.json()["outputs"]["output"], reference(x)) <= FP32


def test_over_large_body_gets_413(url):
    big = npy_bytes(rows(400))  # 1.25 MB > 1 MiB
    answer = requests.post(url, data=big, headers={"content-type": "application/x-npy"},
                           timeout=30)
    assert answer.status_code == 413 and "1048576 bytes" in answer.json()["error"]

    def chunks():  # no Content-Length: the limit holds on the bytes read
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]
    answer = requests.post(url, data=chunks(), headers={"content-type": "application/x-npy"},
                           timeout=30)
    assert answer.status_code == 413 and "over the limit" in answer.json()["error"]


def test_nan_passes_through(url, plan_file, reference):
    """NaN is data: answered (200) with exactly what the engine computes for it in-process
    (this cpu engine's fused ReLU maps NaN to 0, so the NaN row's logits are finite)."""
    import mlprt
    x = rows(2, seed=4)
    x[0, 3] = np.nan
    answer = requests.post(url, data=npy_bytes(x), timeout=30,
                           headers={"content-type": "application/x-npy"})
    assert answer.status_code == 200, answer.text
    y = np.load(io.BytesIO(answer.content))
    engine = mlprt.Engine.load_file(str(plan_file))
    np.testing.assert_array_equal(y, engine.infer({"input": x})["output"])
    assert rel_l2(y[1], reference(x[1:])[0]) <= FP32
    as_json = requests.post(url, data=b'{"inputs": {"input": [%s]}}' % b", ".join(
        [b"NaN"] + [b"0.5"] * (IN - 1)), headers={"content-type": "application/json"},
        timeout=30)
    assert as_json.status_code == 200, as_json.text
    row = np.full((1, IN), 0.5, np.float32)
    row[0, 0] = np.nan
    np.testing.assert_allclose(as_json.json()["outputs"]["output"],
                               engine.infer({"input": row})["output"][0], rtol=1e-6)


def test_plan_that_fails_to_load_fails_the_deployment(cluster, tmp_path):
    bad = tmp_path / "truncated.plan"
    bad.write_bytes(b"MLPRTPLN" + b"\0" * 10)
    with pytest.raises(mserve.DeploymentFailed, match=r"PlanError: plan '.*truncated.plan'"):
        mserve.deploy(mserve.build_app(bad, name="broken", max_constructor_retry_count=1,
                                       num_cpus=0.1), name="broken", route_prefix="/broken")
    serve.delete("broken")


def test_ray_data_scores_npy_shards_and_parquet(cluster, plan_file, reference, tmp_path):
    pa = pytest.importorskip("pyarrow", reason="Ray Data's Parquet reader needs pyarrow")
    import pyarrow.parquet as pq
    shards = [rows(n, seed=10 + n) for n in (300, 41, 7)]
    paths = []
    for i, shard in enumerate(shards):
        paths.append(tmp_path / f"shard{i}.npy")
        np.save(paths[-1], shard)
    stats = score(plan_file, paths, tmp_path / "npy_out")
    got = np.concatenate([np.load(f) for f in stats["files"]])
    everything = np.concatenate(shards)
    assert stats["rows"] == len(everything) and got.shape == (len(everything), OUT)
    assert rel_l2(got, reference(everything)) <= FP32

    table = pa.table({"id": np.arange(len(everything)) * 3,
                      "input": pa.array(list(everything.astype(np.float64)))})
    pq.write_table(table, tmp_path / "rows.parquet")
    stats = score(plan_file, [tmp_path / "rows.parquet"], tmp_path / "pq_out")
    scored = pa.concat_tables([pq.read_table(f) for f in stats["files"]])
    ids = scored.column("id").to_numpy() // 3
    outputs = np.stack(scored.column("output").to_numpy(zero_copy_only=False))
    assert sorted(ids) == list(range(len(everything)))
    assert rel_l2(outputs, reference(everything[ids])) <= FP32


def test_command_line_refuses_bad_flags(capsys):
    from mlprt.serve.__main__ import parse_args
    assert parse_args(["--plan", "m.plan", "--autoscale", "1:4"]).autoscale == (1, 4)
    for bad, says in ((["--autoscale", "4:1"], "expected MIN:MAX"),
                      (["--detach"], "--detach leaves the application"),
                      ([], "--plan")):
        with pytest.raises(SystemExit) as exit_info:
            parse_args((["--plan", "m.plan"] if bad else []) + bad)
        assert exit_info.value.code == 2 and says in capsys.readouterr().err
