"""User tags to vectors: normalisation, word vectors, aggregation (UDHT, section 3.2).

Gattupalli & Li, *Unsupervised Deep Image Hashing through Tag Embeddings*
(UDHT), section 3.2: every tag of an image is replaced by its word2vec vector
and the image's vectors are aggregated into one d-dimensional vector w_i, by
their mean or by an idf-weighted mean. The tag-binary baseline (section 3.5)
uses binary tag-occurrence vectors instead. Everything that turns tags into
numbers lives here; the methods only consume the arrays.

The pipeline, one function per step:

1. :func:`normalize_tags` -- Unicode NFKC, lower case, strip white space and
   the leading ``#`` of hashtags, inner white space to ``_`` (the word2vec
   phrase convention), surrounding punctuation removed, empty tags dropped,
   duplicates within an image dropped (the paper: each tag appears once per
   image, hence idf rather than tf-idf). Idempotent.
2. :func:`load_word_vectors` -- gensim ``KeyedVectors`` from a local word2vec
   file (binary or text), a gensim-downloader name, or (the offline default,
   ``"auto"``/``"trained"``) a gensim Word2Vec trained on the training tag
   sets, seeded and cached. Returns the vectors and an ``info`` dict that the
   methods put in ``fit_info_`` (recorded with every result).
3. :func:`aggregate_tag_vectors` -- the paper's mean or idf formula; tags
   that are not in the vocabulary are skipped and counted, and images left
   with no in-vocabulary tag are flagged (``valid`` is False, their vector is
   zero, never NaN) so the losses can mask them out.
4. :func:`binary_tag_matrix` -- sparse 0/1 tag-occurrence vectors for the
   tag-binary baseline.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import ConfigError, DataError, WeightsError
from .storage import cache_dir

#: bump when the training recipe of the "trained" vectors changes (enters the cache key)
TRAINED_VERSION = 1

#: defaults of the offline vectors (gensim Word2Vec on the training tag sets)
TRAINED_DEFAULTS: dict[str, Any] = {
    "dim": 64,  # the paper's Wikipedia vectors are 300-d; a few hundred tag words need far fewer
    "sg": 1,  # skip-gram: better than CBOW for rare words (most tags are rare)
    "window": 100,  # a tag set is unordered: every tag of an image is context of every other
    "min_count": 1,  # keep every tag: a tag without a vector is an out-of-vocabulary tag
    "negative": 5,
    "epochs": 30,  # tag "sentences" are short and few; gensim's default 5 under-trains them
    "sample": 0.0,  # no down-sampling of frequent tags: the corpus is tiny
}

_WORD2VEC_SUFFIXES = (".bin", ".bin.gz", ".txt", ".txt.gz", ".vec", ".vec.gz", ".kv", ".model", ".gz", ".bz2")
_PUNCT = " \t\r\n\"'`.,;:!?()[]{}<>|/\\*~^"


# --------------------------------------------------------------------- 1. normalise
def normalize_tag(tag: str) -> str:
    """One tag in canonical form ('' when nothing is left). Idempotent.

    ``"  #SunSet "`` -> ``"sunset"``; ``"New York"`` -> ``"new_york"``;
    ``"##50Faves!"`` -> ``"50faves"``.
    """
    t = unicodedata.normalize("NFKC", str(tag)).strip().lower()
    t = t.strip(_PUNCT).lstrip("#").strip(_PUNCT)
    t = re.sub(r"\s+", "_", t)
    return t


def normalize_tags(tag_lists: Iterable[Iterable[str]]) -> list[list[str]]:
    """Normalise every image's tags, dropping empty ones and duplicates (first order kept)."""
    out: list[list[str]] = []
    for i, tags in enumerate(tag_lists):
        if isinstance(tags, str):
            raise DataError(f"tags[{i}]: expected a list of tags, got the string {tags!r}")
        seen: dict[str, None] = {}
        for t in tags:
            n = normalize_tag(t)
            if n:
                seen.setdefault(n, None)
        out.append(list(seen))
    return out


# ------------------------------------------------------------------ 2. word vectors
def _stable_hash(s: str) -> int:
    # gensim seeds each word's initial vector with hashfxn(word + seed); Python's
    # hash() is salted per process (PYTHONHASHSEED), so use a stable one.
    return zlib.crc32(s.encode("utf-8"))


def _gensim_version() -> str:
    import gensim

    return gensim.__version__


def _trained_key(tag_lists: list[list[str]], params: dict[str, Any], seed: int) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"params": params, "seed": seed, "v": TRAINED_VERSION, "gensim": _gensim_version()},
                        sort_keys=True).encode())
    for tags in tag_lists:
        h.update("\x1f".join(tags).encode("utf-8") + b"\x1e")
    return h.hexdigest()[:24]


