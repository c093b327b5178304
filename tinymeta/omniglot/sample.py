"""A small sample of Omniglot shipped inside tinymeta, so that the tutorials and the docs run anywhere.

**What it is.** 200 characters of the background set (30 alphabets, taken round-robin: the 1st character
of every alphabet, then the 2nd, ...) and 100 of the evaluation set (20 alphabets, likewise), all 20
drawings of each, in the binary 28x28 format of :mod:`tinymeta.omniglot.data` (255 = paper, 0 = ink;
same keys, ``char_id`` the original Omniglot ids). About 0.2 MB. It is *not* the data set of the papers:
accuracies measured on it are not comparable to theirs. For those, get the full data
(``tinymeta omniglot-download``, or copy the npz files and set ``TINYMETA_DATA``).

**Where it comes from.** Lake, Salakhutdinov & Tenenbaum (2015), github.com/brendenlake/omniglot, MIT
License (the licence text is in ``sample/LICENSE`` beside the files). :func:`make_sample` rebuilds the two
files from the full binary set bit for bit (a test checks this when the full data is present).
"""

from __future__ import annotations

import numpy as np

from .data import SAMPLE_DIR, CharacterSet, file_name, load_omniglot

SAMPLE_COUNTS = {"background": 200, "evaluation": 100}
KEYS = ("images", "char_id", "alphabet", "character", "alphabet_names")


def sample_rows(alphabet: np.ndarray, count: int) -> np.ndarray:
    """Rows of ``count`` characters taken round-robin over the alphabets (sorted row indices)."""
    per = [np.flatnonzero(alphabet == a) for a in range(int(alphabet.max()) + 1)]
    rows, depth = [], 0
    while len(rows) < count and depth < max(len(p) for p in per):
        rows += [int(p[depth]) for p in per if depth < len(p)][: count - len(rows)]
        depth += 1
    return np.array(sorted(rows), dtype=np.int64)


def make_sample(background, evaluation) -> dict:
    """``{file name: {key: array}}`` of the sample, from the two full binary :class:`OmniglotSet` s."""
    out = {}
    for part, full in (("background", background), ("evaluation", evaluation)):
        rows = sample_rows(full.alphabet, SAMPLE_COUNTS[part])
        used = np.unique(full.alphabet[rows])  # every alphabet is used; keep the names table as is
        assert used.size == len(full.alphabet_names)
        out[file_name("binary", part)] = {
            "images": full.images[rows],
            "char_id": full.char_id[rows].astype(np.int16),
            "alphabet": full.alphabet[rows].astype(np.int16),
            "character": full.character[rows].astype(np.int16),
            "alphabet_names": np.array(full.alphabet_names),
        }
    return out


def load_sample() -> tuple[CharacterSet, CharacterSet]:
    """The bundled sample as ``(meta_train, meta_test)``: 200 background characters to train on and 100
    evaluation characters (other alphabets) to test on, as in Lake et al.'s background/evaluation split.

    Returns
    -------
    (CharacterSet, CharacterSet)
        uint8 images (C, 20, 28, 28) as stored (255 = paper) and ``char_id`` (C,); use them with
        :class:`~tinymeta.omniglot.OmniglotTasks`.
    """
    background, evaluation = load_omniglot(SAMPLE_DIR, expect_full=False, verify="content")
    return (CharacterSet(background.images, background.char_id),
            CharacterSet(evaluation.images, evaluation.char_id))  # fmt: skip
