"""Train the tutorial's MLP on Fashion-MNIST, seeded and deterministic, and save a .pth.

    python3 -m mlprt_tools.train --out work/model.pth
    python3 -m mlprt_tools.train --out work/small.pth --epochs 1 --limit-train 2000 --hidden 64 16
"""

import argparse
import platform
import sys
import time

import numpy as np
import torch
from torch import nn

from . import data
from .model import ACTIVATIONS, build_mlp, count_parameters, default_arch, save_checkpoint

DEFAULT_EPOCHS = 10
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 1e-3
EVAL_BATCH = 4096


def set_determinism(seed, threads):
    """Same seed + same thread count + same torch build -> bit-identical weights."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)


@torch.no_grad()
def evaluate(model, images, labels):
    """Return accuracy in [0, 1] over the whole set."""
    model.eval()
    correct = 0
    for start in range(0, len(images), EVAL_BATCH):
        logits = model(images[start:start + EVAL_BATCH])
        correct += int((logits.argmax(dim=1) == labels[start:start + EVAL_BATCH]).sum())
    return correct / max(len(images), 1)


def train_epoch(model, optimizer, loss_fn, images, labels, batch_size, generator):
    """One pass in an order drawn from ``generator``; returns (mean loss, running accuracy)."""
    model.train()
    order = torch.randperm(len(images), generator=generator)
    total_loss = 0.0
    correct = 0
    for start in range(0, len(images), batch_size):
        idx = order[start:start + batch_size]
        x, y = images[idx], labels[idx]
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = loss_fn(logits, y)
        loss.backward()
        optimizer.step()
        total_loss += float(loss) * len(idx)
        correct += int((logits.argmax(dim=1) == y).sum())
    return total_loss / len(images), correct / len(images)


def train(arch, epochs, batch_size, lr, seed, threads, limit_train=None, data_dir=None, log=print):
    """Train a model from scratch; returns (model, metrics)."""
    set_determinism(seed, threads)
    train_x, train_y = data.load_split("train", data_dir, limit=limit_train)
    test_x, test_y = data.load_split("test", data_dir)
    train_x, train_y = torch.from_numpy(train_x), torch.from_numpy(train_y)
    test_x, test_y = torch.from_numpy(test_x), torch.from_numpy(test_y)

    model = build_mlp(arch)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    log(f"training {arch['input_size']}->{'->'.join(map(str, arch['hidden_sizes']))}"
        f"{'->' if arch['hidden_sizes'] else ''}{arch['num_classes']} ({arch['activation']}, "
        f"{count_parameters(model)} parameters) on {len(train_x)} images, "
        f"{epochs} epochs, batch {batch_size}, lr {lr}, seed {seed}, {threads} thread(s)")

    history = []
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        loss, train_acc = train_epoch(model, optimizer, loss_fn, train_x, train_y, batch_size,
                                      generator)
        test_acc = evaluate(model, test_x, test_y)
        seconds = time.perf_counter() - epoch_start
        history.append({"epoch": epoch, "loss": loss, "train_accuracy": train_acc,
                        "test_accuracy": test_acc, "seconds": seconds})
        log(f"epoch {epoch}/{epochs}  loss {loss:.4f}  train acc {100 * train_acc:.2f}%  "
            f"test acc {100 * test_acc:.2f}%  {seconds:.1f} s")
    model.eval()
    metrics = {
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "threads": threads,
        "optimizer": "Adam", "train_images": len(train_x), "test_images": len(test_x),
        "final_loss": history[-1]["loss"] if history else None,
        "final_train_accuracy": history[-1]["train_accuracy"] if history else None,
        "test_accuracy": evaluate(model, test_x, test_y),
        "train_seconds": time.perf_counter() - started,
        "history": history,
        "torch_version": torch.__version__, "python_version": platform.python_version(),
    }
    return model, metrics


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m mlprt_tools.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="checkpoint to write, e.g. work/model.pth")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--hidden", type=int, nargs="*", default=[32],
                        help="hidden layer sizes, e.g. --hidden 128 64 (none: a single Linear)")
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    parser.add_argument("--no-bias", action="store_true", help="Linear layers without bias")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--lr", type=float, default=DEFAULT_LR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-train", type=int, default=None, metavar="N",
                        help="train on the first N training images only (quick runs, tests)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads; fixed so results repeat (default 1)")
    parser.add_argument("--data-dir", default=None, help="folder of the Fashion-MNIST idx .gz files")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.limit_train is not None and args.limit_train < 1:
        parser.error(f"--limit-train must be >= 1, got {args.limit_train}")
    if not args.lr > 0:
        parser.error(f"--lr must be > 0, got {args.lr}")

    arch = default_arch(args.hidden, args.activation, input_size=data.INPUT_SIZE,
                        num_classes=data.NUM_CLASSES, bias=not args.no_bias)
    try:
        model, metrics = train(arch, args.epochs, args.batch_size, args.lr, args.seed,
                               args.threads, args.limit_train, args.data_dir)
        save_checkpoint(args.out, model, arch, data.DEFAULT_PREPROCESS, metrics)
    except (data.DatasetError, ValueError, OSError) as e:
        print(f"mlprt_tools.train: error: {e}", file=sys.stderr)
        return 1
    print(f"saved {args.out}: test accuracy {100 * metrics['test_accuracy']:.2f}%, "
          f"{metrics['train_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
