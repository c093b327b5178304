"""The plug-in parts of iMAML, Meta-SGD and ANIL: their directions, settings and test-time inner loops.

:data:`tinymeta.training.algorithms.ALGORITHMS` assembles them into :class:`Algorithm` entries:

* **iMAML** (Rajeswaran et al. 2019): outer Adam on the implicit gradient. Exact (``tol``: the inner
  problem and the linear system solved to a tolerance, :func:`tinymeta.imaml.imaml_batch`, k = 0) or
  the paper's practical variant (``cg_iterations``: k gradient steps of size alpha on the proximal
  objective and a fixed number of CG iterations, :func:`tinymeta.imaml_approx.imaml_approx_batch`;
  approximate). Test time: the inner loop it was trained with: the solver (exact,
  :func:`tinymeta.adapters.imaml_solve_adapter`) or alpha-steps on the proximal objective (practical,
  :func:`tinymeta.adapters.imaml_adapter`).
* **Meta-SGD** (Li et al. 2017): the loop optimises params = [phi; alphas] (2P entries, alphas
  starting at alpha) with outer Adam on (dF/dphi, dF/dalphas) (:func:`tinymeta.metasgd.metasgd_batch`).
  Test time: steps with the learned alphas (:func:`tinymeta.adapters.metasgd_adapter`).
* **ANIL** (Raghu et al. 2020): outer Adam on the exact gradient in all of phi of a head-only inner
  loop (:func:`tinymeta.anil.anil_batch`). Test time: SGD on the head
  (:func:`tinymeta.adapters.anil_adapter`).
"""

from __future__ import annotations

import numpy as np

from ..adapters import anil_adapter, imaml_adapter, imaml_solve_adapter, metasgd_adapter

DEFAULT_LAM, DEFAULT_TOL = 2.0, 1e-8
"""iMAML's proximal strength (the paper's lam on Omniglot, Table 2) and the exact solver's tolerance."""


def imaml_defaults(config) -> dict:
    """iMAML's own rules: exact (``tol``, k = 0, a smooth activation) or practical (``cg_iterations``)."""
    defaults = {"lam": DEFAULT_LAM} if config.lam is None else {}
    if config.cg_iterations is not None:  # the practical variant: k steps, n CG iterations
        if config.tol is not None:
            raise ValueError(f"tol={config.tol!r} is the exact solver's tolerance; the practical variant "
                             f"(cg_iterations={config.cg_iterations!r}) does a fixed amount of work: pass "
                             "one of the two")  # fmt: skip
        return defaults
    if config.k != 0:
        raise ValueError(f"k={config.k}: exact iMAML solves its inner problem to tol, not in k steps; "
                         "pass k=0, or cg_iterations=N for the practical variant with k gradient "
                         "steps")  # fmt: skip
    if config.net.get("activation") == "relu":
        raise ValueError("exact iMAML needs a smooth activation: on a ReLU network the inner minimiser lies "
                         "on a kink, where no gradient vanishes and the solve cannot converge; use tanh or "
                         "softplus, or the practical variant (cg_iterations=N, approximate)")  # fmt: skip
    return defaults | ({"tol": DEFAULT_TOL} if config.tol is None else {})


def imaml_step(functions, net, config, phi, batch, inner_state, rng):
    if config.cg_iterations is None:  # exact: the inner problem and the linear system solved to tol
        value, g = functions["imaml"](net, phi, batch, config.lam, config.loss, config.tol)
    else:
        value, g = functions["imaml_approx"](net, phi, batch, config.lam, config.alpha, config.k,
                                             config.cg_iterations, config.loss)  # fmt: skip
    return value, g, inner_state


def imaml_test_time(functions, net, config, inner_state, seed, params=None):
    if config.cg_iterations is None:  # exact: adapts by solving its inner problem, as in training
        return imaml_solve_adapter(net, config.lam, config.tol, config.loss)
    return imaml_adapter(net, config.lam, config.alpha, config.loss)


def metasgd_initial(net, phi, config):
    """params = [phi; alphas], every step size starting at ``config.alpha``: shape (2P,)."""
    return np.concatenate([phi, np.full(phi.size, config.alpha)])


def metasgd_network(net, params):
    """phi, the first P entries of params = [phi; alphas]."""
    if np.shape(params) != (2 * net.num_params,):
        raise ValueError(f"Meta-SGD's parameters [phi; alphas] must have shape ({2 * net.num_params},) for "
                         f"this network; got {np.shape(params)}")  # fmt: skip
    return params[: net.num_params]


def metasgd_step(functions, net, config, params, batch, inner_state, rng):
    P = net.num_params
    value, g_phi, g_alphas = functions["metasgd"](net, params[:P], params[P:], batch, config.k, config.loss)
    return value, np.concatenate([g_phi, g_alphas]), inner_state


def metasgd_test_time(functions, net, config, inner_state, seed, params=None):
    if params is None:
        raise ValueError("Meta-SGD adapts with its learned step sizes: pass params=[phi; alphas] (the run's "
                         "TrainResult.params)")  # fmt: skip
    metasgd_network(net, params)  # checks the shape (2P,)
    return metasgd_adapter(net, params[net.num_params :], config.loss)


def anil_step(functions, net, config, phi, batch, inner_state, rng):
    value, g = functions["anil"](net, phi, batch, config.alpha, config.k, config.loss)
    return value, g, inner_state


def anil_test_time(functions, net, config, inner_state, seed, params=None):
    return anil_adapter(net, config.alpha, config.loss)
