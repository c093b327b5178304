"""Omniglot data: locating, loading and checking the npz files, pixel convention, splits, and
rotation and sampling on the real data (the sampler on synthetic data: test_omniglot_sampler.py).

Tests marked by the ``shared`` fixture use the real 28x28 files (``$TINYMETA_DATA`` or the checkout's
sibling ``shared/data/omniglot``) and skip when they are absent; the others build tiny fake sets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinymeta.atomic import write_npz_atomic
from tinymeta.omniglot import (
    CharacterSet,
    OmniglotCorruptError,
    OmniglotNotFoundError,
    OmniglotTasks,
    augment_rotations,
    evaluation_tasks,
    find_data_dir,
    load_omniglot,
    load_split,
    rotate,
    split_characters,
    to_features,
)
from tinymeta.tasks import Task, TaskBatch

pytestmark = pytest.mark.fast

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"


def fake_arrays(rng, chars, first_id=1, drawings=20, alphabets=2):
    """A valid binary npz payload: random 0/255 images, ``chars`` characters over ``alphabets``."""
    alphabet = (np.arange(chars) * alphabets // chars).astype(np.int16)  # sorted, all used
    return {
        "images": np.where(rng.random((chars, drawings, 28, 28)) < 0.1, 0, 255).astype(np.uint8),
        "char_id": np.arange(first_id, first_id + chars, dtype=np.int16),
        "alphabet": alphabet,
        "character": np.arange(1, chars + 1, dtype=np.int16),
        "alphabet_names": np.array([f"Alphabet{a}" for a in range(alphabets)]),
    }


def write_pair(d, bg, ev, variant="binary"):
    d.mkdir(parents=True, exist_ok=True)
    write_npz_atomic(d / f"omniglot28_{variant}_background.npz", bg)
    write_npz_atomic(d / f"omniglot28_{variant}_evaluation.npz", ev)
    return d


@pytest.fixture
def fake_dir(tmp_path, rng):
    return write_pair(tmp_path / "data", fake_arrays(rng, 6), fake_arrays(rng, 4, first_id=7))


# --- locating ------------------------------------------------------------------------------------


def test_missing_dir_error_names_every_place_and_the_remedy(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYMETA_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(OmniglotNotFoundError) as err:
        load_omniglot()
    msg = str(err.value)
    for place in ("env", "env/omniglot", "xdg/tinymeta", "xdg/tinymeta/omniglot"):
        assert str(tmp_path / place) in msg
    assert "tinymeta omniglot-download --data-dir" in msg and "copy" in msg
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(OmniglotNotFoundError, match="data_dir argument") as err:
        load_omniglot(tmp_path / "given")
    assert str(tmp_path / "env") not in str(err.value)  # an explicit data_dir is the only place looked


def test_env_var_cache_dir_and_omniglot_subdir_are_searched(tmp_path, rng, monkeypatch):
    bg, ev = fake_arrays(rng, 3), fake_arrays(rng, 2, first_id=4)
    monkeypatch.delenv("TINYMETA_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    write_pair(tmp_path / "xdg" / "tinymeta" / "omniglot", bg, ev)
    assert find_data_dir() == tmp_path / "xdg" / "tinymeta" / "omniglot"
    monkeypatch.setenv("TINYMETA_DATA", str(tmp_path / "env"))
    write_pair(tmp_path / "env", bg, ev)
    assert find_data_dir() == tmp_path / "env"  # the environment variable comes before the cache


def test_half_present_pair_is_reported(tmp_path, rng):
    write_npz_atomic(tmp_path / "omniglot28_binary_background.npz", fake_arrays(rng, 3))
    with pytest.raises(OmniglotNotFoundError, match="has omniglot28_binary_background.npz but not"):
        find_data_dir(tmp_path)


# --- corrupt files -------------------------------------------------------------------------------


def test_fake_set_loads_with_relaxed_counts_only(fake_dir):
    bg, ev = load_omniglot(fake_dir, expect_full=False)
    assert bg.images.shape == (6, 20, 28, 28) and ev.char_id.tolist() == [7, 8, 9, 10]
    with pytest.raises(OmniglotCorruptError, match=r"\(6, 20, 2\).*\(964, 20, 30\).*expect_full=False"):
        load_omniglot(fake_dir)


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda a: a.update(images=a["images"].astype(np.float32)), "'images' is float32"),
        (lambda a: a.update(images=a["images"][:, :, :27]), r"'images' is uint8 \(6, 20, 27, 28\)"),
        (lambda a: a.pop("char_id"), r"missing key\(s\) \['char_id'\]"),
        (lambda a: a.update(alphabet=a["alphabet"][:5]), "'alphabet' is int16 "),
        (lambda a: a.update(char_id=np.zeros(6, np.int16)), "repeated ids"),
        (lambda a: a["images"].__setitem__((0, 0, 0, 0), 128), "other than 0 and 255"),
    ],
)
def test_malformed_file_is_named_in_a_clear_error(tmp_path, rng, damage, expected):
    bg = fake_arrays(rng, 6)
    damage(bg)
    d = write_pair(tmp_path, bg, fake_arrays(rng, 4, first_id=7))
    with pytest.raises(OmniglotCorruptError, match=expected) as err:
        load_omniglot(d, expect_full=False)
    assert str(d / "omniglot28_binary_background.npz") in str(err.value)
    assert isinstance(err.value, ValueError)


def test_truncated_archive_is_a_clear_error_not_a_numpy_traceback(fake_dir):
    path = fake_dir / "omniglot28_binary_evaluation.npz"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(OmniglotCorruptError, match="not a readable .npz archive") as err:
        load_omniglot(fake_dir, expect_full=False)
    assert str(path) in str(err.value) and err.value.__cause__ is None


def test_checksum_verification_rejects_other_bytes(fake_dir):
    with pytest.raises(OmniglotCorruptError, match="sha256"):
        load_omniglot(fake_dir, expect_full=False, verify="file")
    with pytest.raises(OmniglotCorruptError, match="no content hash is known"):
        load_omniglot(fake_dir, expect_full=False, verify="content")
    load_omniglot(fake_dir, expect_full=False)  # "auto": an unknown subset is not hashed


def test_the_bundled_sample_loads_and_is_what_its_readme_says():
    from tinymeta.omniglot import SAMPLE_DIR, load_sample

    train, test = load_sample()
    assert train.images.shape == (200, 20, 28, 28) and test.images.shape == (100, 20, 28, 28)
    assert train.char_id.max() <= 964 < test.char_id.min()  # background trains, evaluation tests
    assert "Copyright (c) 2015 Brenden Lake" in (SAMPLE_DIR / "LICENSE").read_text()
    tasks = OmniglotTasks(test, ways=5, shots=1, query_shots=15).sample(np.random.default_rng(0))
    assert tasks.x_support.shape == (5, 784) and tasks.x_query.shape == (75, 784)


def test_altered_data_is_refused_naming_the_file(tmp_path):
    """One pixel changed in a copy of the sample: the content hash refuses it (the full set likewise)."""
    from tinymeta.omniglot import SAMPLE_DIR

    d = tmp_path / "sample"
    d.mkdir()
    for name in ("omniglot28_binary_background.npz", "omniglot28_binary_evaluation.npz"):
        (d / name).write_bytes((SAMPLE_DIR / name).read_bytes())
    with np.load(d / "omniglot28_binary_background.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["images"][3, 4, 10, 10] = 255 - arrays["images"][3, 4, 10, 10]
    write_npz_atomic(d / "omniglot28_binary_background.npz", arrays)
    load_omniglot(d, expect_full=False)  # a copy elsewhere is just a subset: not hashed ...
    import tinymeta.omniglot.data as data

    real = data.SAMPLE_DIR
    try:  # ... but where the sample is expected, the altered copy is refused
        data.SAMPLE_DIR = d.resolve()
        with pytest.raises(OmniglotCorruptError, match="altered or is not Omniglot") as err:
            load_omniglot(d, expect_full=False)
    finally:
        data.SAMPLE_DIR = real
    assert "omniglot28_binary_background.npz" in str(err.value)


def test_fake_full_size_data_is_refused(tmp_path, rng):
    """Random images of the full set's shapes and ids pass every structural check, not the content hash."""
    bg, ev = fake_arrays(rng, 964, alphabets=30), fake_arrays(rng, 659, first_id=965, alphabets=20)
    d = write_pair(tmp_path / "fake", bg, ev)
    with pytest.raises(OmniglotCorruptError, match="altered or is not Omniglot"):
        load_omniglot(d)
    load_omniglot(d, verify=None)  # structurally a full set: only the hash tells


