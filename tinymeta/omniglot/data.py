"""Omniglot characters as NumPy arrays: locate, load, verify, convert, rotate and split.

Files: ``omniglot28_{variant}_{background,evaluation}.npz`` with ``variant`` ``"binary"``
(default; what the MAML and Reptile code effectively trained on) or ``"gray"`` (anti-aliased).
Keys: ``images`` uint8 (C, 20, 28, 28) with **255 = paper, 0 = ink**; ``char_id``, ``alphabet``,
``character`` int16 (C,); ``alphabet_names`` str (A,). Full set: C = 964 background + 659
evaluation = 1623 characters (ids 1..1623), A = 30 + 20 alphabets, 20 drawings each.

Where the files are looked for, in order (:func:`candidate_dirs`): the ``data_dir`` argument if
given (and then nowhere else); otherwise ``$TINYMETA_DATA`` if set, then :func:`default_cache_dir`.
Every directory DIR is tried as ``DIR`` and ``DIR/omniglot``.

Pixel convention (:func:`to_features`): x = (255 - p) / 255 = 1 - p / 255 for a stored pixel p, so ink = 1 and
paper = 0 as in MAML's code, flattened row-major to 784 features for an MLP.

References: Lake, Salakhutdinov & Tenenbaum (2015), Science 350(6266); Finn et al. (2017),
MAML, section 5.1; Nichol et al. (2018), Reptile, section 6.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import os
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import validate
from ..cache import default_cache_dir

ENV_VAR = "TINYMETA_DATA"
VARIANTS = ("binary", "gray")
SPLITS = ("maml", "lake")
NUM_DRAWINGS = 20
FULL_COUNTS = {"background": (964, 30, 1), "evaluation": (659, 20, 965)}  # (characters, alphabets, first id)
KEYS = ("images", "char_id", "alphabet", "character", "alphabet_names")

FILE_SHA256 = {  # sha256 of the distributed files (shared data README)
    "omniglot28_binary_background.npz": "652b3b42f3d46eb86beae4765b915cc2a7073cf14d8714ba4d686a81c3178caf",
    "omniglot28_binary_evaluation.npz": "8caf6838d3874181fb69fec7ea048f0c38169f8822ca63da8fdd4d889b816cc2",
    "omniglot28_gray_background.npz": "372ea8a61baa5ad652dd56b0c01117cd6ee29ade98a1a70a476acdab2f4034c5",
    "omniglot28_gray_evaluation.npz": "d2f501e0ff9238e940383c3e2a89e6cb77b91bb5aec17d94605c5be43b125bfe",
}
CONTENT_SHA256 = {  # sha256 of images.tobytes() (C order): also holds for a fresh download-and-convert
    "omniglot28_binary_background.npz": "ce1a93f22a884fb241c934f868462bc705d1df7d7bae9981cb4703dbb8c7e932",
    "omniglot28_binary_evaluation.npz": "10b328a474bbc30df646ed34688c4a99f93a6f42af4e05c5af3c8e92aed544b5",
    "omniglot28_gray_background.npz": "b53250f9ce17a9a217448edd460e29bc5048e9bbc7b81b2c832771eee8bc6997",
    "omniglot28_gray_evaluation.npz": "29898d2017cab4bc2e94ed5b6a3b5b2f7d90c0f6e78a8669d929d5cdb2f6aa09",
}

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
"""The small sample bundled with tinymeta (see :mod:`tinymeta.omniglot.sample`)."""
SAMPLE_CONTENT_SHA256 = {  # sha256 of images.tobytes() of the bundled sample
    "omniglot28_binary_background.npz": "97250e309999e7b6555f833d7d667c596349316043afa71437aa7dbbc70f2e53",
    "omniglot28_binary_evaluation.npz": "f40413958d93170be88a973ab8be9dc91b64a76ff746e0de37839fea7a647f66",
}
VERIFY = ("auto", "content", "file", None)


class OmniglotError(Exception):
    """Base class of every Omniglot data error."""


class OmniglotNotFoundError(OmniglotError, FileNotFoundError):
    """The npz files are in none of the searched directories."""


class OmniglotCorruptError(OmniglotError, ValueError):
    """A file exists but is not a valid Omniglot npz (bad archive, keys, shapes, counts, checksum)."""


class OmniglotSet(NamedTuple):
    """One stored file: ``images`` uint8 (C, D, 28, 28) as stored (255 = paper), int64 labels (C,)."""

    images: np.ndarray
    char_id: np.ndarray
    alphabet: np.ndarray
    character: np.ndarray
    alphabet_names: tuple
    path: Path


class CharacterSet(NamedTuple):
    """Characters of one side of a split: ``images`` uint8 (C, D, 28, 28), ``char_id`` int64 (C,)."""

    images: np.ndarray
    char_id: np.ndarray


def file_name(variant: str, part: str) -> str:
    """``omniglot28_{variant}_{part}.npz`` for ``part`` in {"background", "evaluation"}."""
    validate.one_of("variant", variant, VARIANTS)
    validate.one_of("part", part, tuple(FULL_COUNTS))
    return f"omniglot28_{variant}_{part}.npz"


def candidate_dirs(data_dir=None) -> list[tuple[Path, str]]:
    """Directories searched, in order, each with where it came from (see the module docstring)."""
    if data_dir is not None:
        roots = [(Path(data_dir).expanduser(), "data_dir argument")]
    else:
        roots = [(Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}")] if os.environ.get(ENV_VAR) else []
        roots.append((default_cache_dir(), "user cache directory"))
    return [(d, why) for root, why in roots for d in (root, root / "omniglot")]


def find_data_dir(data_dir=None, variant: str = "binary") -> Path:
    """The first candidate directory holding both ``variant`` files; else :class:`OmniglotNotFoundError`."""
    names = [file_name(variant, part) for part in FULL_COUNTS]
    looked = []
    for d, why in candidate_dirs(data_dir):
        have = [n for n in names if (d / n).is_file()]
        if len(have) == len(names):
            return d
        looked.append(f"{d} ({why})" + (f", which has {have[0]} but not the other file" if have else ""))
    raise OmniglotNotFoundError(
        f"Omniglot 28x28 '{variant}' files ({' and '.join(names)}) not found; looked in: "
        f"{'; '.join(looked)}. "
        f"Get them with 'tinymeta omniglot-download --data-dir DIR' (needs internet), or copy the two .npz "
        f"files into DIR; then pass --data-dir DIR or set {ENV_VAR}=DIR. Without them, "
        "tinymeta.omniglot.load_sample() gives a small bundled sample."
    )


def sha256_file(path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _corrupt(path, what: str) -> OmniglotCorruptError:
    fix = "Replace it (tinymeta omniglot-download --data-dir DIR --overwrite, or copy it again)."
    return OmniglotCorruptError(f"{path}: {what}. {fix}")


def _check(path: Path, a: dict, part: str, variant: str, expect_full: bool) -> None:
    img = a["images"]
    if img.dtype != np.uint8 or img.ndim != 4 or img.shape[2:] != (28, 28) or 0 in img.shape:
        raise _corrupt(path, f"'images' is {img.dtype} {img.shape}; expected uint8 (C, 20, 28, 28)")
    c = img.shape[0]
    for key in ("char_id", "alphabet", "character"):
        if a[key].shape != (c,) or a[key].dtype.kind not in "iu":
            raise _corrupt(path, f"'{key}' is {a[key].dtype} {a[key].shape}; expected integers ({c},)")
    names = a["alphabet_names"]
    if names.ndim != 1 or names.dtype.kind != "U":
        raise _corrupt(path, f"'alphabet_names' is {names.dtype} {names.shape}; expected strings (A,)")
    if a["alphabet"].min() < 0 or a["alphabet"].max() >= len(names):
        raise _corrupt(path, f"'alphabet' has values outside [0, {len(names)})")
    if len(np.unique(a["char_id"])) != c:
        raise _corrupt(path, "'char_id' has repeated ids")
    if variant == "binary" and np.count_nonzero((img != 0) & (img != 255)):
        raise _corrupt(path, "the binary variant has pixels other than 0 and 255")
    if expect_full:
        chars, alphabets, first = FULL_COUNTS[part]
        got = (c, img.shape[1], len(names))
        if got != (want := (chars, NUM_DRAWINGS, alphabets)):
            what = f"(characters, drawings, alphabets) = {got}; the full {part} set has {want}"
            raise _corrupt(path, what + " (pass expect_full=False for a subset)")
        if not np.array_equal(a["char_id"], np.arange(first, first + chars)):
            raise _corrupt(path, f"'char_id' is not {first}..{first + chars - 1} in order")


def expected_content_sha256(path: Path, expect_full: bool) -> str | None:
    """The known sha256 of ``images`` for this file: the full set's, the bundled sample's, or None."""
    if path.parent == SAMPLE_DIR:
        return SAMPLE_CONTENT_SHA256.get(path.name)
    return CONTENT_SHA256.get(path.name) if expect_full else None


@functools.lru_cache(maxsize=8)
def _load_cached(
    path: str, mtime_ns: int, size: int, part: str, variant: str, expect_full: bool, verify, want
) -> OmniglotSet:
    p = Path(path)
    if verify == "file" and (got := sha256_file(p)) != FILE_SHA256[p.name]:
        raise _corrupt(p, f"sha256 {got} differs from the distributed file's {FILE_SHA256[p.name]}")
    try:
        with np.load(p, allow_pickle=False) as z:
            missing = [k for k in KEYS if k not in z.files]
            if missing:
                raise _corrupt(p, f"missing key(s) {missing}; has {sorted(z.files)}")
            a = {k: z[k] for k in KEYS}
    except OmniglotError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise _corrupt(p, f"not a readable .npz archive ({type(e).__name__}: {e})") from None
    _check(p, a, part, variant, expect_full)
    if verify == "content" and want is None:
        raise _corrupt(p, "no content hash is known for this subset; pass verify=None or 'auto'")
    if verify in ("content", "auto") and want is not None:
        got = hashlib.sha256(np.ascontiguousarray(a["images"]).tobytes()).hexdigest()
        if got != want:
            raise _corrupt(p, f"its images differ from the Omniglot images (sha256 {got}, expected {want}): "
                           "the file was altered or is not Omniglot")  # fmt: skip
    out = [a["images"]] + [a[k].astype(np.int64) for k in ("char_id", "alphabet", "character")]
    for arr in out:
        arr.setflags(write=False)  # shared by every caller through the cache
    return OmniglotSet(*out, tuple(str(n) for n in a["alphabet_names"]), p)


def load_omniglot(
    data_dir=None, *, variant: str = "binary", expect_full: bool = True, verify: str | None = "auto"
) -> tuple[OmniglotSet, OmniglotSet]:
    """Load ``(background, evaluation)`` from the first directory found by :func:`find_data_dir`.

    Parameters
    ----------
    data_dir : str or Path, optional
        Directory with the two npz files (or with an ``omniglot/`` subdirectory holding them).
    variant : {"binary", "gray"}
    expect_full : bool
        Require the full set (964/659 characters, ids 1..1623 in order, 20 drawings, 30/20 alphabets).
        Shapes, dtypes and label consistency are always checked.
    verify : {"auto", "content", "file", None}
        ``"auto"`` (default): the sha256 of ``images`` must equal the known one -- :data:`CONTENT_SHA256`
        for the full set (which also holds for a faithful fresh conversion of the official zips),
        :data:`SAMPLE_CONTENT_SHA256` for the bundled sample; other subsets are not hashed.
        ``"content"``: the same, and a subset without a known hash is refused. ``"file"``: sha256 of the
        npz bytes against :data:`FILE_SHA256` (holds only for the distributed copies; npz archives embed
        timestamps). ``None``: no hash.

    Returns
    -------
    (OmniglotSet, OmniglotSet)
        Read-only arrays, cached per process and keyed by path, size and modification time.

    Raises
    ------
    OmniglotNotFoundError
        No directory holds both files (the message lists where it looked and how to get them).
    OmniglotCorruptError
        A file is unreadable, inconsistent or altered; the message names the file.
    """
    validate.one_of("verify", verify, VERIFY)
    d = find_data_dir(data_dir, variant)
    out = []
    for part in FULL_COUNTS:
        p = (d / file_name(variant, part)).resolve()
        st = p.stat()
        want = expected_content_sha256(p, expect_full)  # part of the cache key, with size and mtime
        args = (st.st_mtime_ns, st.st_size, part, variant, bool(expect_full), verify, want)
        out.append(_load_cached(str(p), *args))
    return out[0], out[1]


def to_features(images: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Stored pixels (..., 28, 28) uint8 -> features (..., 784) with x = (255 - p) / 255 (ink 1, paper 0).

    Exact 1 for ink (p = 0) and 0 for paper (p = 255); rows of the image are concatenated (row-major).
    """
    if images.dtype != np.uint8 or images.shape[-2:] != (28, 28):
        raise ValueError(f"images must be uint8 (..., 28, 28); got {images.dtype} {images.shape}")
    return np.divide(255 - images, 255.0, dtype=dtype).reshape(*images.shape[:-2], 784)


