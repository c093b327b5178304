"""Download the official Omniglot zips and convert them to the 28x28 npz files of :mod:`.data`.

Source: ``images_background.zip`` and ``images_evaluation.zip`` of github.com/brendenlake/omniglot
(``python/``). Each holds ``images_{part}/<Alphabet>/characterKK/NNNN_DD.png``: a 105x105 1-bit PNG
of drawing DD of the character with Omniglot id NNNN.

Conversion (identical to the distributed ``omniglot28_*`` files, checked bit for bit against them):

* binary: ``Image.fromarray(bool_105).resize((28, 28), NEAREST).convert("L")``. The MAML and Reptile
  scripts ask for LANCZOS or the default filter, but on a mode-"1" image Pillow always resamples
  with NEAREST, so the result is 0/255.
* gray: ``Image.fromarray(bool_105).convert("L").resize((28, 28), LANCZOS)``.

Rows are ordered by character id; ``alphabet_names`` lists the alphabet folders in id order.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import write_npz_atomic
from ..cache import default_cache_dir
from .data import (
    CONTENT_SHA256,
    FULL_COUNTS,
    NUM_DRAWINGS,
    VARIANTS,
    OmniglotCorruptError,
    OmniglotError,
    file_name,
    sha256_file,
)

OFFICIAL_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"
MAX_MEMBER_BYTES = 1 << 16
"""Largest accepted PNG inside a zip (a 105x105 1-bit image is about 300 bytes; the cap stops a zip bomb)."""
MAX_MEMBERS = 40_000
"""Most members accepted in one zip (the official ones hold 19,280 and 13,180 images)."""
ZIP_NAMES = {"background": "images_background.zip", "evaluation": "images_evaluation.zip"}
_MEMBER = re.compile(r"images_(background|evaluation)/([^/]+)/character(\d+)/(\d+)_(\d+)\.png")


class OmniglotDownloadError(OmniglotError, OSError):
    """A zip could not be fetched (network error, HTTP error)."""


def _corrupt(where, what: str) -> OmniglotCorruptError:
    return OmniglotCorruptError(f"{where}: {what}")


def fetch(url: str, dest, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Stream ``url`` to ``dest`` (via ``dest.part`` and ``os.replace``); check ``sha256`` if given."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as f:
            for block in iter(lambda: resp.read(1 << 20), b""):
                h.update(block)
                f.write(block)
    except (urllib.error.URLError, OSError) as e:
        part.unlink(missing_ok=True)
        raise OmniglotDownloadError(
            f"could not download {url} ({type(e).__name__}: {e}). Without internet access, copy the "
            "omniglot28_*.npz files (or the two official zips) into the data directory instead."
        ) from None
    if sha256 is not None and h.hexdigest() != sha256.lower():
        part.unlink(missing_ok=True)
        raise _corrupt(url, f"sha256 of the download is {h.hexdigest()}, expected {sha256}")
    os.replace(part, dest)
    return dest


def convert_image(bool_105: np.ndarray, variant: str = "binary") -> np.ndarray:
    """A (105, 105) bool image (True = paper) -> uint8 (28, 28) with 255 = paper, 0 = ink."""
    # Pillow is not a declared dependency of tinymeta, but matplotlib (which is) requires it.
    from PIL import Image

    resampling = getattr(Image, "Resampling", Image)
    img = Image.fromarray(np.asarray(bool_105, dtype=bool))  # mode "1"
    if variant == "binary":
        small = img.resize((28, 28), resample=resampling.NEAREST).convert("L")
    elif variant == "gray":
        small = img.convert("L").resize((28, 28), resample=resampling.LANCZOS)
    else:
        raise ValueError(f"variant must be one of {list(VARIANTS)}; got {variant!r}")
    return np.asarray(small, dtype=np.uint8)


def _read_png(data: bytes, where: str) -> np.ndarray:
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:  # Pillow raises several types for undecodable data
        raise _corrupt(where, f"not a readable PNG ({type(e).__name__}: {e})") from None
    if img.size != (105, 105):
        raise _corrupt(where, f"image is {img.size[0]}x{img.size[1]}; expected 105x105")
    if img.mode == "1":
        return np.asarray(img, dtype=bool)
    return np.asarray(img.convert("L")) >= 128  # threshold, no dithering, for non-1-bit PNGs


def convert_zip(zip_path, part: str, variants=("binary",), expect_full: bool = True) -> dict:
    """Arrays for each variant from one official zip: ``{variant: {key: array}}`` with the keys of
    :data:`~tinymeta.omniglot.data.KEYS`. Every character must have drawings 01..20 in one folder."""
    zip_path = Path(zip_path)
    found: dict[int, dict] = {}
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS:
                raise _corrupt(zip_path, f"{len(members)} members; an Omniglot zip has at most {MAX_MEMBERS}")
            for info in members:
                name = info.filename
                if info.file_size > MAX_MEMBER_BYTES:
                    raise _corrupt(f"{zip_path}:{name}",
                                   f"{info.file_size} bytes uncompressed; an Omniglot PNG "
                                   f"has at most {MAX_MEMBER_BYTES}")  # fmt: skip
                if info.is_dir() or not name.lower().endswith(".png") or name.startswith("__MACOSX"):
                    continue
                m = _MEMBER.fullmatch(name)
                if m is None or m.group(1) != part:
                    raise _corrupt(
                        f"{zip_path}:{name}", f"expected images_{part}/<Alphabet>/characterKK/NNNN_DD.png"
                    )
                alphabet, kk, cid, dd = m.group(2), int(m.group(3)), int(m.group(4)), int(m.group(5))
                entry = found.setdefault(cid, {"folder": (alphabet, kk), "drawings": {}})
                if entry["folder"] != (alphabet, kk) or dd in entry["drawings"]:
                    raise _corrupt(f"{zip_path}:{name}", f"character id {cid} drawing {dd} appears twice")
                with zf.open(info) as member:  # read no more than the cap, whatever the header claims
                    data = member.read(MAX_MEMBER_BYTES + 1)
                if len(data) > MAX_MEMBER_BYTES:
                    raise _corrupt(f"{zip_path}:{name}", f"more than {MAX_MEMBER_BYTES} bytes uncompressed")
                entry["drawings"][dd] = _read_png(data, f"{zip_path}:{name}")
    except zipfile.BadZipFile as e:
        raise _corrupt(zip_path, f"not a valid zip archive ({e})") from None
    if not found:
        raise _corrupt(zip_path, f"no images_{part}/.../NNNN_DD.png members")
    ids = sorted(found)
    for cid in ids:
        if sorted(found[cid]["drawings"]) != list(range(1, NUM_DRAWINGS + 1)):
            raise _corrupt(
                zip_path,
                f"character {cid} ({'/'.join(map(str, found[cid]['folder']))}) has "
                f"drawings {sorted(found[cid]['drawings'])}; expected 1..{NUM_DRAWINGS}",
            )
    if expect_full and len(ids) != FULL_COUNTS[part][0]:
        raise _corrupt(zip_path, f"{len(ids)} characters; the full {part} set has {FULL_COUNTS[part][0]}")
    names: list[str] = []
    for cid in ids:  # alphabet names in order of first appearance by id
        if found[cid]["folder"][0] not in names:
            names.append(found[cid]["folder"][0])
    labels = {
        "char_id": np.array(ids, dtype=np.int16),
        "alphabet": np.array([names.index(found[c]["folder"][0]) for c in ids], dtype=np.int16),
        "character": np.array([found[c]["folder"][1] for c in ids], dtype=np.int16),
        "alphabet_names": np.array(names),
    }
    out = {}
    for variant in variants:
        images = np.empty((len(ids), NUM_DRAWINGS, 28, 28), dtype=np.uint8)
        for row, cid in enumerate(ids):
            for dd, img in found[cid]["drawings"].items():
                images[row, dd - 1] = convert_image(img, variant)
        out[variant] = {"images": images, **labels}
    return out


def download_omniglot(
    data_dir=None,
    *,
    base_url: str = OFFICIAL_URL,
    zip_sha256: dict | None = None,
    variants=("binary",),
    overwrite: bool = False,
    keep_zips: bool = False,
    expect_full: bool = True,
    timeout: float = 60.0,
    log=print,
) -> dict:
    """Fetch the two official zips and write ``omniglot28_{variant}_{part}.npz`` into ``data_dir``.

    Parameters
    ----------
    data_dir : str or Path, optional
        Target directory (created if needed); default :func:`~tinymeta.omniglot.data.default_cache_dir`,
        which the loader searches when no ``data_dir`` or ``$TINYMETA_DATA`` is given.
    base_url : str
        URL prefix of ``images_background.zip`` and ``images_evaluation.zip``.
    zip_sha256 : dict, optional
        ``{zip file name: hex sha256}``. The upstream zips' hashes are not pinned here, so by default
        (None) the zips are verified only structurally: a valid archive, the official member layout,
        20 drawings per character, 105x105 PNGs and, with ``expect_full``, 964 / 659 characters.
    variants : sequence of {"binary", "gray"}
    overwrite : bool
        If False and all requested npz files exist, nothing is downloaded.
    keep_zips : bool
        Keep the downloaded zips. A zip already present in ``data_dir`` is used instead of
        downloading it, and is never deleted.
    log : callable or None
        Called with progress messages.

    Returns
    -------
    dict
        ``{(variant, part): Path}`` of the npz files.
    """
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"variants must be drawn from {list(VARIANTS)}; got {v!r}")
    say = log or (lambda _msg: None)
    data_dir = Path(data_dir).expanduser() if data_dir is not None else default_cache_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    targets = {(v, p): data_dir / file_name(v, p) for v in variants for p in ZIP_NAMES}
    if not overwrite and all(t.is_file() for t in targets.values()):
        say(f"Omniglot files already present in {data_dir}; nothing to do (use overwrite=True to redo)")
        return targets
    arrays, fetched = {}, []
    try:
        for part, name in ZIP_NAMES.items():
            zpath, want = data_dir / name, (zip_sha256 or {}).get(name)
            if zpath.is_file():
                say(f"using existing {zpath}")
                if want is not None and (got := sha256_file(zpath)) != want.lower():
                    raise _corrupt(zpath, f"sha256 is {got}, expected {want}")
            else:
                url = base_url.rstrip("/") + "/" + name
                say(f"downloading {url}")
                fetch(url, zpath, want, timeout)
                fetched.append(zpath)
            say(f"converting {zpath}")
            arrays[part] = convert_zip(zpath, part, variants, expect_full)
    finally:
        if not keep_zips:
            for z in fetched:
                z.unlink(missing_ok=True)
    if expect_full:  # a faithful conversion of the official images has exactly these pixels
        for (v, p), target in targets.items():
            got = hashlib.sha256(np.ascontiguousarray(arrays[p][v]["images"]).tobytes()).hexdigest()
            if got != CONTENT_SHA256[target.name]:
                raise _corrupt(target.name, f"the converted images have sha256 {got}, not the Omniglot "
                               f"images' {CONTENT_SHA256[target.name]}: the zips are not the official "
                               "ones")  # fmt: skip
    for (v, p), target in targets.items():
        write_npz_atomic(target, arrays[p][v], compressed=True)
        say(f"wrote {target}")
    return targets
