"""The N-way K-shot sampler and rotations on synthetic characters whose every (character,
drawing, rotation) image is distinct, so each example of a task can be traced back to its source."""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta.omniglot import OmniglotTasks, rotate, to_features

pytestmark = pytest.mark.fast


def random_characters(rng, chars, drawings=20):
    """uint8 (chars, drawings, 28, 28) random 0/255 images; with 784 random pixels, two images (or an
    image and its rotation) coincide with probability far below 1e-30."""
    return np.where(rng.random((chars, drawings, 28, 28)) < 0.1, 0, 255).astype(np.uint8)


def test_rotation_of_a_known_asymmetric_pattern():
    img = np.full((28, 28), 255, np.uint8)
    img[0, :5] = 0  # a bar along the top edge, starting at the left
    img[1, 0] = 0  # and a tick below its left end
    quarter = rotate(img, 1)  # counter-clockwise: the top edge becomes the left edge, read upwards
    expected = np.full((28, 28), 255, np.uint8)
    expected[23:, 0] = 0
    expected[27, 1] = 0
    assert np.array_equal(quarter, expected)
    assert np.array_equal(rotate(img, 2), img[::-1, ::-1])
    assert np.array_equal(rotate(img, -1), rotate(img, 3))
    with pytest.raises(TypeError):
        rotate(img, 1.5)


def decode(x, images):
    """(character, drawing, rotation) of each 784-vector, by exhaustive match against ``images``."""
    table = {
        to_features(rotate(images[c, d], r)).tobytes(): (c, d, r)
        for c in range(images.shape[0])
        for d in range(images.shape[1])
        for r in range(4)
    }
    return [table[row.tobytes()] for row in x]


@pytest.mark.parametrize("mode", ["random", "classes", "none"])
def test_tasks_are_made_of_consistent_classes(rng, mode):
    images = random_characters(rng, 4)  # random patterns: no two (c, d, r) coincide
    tasks = OmniglotTasks(images, ways=3, shots=2, query_shots=4, rotate=mode)
    seen = set()
    for _ in range(20):
        t = tasks.sample(rng)
        assert t.x_support.shape == (6, 784) and t.x_query.shape == (12, 784)
        assert t.y_support.tolist() == [0, 0, 1, 1, 2, 2] and t.y_query.dtype == np.int64
        sup, qry = decode(t.x_support, images), decode(t.x_query, images)
        classes = []
        for j in range(3):
            mine = sup[2 * j : 2 * j + 2] + qry[4 * j : 4 * j + 4]
            assert len({(c, r) for c, _, r in mine}) == 1  # one character at one rotation per label
            assert len({d for _, d, _ in mine}) == 6  # distinct drawings: support and query disjoint
            classes.append(mine[0][::2])
        assert len(set(classes)) == 3
        if mode == "random":
            assert len({c for c, _ in classes}) == 3
        seen.update(r for _, r in classes)
    assert seen == ({0} if mode == "none" else {0, 1, 2, 3})


def test_sampler_bounds_name_the_argument(rng):
    images = random_characters(rng, 4)
    with pytest.raises(ValueError, match="ways must be an integer >= 2"):
        OmniglotTasks(images, ways=1)
    with pytest.raises(ValueError, match="ways must be <= the 4 classes"):
        OmniglotTasks(images, ways=5, rotate=False)
    assert OmniglotTasks(images, ways=16, rotate="classes").num_classes == 16
    with pytest.raises(ValueError, match="shots must be an integer >= 1"):
        OmniglotTasks(images, ways=2, shots=0)
    with pytest.raises(ValueError, match=r"shots \+ query_shots must be <= the 20 drawings.*=6.*=15"):
        OmniglotTasks(images, ways=2, shots=6, query_shots=15)
    with pytest.raises(ValueError, match="rotate must be one of"):
        OmniglotTasks(images, ways=2, rotate="sometimes")
    with pytest.raises(ValueError, match="uint8 images"):
        OmniglotTasks(to_features(images), ways=2)
