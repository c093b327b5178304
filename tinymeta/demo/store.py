"""Where the demo's initialisations come from: a quick training run, cached, or a run directory.

Quick training: on first use each initialisation of :data:`~tinymeta.demo.inits.REGISTRY` is
meta-trained for :attr:`QuickTraining.iterations` iterations on the MAML paper's sine tasks (a
1-40-40-1 ReLU network, K = 10, alpha = 0.01, meta-batch 25) and saved, atomically, to
``<cache>/<name>-<key>.npz`` in :func:`default_cache_dir` (``tinymeta.cache.default_cache_dir() /
"demo"``). The key is a hash of everything that determines the parameters (the settings, the
network, the task family, the entry's algorithm and options, the tinymeta version), and the file
stores that text too, so a file trained under other settings is never used. A file that cannot
be read is trained again, with a message.

Run directory: ``tinymeta sine ... --out RUN_DIR`` writes ``checkpoint.npz`` (its main algorithm)
and, with ``--compare``, ``checkpoint_<algo>.npz``; :func:`load_run_dir` reads them all.
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import (
    __version__,
    load_checkpoint,  # the public name: the checkpoint code moves, it stays
    validate,
)
from ..atomic import write_npz_atomic
from ..cache import default_cache_dir as user_cache_dir
from ..mlp import MLP
from ..tasks import Sine
from .inits import REGISTRY, Trained, for_algo, get

FORMAT = "tinymeta-demo-init-1"


@dataclass(frozen=True)
class QuickTraining:
    """The settings of the quick training run; all but ``backend`` are part of the cache key.

    Attributes
    ----------
    iterations : int, outer iterations per initialisation
    alpha : float, inner step size (training, and the demo's default)
    meta_batch : int, tasks per outer iteration
    K : int, support (and query) points per training task
    seed : int, seeds phi's initialisation and the task stream
    backend : {"numpy", "numba"} or None (the default backend); gives the same numbers, faster or not
    """

    iterations: int = 3000
    alpha: float = 0.01
    meta_batch: int = 25
    K: int = 10
    seed: int = 0
    backend: str | None = None

    def network(self):
        return MLP([1, 40, 40, 1], "relu")

    def family(self):
        return Sine(K=self.K, K_query=self.K)

    def key_text(self, init) -> str:
        """Everything that determines ``init``'s trained parameters, as one line of JSON."""
        settings = {k: v for k, v in asdict(self).items() if k != "backend"}
        net = self.network()
        return json.dumps({"format": FORMAT, "tinymeta": __version__, "init": init.describe(),
                           "settings": settings, "net": [list(net.sizes), net.activation],
                           "family": repr(self.family())}, sort_keys=True)  # fmt: skip


def default_cache_dir() -> Path:
    """``tinymeta.cache.default_cache_dir() / "demo"``."""
    return user_cache_dir() / "demo"


def cache_file(cache_dir, init, settings) -> Path:
    """``<cache_dir>/<name>-<first 16 hex digits of the key's SHA-256>.npz``."""
    digest = hashlib.sha256(settings.key_text(init).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{init.name}-{digest}.npz"


def load_or_train(names, cache_dir=None, settings=None, log=print) -> dict:
    """The initialisations ``names`` from the cache, training (and caching) those that are missing.

    Parameters
    ----------
    names : iterable of str, keys of :data:`~tinymeta.demo.inits.REGISTRY`
    cache_dir : path or None (:func:`default_cache_dir`)
    settings : QuickTraining or None (the defaults)
    log : callable taking one str, for progress and cache messages

    Returns
    -------
    dict name -> :class:`~tinymeta.demo.inits.Trained`, in the order of ``names``.
    """
    cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir)
    settings = QuickTraining() if settings is None else settings
    net, out = settings.network(), {}
    for name in names:
        init = get(name)
        path = cache_file(cache_dir, init, settings)
        params = None
        if path.exists():
            try:
                params = _read_cached(path, init, net, settings)
            except ValueError as e:
                log(f"the cached {init.label} initialisation {path} is unusable ({e}); training it again")
        if params is None:
            params = _train(init, net, settings, path, log)
        out[name] = Trained(init, net, params, settings.alpha, str(path))
    return out


def _train(init, net, settings, path, log):
    log(f"training the {init.label} initialisation for the demo "
        f"({settings.iterations} iterations; done once, then cached)...")  # fmt: skip
    t0 = time.perf_counter()
    params = np.asarray(init.train(init, net, settings.family(), settings), dtype=np.float64)
    write_npz_atomic(path, {"format": np.array(FORMAT), "key": np.array(settings.key_text(init)),
                            "params": params})  # fmt: skip
    log(f"  {init.label}: {time.perf_counter() - t0:.1f} s, cached in {path}")
    return params


def _read_cached(path, init, net, settings):
    """The parameters in ``path``; ``ValueError`` if it is unreadable, torn or from other settings."""
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"not a readable .npz file: {type(e).__name__}: {e}") from None
    if str(stored.get("format", "")) != FORMAT or "params" not in stored or "key" not in stored:
        raise ValueError(f"not a {FORMAT} file")
    if str(stored["key"]) != settings.key_text(init):
        raise ValueError("trained under other settings")
    params = stored["params"]
    if params.ndim != 1 or params.dtype != np.float64 or not np.all(np.isfinite(params)):
        raise ValueError(f"params must be a finite float64 vector; got {params.dtype} {params.shape}")
    init.adapt(net, params, np.zeros((1, 1)), np.zeros((1, 1)), settings.alpha, 0)  # its own shape check
    return params


