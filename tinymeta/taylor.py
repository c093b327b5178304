"""The Taylor-series analysis of MAML, first-order MAML and Reptile (Nichol et al. 2018, Sec. 5.1).

Indexing as everywhere in tinymeta (docs: Notation, "The iterates"), which is the paper's
with every index lowered by one. The inner loop runs SGD on a sequence of k mini-batch
losses L_0, ..., L_{k-1} of one task (here: ``batches[0] .. batches[k-1]``)::

    phi_0 = phi,    phi_{i+1} = phi_i - alpha g_i,    g_i = grad L_i(phi_i),    H_i = hess L_i(phi_i)

and the Taylor expansion is taken at the initial point, with
gbar_i = grad L_i(phi_0) and Hbar_i = hess L_i(phi_0). The three meta-gradients are::

    g_MAML    = d/dphi L_{k-1}(phi_{k-1})     (k - 1 inner steps on batches 0..k-2, exact)
              = (I - alpha H_0) ... (I - alpha H_{k-2}) grad L_{k-1}(phi_{k-1})
    g_FOMAML  = g_{k-1} = grad L_{k-1}(phi_{k-1})
    g_Reptile = (phi_0 - phi_k) / alpha = g_0 + ... + g_{k-1}               (all k steps)

Averaged over the k! orderings of the k mini-batches (``E`` below), to first order in alpha::

    E[g] = c0 AvgGrad + c1 alpha AvgGradInner + O(alpha^2)

    MAML:    (c0, c1) = (1, -2 (k - 1))
    FOMAML:  (c0, c1) = (1, -(k - 1))
    Reptile: (c0, c1) = (k, -k (k - 1) / 2)

with AvgGrad = E[gbar_0] (the mean of the batch gradients at phi) and
AvgGradInner = E[Hbar_1 gbar_0] = E[Hbar_j gbar_i] for any i != j (the mean over ordered
pairs of distinct batches) = (1/2) grad E[gbar_0 . gbar_1]: the direction in which the
inner product between the gradients of two different mini-batches grows fastest.
c1 <= 0, and every update subtracts its meta-gradient (phi <- phi - beta g), so the step
contains +beta |c1| alpha AvgGradInner: it moves along AvgGradInner and increases that
inner product, which is what makes a step on one batch help on the others (generalization
within a task). AvgGrad moves phi toward the minimum of the expected loss ("joint
training").

Every function takes ``batches`` as a sequence of ``(x, y)`` pairs. The Hessians are
never formed: the products use :meth:`tinymeta.MLP.hvp`.

References
----------
Nichol, Achiam & Schulman (2018), "On First-Order Meta-Learning Algorithms", Sec. 5.1
(k = 2) and the general-k result stated there; the paper starts at phi_1 = phi.
"""

from __future__ import annotations

import itertools

import numpy as np

from . import validate

ALGORITHMS = ("maml", "fomaml", "reptile")
MAX_ORDERINGS_K = 7
"""Largest k for which :func:`expected_over_orderings` enumerates all k! orderings (5040)."""


def _check_batches(net, batches, loss):
    if isinstance(batches, tuple) and len(batches) == 2 and not isinstance(batches[0], tuple):
        raise TypeError("batches must be a sequence of (x, y) pairs, not a single (x, y) pair")
    batches = list(batches)
    if not batches:
        raise ValueError("batches is empty; need at least one (x, y) mini-batch")
    return [net.check_data(b[0], b[1], loss, names=(f"batches[{i}][0]", f"batches[{i}][1]"))
            for i, b in enumerate(batches)]  # fmt: skip


def sgd_trajectory(net, phi, batches, alpha, loss="mse"):
    """phi_0 .. phi_k: one SGD step on each mini-batch in turn.

    phi_{i+1} = phi_i - alpha grad L_i(phi_i), where L_i is the loss on ``batches[i]``.

    Returns
    -------
    ndarray, shape (k + 1, P): row i is phi_i; row 0 is (a copy of) phi = phi_0.
    """
    phi = net.check_phi(phi)
    batches = _check_batches(net, batches, loss)
    alpha = validate.positive("alpha", alpha)
    traj = np.empty((len(batches) + 1, phi.size))
    traj[0] = phi
    for i, (x, y) in enumerate(batches):
        traj[i + 1] = traj[i] - alpha * net.loss_and_grad(traj[i], x, y, loss)[1]
    return traj


def maml_objective_sequence(net, phi, batches, alpha, loss="mse"):
    """L_{k-1}(phi_{k-1}): the loss on the last batch after one SGD step on each of the others.

    The function whose exact gradient is :func:`maml_grad_sequence`; with k = 1 it is L_0(phi).
    """
    batches = _check_batches(net, batches, loss)
    phi_k = sgd_trajectory(net, phi, batches[:-1], alpha, loss)[-1] if len(batches) > 1 else phi
    return net.loss(phi_k, *batches[-1], loss)


def maml_grad_sequence(net, phi, batches, alpha, loss="mse"):
    """g_MAML = (I - alpha H_0)(I - alpha H_1) ... (I - alpha H_{k-2}) grad L_{k-1}(phi_{k-1}).

    H_i is the Hessian of batch i's loss at phi_i. Evaluated right to left,
    v <- v - alpha H_i v for i = k-2, ..., 0: k - 1 Hessian-vector products.

    Returns
    -------
    ndarray, shape (P,)
    """
    batches = _check_batches(net, batches, loss)
    inner = batches[:-1]
    traj = sgd_trajectory(net, phi, inner, alpha, loss) if inner else net.check_phi(phi)[None]
    v = net.loss_and_grad(traj[-1], *batches[-1], loss)[1]
    for i in range(len(inner) - 1, -1, -1):
        v = v - alpha * net.hvp(traj[i], *inner[i], v, loss)
    return v


