"""Training throughput of UDHT, end to end and on a frozen backbone.

    python benchmarks/udht.py                     # CPU defaults: 64-px images, 100,000 cached features
    python benchmarks/udht.py --image-size 224    # the paper's input size (use a GPU)
    python benchmarks/udht.py --quick             # a smoke run

Two measurements, each a ratio against a reference run in this same process:

* **end to end** (``udht``): images/s of a full training step -- AlexNet
  conv1-FC2 forward, FC3/H1/H2, the three losses L1, L2, L3 on the k x k
  mini-batch, backward, SGD with the two learning-rate groups -- against a
  plain AlexNet-to-FC2 forward and backward with a dummy loss (mean square of
  FC2) and the same optimiser, at the same batch size and image size. The
  target is >= 80%: the heads and the pairwise losses must cost little next to
  the backbone;
* **frozen** (``udht-frozen``): seconds for one epoch over ``--frozen-n``
  cached 4,096-d features (target: well under a minute on 2 CPU cores), and
  the ratio against the same FC3/H1/H2 trained with a dummy loss.

Inputs are random (images: standard-normal tensors; features: ReLU of
Gaussians; tags: 3-6 words of a 300-word vocabulary), so nothing is read from
disk and the word vectors are trained once on those tags before timing.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np
import torch

os.environ.setdefault("TQDM_DISABLE", "1")

from hashbench.features import BackboneSpec, build_alexnet_fc2, resolve_device  # noqa: E402
from hashbench_methods.udht import UDHT, UDHTFrozen  # noqa: E402


def random_tags(n: int, seed: int, vocab: int = 300) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(vocab)])
    zipf = 1.0 / np.arange(1, vocab + 1)
    zipf /= zipf.sum()
    return [list(rng.choice(words, size=rng.integers(3, 7), replace=False, p=zipf)) for _ in range(n)]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def end_to_end(batch: int, size: int, steps: int, warmup: int, device: str, seed: int) -> tuple[float, float]:
    """(UDHT images/s, plain AlexNet images/s)."""
    dev = torch.device(resolve_device(device))
    n = batch * 4  # targets for a few batches; positions cycle over them
    tags = random_tags(n, seed)
    model = UDHT(bits=48, seed=seed, batch_size=batch, device=str(dev))
    model.device_ = str(dev)
    model.fit_info_ = {}
    model._prepare_targets(tags)
    backbone = build_alexnet_fc2(BackboneSpec(weights="random", resize=size, crop=size, seed=seed)).to(dev)
    reference = copy.deepcopy(backbone)
    torch.manual_seed(seed)
    model._build(4096)
    model.head_.to(dev)
    opt = model._optimizer(backbone)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=1e-4, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device=dev)
    backbone.train()
    model.head_.train()
    reference.train()

    def udht_step(i: int) -> None:
        pos = (np.arange(batch) + i * batch) % n
        h1, h2, _ = model.head_(backbone(x))
        loss, _ = model._batch_loss(h1, h2, pos)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def plain_step(i: int) -> None:
        loss = reference(x).pow(2).mean()
        ref_opt.zero_grad(set_to_none=True)
        loss.backward()
        ref_opt.step()

    rates = {}
    # interleave the two, twice, so that a drifting machine load hits both alike
    for name, step in [("udht", udht_step), ("plain", plain_step)] * 2:
        for i in range(warmup):
            step(i)
        _sync(dev)
        t0 = time.perf_counter()
        for i in range(steps):
            step(i)
        _sync(dev)
        rate = steps * batch / (time.perf_counter() - t0)
        rates[name] = max(rates.get(name, 0.0), rate)
    return rates["udht"], rates["plain"]


def frozen_epoch(n: int, batch: int, device: str, seed: int) -> tuple[float, float]:
    """(seconds for one UDHT-frozen epoch over n features, seconds for a dummy-loss epoch of the same head)."""
    rng = np.random.default_rng(seed)
    feats = np.maximum(rng.standard_normal((n, 4096), dtype=np.float32) - 0.5, 0)
    tags = random_tags(n, seed)
    # word vectors and targets outside the timing: fit once with 0 epochs
    # val_fraction=0: every item trains (no held-out evaluation inside the timed epoch)
    model = UDHTFrozen(bits=48, seed=seed, max_epochs=0, val_fraction=0.0, batch_size=batch, device=device).fit(
        feats, tags=tags)
    model.max_epochs = 1
    t0 = time.perf_counter()
    model.fit(feats, tags=tags)  # word vectors now come from the cache
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.max_epochs = 0
    model.fit(feats, tags=tags)
    setup = time.perf_counter() - t0
    ours = total - setup

    dev = torch.device(model.device_)
    head = copy.deepcopy(model.head_).train()
    opt = torch.optim.SGD(head.parameters(), lr=1e-3, momentum=0.9)
    order = rng.permutation(n)
    t0 = time.perf_counter()
    for s in range(0, n, batch):
        x = torch.from_numpy(feats[order[s: s + batch]]).to(dev)
        h1, h2, _ = head(x)
        loss = h1.pow(2).mean() + h2.pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(dev)
    return ours, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--image-size", type=int, default=None, help="default: 224 on a GPU, 64 on a CPU")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default: 50 on a GPU, 8 on a CPU)")
    p.add_argument("--frozen-n", type=int, default=100_000)
    p.add_argument("--quick", action="store_true", help="2 steps, 10,000 features")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    dev = resolve_device(args.device)
    gpu = dev.startswith("cuda")
    size = args.image_size or (224 if gpu else 64)
    steps = 2 if args.quick else (args.steps or (50 if gpu else 8))
    frozen_n = 10_000 if args.quick else args.frozen_n
    where = torch.cuda.get_device_name() if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {dev} ({where}); torch {torch.__version__}; batch {args.batch_size}")

    ours, plain = end_to_end(args.batch_size, size, steps, warmup=2 if gpu or args.quick else 1, device=dev,
                             seed=args.seed)
    print(f"end to end, {size}x{size} images: UDHT {ours:.1f} img/s, plain AlexNet fwd+bwd {plain:.1f} img/s, "
          f"ratio {ours / plain:.2f} (target >= 0.80)")

    epoch, ref = frozen_epoch(frozen_n, args.batch_size, dev, args.seed)
    print(f"frozen, one epoch over {frozen_n:,} features: UDHT-frozen {epoch:.1f} s, same head with a dummy loss "
          f"{ref:.1f} s, ratio {ref / epoch:.2f} (target: well under 60 s)")


if __name__ == "__main__":
    main()
