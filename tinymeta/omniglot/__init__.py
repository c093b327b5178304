"""Omniglot few-shot classification data: loading, splits, rotations, task sampling, download.

See :mod:`tinymeta.omniglot.data` for where the files are looked for and the pixel convention
(ink = 1, paper = 0, 784 features), :mod:`tinymeta.omniglot.sampler` for N-way K-shot tasks and
:mod:`tinymeta.omniglot.download` for fetching and converting the official zips, and
:mod:`tinymeta.omniglot.sample` for the small sample bundled with tinymeta (:func:`load_sample`).
"""

from .data import (
    CONTENT_SHA256,
    ENV_VAR,
    FILE_SHA256,
    SPLITS,
    VARIANTS,
    CharacterSet,
    OmniglotCorruptError,
    OmniglotError,
    OmniglotNotFoundError,
    OmniglotSet,
    augment_rotations,
    candidate_dirs,
    default_cache_dir,
    file_name,
    find_data_dir,
    load_omniglot,
    load_split,
    rotate,
    split_characters,
    to_features,
)
from .download import OFFICIAL_URL, OmniglotDownloadError, convert_image, convert_zip, download_omniglot
from .sample import SAMPLE_DIR, load_sample
from .sampler import ROTATE_MODES, EvaluationTasks, OmniglotTasks, TaskIndices, evaluation_tasks

__all__ = [
    "CONTENT_SHA256",
    "ENV_VAR",
    "FILE_SHA256",
    "OFFICIAL_URL",
    "ROTATE_MODES",
    "SAMPLE_DIR",
    "SPLITS",
    "VARIANTS",
    "CharacterSet",
    "EvaluationTasks",
    "OmniglotCorruptError",
    "OmniglotDownloadError",
    "OmniglotError",
    "OmniglotNotFoundError",
    "OmniglotSet",
    "OmniglotTasks",
    "TaskIndices",
    "augment_rotations",
    "candidate_dirs",
    "convert_image",
    "convert_zip",
    "default_cache_dir",
    "download_omniglot",
    "evaluation_tasks",
    "file_name",
    "find_data_dir",
    "load_omniglot",
    "load_sample",
    "load_split",
    "rotate",
    "split_characters",
    "to_features",
]
