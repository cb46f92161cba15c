"""``python -m hashbench``: see :mod:`hashbench.cli`."""

import os
import sys

# Before torch loads its OpenMP runtime: idle OpenMP threads sleep instead of spinning.
# Spinning threads steal the cores from any other process and, on a shared 2-core
# machine, slowed small-batch training 2-40x; on a quiet machine sleeping costs nothing
# measurable (benchmarks/README.md). A value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