def train_word_vectors(tag_lists: Sequence[Sequence[str]], *, seed: int = 0, **params: Any):
    """A gensim Word2Vec trained on tag sets (each image's tags as one sentence), deterministic.

    ``workers=1`` and a stable word hash make it reproducible across processes.
    Images with fewer than two tags carry no co-occurrence and are left out of
    the corpus (their tags still get a vector when they occur elsewhere).
    """
    from gensim.models import Word2Vec

    p = {**TRAINED_DEFAULTS, **params}
    unknown = set(p) - set(TRAINED_DEFAULTS)
    if unknown:
        raise ConfigError(f"word vectors: unknown training option(s) {sorted(unknown)}; known: {sorted(TRAINED_DEFAULTS)}")
    corpus = [list(t) for t in tag_lists if len(t) >= 2]
    if not corpus:
        raise DataError("word vectors: cannot train on the tags: no image has two or more tags")
    model = Word2Vec(
        sentences=corpus,
        vector_size=int(p["dim"]),
        sg=int(p["sg"]),
        window=int(p["window"]),
        min_count=int(p["min_count"]),
        negative=int(p["negative"]),
        epochs=int(p["epochs"]),
        sample=float(p["sample"]),
        seed=int(seed),
        workers=1,
        hashfxn=_stable_hash,
    )
    return model.wv


