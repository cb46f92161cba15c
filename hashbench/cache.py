"""What the cache folder holds, which entries no current version can use, and cleaning it.

hashbench caches two things (``$HASHBENCH_CACHE``, else ``~/.cache/hashbench``):

* ``features/<key>.npy`` + ``<key>.json``: FC2 features of some dataset items
  (:mod:`hashbench.features.extract`). The key digests the dataset, the
  backbone spec and :data:`~hashbench.features.extract.CACHE_VERSION`, so an
  entry of another cache version is never read again. The sidecar records the
  version since it was added; older sidecars are recognised by their contents:
  random weights without the ``init`` field were written before version 3 (He
  initialisation) and are stale; random weights with it are version 3; for
  other weights the version was not recorded (``unknown``: kept by
  ``--clear-stale``).
* ``wordvectors/<key>/vectors.kv``: word vectors trained on a dataset's tags
  (:func:`hashbench.tags.load_word_vectors`). The key digests
  :data:`~hashbench.tags.TRAINED_VERSION` and the gensim version, so an entry of
  another recipe or another gensim is never read again by this installation.
  ``info.json`` says which; for older entries the gensim version is read from
  gensim's own save record inside the file (walking the pickle's opcodes,
  never unpickling it).

Leftovers of an interrupted run (a temporary ``.npy`` of a dead process, a
temporary folder older than an hour, an ``.npy`` without its sidecar) are stale
too. Files the cache does not know are listed as ``other`` and never removed.
Word vectors fetched by the gensim downloader (``~/gensim-data``) and torch's
weights (``$TORCH_HOME``) live in those libraries' own caches, not here.
"""

from __future__ import annotations

import json
import os
import pickletools
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .storage import cache_dir

CURRENT, STALE, UNKNOWN, IN_USE = "current", "stale", "unknown", "in use"
#: a temporary file or folder without a process id is taken for abandoned after this long
ABANDONED_AFTER_S = 3600.0

_FEATURE_TMP = re.compile(r"^\.(?P<key>[0-9a-f]+)\.(?P<pid>\d+)\.tmp\.npy$")


@dataclass
class CacheEntry:
    """One thing in the cache: its files, what it is, and whether anything can still use it."""

    kind: str  # "features", "word vectors", "temporary", "other"
    key: str
    paths: list[Path]
    size: int
    status: str  # current, stale, unknown, in use
    reason: str = ""
    dataset: str = ""  # features: the dataset's name
    items: int | None = None  # features: items; word vectors: tag sets trained on
    description: str = ""  # features: backbone, weights, preprocessing; word vectors: dimension, vocabulary
    version: str = ""


@dataclass
class CacheContents:
    root: Path
    entries: list[CacheEntry] = field(default_factory=list)

    def by_status(self, *statuses: str) -> list[CacheEntry]:
        return [e for e in self.entries if e.status in statuses]

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)


def scan_cache(root: str | Path | None = None) -> CacheContents:
    """Every entry of the cache folder ``root`` (default: hashbench's cache), classified."""
    root = Path(root) if root is not None else cache_dir()
    out = CacheContents(root)
    if not root.is_dir():
        return out
    for child in sorted(root.iterdir()):
        if child.name == "features" and child.is_dir():
            out.entries += _scan_features(child)
        elif child.name == "wordvectors" and child.is_dir():
            out.entries += _scan_word_vectors(child)
        else:
            out.entries.append(CacheEntry("other", child.name, [child], _size(child), UNKNOWN,
                                          "not a hashbench cache entry"))
    return out


def remove_entries(entries: Iterable[CacheEntry]) -> int:
    """Delete these entries' files (never one in use by a live process); returns the bytes freed."""
    freed = 0
    for entry in entries:
        if entry.status == IN_USE or entry.kind == "other":
            continue
        for p in entry.paths:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists() or p.is_symlink():
                p.unlink(missing_ok=True)
        freed += entry.size
    return freed


