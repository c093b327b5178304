"""N-way K-shot Omniglot classification tasks, seeded by an explicit ``np.random.Generator``.

A task (MAML section 5.1, Reptile section 6): draw N distinct classes; for each class draw K + Q
distinct drawings without replacement, the first K for the support set and the next Q for the
query set; class j of the draw gets label j, so labels 0..N-1 land on classes in random order.
Rotation augmentation (Santoro et al. 2016; the MAML code), ``rotate=``:

* ``"random"`` (``True``): N distinct characters, each rotated by its own k * 90 degrees, k ~ U{0..3};
* ``"classes"``: the 4C (character, rotation) pairs are the classes (see
  :func:`~tinymeta.omniglot.data.augment_rotations`), N distinct pairs are drawn, so one task may
  hold the same character at two rotations;
* ``"none"`` (``False``): no rotation.

Examples are class-major: rows ``j*K .. j*K + K - 1`` of the support set have label j.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .. import validate
from ..tasks import Task, TaskBatch
from .data import CharacterSet, to_features

ROTATE_MODES = ("random", "classes", "none")


class TaskIndices(NamedTuple):
    """What a task is made of: ``classes`` (..., N) class ids, ``drawings`` (..., N, K + Q) drawing
    numbers, ``rotations`` (..., N) quarter turns. Class id i means character ``i % C``."""

    classes: np.ndarray
    drawings: np.ndarray
    rotations: np.ndarray


class OmniglotTasks:
    """Sampler of N-way K-shot tasks over a set of characters.

    Parameters
    ----------
    characters : CharacterSet or ndarray
        uint8 images (C, D, 28, 28) as stored (255 = paper), e.g. one side of
        :func:`~tinymeta.omniglot.data.split_characters`.
    ways : int
        N, 2 <= N <= number of classes (C, or 4C with ``rotate="classes"``).
    shots, query_shots : int
        K >= 1 support and Q >= 1 query drawings per class, K + Q <= D (20 for Omniglot).
    rotate : {"random", "classes", "none"} or bool
        Rotation augmentation (module docstring); True means "random", False "none".
    dtype : float64 (default) or float32
        Feature dtype; features are x = 1 - p / 255 (ink 1, paper 0), flattened to 784.

    Examples
    --------
    >>> train, test = load_split("maml")                                   # doctest: +SKIP
    >>> tasks = OmniglotTasks(train, ways=5, shots=1)                      # doctest: +SKIP
    >>> xs, ys, xq, yq = tasks.sample(np.random.default_rng(0))            # doctest: +SKIP
    >>> xs.shape, ys.shape, xq.shape, yq.shape                             # doctest: +SKIP
    ((5, 784), (5,), (75, 784), (75,))
    """

    def __init__(
        self,
        characters,
        ways: int = 5,
        shots: int = 1,
        query_shots: int = 15,
        rotate="random",
        dtype=np.float64,
    ):
        images = characters.images if isinstance(characters, CharacterSet) else np.asarray(characters)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[2:] != (28, 28) or 0 in images.shape:
            raise ValueError(
                f"characters must hold uint8 images (C, D, 28, 28); got {images.dtype} {images.shape}"
            )
        if isinstance(rotate, bool):
            rotate = "random" if rotate else "none"
        self.rotate = validate.one_of("rotate", rotate, ROTATE_MODES)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float64, np.float32):
            raise ValueError(f"dtype must be float64 or float32; got {self.dtype}")
        self.images = images
        self.num_characters, self.num_drawings = images.shape[:2]
        self.num_classes = self.num_characters * (4 if rotate == "classes" else 1)
        self.ways = validate.count("ways", ways, 2)
        if self.ways > self.num_classes:
            raise ValueError(
                f"ways must be <= the {self.num_classes} classes available (rotate={rotate!r}); got {ways}"
            )
        self.shots = validate.count("shots", shots, 1)
        self.query_shots = validate.count("query_shots", query_shots, 1)
        if self.shots + self.query_shots > self.num_drawings:
            raise ValueError(
                f"shots + query_shots must be <= the {self.num_drawings} drawings per "
                f"character; got shots={shots} + query_shots={query_shots}"
            )

    def __repr__(self) -> str:
        return (
            f"OmniglotTasks({self.num_characters} characters, ways={self.ways}, shots={self.shots}, "
            f"query_shots={self.query_shots}, rotate={self.rotate!r}, dtype={self.dtype.name})"
        )

    def draw(self, rng: np.random.Generator) -> TaskIndices:
        """Indices of one task: N classes, K + Q drawings each, N rotations (all from ``rng``)."""
        rng = validate.rng(rng)
        classes = rng.choice(self.num_classes, size=self.ways, replace=False)
        # K + Q distinct drawings per class in random order: the first K + Q of a random permutation
        drawings = np.argsort(rng.random((self.ways, self.num_drawings)), axis=1)[
            :, : self.shots + self.query_shots
        ]
        if self.rotate == "random":
            rotations = rng.integers(0, 4, size=self.ways)
        else:  # "classes": the rotation is part of the class id; "none": no rotation
            rotations = classes // self.num_characters
        return TaskIndices(classes, drawings, rotations)

    def build(self, idx: TaskIndices) -> Task | TaskBatch:
        """Materialise indices without a leading axis into a :class:`~tinymeta.tasks.Task`
        (x_support (N*K, 784), y_support (N*K,) int64, x_query (N*Q, 784), y_query (N*Q,) int64),
        or with a leading axis of B tasks into a :class:`~tinymeta.tasks.TaskBatch` of the same
        arrays stacked: xs (B, N*K, 784), ys (B, N*K), xq (B, N*Q, 784), yq (B, N*Q)."""
        n, k = self.ways, self.shots
        lead = idx.classes.shape[:-1]
        if len(lead) > 1:
            raise ValueError(f"indices must describe one task or a batch (B,); got leading shape {lead}")
        chars = (idx.classes % self.num_characters)[..., None]
        x = []
        for cols in (slice(0, k), slice(k, None)):  # support, then query
            imgs = self.images[chars, idx.drawings[..., cols]]  # (..., N, K or Q, 28, 28), a copy
            for r in (1, 2, 3):
                turn = idx.rotations == r
                if turn.any():
                    imgs[turn] = np.rot90(imgs[turn], r, axes=(-2, -1))
            x.append(to_features(imgs, self.dtype).reshape(*lead, -1, 784))
        y = [np.broadcast_to(np.repeat(np.arange(n, dtype=np.int64), m), (*lead, n * m)).copy()
             for m in (k, self.query_shots)]  # fmt: skip
        return (TaskBatch if lead else Task)(x[0], y[0], x[1], y[1])

    def sample(self, rng: np.random.Generator) -> Task:
        """One task: x_support (N*K, 784), y_support (N*K,) int64, x_query (N*Q, 784), y_query (N*Q,)."""
        return self.build(self.draw(rng))

    def sample_indices(self, rng: np.random.Generator, num_tasks: int) -> TaskIndices:
        """Indices of ``num_tasks`` consecutive tasks, stacked on a leading axis."""
        rng = validate.rng(rng)
        draws = [self.draw(rng) for _ in range(validate.count("num_tasks", num_tasks, 1))]
        return TaskIndices(*(np.stack(parts) for parts in zip(*draws, strict=True)))

    def sample_batch(self, rng: np.random.Generator, meta_batch: int) -> TaskBatch:
        """``meta_batch`` tasks stacked in a :class:`~tinymeta.tasks.TaskBatch`: xs (B, N*K, 784),
        ys (B, N*K) int64, xq (B, N*Q, 784), yq (B, N*Q) int64. Task b (``batch.task(b)``) equals the
        b-th of B successive :meth:`sample` calls on the same generator."""
        validate.count("meta_batch", meta_batch, 1)
        return self.build(self.sample_indices(rng, meta_batch))

    def evaluation_tasks(self, num_tasks: int, seed: int) -> EvaluationTasks:
        """Same as :func:`evaluation_tasks` (``num_tasks`` tasks fixed by ``seed``)."""
        return EvaluationTasks(self, num_tasks, seed)


class EvaluationTasks(Sequence):
    """A fixed, seeded list of tasks; indices are stored, images are built on access (a thousand
    5-way 15-query tasks as float64 would take about 0.5 GB). Task i equals the i-th of successive
    ``sampler.sample(np.random.default_rng(seed))`` calls."""

    def __init__(self, sampler: OmniglotTasks, num_tasks: int, seed: int):
        self.sampler = sampler
        self.seed = validate.count("seed", seed)
        self.indices = sampler.sample_indices(np.random.default_rng(self.seed), num_tasks)

    def __len__(self) -> int:
        return len(self.indices.classes)

    def __getitem__(self, i):
        """Task ``i`` as a :class:`~tinymeta.tasks.Task`; a slice gives a :class:`TaskBatch`."""
        if isinstance(i, slice):
            return self.sampler.build(TaskIndices(*(a[i] for a in self.indices)))
        return self.sampler.build(TaskIndices(*(a[range(len(self))[i]] for a in self.indices)))

    def batches(self, size: int):
        """Yield :class:`~tinymeta.tasks.TaskBatch` es of up to ``size`` consecutive tasks (the last may be
        shorter)."""
        validate.count("size", size, 1)
        for start in range(0, len(self), size):
            yield self[start : start + size]


def evaluation_tasks(sampler: OmniglotTasks, num_tasks: int, seed: int) -> EvaluationTasks:
    """``num_tasks`` held-out tasks fixed by ``seed``: the same seed gives the same tasks in every run."""
    return EvaluationTasks(sampler, num_tasks, seed)
