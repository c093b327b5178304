"""Where a run starts: the initial phi, the same routine for every job.

* ``"uniform"``: :meth:`tinymeta.MLP.init`, every W_l and b_l from U(-1/sqrt(d_{l-1}), 1/sqrt(d_{l-1}))
  (PyTorch's default, so a seed gives the reference implementations' start; the sine job);
* ``"he"``: :func:`he_normal`, W_l ~ N(0, 2 / d_{l-1}) and b_l = 0 (the Omniglot job);
* ``"truncnormal"``: :func:`truncated_normal`, W_l ~ N(0, 0.01^2) truncated at two standard deviations,
  b_l = 0 and batch-norm shifts 0 (MAML's code's start for its MLP);
* ``"phi0"``: a vector given by the caller.
"""

from __future__ import annotations

import numpy as np

from .. import validate


def he_normal(net, rng) -> np.ndarray:
    """W_l ~ N(0, 2 / d_{l-1}), b_l = 0 (He et al. 2015), layer by layer, W drawn row-major.

    Keeps ReLU activations at unit scale through depth, where the uniform(+-1/sqrt(d)) init shrinks
    them by about sqrt(6) per layer. ``rng``: a ``np.random.Generator`` or an int seed.
    """
    rng = validate.rng(rng)
    phi = np.zeros(net.num_params)
    for W, _ in net.unflatten(phi):  # views into phi; every other entry (biases) stays 0
        d_in = W.shape[0]
        W[...] = rng.normal(0.0, np.sqrt(2.0 / d_in), W.size).reshape(W.shape)
    return phi


def truncated_normal(net, rng, std=0.01) -> np.ndarray:
    """W_l ~ N(0, std^2) with every draw beyond two standard deviations drawn again, b_l = 0, shifts 0.

    MAML's code starts its fully connected network from ``tf.truncated_normal(..., stddev=0.01)`` weights
    and zero biases. With batch norm the scale of W_l does not change the outputs but does change the
    steps: the gradient with respect to a normalised layer's weights scales as 1 / |W_l|, so a step of
    alpha moves them by about alpha / |W_l|^2 relative to their size. ``rng``: a Generator or an int seed.
    """
    rng = validate.rng(rng)
    phi = np.zeros(net.num_params)
    for W, _ in net.unflatten(phi):  # views into phi; biases and shifts stay 0
        w = rng.normal(0.0, std, W.size)
        while np.any(beyond := np.abs(w) > 2.0 * std):
            w[beyond] = rng.normal(0.0, std, int(beyond.sum()))
        W[...] = w.reshape(W.shape)
    return phi


def initial_phi(net, config, phi0=None) -> np.ndarray:
    """phi_0 of a run with ``config`` (a :class:`~tinymeta.training.config.TrainConfig`): see the module
    docstring; ``phi0`` is used (copied) when, and only when, ``config.init == "phi0"``."""
    if config.init == "phi0":
        if phi0 is None:
            raise ValueError("init='phi0' needs phi0, the starting vector")
        return net.check_phi(phi0, name="phi0").copy()
    if phi0 is not None:
        raise ValueError(f"phi0 is used only with init='phi0'; got init={config.init!r}")
    if config.init == "truncnormal":
        return truncated_normal(net, config.seed)
    return net.init(config.seed) if config.init == "uniform" else he_normal(net, config.seed)