def _sniff_binary(path: Path) -> bool:
    """True for word2vec's binary format: a text header line, then raw float32 bytes."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        f.readline()  # header "count dim"
        chunk = f.read(4096)
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return b"\x00" in chunk


def _read_vector_file(path: Path):
    """KeyedVectors from a gensim .kv/.model file, or word2vec binary/text (with or without header)."""
    from gensim.models import KeyedVectors

    name = path.name.lower()
    try:
        if name.endswith(".kv") or name.endswith(".model"):
            kv = KeyedVectors.load(str(path))
            return (kv.wv if hasattr(kv, "wv") else kv), "gensim"
        if name.endswith(".bin") or name.endswith(".bin.gz"):
            binary = True
        elif name.endswith((".txt", ".vec", ".txt.gz", ".vec.gz")):
            binary = False
        else:
            binary = _sniff_binary(path)
        if binary:
            return KeyedVectors.load_word2vec_format(str(path), binary=True), "word2vec-binary"
        # word2vec text starts with "count dim"; GloVe text files have no header.
        import gzip

        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            first = f.readline().split()
        no_header = not (len(first) == 2 and all(s.isdigit() for s in first))
        kv = KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=no_header)
        return kv, "glove-text" if no_header else "word2vec-text"
    except (ValueError, EOFError, OSError, UnicodeDecodeError, KeyError) as exc:
        raise DataError(
            f"word vectors file {path}: cannot be read as word2vec binary/text or gensim KeyedVectors "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _load_downloader(name: str):
    import gensim.downloader as api

    local = Path(api.BASE_DIR) / name
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        kv = api.load(name)
    except Exception as exc:
        raise WeightsError(
            f"word vectors {name!r}: not a local file, and the gensim downloader could not provide it "
            f"({type(exc).__name__}: {exc}; nothing cached at {local}). Offline, download the vectors on a "
            "machine with internet (for example GoogleNews-vectors-negative300.bin) and pass the file's path "
            "as word_vectors=/path/to/file, or use word_vectors='trained' to train vectors on the dataset's tags."
        ) from exc
    finally:
        socket.setdefaulttimeout(old)
    return kv, str(local)


@contextlib.contextmanager
def _quiet_gensim():
    """gensim logs every epoch and file at INFO; keep a run's output readable."""
    logger = logging.getLogger("gensim")
    old = logger.level
    logger.setLevel(max(old, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(old)


def load_word_vectors(
    spec: str = "auto",
    *,
    tags: Sequence[Sequence[str]] | None = None,
    seed: int = 0,
    cache: str | Path | None = None,
    train_params: dict[str, Any] | None = None,
):
    """Word vectors for ``spec`` and a dict describing them (recorded with results).

    ``spec``:

    * ``"auto"`` or ``"trained"`` (the offline default; ``"auto"`` never touches
      the network): a gensim Word2Vec trained on ``tags`` (the normalised
      training tag sets) with ``seed`` and :data:`TRAINED_DEFAULTS` updated by
      ``train_params``, cached under ``<cache>/wordvectors/<key>/`` where the
      key digests the tags, the options, the seed and the gensim version;
    * a path to a file: word2vec binary (``.bin``) or text (``.txt``/``.vec``,
      with or without the ``count dim`` header), gensim ``.kv``; other
      extensions are sniffed;
    * any other string: a gensim-downloader name (``"word2vec-google-news-300"``),
      loaded with ``gensim.downloader.load`` (cached under ``~/gensim-data``).
      Offline and not cached: :class:`~hashbench.errors.WeightsError` naming
      the name and how to give a local file. Never a silent fallback.
    """
    with _quiet_gensim():
        return _load_word_vectors(spec, tags=tags, seed=seed, cache=cache, train_params=train_params)


def _load_word_vectors(
    spec: str = "auto",
    *,
    tags: Sequence[Sequence[str]] | None = None,
    seed: int = 0,
    cache: str | Path | None = None,
    train_params: dict[str, Any] | None = None,
):

    if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
        raise ConfigError(f"word_vectors must be 'auto', 'trained', a file path or a gensim-downloader name, got {spec!r}")
    spec_s = str(spec).strip()
    if spec_s in ("auto", "trained"):
        if tags is None:
            raise ConfigError("word vectors 'trained': the training tags are needed to train them")
        tag_lists = normalize_tags(tags)
        params = {**TRAINED_DEFAULTS, **(train_params or {})}
        key = _trained_key(tag_lists, params, seed)
        folder = Path(cache if cache is not None else cache_dir()) / "wordvectors" / key
        path = folder / "vectors.kv"
        info: dict[str, Any] = {"source": "trained", "spec": spec_s, "params": params, "seed": int(seed),
                                "cache_key": key, "path": str(path)}
        from gensim.models import KeyedVectors

        if path.is_file():
            try:
                kv = KeyedVectors.load(str(path))
                info["cache_hit"] = True
            except Exception:  # unreadable cache entry: train again below
                kv = None
        else:
            kv = None
        if kv is None:
            kv = train_word_vectors(tag_lists, seed=seed, **params)
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{key}."))
            try:
                kv.save(str(tmp / "vectors.kv"))
                # what the entry is, for `python -m hashbench cache` (the key alone cannot say)
                (tmp / "info.json").write_text(json.dumps({
                    "trained_version": TRAINED_VERSION, "gensim": _gensim_version(), "params": params,
                    "seed": int(seed), "n_tag_sets": len(tag_lists), "vocabulary_size": len(kv.key_to_index)},
                    sort_keys=True, indent=1))
                if folder.exists():  # another process won the race: keep its copy
                    shutil.rmtree(tmp)
                else:
                    os.replace(tmp, folder)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            info["cache_hit"] = False
    else:
        p = Path(spec_s).expanduser()
        if p.is_file():
            kv, fmt = _read_vector_file(p)
            info = {"source": "file", "spec": spec_s, "path": str(p.resolve()), "format": fmt}
        elif os.sep in spec_s or "/" in spec_s or spec_s.lower().endswith(_WORD2VEC_SUFFIXES):
            raise WeightsError(f"word vectors file {p}: no such file")
        else:
            kv, where = _load_downloader(spec_s)
            info = {"source": "gensim-downloader", "spec": spec_s, "name": spec_s, "path": where}
    if not hasattr(kv, "key_to_index") or len(kv.key_to_index) == 0:
        raise DataError(f"word vectors {spec_s!r}: empty vocabulary")
    info["dim"] = int(kv.vector_size)
    info["vocabulary_size"] = int(len(kv.key_to_index))
    return kv, info


# -------------------------------------------------------------------- 3. aggregate
@dataclass
class TagVectors:
    """Aggregated tag vectors of n images.

    ``vectors`` (n, d) float32: w_i (zero where ``valid`` is False);
    ``valid`` (n,) bool: the image has at least one in-vocabulary tag with a
    non-zero weight, so w_i is defined; ``stats``: the counts recorded in results.
    """

    vectors: np.ndarray
    valid: np.ndarray
    stats: dict[str, Any]


def document_frequency(tag_lists: Sequence[Sequence[str]]) -> tuple[Counter, int, int]:
    """n(tau) = number of images carrying tau, the number of images, and the number of tag occurrences.

    Counted on normalised tags (one occurrence per image at most).
    """
    norm = normalize_tags(tag_lists)
    df: Counter = Counter()
    for tags in norm:
        df.update(tags)
    return df, len(norm), sum(len(t) for t in norm)


def _lookup(kv, tag: str) -> int | None:
    # Pretrained vectors such as GoogleNews are case-sensitive: try the tag as
    # normalised, then capitalised, then upper-cased ("london" -> "London").
    for cand in (tag, tag.capitalize(), tag.upper()):
        idx = kv.key_to_index.get(cand)
        if idx is not None:
            return idx
    return None


def aggregate_tag_vectors(
    tag_lists: Sequence[Sequence[str]],
    kv,
    *,
    aggregation: str = "mean",
    idf_n: str = "images",
    frequencies: tuple[Counter, int, int] | None = None,
) -> TagVectors:
    """The paper's w_i for every image (section 3.2, the two displayed formulae).

    ``mean``: w_i = (1/m) sum_j v_i^j.
    ``idf``:  w_i = (1/m) sum_j log(N / n(tau_i^j)) v_i^j.

    m is the number of the image's *in-vocabulary* tags (out-of-vocabulary
    tags are skipped: they have no vector). n(tau) is the number of images
    carrying tau and N (``idf_n``) is either ``"images"``, the number of
    images (the standard idf: a tag on every image gets weight 0), or
    ``"tag_occurrences"``, the total number of (image, tag) pairs, the
    paper's literal "total number of tags in the database". (The number of
    distinct tags is not offered: it can be smaller than n(tau), which would
    give negative weights.) Both are counted on ``frequencies`` when given
    (from :func:`document_frequency` of the training tags, so that idf is
    fixed at fit time), else on ``tag_lists`` themselves.

    An image with no in-vocabulary tag (or, under idf, only zero-weight tags)
    has no w_i: its row is zero and ``valid`` is False. Consumers must mask it
    out; it never produces NaN.
    """
    if aggregation not in ("mean", "idf"):
        raise ConfigError(f"tag aggregation must be 'mean' or 'idf', got {aggregation!r}")
    if idf_n not in ("images", "tag_occurrences"):
        raise ConfigError(f"idf_n must be 'images' or 'tag_occurrences', got {idf_n!r}")
    norm = normalize_tags(tag_lists)
    n = len(norm)
    d = int(kv.vector_size)
    # One flat (image, word) list, then a single sparse-weighted sum: no loop over pairs in numpy.
    rows, cols, words = [], [], []
    oov: Counter = Counter()
    n_occ = 0
    for i, tags in enumerate(norm):
        for t in tags:
            n_occ += 1
            idx = _lookup(kv, t)
            if idx is None:
                oov[t] += 1
            else:
                rows.append(i)
                cols.append(idx)
                words.append(t)
    rows_a = np.asarray(rows, dtype=np.int64)
    cols_a = np.asarray(cols, dtype=np.int64)
    if aggregation == "idf":
        df, n_images, n_occurrences = frequencies if frequencies is not None else document_frequency(norm)
        big_n = n_images if idf_n == "images" else n_occurrences
        # a tag never seen in the reference set: n(tau) = 1 (the image itself), the rarest possible
        cnt = np.array([max(df.get(w, 0), 1) for w in words], dtype=np.float64)
        weights = np.log(max(big_n, 1) / cnt)
        weights = np.maximum(weights, 0.0)  # only when a tag occurs more often than N (cannot with these N)
    else:
        weights = np.ones(rows_a.size, dtype=np.float64)
    m = np.bincount(rows_a, minlength=n).astype(np.float64)  # in-vocabulary tags per image
    # w = A V with A[i, word] = weight: one sparse product over all images
    import scipy.sparse as sp

    a = sp.csr_matrix((weights, (rows_a, cols_a)), shape=(n, len(kv.key_to_index)))
    vectors = np.asarray(a @ np.asarray(kv.vectors, dtype=np.float64)).reshape(n, d)
    has = m > 0
    vectors[has] /= m[has, None]
    norms = np.linalg.norm(vectors, axis=1)
    valid = norms > 1e-12
    vectors[~valid] = 0.0
    n_tags = np.array([len(t) for t in norm])
    stats = {
        "aggregation": aggregation,
        **({"idf_n": idf_n} if aggregation == "idf" else {}),
        "n_images": n,
        "n_tag_occurrences": int(n_occ),
        "n_oov_occurrences": int(sum(oov.values())),
        "n_oov_unique": int(len(oov)),
        "oov_most_common": [t for t, _ in oov.most_common(10)],
        "n_images_without_tags": int(np.sum(n_tags == 0)),
        "n_images_all_oov": int(np.sum((n_tags > 0) & (m == 0))),
        "n_images_invalid": int(np.sum(~valid)),
    }
    return TagVectors(vectors.astype(np.float32), valid, stats)


# ---------------------------------------------------------------- 4. binary tags
def binary_tag_matrix(tag_lists: Sequence[Sequence[str]], vocabulary: Sequence[str] | None = None):
    """0/1 tag-occurrence vectors (section 3.5) as a scipy CSR matrix, and the vocabulary.

    The vocabulary is every normalised tag of ``tag_lists`` (sorted) unless
    given; tags outside a given vocabulary are ignored.
    """
    import scipy.sparse as sp

    norm = normalize_tags(tag_lists)
    vocab = sorted({t for tags in norm for t in tags}) if vocabulary is None else list(vocabulary)
    index = {t: k for k, t in enumerate(vocab)}
    rows, cols = [], []
    for i, tags in enumerate(norm):
        for t in tags:
            k = index.get(t)
            if k is not None:
                rows.append(i)
                cols.append(k)
    data = np.ones(len(rows), dtype=np.float32)
    mat = sp.csr_matrix((data, (rows, cols)), shape=(len(norm), len(vocab)), dtype=np.float32)
    return mat, vocab