# ----------------------------------------------------------------- features
def _scan_features(folder: Path) -> list[CacheEntry]:
    from .features.extract import CACHE_VERSION

    entries: list[CacheEntry] = []
    files = {p.name: p for p in folder.iterdir()}
    seen: set[str] = set()
    for name, p in sorted(files.items()):
        if name.startswith("."):
            entries.append(_temporary(p))
            continue
        stem, ext = os.path.splitext(name)
        if ext not in (".npy", ".json") or stem in seen:
            if ext not in (".npy", ".json"):
                entries.append(CacheEntry("other", name, [p], _size(p), UNKNOWN, "not a feature file"))
            continue
        seen.add(stem)
        npy, meta = folder / f"{stem}.npy", folder / f"{stem}.json"
        paths = [q for q in (npy, meta) if q.exists()]
        entry = CacheEntry("features", stem, paths, sum(_size(q) for q in paths), STALE)
        entries.append(entry)
        if not npy.is_file() or not meta.is_file():
            missing = npy if not npy.is_file() else meta
            entry.reason = f"incomplete, {missing.name} is missing: an interrupted extraction"
            continue
        try:
            info = json.loads(meta.read_text())
            if not isinstance(info, dict):
                raise ValueError("not a JSON object")
        except (ValueError, OSError) as exc:
            entry.reason = f"unreadable sidecar {meta.name}: {exc}"
            continue
        fp = info.get("dataset") if isinstance(info.get("dataset"), dict) else {}
        entry.dataset = str(fp.get("name", "?"))
        entry.items = info.get("n")
        backbone = info.get("backbone") if isinstance(info.get("backbone"), dict) else {}
        entry.description = _describe_backbone(backbone) + (" trunk" if info.get("layer") == "trunk" else "")
        if info.get("key") != stem:
            entry.reason = f"its sidecar names another key, {info.get('key')!r}"
            continue
        version = info.get("cache_version")
        if version is not None:
            entry.version = str(version)
            if version == CACHE_VERSION:
                entry.status = CURRENT
            else:
                entry.reason = f"cache version {version}; this hashbench reads version {CACHE_VERSION}"
        elif backbone.get("weights") == "random":
            if "init" in backbone:  # the field came with version 3, the version field after it
                entry.version, entry.status = "3", CURRENT
                if CACHE_VERSION != 3:
                    entry.status, entry.reason = STALE, f"cache version 3; this hashbench reads {CACHE_VERSION}"
            else:
                entry.version = "1-2"
                entry.reason = "random weights from before He initialisation: cache version 1 or 2"
        else:
            entry.version, entry.status = "?", UNKNOWN
            entry.reason = "version not recorded, written before hashbench recorded it: 1 to 3, usable only if 3"
    return entries


def _describe_backbone(b: dict) -> str:
    weights = b.get("weights", "?")
    if weights == "random":
        weights = f"random seed {b.get('seed', '?')}"
    elif weights != "imagenet":
        weights = Path(str(weights)).name
    return f"{b.get('name', '?')} {weights} {b.get('resize', '?')}/{b.get('crop', '?')}px"


# ------------------------------------------------------------- word vectors
def _scan_word_vectors(folder: Path) -> list[CacheEntry]:
    from .tags import TRAINED_VERSION, _gensim_version

    installed = _gensim_version()
    entries: list[CacheEntry] = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            entries.append(_temporary(p))
            continue
        if not p.is_dir():
            entries.append(CacheEntry("other", p.name, [p], _size(p), UNKNOWN, "not a word-vector entry"))
            continue
        entry = CacheEntry("word vectors", p.name, [p], _size(p), STALE)
        entries.append(entry)
        kv = p / "vectors.kv"
        if not kv.is_file():
            entry.reason = "incomplete: vectors.kv is missing"
            continue
        info_path = p / "info.json"
        info: dict = {}
        if info_path.is_file():
            try:
                info = json.loads(info_path.read_text())
            except (ValueError, OSError):
                info = {}
        trained = info.get("trained_version", 1)  # entries without info.json: version 1, the only one then
        gensim = info.get("gensim") or _pickled_gensim_version(kv)
        entry.items = info.get("n_tag_sets")
        params = info.get("params") if isinstance(info.get("params"), dict) else {}
        entry.description = ", ".join(
            ([f"{params['dim']}-d"] if "dim" in params else []) +
            ([f"{info['vocabulary_size']} words"] if "vocabulary_size" in info else [])) or "?"
        entry.version = f"{trained}, gensim {gensim or '?'}"
        if trained != TRAINED_VERSION:
            entry.reason = f"training recipe version {trained}; this hashbench trains version {TRAINED_VERSION}"
        elif gensim is None:
            entry.status, entry.reason = UNKNOWN, "the gensim version that trained it cannot be read"
        elif gensim != installed:
            entry.reason = f"trained with gensim {gensim}; the key includes it and gensim {installed} is installed"
        else:
            entry.status = CURRENT
    return entries


