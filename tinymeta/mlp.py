"""A multilayer perceptron with hand-derived first and second derivatives.

The network is *architecture only*: every method takes the flat parameter
vector ``phi`` explicitly (see :mod:`tinymeta.params` for the layout), so the
meta-learning code can treat phi, U(phi) and gradients as plain vectors.

Forward (tutorial 1, eq. (1.1)), with a_0 = X::

    z_l = a_{l-1} W_l + b_l,     a_l = sigma(z_l)  (l < L),     yhat = z_L

Backward, the vector-Jacobian product (eq. (1.2)), with delta_L = dL/dyhat::

    dL/dW_l = a_{l-1}^T delta_l,   dL/db_l = 1^T delta_l,
    delta_{l-1} = sigma'(z_{l-1}) * (delta_l W_l^T)

Hessian-vector product by Pearlmutter's R-operator (tutorial 2, eq. (2.3)):
R{.} is the directional derivative along v = (V_l, c_l). Forward::

    R{z_l} = R{a_{l-1}} W_l + a_{l-1} V_l + c_l,   R{a_l} = sigma'(z_l) * R{z_l},  R{a_0} = 0

and backward, with R{delta_L} = H_out R{yhat} (the loss's output-space HVP)::

    R{dL/dW_l} = R{a_{l-1}}^T delta_l + a_{l-1}^T R{delta_l},   R{dL/db_l} = 1^T R{delta_l}
    R{e_{l-1}} = R{delta_l} W_l^T + delta_l V_l^T               (e_{l-1} = delta_l W_l^T)
    R{delta_{l-1}} = sigma''(z_{l-1}) * R{z_{l-1}} * e_{l-1} + sigma'(z_{l-1}) * R{e_{l-1}}

The sigma'' term is the one a first-order method never sees.

Batch norm (``batch_norm=True``, tutorial 9): each hidden layer normalises z_l with the mean and
variance of the rows passed (transductive: a query batch with its own statistics, as in MAML's
code) and adds a learned shift beta_l, stored after the (W_l, b_l) in phi; no scale, as in MAML's
network. The rules of the normalisation itself, eqs. (9.1)-(9.4), are in :mod:`tinymeta.batchnorm`::

    zhat_l = BN(z_l),   ztilde_l = zhat_l + beta_l,   a_l = sigma(ztilde_l)                     (9.1)
    dtilde_l = sigma'(ztilde_l) * e_l,  dL/dbeta_l = 1^T dtilde_l,  delta_l = BN_vjp(dtilde_l)  (9.2)
    R{ztilde_l} = R{zhat_l} + R{beta_l},  R{a_l} = sigma'(ztilde_l) * R{ztilde_l}               (9.3)
    R{dtilde_l} = sigma''(ztilde_l) * R{ztilde_l} * e_l + sigma'(ztilde_l) * R{e_l},
    R{dL/dbeta_l} = 1^T R{dtilde_l},  R{delta_l} = BN_rop_vjp(dtilde_l, R{dtilde_l})            (9.4)

Without batch norm ztilde_l = z_l, dtilde_l = delta_l, and the passes are exactly those above.
"""

from __future__ import annotations

import numpy as np

from . import batchnorm, params, validate
from .activations import ACTIVATIONS
from .losses import LOSSES
from .params import flatten, layer_shapes, num_params, unflatten

MAX_HESSIAN_PARAMS = 4000
"""Largest P for which :meth:`MLP.hessian` forms the explicit (P, P) matrix (128 MB)."""