def fomaml_grad_sequence(net, phi, batches, alpha, loss="mse"):
    """g_FOMAML = g_{k-1} = grad L_{k-1}(phi_{k-1}), after k - 1 SGD steps on batches 0..k-2. Shape (P,)."""
    batches = _check_batches(net, batches, loss)
    inner = batches[:-1]
    phi_k = sgd_trajectory(net, phi, inner, alpha, loss)[-1] if inner else net.check_phi(phi)
    return net.loss_and_grad(phi_k, *batches[-1], loss)[1]


def reptile_grad_sequence(net, phi, batches, alpha, loss="mse"):
    """g_Reptile = (phi_0 - phi_k) / alpha = g_0 + ... + g_{k-1}, after k SGD steps. Shape (P,).

    Summed from the g_i directly, which avoids the cancellation in phi_0 - phi_k.
    """
    batches = _check_batches(net, batches, loss)
    traj = sgd_trajectory(net, phi, batches, alpha, loss)
    return sum(net.loss_and_grad(traj[i], x, y, loss)[1] for i, (x, y) in enumerate(batches))


GRADIENTS = {"maml": maml_grad_sequence, "fomaml": fomaml_grad_sequence, "reptile": reptile_grad_sequence}
"""The three meta-gradients over a mini-batch sequence, by name."""


def avg_grad(net, phi, batches, loss="mse"):
    """AvgGrad = E[gbar_i] = (1/k) sum_i grad L_i(phi_0): the mean batch gradient at phi. Shape (P,)."""
    phi = net.check_phi(phi)
    batches = _check_batches(net, batches, loss)
    return np.mean([net.loss_and_grad(phi, x, y, loss)[1] for x, y in batches], axis=0)


def avg_grad_inner(net, phi, batches, loss="mse"):
    """AvgGradInner = E[Hbar_j gbar_i], the mean over the k (k - 1) ordered pairs i != j. Shape (P,).

    Equal to (1/2) grad of the mean inner product gbar_i . gbar_j over those pairs.

    Computed as (1 / (k (k - 1))) sum_j Hbar_j (sum_{i != j} gbar_i): k Hessian-vector
    products. Zero when k = 1 (there are no pairs, and the coefficient in front of it is 0).
    """
    phi = net.check_phi(phi)
    batches = _check_batches(net, batches, loss)
    k = len(batches)
    if k == 1:
        return np.zeros_like(phi)
    grads = [net.loss_and_grad(phi, x, y, loss)[1] for x, y in batches]
    total = np.sum(grads, axis=0)
    out = sum(net.hvp(phi, x, y, total - grads[j], loss) for j, (x, y) in enumerate(batches))
    return out / (k * (k - 1))


def expected_over_orderings(algorithm, net, phi, batches, alpha, loss="mse"):
    """E[g]: the mean of the named meta-gradient over all k! orderings of ``batches``. Shape (P,).

    ``algorithm`` is ``"maml"``, ``"fomaml"`` or ``"reptile"``; k is limited to
    ``MAX_ORDERINGS_K``.
    """
    validate.one_of("algorithm", algorithm, ALGORITHMS)
    batches = _check_batches(net, batches, loss)
    if len(batches) > MAX_ORDERINGS_K:
        raise ValueError(
            f"batches has k = {len(batches)} mini-batches; enumerating k! orderings is refused "
            f"above k = {MAX_ORDERINGS_K}"
        )
    fn = GRADIENTS[algorithm]
    perms = list(itertools.permutations(range(len(batches))))
    return sum(fn(net, phi, [batches[i] for i in p], alpha, loss) for p in perms) / len(perms)


def taylor_coefficients(algorithm, k):
    """(c0, c1) with E[g] = c0 AvgGrad + c1 alpha AvgGradInner + O(alpha^2) for k mini-batches.

    maml: (1, -2 (k - 1));  fomaml: (1, -(k - 1));  reptile: (k, -k (k - 1) / 2).
    The sign convention of the whole project: c1 multiplies +alpha AvgGradInner and is <= 0.
    MAML and FOMAML take k - 1 inner steps and use the k-th batch as the query.
    """
    validate.one_of("algorithm", algorithm, ALGORITHMS)
    k = validate.count("k", k, minimum=1)
    return {"maml": (1.0, -2.0 * (k - 1)), "fomaml": (1.0, -(k - 1.0)),
            "reptile": (float(k), -0.5 * k * (k - 1))}[algorithm]  # fmt: skip


def taylor_prediction(algorithm, net, phi, batches, alpha, loss="mse"):
    """The first-order prediction c0 AvgGrad + c1 alpha AvgGradInner of E[g]. Shape (P,)."""
    batches = _check_batches(net, batches, loss)
    alpha = validate.positive("alpha", alpha)
    c0, c1 = taylor_coefficients(algorithm, len(batches))
    return c0 * avg_grad(net, phi, batches, loss) + c1 * alpha * avg_grad_inner(net, phi, batches, loss)