def _pickled_gensim_version(path: Path) -> str | None:
    """The gensim version in gensim's 'saving' record of a saved KeyedVectors, without unpickling."""
    try:
        with open(path, "rb") as f:
            strings = (arg for op, arg, _ in pickletools.genops(f) if isinstance(arg, str))
            for s in strings:
                if s == "gensim":
                    return next(strings, None)
    except Exception:  # not a pickle, or a truncated one: the version is unknown
        return None
    return None


# ---------------------------------------------------------------- leftovers
def _temporary(p: Path) -> CacheEntry:
    entry = CacheEntry("temporary", p.name, [p], _size(p), STALE)
    m = _FEATURE_TMP.match(p.name)
    if m and _alive(int(m["pid"])):
        entry.status, entry.reason = IN_USE, f"being written by process {m['pid']}"
    elif m:
        entry.reason = f"left by process {m['pid']}, which is gone"
    else:
        age = time.time() - p.stat().st_mtime
        if age < ABANDONED_AFTER_S:
            entry.status, entry.reason = IN_USE, f"written {age:.0f}s ago: maybe by a running process"
        else:
            entry.reason = f"abandoned {age / 3600:.1f} h ago by an interrupted run"
    return entry


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _size(p: Path) -> int:
    if p.is_symlink() or not p.is_dir():
        try:
            return p.lstat().st_size
        except OSError:
            return 0
    return sum(q.lstat().st_size for q in p.rglob("*") if q.is_file() or q.is_symlink())


# ------------------------------------------------------------------ listing
def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover


def format_cache(contents: CacheContents) -> str:
    """A human listing: the entries by kind, sizes, status and why an entry is stale."""
    from .features.extract import CACHE_VERSION
    from .tags import TRAINED_VERSION, _gensim_version

    lines = [f"cache {contents.root} ({human_size(contents.size)})"]
    if not contents.entries:
        return lines[0] + ": empty"
    feats = sorted((e for e in contents.entries if e.kind == "features"), key=lambda e: (e.dataset, e.description))
    if feats:
        lines.append(f"features (this hashbench writes cache version {CACHE_VERSION}):")
        lines.append(f"  {'dataset':<14} {'items':>7}  {'backbone':<34} {'version':<7} {'size':>10}  status")
        for e in feats:
            lines.append(f"  {e.dataset or '?':<14} {e.items if e.items is not None else '?':>7}  "
                         f"{e.description or '?':<34} {e.version or '?':<7} {human_size(e.size):>10}  "
                         f"{_status(e)}   [{e.key}]")
    wv = [e for e in contents.entries if e.kind == "word vectors"]
    if wv:
        lines.append(f"word vectors (trained; this hashbench trains version {TRAINED_VERSION} "
                     f"with gensim {_gensim_version()}):")
        lines.append(f"  {'vectors':<22} {'tag sets':>8}  {'version':<20} {'size':>10}  status")
        for e in wv:
            lines.append(f"  {e.description:<22} {e.items if e.items is not None else '?':>8}  "
                         f"{e.version:<20} {human_size(e.size):>10}  {_status(e)}   [{e.key}]")
    rest = [e for e in contents.entries if e.kind in ("temporary", "other")]
    if rest:
        lines.append("other files:")
        for e in rest:
            lines.append(f"  {e.key:<40} {human_size(e.size):>10}  {_status(e)}")
    stale = contents.by_status(STALE)
    lines.append(f"{len(stale)} stale entr{'y' if len(stale) == 1 else 'ies'} ({human_size(sum(e.size for e in stale))})"
                 + (": remove them with `python -m hashbench cache --clear-stale`" if stale else ""))
    return "\n".join(lines)


def _status(e: CacheEntry) -> str:
    if e.kind == "other":
        return f"left alone ({e.reason})"
    return e.status + (f" ({e.reason})" if e.reason and e.status != CURRENT else "")
