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
"""

from __future__ import annotations

import numpy as np

from . import validate
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

    Examples
    --------
    >>> net = MLP([1, 40, 40, 1], "relu")
    >>> phi = net.init(0)
    >>> net.forward(phi, np.zeros((5, 1))).shape
    (5, 1)
    """

    def __init__(self, sizes, activation="tanh"):
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
        self.num_params = num_params(self.sizes)

    def __repr__(self):
        return f"MLP({list(self.sizes)}, activation={self.activation!r})"

    # ------------------------------------------------------------------ parameters
    def init(self, rng) -> np.ndarray:
        """Initial parameters, shape (P,), float64.

        Every W_l and b_l is drawn from U(-1/sqrt(d_{l-1}), 1/sqrt(d_{l-1})), layer by
        layer, W before b (PyTorch's ``nn.Linear`` default, so a seed gives the same
        start as the reference implementations). ``rng`` is a ``np.random.Generator``
        or an int seed.
        """
        rng = validate.rng(rng)
        layers = []
        for d_in, d_out in layer_shapes(self.sizes):
            bound = 1.0 / np.sqrt(d_in)
            layers.append((rng.uniform(-bound, bound, (d_in, d_out)), rng.uniform(-bound, bound, d_out)))
        return flatten(layers)

    def unflatten(self, phi):
        """Per-layer ``[(W_l, b_l)]`` views into ``phi`` (see :func:`tinymeta.params.unflatten`)."""
        return unflatten(self.sizes, self.check_phi(phi))

    def check_phi(self, phi, name="phi") -> np.ndarray:
        return validate.float_array(name, phi, 1, (self.num_params,))

    def check_data(self, X, y, loss, names=("X", "y")):
        """Validate a batch ``(X, y)`` for ``loss``; returns float64 X and typed y.

        ``names`` are the argument names used in error messages.
        """
        validate.one_of("loss", loss, LOSSES)
        x_name, y_name = names
        X = validate.float_array(x_name, X, 2, (None, self.sizes[0]))
        if X.shape[0] == 0:
            raise ValueError(f"{x_name} has no rows (shape {X.shape}); a loss needs at least one example")
        if loss == "mse":
            y = validate.float_array(y_name, y, 2, (X.shape[0], self.sizes[-1]))
        else:
            y = validate.label_array(y_name, y, X.shape[0], self.sizes[-1])
        return X, y

    # ------------------------------------------------------------------ forward
    def forward(self, phi, X) -> np.ndarray:
        """Network output yhat, shape (n, d_L), for inputs ``X`` of shape (n, d_0). Eq. (1.1)."""
        X = validate.float_array("X", X, 2, (None, self.sizes[0]))
        return self._forward(self.unflatten(phi), X)[0][-1]

    def _forward(self, layers, X):
        """Pre-activations z_l and activations a_l of every layer (a_0 = X, a_L = z_L = yhat)."""
        a, z = [X], []
        for l, (W, b) in enumerate(layers):
            z.append(a[-1] @ W + b)
            a.append(self.sigma.f(z[-1]) if l < len(layers) - 1 else z[-1])
        return a, z

    def loss(self, phi, X, y, loss="mse") -> float:
        """L(phi) on the batch ``(X, y)`` (conventions in :mod:`tinymeta.losses`)."""
        X, y = self.check_data(X, y, loss)
        return LOSSES[loss].value(self.forward(phi, X), y)

    # ------------------------------------------------------------------ backward (VJP)
    def loss_and_grad(self, phi, X, y, loss="mse"):
        """Loss and its exact gradient by backpropagation, eq. (1.2).

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
        layers = self.unflatten(phi)
        a, z = self._forward(layers, X)
        fn = LOSSES[loss]
        return fn.value(a[-1], y), flatten(self._backward(layers, a, z, fn.grad(a[-1], y))[0])

    def _backward(self, layers, a, z, delta):
        """Per-layer gradients from delta_L = dL/dyhat; also returns every delta_l and e_l."""
        grads, deltas, es = [None] * len(layers), [None] * len(layers), [None] * len(layers)
        for l in range(len(layers) - 1, -1, -1):
            W = layers[l][0]
            deltas[l] = delta
            grads[l] = (a[l].T @ delta, delta.sum(axis=0))
            if l > 0:
                es[l - 1] = delta @ W.T
                delta = self.sigma.d1(z[l - 1]) * es[l - 1]
        return grads, deltas, es

    # ------------------------------------------------------------------ R-operator (HVP)
    def hvp(self, phi, X, y, v, loss="mse") -> np.ndarray:
        """Exact Hessian-vector product H v = d^2 L / d phi^2 . v by the R-operator, eq. (2.3).

        One forward, one backward and one R-pass: about the cost of two gradients,
        and the (P, P) Hessian is never formed.

        Parameters
        ----------
        phi, v : ndarray, shape (P,)
        X, y : a batch, as in :meth:`loss_and_grad`

        Returns
        -------
        ndarray, shape (P,)
        """
        X, y = self.check_data(X, y, loss)
        layers = self.unflatten(phi)
        dirs = unflatten(self.sizes, self.check_phi(v, "v"))
        a, z = self._forward(layers, X)
        fn = LOSSES[loss]
        _, deltas, es = self._backward(layers, a, z, fn.grad(a[-1], y))
        # R-forward: R{z_l} and R{a_l}, with R{a_0} = 0
        Ra, Rz = [np.zeros_like(X)], []
        for l, ((W, _), (V, c)) in enumerate(zip(layers, dirs, strict=True)):
            Rz.append(Ra[-1] @ W + a[l] @ V + c)
            Ra.append(self.sigma.d1(z[l]) * Rz[-1] if l < len(layers) - 1 else Rz[-1])
        # R-backward, starting from the output-space Hessian-vector product
        Rdelta = fn.hvp(a[-1], y, Rz[-1])
        out = [None] * len(layers)
        for l in range(len(layers) - 1, -1, -1):
            W, V = layers[l][0], dirs[l][0]
            out[l] = (Ra[l].T @ deltas[l] + a[l].T @ Rdelta, Rdelta.sum(axis=0))
            if l > 0:
                Re = Rdelta @ W.T + deltas[l] @ V.T
                Rdelta = self.sigma.d2(z[l - 1]) * Rz[l - 1] * es[l - 1] + self.sigma.d1(z[l - 1]) * Re
        return flatten(out)

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
