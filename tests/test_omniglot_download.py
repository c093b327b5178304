"""Download-and-convert, end to end against a local HTTP server serving fake official zips.

The fake zips follow the official layout ``images_{part}/<Alphabet>/characterKK/NNNN_DD.png``
with 105x105 1-bit PNGs. Drawing DD of the g-th character (g = 0, 1, ...) is paper with one ink
rectangle in the top-left corner whose size encodes (g, DD), so every stored 28x28 image can be
predicted by hand. Pillow's NEAREST samples output pixel i at source pixel floor((i + 0.5) * 105/28);
inking source rows [0, floor(3.75 h)) therefore inks exactly output rows [0, h).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinymeta.atomic import write_npz_atomic
from tinymeta.omniglot import (
    OmniglotCorruptError,
    OmniglotDownloadError,
    OmniglotTasks,
    convert_image,
    download_omniglot,
    load_omniglot,
    rotate,
    to_features,
)

pytestmark = pytest.mark.fast

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
LAYOUT = {"background": [("Alpha", 3), ("Beta", 2)], "evaluation": [("Gamma", 2)]}


def block(g, dd):
    """(rows, cols) of the 28x28 ink rectangle of character g, drawing dd (1-based)."""
    return 3 + g, 1 + dd


def png(g, dd):
    h, w = block(g, dd)
    paper = np.ones((105, 105), dtype=bool)
    paper[: int(3.75 * h), : int(3.75 * w)] = False
    buf = io.BytesIO()
    Image.fromarray(paper).save(buf, format="PNG")  # mode "1", as the official PNGs
    return buf.getvalue()


def make_zip(path, part, drop=None, extra=None):
    """Fake official zip for ``part``; ``drop`` omits one member, ``extra`` adds (name, bytes)."""
    g = 0 if part == "background" else sum(n for _, n in LAYOUT["background"])
    with zipfile.ZipFile(path, "w") as zf:
        for alphabet, n in LAYOUT[part]:
            for kk in range(1, n + 1):
                for dd in range(1, 21):
                    name = f"images_{part}/{alphabet}/character{kk:02d}/{g + 1:04d}_{dd:02d}.png"
                    if name != drop:
                        zf.writestr(name, png(g, dd))
                g += 1
        if extra:
            zf.writestr(*extra)
    return path


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """``(served directory, base URL)`` of a local HTTP server, shut down after the test."""
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}/omniglot/python/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def publish(root):
    site = root / "omniglot" / "python"
    site.mkdir(parents=True, exist_ok=True)
    for part in LAYOUT:
        make_zip(site / f"images_{part}.zip", part)
    return site


def test_download_convert_and_load_end_to_end(server, tmp_path):
    root, url = server
    publish(root)
    data = tmp_path / "data"
    out = download_omniglot(data, base_url=url, variants=("binary", "gray"), expect_full=False, log=None)
    assert sorted(p.name for p in data.iterdir()) == sorted(p.name for p in out.values())  # zips removed
    bg, ev = load_omniglot(data, expect_full=False)
    assert bg.char_id.tolist() == [1, 2, 3, 4, 5] and ev.char_id.tolist() == [6, 7]
    assert bg.alphabet_names == ("Alpha", "Beta") and bg.alphabet.tolist() == [0, 0, 0, 1, 1]
    assert bg.character.tolist() == [1, 2, 3, 1, 2] and ev.alphabet_names == ("Gamma",)
    for g, (row, s) in enumerate([(r, bg) for r in range(5)] + [(r, ev) for r in range(2)]):
        for dd in range(1, 21):
            h, w = block(g, dd)
            want = np.full((28, 28), 255, np.uint8)
            want[:h, :w] = 0
            assert np.array_equal(s.images[row, dd - 1], want), (g, dd)
    x = to_features(bg.images[0, 0]).reshape(28, 28)  # ink = 1 in the 3 x 2 rectangle, paper = 0
    assert x[:3, :2].min() == 1.0 and x.sum() == 6.0
    # A quarter turn counter-clockwise moves the top-left h x w rectangle to the bottom-left, w x h.
    h, w = block(0, 1)
    assert np.array_equal(np.argwhere(rotate(bg.images[0, 0], 1) == 0).min(0), [28 - w, 0])
    assert np.array_equal(np.argwhere(rotate(bg.images[0, 0], 1) == 0).max(0), [27, h - 1])
    gray, _ = load_omniglot(data, variant="gray", expect_full=False)
    assert gray.images.shape == bg.images.shape and gray.images[0, 0, 27, 27] == 255


def test_sampler_rotates_whole_classes_of_downloaded_data(server, tmp_path):
    root, url = server
    publish(root)
    download_omniglot(tmp_path, base_url=url, expect_full=False, log=None)
    bg, _ = load_omniglot(tmp_path, expect_full=False)
    tasks = OmniglotTasks(bg.images, ways=3, shots=1, query_shots=3, rotate="random")
    corners = {(0, 0): 0, (27, 0): 1, (27, 27): 2, (0, 27): 3}  # ink corner -> quarter turns
    seen, rng = set(), np.random.default_rng(0)
    for _ in range(30):
        t = tasks.sample(rng)
        xs = np.concatenate([t.x_support, t.x_query]).reshape(-1, 28, 28)
        ys = np.concatenate([t.y_support, t.y_query])
        turns = np.array([[r for (i, j), r in corners.items() if img[i, j] == 1.0] for img in xs])
        assert turns.shape == (len(xs), 1)  # exactly one inked corner per image
        for label in range(3):
            assert len(set(turns[ys == label, 0])) == 1  # one rotation per class
        seen.update(turns[:, 0])
    assert seen == {0, 1, 2, 3}


def test_existing_files_are_not_downloaded_again(server, tmp_path):
    root, url = server
    publish(root)
    out = download_omniglot(tmp_path, base_url=url, expect_full=False, log=None)
    stamp = {p: p.stat().st_mtime_ns for p in out.values()}
    again = download_omniglot(tmp_path, base_url="http://127.0.0.1:9/nowhere/", expect_full=False, log=None)
    assert again == out and all(p.stat().st_mtime_ns == t for p, t in stamp.items())


def test_zips_already_in_data_dir_are_used_offline_and_kept(tmp_path):
    for part in LAYOUT:
        make_zip(tmp_path / f"images_{part}.zip", part)
    download_omniglot(tmp_path, base_url="http://127.0.0.1:9/nowhere/", expect_full=False, log=None)
    assert (tmp_path / "images_background.zip").is_file()
    assert load_omniglot(tmp_path, expect_full=False)[1].images.shape == (2, 20, 28, 28)


def test_checksums_are_checked_when_given(server, tmp_path):
    root, url = server
    site = publish(root)
    good = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in site.iterdir()}
    download_omniglot(tmp_path / "ok", base_url=url, zip_sha256=good, expect_full=False, log=None)
    bad = dict(good, **{"images_evaluation.zip": "0" * 64})
    with pytest.raises(OmniglotCorruptError, match="images_evaluation.zip: sha256 .* expected 0{64}"):
        download_omniglot(tmp_path / "bad", base_url=url, zip_sha256=bad, expect_full=False, log=None)
    assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == []  # no npz, no partial download


def test_corrupt_zip_is_named(server, tmp_path):
    root, url = server
    site = publish(root)
    (site / "images_background.zip").write_bytes(b"this is not a zip archive" * 10)
    with pytest.raises(OmniglotCorruptError, match=r"images_background.zip: not a valid zip archive"):
        download_omniglot(tmp_path, base_url=url, expect_full=False, log=None)
    assert not list(tmp_path.glob("*.npz"))


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"drop": "images_background/Beta/character01/0004_07.png"}, r"character 4 \(Beta/1\) has drawings"),
        ({"extra": ("images_background/Alpha/stray.png", b"")}, "stray.png: expected images_background/"),
        (
            {"extra": ("images_background/Alpha/character01/0001_21.png", b"xx")},
            "0001_21.png: not a readable",
        ),
    ],
)
def test_unexpected_zip_layout_is_named(tmp_path, kwargs, expected):
    make_zip(tmp_path / "images_background.zip", "background", **kwargs)
    make_zip(tmp_path / "images_evaluation.zip", "evaluation")
    with pytest.raises(OmniglotCorruptError, match=expected):
        download_omniglot(tmp_path, base_url="http://127.0.0.1:9/", expect_full=False, log=None)


def test_full_set_counts_are_enforced_by_default(tmp_path):
    for part in LAYOUT:
        make_zip(tmp_path / f"images_{part}.zip", part)
    with pytest.raises(OmniglotCorruptError, match="5 characters; the full background set has 964"):
        download_omniglot(tmp_path, base_url="http://127.0.0.1:9/", log=None)


def test_http_error_names_the_url(server, tmp_path):
    _, url = server  # nothing published: 404
    with pytest.raises(
        OmniglotDownloadError, match=r"could not download http://127\.0\.0\.1:\d+/.*images_back"
    ):
        download_omniglot(tmp_path / "data", base_url=url, log=None)
    assert not list((tmp_path / "data").iterdir())  # no partial download left


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_npz_atomic(tmp_path / "x.npz", {"a": np.zeros(3)}, compressed=True)
    assert not list(tmp_path.iterdir())


def test_conversion_reproduces_the_distributed_28x28_files():
    """convert_image on the full-resolution arrays gives the shipped 28x28 files bit for bit."""
    full = SHARED / "full105" / "images_evaluation.npz"
    if not full.is_file():
        pytest.skip(f"{full} not found")
    with np.load(full) as z:
        big = z["images"][:40]  # 40 characters x 20 drawings keeps the test short
    for variant in ("binary", "gray"):
        with np.load(SHARED / f"omniglot28_{variant}_evaluation.npz") as z:
            ref = z["images"][:40]
        got = np.array([[convert_image(img, variant) for img in drawings] for drawings in big])
        assert np.array_equal(got, ref), variant
    with pytest.raises(ValueError, match="variant must be one of"):
        convert_image(big[0, 0], "color")