class MLP:
    """Fully connected network ``sizes = [d_0, ..., d_L]``; hidden activation, identity output.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first, e.g. ``[1, 40, 40, 1]``. At least two entries, all >= 1.
    activation : {"tanh", "relu", "sigmoid", "softplus", "identity"}
        Nonlinearity of every hidden layer. The output layer is always the identity.
    batch_norm : bool, default False
        If True, every hidden layer normalises its pre-activations with the mean and variance of
        the rows passed, eq. (9.1), and adds a learned shift beta_l stored at the end of phi (layout
        in :mod:`tinymeta.params`). This is *transductive*: the output for one row depends on the
        other rows of the batch, and a query batch is normalised with its own statistics, as in
        MAML's code. Batches then need at least 2 rows; :meth:`forward_with_statistics` evaluates
        with given statistics instead (non-transductive). The hidden biases b_l stay in phi but
        cancel against the mean: their gradient is zero.

    Examples
    --------
    >>> net = MLP([1, 40, 40, 1], "relu")
    >>> phi = net.init(0)
    >>> net.forward(phi, np.zeros((5, 1))).shape
    (5, 1)
    >>> MLP([1, 40, 40, 1], "relu", batch_norm=True).num_params - net.num_params  # beta_1, beta_2
    80
    """

    def __init__(self, sizes, activation="tanh", batch_norm=False):
        try:
            sizes = list(sizes)
        except TypeError:
            raise TypeError(f"sizes must be a sequence of layer widths; got {sizes!r}") from None
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least input and output widths; got {sizes!r}")
        for s in sizes:
            validate.count("each entry of sizes", s, minimum=1)
        self.sizes = tuple(int(s) for s in sizes)
        self.activation = validate.one_of("activation", activation, ACTIVATIONS)
        self.sigma = ACTIVATIONS[activation]
        if not isinstance(batch_norm, (bool, np.bool_)):
            raise TypeError(f"batch_norm must be True or False; got {batch_norm!r}")
        if batch_norm and len(self.sizes) < 3:
            raise ValueError(f"batch_norm=True normalises hidden layers; sizes={list(self.sizes)} has none")
        self.batch_norm = bool(batch_norm)
        self.num_params = num_params(self.sizes) + (params.num_shifts(self.sizes) if self.batch_norm else 0)

    def __repr__(self):
        bn = ", batch_norm=True" if self.batch_norm else ""
        return f"MLP({list(self.sizes)}, activation={self.activation!r}{bn})"

    # ------------------------------------------------------------------ parameters
    def init(self, rng) -> np.ndarray:
        """Initial parameters, shape (P,), float64.

        Every W_l and b_l is drawn from U(-1/sqrt(d_{l-1}), 1/sqrt(d_{l-1})), layer by
        layer, W before b (PyTorch's ``nn.Linear`` default, so a seed gives the same
        start as the reference implementations). ``rng`` is a ``np.random.Generator``
        or an int seed. With batch norm the shifts beta_l start at 0 (TensorFlow's default)
        and the (W_l, b_l) are the same draws as without batch norm.
        """
        rng = validate.rng(rng)
        layers = []
        for d_in, d_out in layer_shapes(self.sizes):
            bound = 1.0 / np.sqrt(d_in)
            layers.append((rng.uniform(-bound, bound, (d_in, d_out)), rng.uniform(-bound, bound, d_out)))
        if self.batch_norm:
            return params.flatten_with_shifts(layers, [np.zeros(d) for d in self.sizes[1:-1]])
        return flatten(layers)

    def unflatten(self, phi):
        """Per-layer ``[(W_l, b_l)]`` views into ``phi`` (see :func:`tinymeta.params.unflatten`).

        With batch norm the shifts are not in this list: see :meth:`shifts`.
        """
        return unflatten(self.sizes, self.check_phi(phi))

    def shifts(self, phi):
        """Batch-norm shifts ``[beta_1, ..., beta_{L-1}]``, views into ``phi``; ``[]`` without batch norm."""
        phi = self.check_phi(phi)
        return params.unflatten_shifts(self.sizes, phi) if self.batch_norm else []

    def _split(self, phi, name="phi"):
        """``(layers, shifts)``: (W_l, b_l) views and beta_l views (None without batch norm)."""
        phi = self.check_phi(phi, name)
        shifts = params.unflatten_shifts(self.sizes, phi) if self.batch_norm else None
        return unflatten(self.sizes, phi), shifts

    def check_phi(self, phi, name="phi") -> np.ndarray:
        return validate.float_array(name, phi, 1, (self.num_params,))

    def _check_rows(self, name, X):
        if self.batch_norm and X.shape[0] < 2:
            raise ValueError(
                f"{name} has {X.shape[0]} row{'' if X.shape[0] == 1 else 's'}; this network has "
                f"batch_norm=True, which normalises each "
                f"hidden unit with the mean and variance of the rows passed, and one row has variance 0, "
                f"so its normalised values would be 0 whatever {name} holds. Pass at least 2 rows, or "
                f"normalise with given statistics: forward_with_statistics(phi, X, statistics)"
            )

    def check_data(self, X, y, loss, names=("X", "y")):
        """Validate a batch ``(X, y)`` for ``loss``; returns float64 X and typed y.

        ``names`` are the argument names used in error messages. With batch norm, X needs >= 2 rows.
        """
        validate.one_of("loss", loss, LOSSES)
        x_name, y_name = names
        X = validate.float_array(x_name, X, 2, (None, self.sizes[0]))
        if X.shape[0] == 0:
            raise ValueError(f"{x_name} has no rows (shape {X.shape}); a loss needs at least one example")
        self._check_rows(x_name, X)
        if loss == "mse":
            y = validate.float_array(y_name, y, 2, (X.shape[0], self.sizes[-1]))
        else:
            y = validate.label_array(y_name, y, X.shape[0], self.sizes[-1])
        return X, y

    # ------------------------------------------------------------------ forward
    def forward(self, phi, X) -> np.ndarray:
        """Network output yhat, shape (n, d_L), for inputs ``X`` of shape (n, d_0). Eqs. (1.1), (9.1)."""
        X = validate.float_array("X", X, 2, (None, self.sizes[0]))
        self._check_rows("X", X)
        return self._forward(*self._split(phi), X)[0][-1]

    def _forward(self, layers, shifts, X, statistics=None):
        """a_l (a_0 = X, a_L = yhat), z_l, the activations' arguments ztilde_l (= z_l without batch
        norm) and, with batch norm, (zhat_l, r_l) of each hidden layer; ``statistics`` replaces the
        batch's own (mean, var) per hidden layer if given."""
        a, z, zt, norm = [X], [], [], []
        last = len(layers) - 1
        for l, (W, b) in enumerate(layers):
            z.append(a[-1] @ W + b)
            if shifts is not None and l < last:
                mean, var = batchnorm.statistics(z[-1]) if statistics is None else statistics[l]
                norm.append(batchnorm.normalise(z[-1], mean, var))
                zt.append(norm[-1][0] + shifts[l])
            else:
                zt.append(z[-1])
            a.append(self.sigma.f(zt[-1]) if l < last else zt[-1])
        return a, z, zt, norm

    def loss(self, phi, X, y, loss="mse") -> float:
        """L(phi) on the batch ``(X, y)`` (conventions in :mod:`tinymeta.losses`)."""
        X, y = self.check_data(X, y, loss)
        return LOSSES[loss].value(self.forward(phi, X), y)

    # ------------------------------------------------------------------ non-transductive evaluation
    def batch_statistics(self, phi, X):
        """The (mean, var) of every hidden layer's pre-activations on the batch ``X`` (>= 2 rows).

        Returns
        -------
        list of (ndarray of shape (d_l,), ndarray of shape (d_l,)), one pair per hidden layer:
        the statistics that :meth:`forward` normalises ``X`` with, eq. (9.1).
        """
        self._require_batch_norm("batch_statistics")
        X = validate.float_array("X", X, 2, (None, self.sizes[0]))
        self._check_rows("X", X)
        _, z, _, _ = self._forward(*self._split(phi), X)
        return [batchnorm.statistics(zl) for zl in z[:-1]]

    def forward_with_statistics(self, phi, X, statistics) -> np.ndarray:
        """Output, shape (n, d_L), with every hidden layer normalised by *given* statistics.

        Non-transductive: each row of ``X`` is mapped on its own (one row is fine), because
        the mean and variance no longer come from ``X``. Evaluating a query batch with the
        support set's statistics at the adapted parameters::

            net.forward_with_statistics(phi_k, x_query, net.batch_statistics(phi_k, x_support))

        The statistics are treated as data here; nothing differentiates through them.

        Parameters
        ----------
        phi : ndarray, shape (P,)
        X : ndarray, shape (n, d_0)
        statistics : list of (mean, var), one pair of (d_l,) arrays per hidden layer, var >= 0,
            as returned by :meth:`batch_statistics`.
        """
        self._require_batch_norm("forward_with_statistics")
        X = validate.float_array("X", X, 2, (None, self.sizes[0]))
        checked = batchnorm.check_statistics("statistics", statistics, self.sizes[1:-1])
        return self._forward(*self._split(phi), X, checked)[0][-1]

    def _require_batch_norm(self, method):
        if not self.batch_norm:
            raise ValueError(f"{method} needs a network built with batch_norm=True; {self!r} has no "
                             "batch norm (use forward)")  # fmt: skip

    # ------------------------------------------------------------------ backward (VJP)
    def loss_and_grad(self, phi, X, y, loss="mse"):
        """Loss and its exact gradient by backpropagation, eq. (1.2); with batch norm eq. (9.2).

        Parameters
        ----------
        phi : ndarray, shape (P,)
        X : ndarray, shape (n, d_0)
        y : ndarray, shape (n, d_L) for ``"mse"``; int ndarray, shape (n,) for ``"cross_entropy"``

        Returns
        -------
        (float, ndarray of shape (P,))
        """
        X, y = self.check_data(X, y, loss)
        layers, shifts = self._split(phi)
        a, _, zt, norm = self._forward(layers, shifts, X)
        fn = LOSSES[loss]
        grads, shift_grads, *_ = self._backward(layers, a, zt, norm, fn.grad(a[-1], y))
        return fn.value(a[-1], y), self._flat(grads, shift_grads)

    def _backward(self, layers, a, zt, norm, delta):
        """Per-layer gradients from delta_L = dL/dyhat, the shifts' gradients (None without batch
        norm), and every delta_l, e_l and dtilde_l = dL/dztilde_l."""
        L = len(layers)
        grads, deltas, es, dtildes = [None] * L, [None] * L, [None] * L, [None] * L
        for l in range(L - 1, -1, -1):
            W = layers[l][0]
            deltas[l] = delta
            grads[l] = (a[l].T @ delta, delta.sum(axis=0))
            if l > 0:
                es[l - 1] = delta @ W.T
                delta = self.sigma.d1(zt[l - 1]) * es[l - 1]  # dL/dztilde = delta_{l-1} without batch norm
                if norm:
                    dtildes[l - 1] = delta
                    delta = batchnorm.vjp(delta, *norm[l - 1])
        shift_grads = [d.sum(axis=0) for d in dtildes[:-1]] if norm else None
        return grads, shift_grads, deltas, es, dtildes

    @staticmethod
    def _flat(layer_parts, shift_parts):
        """phi's layout: ``flatten`` as ever without batch norm, the shifts' parts appended with it."""
        if shift_parts is None:
            return flatten(layer_parts)
        return params.flatten_with_shifts(layer_parts, shift_parts)

    # ------------------------------------------------------------------ R-operator (HVP)
    def hvp(self, phi, X, y, v, loss="mse") -> np.ndarray:
        """Exact Hessian-vector product H v = d^2 L / d phi^2 . v by the R-operator, eq. (2.3).

        One forward, one backward and one R-pass: about the cost of two gradients,
        and the (P, P) Hessian is never formed. With batch norm, the R-pass goes through
        the batch statistics, eqs. (9.3) and (9.4).

        Parameters
        ----------
        phi, v : ndarray, shape (P,)
        X, y : a batch, as in :meth:`loss_and_grad`

        Returns
        -------
        ndarray, shape (P,)
        """
        X, y = self.check_data(X, y, loss)
        layers, shifts = self._split(phi)
        dirs, dir_shifts = self._split(v, "v")
        a, _, zt, norm = self._forward(layers, shifts, X)
        fn = LOSSES[loss]
        _, _, deltas, es, dtildes = self._backward(layers, a, zt, norm, fn.grad(a[-1], y))
        # R-forward: R{ztilde_l} (= R{z_l} without batch norm) and R{a_l}, with R{a_0} = 0
        last = len(layers) - 1
        Ra, Rzt, Rnorm = [np.zeros_like(X)], [], []
        for l, ((W, _), (V, c)) in enumerate(zip(layers, dirs, strict=True)):
            Rz = Ra[-1] @ W + a[l] @ V + c
            if norm and l < last:
                Rnorm.append(batchnorm.rop(Rz, *norm[l]))  # (R{zhat_l}, R{r_l})
                Rz = Rnorm[-1][0] + dir_shifts[l]
            Rzt.append(Rz)
            Ra.append(self.sigma.d1(zt[l]) * Rzt[-1] if l < last else Rzt[-1])
        # R-backward, starting from the output-space Hessian-vector product
        Rdelta = fn.hvp(a[-1], y, Rzt[-1])
        out, R_shift = [None] * len(layers), [None] * last
        for l in range(last, -1, -1):
            W, V = layers[l][0], dirs[l][0]
            out[l] = (Ra[l].T @ deltas[l] + a[l].T @ Rdelta, Rdelta.sum(axis=0))
            if l > 0:
                Re = Rdelta @ W.T + deltas[l] @ V.T
                Rdelta = self.sigma.d2(zt[l - 1]) * Rzt[l - 1] * es[l - 1] + self.sigma.d1(zt[l - 1]) * Re
                if norm:
                    R_shift[l - 1] = Rdelta.sum(axis=0)
                    Rdelta = batchnorm.rop_vjp(dtildes[l - 1], Rdelta, *norm[l - 1], *Rnorm[l - 1])
        return self._flat(out, R_shift if norm else None)

    def hessian(self, phi, X, y, loss="mse") -> np.ndarray:
        """The explicit Hessian, shape (P, P), built column by column from :meth:`hvp`.

        For small networks only (tests and tutorials): refuses P > MAX_HESSIAN_PARAMS.
        """
        if self.num_params > MAX_HESSIAN_PARAMS:
            raise ValueError(
                f"hessian: this network has P = {self.num_params} parameters; forming the "
                f"({self.num_params}, {self.num_params}) Hessian is refused above P = "
                f"{MAX_HESSIAN_PARAMS}. Use hvp(phi, X, y, v) instead."
            )
        eye = np.eye(self.num_params)
        H = np.stack([self.hvp(phi, X, y, eye[j], loss) for j in range(self.num_params)], axis=1)
        return H  # symmetric up to round-off (~1e-16 relative); tests check that