def test_make_sample_rebuilds_the_bundled_files(shared):
    from tinymeta.omniglot import SAMPLE_DIR
    from tinymeta.omniglot.sample import make_sample

    for name, arrays in make_sample(*load_omniglot(shared)).items():
        with np.load(SAMPLE_DIR / name) as z:
            for key, value in arrays.items():
                np.testing.assert_array_equal(z[key], value)


def test_cache_reloads_a_rewritten_file(fake_dir, rng):
    first = load_omniglot(fake_dir, expect_full=False)[0]
    assert load_omniglot(fake_dir, expect_full=False)[0] is first  # cached
    new = fake_arrays(rng, 2)
    write_npz_atomic(fake_dir / "omniglot28_binary_background.npz", new)
    again = load_omniglot(fake_dir, expect_full=False)[0]
    assert again.images.shape[0] == 2 and np.array_equal(again.images, new["images"])
    with pytest.raises(ValueError, match="read-only"):
        again.images[0, 0, 0, 0] = 1  # shared through the cache, so never writable


# --- real data -----------------------------------------------------------------------------------


def test_real_counts_shapes_and_labels(shared):
    bg, ev = load_omniglot(shared, verify="content")
    assert bg.images.shape == (964, 20, 28, 28) and ev.images.shape == (659, 20, 28, 28)
    assert bg.images.dtype == np.uint8
    assert np.array_equal(np.concatenate([bg.char_id, ev.char_id]), np.arange(1, 1624))
    assert len(bg.alphabet_names) == 30 and len(ev.alphabet_names) == 20
    assert not set(bg.alphabet_names) & set(ev.alphabet_names)


