"""Images on disk: decoding, checking, and the base class of the file-based datasets."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError
from .base import DatasetReport, HashingDataset

log = logging.getLogger("hashbench")

#: how many skipped items a summary line names before "and N more"
SHOWN = 5


def load_rgb(path: str | Path) -> np.ndarray:
    """The image at ``path`` as an (H, W, 3) uint8 RGB array; a DataError naming the file otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"), dtype=np.uint8)  # writable: torch.from_numpy needs it
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        # PIL raises OSError for truncated data, UnidentifiedImageError for non-images
        raise DataError(f"{path}: image does not decode ({type(exc).__name__}: {exc})") from exc


def image_problem(path: str | Path) -> str | None:
    """None when the image decodes completely, else why not (for reports)."""
    try:
        load_rgb(path)
    except DataError as exc:
        return str(exc).split(": ", 1)[1]
    return None


def check_images(paths: Sequence[str | Path], *, workers: int | None = None) -> dict[int, str]:
    """Decode every image once; {position: reason} for those that fail.

    Full decoding is the only reliable check (PIL's ``verify`` misses truncated
    JPEGs). Threads overlap file reads with decoding, which PIL does without the GIL.
    """
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = list(pool.map(image_problem, paths, chunksize=64))
    return {i: p for i, p in enumerate(problems) if p is not None}


def list_image_files(folder: Path, depth: int = 1) -> set[str]:
    """Relative POSIX paths of the files under ``folder``, down to ``depth`` sub-folder levels.

    One directory scan instead of one ``stat`` per item: NUS-WIDE's 269,648
    expected images are then checked against a set in well under a second.
    """
    found: set[str] = set()
    stack = [(folder, "", 0)]
    while stack:
        here, prefix, level = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError as exc:
            raise DataError(f"{here}: cannot list the image folder ({exc})") from exc
        for entry in entries:
            if entry.is_dir():
                if level < depth:
                    stack.append((Path(entry.path), f"{prefix}{entry.name}/", level + 1))
            else:
                found.add(prefix + entry.name)
    return found


def summarise(report: DatasetReport, total: int, what: str) -> str:
    """One line naming the first few skipped items (the full list stays in ``report``)."""
    items = list(report.skipped.items())
    shown = "; ".join(f"{k}: {v}" for k, v in items[:SHOWN])
    more = f"; and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return f"{len(items)} of {total} {what} skipped ({shown}{more})"


class FileImageDataset(HashingDataset):
    """Items whose images are files. Subclasses fill ``paths`` (one per item) and ``report``.

    ``source`` records where the files were read from (paths, file counts): it
    goes into :meth:`describe`, hence into the stored ``dataset.json``, but not
    into the fingerprint, so that moving the data to another folder or machine
    leaves the results' keys unchanged (the ids digest already identifies the items).
    """

    paths: list[str]
    report: DatasetReport
    source: dict[str, Any]

    def load_image(self, index: int) -> np.ndarray:
        return load_rgb(self.paths[int(index)])

    def image_source(self, index: int) -> str:
        return self.paths[int(index)]

    @property
    def skipped(self) -> dict[str, str]:
        """Items left out because their image is missing or corrupt: {item id: reason}."""
        return self.report.skipped

    def _screen_images(
        self,
        ids: Sequence[str],
        paths: Sequence[str],
        present: np.ndarray,
        *,
        skip_corrupt: bool,
        missing_is_error: bool,
    ) -> np.ndarray:
        """Which candidates to keep, given which images exist; fills ``self.report``.

        Missing images are an error naming the first ones (``missing_is_error``,
        for datasets shipped with all their images), or skipped and reported.
        With ``skip_corrupt`` every remaining image is decoded once and those
        that fail are skipped and reported; without it a corrupt image is found
        when it is read, and that error names the file.
        """
        present = np.asarray(present, dtype=bool)
        missing = np.flatnonzero(~present)
        if missing.size and missing_is_error and not skip_corrupt:
            names = ", ".join(paths[i] for i in missing[:SHOWN])
            raise DataError(
                f"{self.name}: {missing.size} image file(s) not found ({names}"
                f"{', ...' if missing.size > SHOWN else ''}); pass --skip-corrupt "
                "(-D skip_corrupt=true) to leave them out and report them"
            )
        for i in missing:
            self.report.add(ids[i], f"image missing: {paths[i]}")
        keep = present.copy()
        if skip_corrupt:
            candidates = np.flatnonzero(present)
            bad = check_images([paths[i] for i in candidates])
            for pos, reason in bad.items():
                i = candidates[pos]
                keep[i] = False
                self.report.add(ids[i], f"{paths[i]}: {reason}")
        if self.report.skipped:
            log.warning("%s: %s", self.name, summarise(self.report, len(ids), "images"))
        return keep

    def describe(self, split=None) -> dict[str, Any]:
        out = super().describe(split)
        out["skipped_images"] = len(self.report.skipped)
        if self.report.skipped:
            out["skipped_examples"] = dict(list(self.report.skipped.items())[:20])
        out["source"] = self.source
        return out