def rotate(images: np.ndarray, k) -> np.ndarray:
    """Rotate (..., 28, 28) images by k * 90 degrees counter-clockwise: ``np.rot90(images, k, (-2, -1))``.

    Math: out[..., i, j] = in[..., j, W - 1 - i] for k = 1; k is taken modulo 4.
    """
    return np.rot90(images, operator.index(k) % 4, axes=(-2, -1))


def augment_rotations(characters: CharacterSet) -> CharacterSet:
    """Every (character, rotation) pair as its own class: class ``r * C + c`` is character c rotated
    by r * 90 degrees (r = 0..3), so C characters give 4C classes (``char_id`` repeats 4 times)."""
    images = np.concatenate([rotate(characters.images, r) for r in range(4)])
    return CharacterSet(images, np.tile(characters.char_id, 4))


def split_characters(background, evaluation, split="maml", *, seed=1, num_train=1200):
    """Disjoint ``(meta_train, meta_test)`` CharacterSets of two OmniglotSets, each sorted by ``char_id``.

    ``"maml"`` (as the MAML and Reptile code): concatenate background and evaluation in ``char_id``
    order (ids 1..1623), draw ``perm = np.random.default_rng(seed).permutation(1623)``; rows
    ``perm[:num_train]`` (default 1200) are meta-train, the other 423 meta-test. ``seed`` defaults to 1.
    ``"lake"`` (Lake et al. 2015): background (964 characters, 30 alphabets) is meta-train,
    evaluation (659 characters, 20 alphabets) meta-test; ``seed`` and ``num_train`` are unused.
    """
    validate.one_of("split", split, SPLITS)
    if split == "lake":
        return (
            CharacterSet(background.images, background.char_id),
            CharacterSet(evaluation.images, evaluation.char_id),
        )
    char_id = np.concatenate([background.char_id, evaluation.char_id])
    order = np.argsort(char_id, kind="stable")
    total = len(order)
    if validate.count("num_train", num_train, 1) >= total:
        raise ValueError(f"num_train must be < the {total} characters available; got {num_train}")
    perm = np.random.default_rng(validate.count("seed", seed)).permutation(total)
    images = np.concatenate([background.images, evaluation.images])
    sides = []
    for rows in (perm[:num_train], perm[num_train:]):
        rows = order[np.sort(rows)]  # positions in char_id order -> rows, kept in char_id order
        sides.append(CharacterSet(images[rows], char_id[rows]))
    return sides[0], sides[1]


def load_split(split="maml", data_dir=None, *, variant="binary", seed=1, num_train=1200, expect_full=True):
    """:func:`load_omniglot` followed by :func:`split_characters`: ``(meta_train, meta_test)``."""
    bg, ev = load_omniglot(data_dir, variant=variant, expect_full=expect_full)
    return split_characters(bg, ev, split, seed=seed, num_train=num_train)