def test_real_pixel_convention_ink_is_one(shared):
    bg, _ = load_omniglot(shared)
    x = to_features(bg.images[:100])
    assert x.shape == (100, 20, 784) and x.dtype == np.float64
    assert set(np.unique(x)) == {0.0, 1.0}
    # Strokes cover a small part of the page (about 8 %); the flipped convention would give ~92 %.
    assert 0.0 < x.mean() < 0.2
    assert to_features(bg.images[:2], np.float32).dtype == np.float32


def test_real_gray_variant_is_fractional_and_matches_binary_ink(shared):
    try:
        bg, _ = load_omniglot(shared, variant="gray")
    except OmniglotNotFoundError:
        pytest.skip("gray variant not present")
    binary = to_features(load_omniglot(shared)[0].images[:50])
    gray = to_features(bg.images[:50])
    assert gray.min() >= 0.0 and gray.max() <= 1.0 and len(np.unique(gray)) > 2
    # Anti-aliasing spreads ink but keeps its amount: mean ink differs by 4.5 % (measured, full
    # background set); 10 % leaves margin, while an inverted or unscaled variant is off by > 90 %.
    assert abs(gray.mean() - binary.mean()) < 0.1 * binary.mean()


def test_real_splits_are_disjoint_with_documented_sizes(shared):
    bg, ev = load_omniglot(shared)
    train, test = split_characters(bg, ev, "maml")
    assert (len(train.char_id), len(test.char_id)) == (1200, 423)
    assert not set(train.char_id) & set(test.char_id)
    assert np.array_equal(np.sort(np.concatenate([train.char_id, test.char_id])), np.arange(1, 1624))
    assert np.all(np.diff(train.char_id) > 0)
    # The documented procedure, recomputed independently: positions are char_id - 1.
    perm = np.random.default_rng(1).permutation(1623)
    assert np.array_equal(train.char_id, np.sort(perm[:1200]) + 1)
    both = np.concatenate([bg.images, ev.images])
    assert np.array_equal(test.images, both[test.char_id - 1])
    other = split_characters(bg, ev, "maml", seed=2)[0]
    assert not np.array_equal(other.char_id, train.char_id)
    lake_train, lake_test = load_split("lake", shared)
    assert np.array_equal(lake_train.char_id, np.arange(1, 965))
    assert np.array_equal(lake_test.char_id, np.arange(965, 1624))


def test_split_arguments_are_checked(shared):
    bg, ev = load_omniglot(shared)
    with pytest.raises(ValueError, match="split must be one of"):
        split_characters(bg, ev, "vinyals")
    with pytest.raises(ValueError, match="num_train must be < the 1623"):
        split_characters(bg, ev, "maml", num_train=1623)


# --- rotations and sampling on the real data ----------------------------------------------------


def test_four_quarter_turns_are_the_identity(shared):
    bg, _ = load_omniglot(shared)
    img = bg.images[:3]
    assert np.array_equal(rotate(rotate(rotate(rotate(img, 1), 1), 1), 1), img)
    assert not np.array_equal(rotate(img, 1), img)
    aug = augment_rotations(CharacterSet(img, np.arange(3)))
    assert aug.images.shape == (12, 20, 28, 28)
    assert np.array_equal(aug.images[2 * 3 + 1], rotate(img[1], 2))  # class r*C + c


def test_sampler_is_deterministic_and_batches_match_single_draws(shared):
    train, test = load_split("maml", shared)
    tasks = OmniglotTasks(train, ways=5, shots=1, query_shots=15)
    a, b = tasks.sample(np.random.default_rng(3)), tasks.sample(np.random.default_rng(3))
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    c = tasks.sample(np.random.default_rng(4))
    assert not np.array_equal(a.x_query, c.x_query)
    batch = tasks.sample_batch(np.random.default_rng(5), 4)
    assert isinstance(batch, TaskBatch) and batch.num_tasks == 4
    assert batch.xs.shape == (4, 5, 784) and batch.yq.shape == (4, 75) and batch.ys.dtype == np.int64
    g = np.random.default_rng(5)
    for i in range(4):
        single = tasks.sample(g)
        assert isinstance(single, Task)
        assert all(np.array_equal(u[i], v) for u, v in zip(batch, single, strict=True))
    ev = evaluation_tasks(OmniglotTasks(test, 5, 5, 15, dtype=np.float32), num_tasks=7, seed=0)
    again = OmniglotTasks(test, 5, 5, 15, dtype=np.float32).evaluation_tasks(num_tasks=7, seed=0)
    assert len(ev) == 7 and ev[6].x_support.dtype == np.float32
    assert np.array_equal(ev[-1].x_query, again[6].x_query)
    stacked = np.concatenate([bt.xq for bt in ev.batches(3)])
    assert stacked.shape == (7, 75, 784) and np.array_equal(stacked[4], ev[4].x_query)
