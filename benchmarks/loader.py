"""Image reading through torch DataLoader workers (``--workers``): the 224-px path.

    python benchmarks/loader.py [--images 256] [--workers 0,1,2]

A folder of JPEG files the size of MIRFLICKR/NUS-WIDE photos (500 x 375) is written
once; each is decoded with Pillow, resized to 256 (shorter side) and centre-cropped
to 224 as for ImageNet weights. Prints, for each number of workers:

1. reading only: images/s through ``ImageInput.batches`` (decode + preprocess), and the
   ratio against ``--workers 0`` (reading in the main process);
2. feature extraction end to end (AlexNet FC2, random weights, CPU): images/s and the
   same ratio. On a CPU the forward pass dominates, so workers help only as much as
   reading weighs; on a GPU the forward pass is fast and reading is what workers relieve.

The machine's load average is printed: other processes share its cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from hashbench.datasets import HashingDataset, random_split  # noqa: E402
from hashbench.features import BackboneSpec, ImageInput, extract_features  # noqa: E402


class JpegFolder(HashingDataset):
    name = "bench-jpeg"
    summary = "benchmark only"
    default_resize = 256
    default_crop = 224
    default_weights = "random"

    def __init__(self, root: Path, n: int) -> None:
        self.root = root
        self.ids = [f"im{i:05d}" for i in range(n)]
        self.labels = np.zeros((n, 1), np.uint8)
        self.label_names = ["x"]
        self.tags = None
        self.config = {"n": n, "root": str(root)}
        rng = np.random.default_rng(0)
        for i in self.ids:
            f = root / f"{i}.jpg"
            if not f.exists():
                base = rng.integers(0, 255, (47, 63, 3), dtype=np.uint8)  # smooth, photo-like
                Image.fromarray(base).resize((500, 375), Image.BILINEAR).save(f, quality=90)

    def load_image(self, index: int) -> np.ndarray:
        with Image.open(self.root / f"{self.ids[index]}.jpg") as im:
            return np.array(im.convert("RGB"))

    def image_source(self, index: int) -> str:
        return str(self.root / f"{self.ids[index]}.jpg")

    def make_split(self, seed: int = 0):
        return random_split(len(self), 1, seed=seed, protocol="random")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--skip-features", action="store_true")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hashbench-jpeg-"))
    data = JpegFolder(root, args.images)
    spec = BackboneSpec(weights="random", seed=0, resize=256, crop=224)
    idx = np.arange(len(data))
    print(f"{args.images} JPEGs of 500x375 -> 224 px; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f}")
    base_read = base_feat = None
    for w in [int(x) for x in args.workers.split(",")]:
        images = ImageInput(data, idx, spec, workers=w)
        t0 = time.perf_counter()
        n = sum(len(p) for p, _ in images.batches(64))
        read = n / (time.perf_counter() - t0)
        base_read = base_read or read
        line = f"workers={w}: reading {read:7.1f} img/s (x{read / base_read:.2f})"
        if not args.skip_features:
            cache = root / f"cache-{w}"
            t0 = time.perf_counter()
            extract_features(data, idx, spec, cache=cache, device="cpu", progress=False, workers=w)
            feat = n / (time.perf_counter() - t0)
            base_feat = base_feat or feat
            line += f"; features end to end {feat:6.1f} img/s (x{feat / base_feat:.2f})"
        print(line + f"; load average {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