def load_run_dir(run_dir) -> dict:
    """The initialisations in a ``tinymeta sine --out RUN_DIR`` directory, one per checkpoint.

    Returns
    -------
    dict algo -> :class:`~tinymeta.demo.inits.Trained`, registered algorithms first, in menu order.

    Raises
    ------
    FileNotFoundError
        ``run_dir`` is not a directory or holds no checkpoint.
    tinymeta.CheckpointError, ValueError
        A checkpoint is unreadable, or its network is not a 1-input, 1-output MLP.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {str(run_dir)!r} does not exist")
    paths = sorted(run_dir.glob("checkpoint.npz")) + sorted(run_dir.glob("checkpoint_*.npz"))
    if not paths:
        raise FileNotFoundError(f"run directory {str(run_dir)!r} holds no checkpoint.npz or checkpoint_<algo>"
                                ".npz (those written by 'tinymeta sine --out RUN_DIR')")  # fmt: skip
    found = {}
    for path in paths:
        algo, sizes, activation, alpha, phi = read_checkpoint(path)
        if sizes[0] != 1 or sizes[-1] != 1:
            raise ValueError(f"{path}: the network has sizes {sizes}; the demo needs 1 input and 1 output")
        found.setdefault(algo, Trained(for_algo(algo), MLP(sizes, activation), phi, alpha, str(path)))
    order = [a for a in REGISTRY if a in found] + [a for a in found if a not in REGISTRY]
    return {a: found[a] for a in order}


def read_checkpoint(path):
    """``(algo, sizes, activation, alpha, phi)`` of a training checkpoint: the one place that knows its
    format (``tinymeta.load_checkpoint(path)`` with ``.phi`` and ``.config.{algo, alpha, net}``)."""
    ckpt = load_checkpoint(path)
    c = ckpt.config
    return c.algo, list(c.net["sizes"]), c.net["activation"], float(c.alpha), ckpt.phi


def from_params(params, alpha=0.01, net=None) -> dict:
    """Initialisations given directly, e.g. by a tutorial that has just trained them.

    Parameters
    ----------
    params : dict name -> ndarray, phi of each algorithm (registered names get their own ``adapt``)
    alpha : float, the inner step size they were trained with
    net : MLP or None (the 1-40-40-1 ReLU network of :class:`QuickTraining`)

    Returns
    -------
    dict name -> :class:`~tinymeta.demo.inits.Trained`, registered names first, in menu order.
    """
    net = QuickTraining().network() if net is None else net
    if not params:
        raise ValueError("params is empty; pass {name: phi} for at least one initialisation")
    order = [n for n in REGISTRY if n in params] + [n for n in params if n not in REGISTRY]
    inits = {n: for_algo(n) for n in order}
    return {n: Trained(init, net, _checked(net, init, params[n], f"params[{n!r}]"), float(alpha), "given")
            for n, init in inits.items()}  # fmt: skip


def _checked(net, init, params, name):
    """``params`` as a finite float64 vector of the size ``init.adapt`` reads: phi, or Meta-SGD's
    [phi; alphas] (``init.copies_of_phi`` vectors of the network's size); ValueError naming ``name``."""
    if init.copies_of_phi > 1:
        name += f" ({init.label}: {init.copies_of_phi} vectors of the network's {net.num_params} parameters)"
    return validate.float_array(name, params, 1, (init.copies_of_phi * net.num_params,))


def initialisations(names, *, run_dir=None, params=None, cache_dir=None, settings=None, log=print) -> dict:
    """The initialisations to show: from ``params`` if given, else from ``run_dir`` (all its
    checkpoints), else ``names`` from the quick-training cache (:func:`load_or_train`)."""
    if params is not None:
        return from_params(params)
    if run_dir is not None:
        return load_run_dir(run_dir)
    return load_or_train(names, cache_dir, settings, log)
