import pytest
import torch
from torch import nn

from mlprt_tools import data
from mlprt_tools.model import (ACTIVATIONS, CheckpointError, build_mlp, count_parameters,
                            default_arch, load_checkpoint, load_model, save_checkpoint,
                            validate_arch)


def test_default_model_is_the_tutorials():
    model = build_mlp(default_arch())
    assert [type(m) for m in model] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear]
    assert (model[1].in_features, model[1].out_features) == (784, 32)
    assert (model[3].in_features, model[3].out_features) == (32, 10)
    assert count_parameters(model) == 784 * 32 + 32 + 32 * 10 + 10
    assert model(torch.zeros(5, 784)).shape == (5, 10)
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_hidden_sizes_and_activation(activation):
    model = build_mlp(default_arch([64, 16, 8], activation, input_size=20, num_classes=3))
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(20, 64), (64, 16), (16, 8), (8, 3)]
    acts = [m for m in model if isinstance(m, ACTIVATIONS[activation])]
    assert len(acts) == 3
    assert isinstance(model[-1], nn.Linear)


def test_no_hidden_layer_is_one_linear():
    model = build_mlp(default_arch([]))
    assert [type(m) for m in model] == [nn.Flatten, nn.Linear]


def test_without_bias():
    model = build_mlp(default_arch([32], bias=False))
    assert all(m.bias is None for m in model if isinstance(m, nn.Linear))
    assert count_parameters(model) == 784 * 32 + 32 * 10


@pytest.mark.parametrize("change, message", [
    ({"activation": "swish"}, "allowed are"),
    ({"hidden_sizes": [32, 0]}, "hidden_sizes"),
    ({"hidden_sizes": 32}, "hidden_sizes"),
    ({"input_size": -1}, "input_size"),
    ({"num_classes": True}, "num_classes"),
    ({"bias": "yes"}, "bias"),
])
def test_bad_arch_is_refused(change, message):
    arch = dict(default_arch(), **change)
    with pytest.raises(ValueError, match=message):
        build_mlp(arch)


def test_missing_arch_key():
    arch = default_arch()
    del arch["activation"]
    with pytest.raises(ValueError, match=r"missing \['activation'\]"):
        validate_arch(arch)


def test_checkpoint_round_trip(tmp_path):
    arch = default_arch([12, 7], "tanh", input_size=30, num_classes=4, bias=False)
    torch.manual_seed(1)
    model = build_mlp(arch).eval()
    path = tmp_path / "m.pth"
    save_checkpoint(str(path), model, arch, data.DEFAULT_PREPROCESS, {"test_accuracy": 0.5})
    loaded, checkpoint = load_model(str(path))
    assert checkpoint["arch"] == arch and checkpoint["metrics"] == {"test_accuracy": 0.5}
    assert checkpoint["preprocess"] == data.DEFAULT_PREPROCESS
    x = torch.randn(6, 30)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert not loaded.training
    assert [p.name for p in tmp_path.iterdir()] == ["m.pth"]  # no temp file left behind


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="file not found"):
        load_checkpoint(str(tmp_path / "none.pth"))


def test_foreign_checkpoint(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save(build_mlp(default_arch()).state_dict(), path)
    with pytest.raises(CheckpointError, match="not an mlprt checkpoint"):
        load_checkpoint(str(path))


def test_garbage_checkpoint(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_checkpoint(str(path))


def test_weights_that_do_not_match_arch(tmp_path):
    path = tmp_path / "m.pth"
    model = build_mlp(default_arch([16]))
    save_checkpoint(str(path), model, default_arch([32]), data.DEFAULT_PREPROCESS, {})
    with pytest.raises(CheckpointError, match="weights do not match arch"):
        load_model(str(path))
