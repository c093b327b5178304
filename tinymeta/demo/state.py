"""What the demo shows, as an immutable record, and the pure functions that change and evaluate it.

Every control of the window is one function ``DemoState -> DemoState`` here (add or remove a point,
draw a new task, choose the initialisation, set alpha or the number of steps, step, reset); the
window only calls them and redraws. :func:`adaptation` computes what is drawn: the prediction after
each step and the query MSE, measured on :data:`QUERY_POINTS` evenly spaced points of the true curve.
Nothing here imports matplotlib, so tests drive the demo's logic directly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import validate
from ..inner import DivergenceError
from ..tasks import Sine

X_RANGE = (-5.0, 5.0)
"""The x interval of the sine tasks (Finn et al. 2017, Sec. 5.1), and of the window's x axis."""
Y_RANGE = (-6.0, 6.0)
"""The window's fixed y axis: amplitudes reach 5; fixed so that clicks land where the cursor is."""
QUERY_POINTS = 100
"""The query set: this many evenly spaced x on :data:`X_RANGE`, labelled by the true curve."""
PLOT_POINTS = 300
EXPLODED = 100.0  # a final query MSE this many times the initial one (and above 1) is called overshooting


@dataclass(frozen=True)
class DemoState:
    """One frame of the demo.

    Attributes
    ----------
    amplitude, phase : float, the true curve y = amplitude sin(x - phase)
    x, y : tuple of float, the support points (what the network adapts on)
    init : str, the initialisation shown (a key of the available initialisations)
    alpha : float > 0, the test-time inner step size
    steps : int >= 1, the length of the adaptation (the steps slider)
    shown : int in [0, steps], the step whose prediction is shown
    compare : bool, all initialisations side by side
    remove_mode : bool, a left click removes the nearest point instead of adding one
    """

    amplitude: float
    phase: float
    x: tuple = ()
    y: tuple = ()
    init: str = "maml"
    alpha: float = 0.01
    steps: int = 10
    shown: int = 0
    compare: bool = False
    remove_mode: bool = False

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise ValueError(f"x and y must have the same length; got {len(self.x)} and {len(self.y)}")
        validate.positive("alpha", self.alpha)
        validate.count("steps", self.steps, minimum=1)
        if not (0 <= validate.count("shown", self.shown) <= self.steps):
            raise ValueError(f"shown must be in [0, steps={self.steps}]; got {self.shown}")

    def support(self):
        """The support points as arrays of shape (K, 1)."""
        return np.reshape(np.asarray(self.x, float), (-1, 1)), np.reshape(np.asarray(self.y, float), (-1, 1))

    def truth(self, x):
        """The true curve at ``x``."""
        return self.amplitude * np.sin(np.asarray(x, float) - self.phase)


def start_state(
    init, *, seed=0, task=None, points=None, num_points=5, alpha=0.01, steps=10, shown=0, compare=False
) -> DemoState:
    """The first frame: a task drawn with ``np.random.default_rng(seed)`` and ``num_points`` points on it.

    ``task=(amplitude, phase)`` replaces the drawn curve (the points move onto it); ``points=(x, y)``
    replaces the drawn points (they may lie off the curve: they are what the network sees).
    """
    amp, phase, x, y = random_task(np.random.default_rng(validate.count("seed", seed)), num_points)
    if task is not None:
        amp, phase = (_finite(name, v) for name, v in zip(("amplitude", "phase"), task, strict=True))
        y = tuple((amp * np.sin(np.asarray(x) - phase)).tolist())
    if points is not None:
        x, y = (tuple(_finite(name, v) for v in values) for name, values in zip("xy", points, strict=True))
    return DemoState(amp, phase, x, y, init=init, alpha=alpha, steps=steps, shown=shown, compare=compare)


def random_task(rng, num_points):
    """``(amplitude, phase, x, y)`` of a task drawn from the MAML paper's sine family, with
    ``num_points`` support points on the true curve."""
    amp, phase, xs, ys, _, _ = Sine(K=validate.count("num_points", num_points, minimum=1), K_query=1) \
        .sample_arrays(rng, 1)  # fmt: skip
    return float(amp[0]), float(phase[0]), tuple(xs[0, :, 0].tolist()), tuple(ys[0, :, 0].tolist())


def new_task(state, rng, num_points=5) -> DemoState:
    """A new random task with ``num_points`` support points; the adaptation restarts at step 0."""
    amp, phase, x, y = random_task(validate.rng(rng), num_points)
    return dataclasses.replace(state, amplitude=amp, phase=phase, x=x, y=y, shown=0)


def add_point(state, x, y) -> DemoState:
    """One more support point at (x, y)."""
    x, y = _finite("x", x), _finite("y", y)
    return dataclasses.replace(state, x=state.x + (x,), y=state.y + (y,))


def remove_nearest(state, x, y, radius=0.05) -> DemoState:
    """Without the support point nearest to (x, y), if it lies within ``radius`` (a fraction of the
    axes, measured on :data:`X_RANGE` x :data:`Y_RANGE`); otherwise ``state`` unchanged."""
    if not state.x:
        return state
    dx = (np.asarray(state.x) - _finite("x", x)) / (X_RANGE[1] - X_RANGE[0])
    dy = (np.asarray(state.y) - _finite("y", y)) / (Y_RANGE[1] - Y_RANGE[0])
    dist = np.hypot(dx, dy)
    i = int(np.argmin(dist))
    if dist[i] > radius:
        return state
    return dataclasses.replace(state, x=state.x[:i] + state.x[i + 1 :], y=state.y[:i] + state.y[i + 1 :])


def click(state, x, y, button) -> DemoState:
    """A mouse click at (x, y): button 1 adds a point (removes one in remove mode), button 3 removes."""
    if button == 3 or (button == 1 and state.remove_mode):
        return remove_nearest(state, x, y)
    if button == 1:
        return add_point(state, x, y)
    return state


def clear_points(state) -> DemoState:
    return dataclasses.replace(state, x=(), y=())


def select(state, init) -> DemoState:
    """Show initialisation ``init``; the step shown is kept, so two initialisations compare at equal steps."""
    return dataclasses.replace(state, init=init)


def set_alpha(state, alpha) -> DemoState:
    return dataclasses.replace(state, alpha=validate.positive("alpha", alpha))


def set_steps(state, steps) -> DemoState:
    """A new adaptation length; the step shown is clipped to it."""
    steps = validate.count("steps", steps, minimum=1)
    return dataclasses.replace(state, steps=steps, shown=min(state.shown, steps))


def step(state) -> DemoState:
    """One more step shown (at most ``steps``)."""
    return dataclasses.replace(state, shown=min(state.shown + 1, state.steps))


def reset(state) -> DemoState:
    """Back to step 0, the initialisation itself."""
    return dataclasses.replace(state, shown=0)


def show_step(state, shown) -> DemoState:
    return dataclasses.replace(state, shown=int(shown))


def toggle_compare(state) -> DemoState:
    return dataclasses.replace(state, compare=not state.compare)


def toggle_remove_mode(state) -> DemoState:
    return dataclasses.replace(state, remove_mode=not state.remove_mode)


class Adaptation(NamedTuple):
    """What one initialisation does on the state's support points.

    Attributes
    ----------
    x : ndarray, shape (PLOT_POINTS,), where the curves are drawn
    predictions : ndarray, shape (n + 1, PLOT_POINTS), the prediction after 0 .. n steps
    mse : ndarray, shape (n + 1,), the query MSE after 0 .. n steps
    problem : str or None, why n < steps (no support points, or the steps diverged)
    """

    x: np.ndarray
    predictions: np.ndarray
    mse: np.ndarray
    problem: str | None


def query_mse(state, net, phi):
    """Mean squared error of ``net`` at ``phi`` on the query set: the true curve at
    :data:`QUERY_POINTS` evenly spaced x on :data:`X_RANGE`."""
    xq = np.linspace(*X_RANGE, QUERY_POINTS)
    return float(np.mean((net.forward(phi, xq[:, None])[:, 0] - state.truth(xq)) ** 2))


def adaptation(state, trained) -> Adaptation:
    """Adapt ``trained`` (a :class:`~tinymeta.demo.inits.Trained`) on the state's support points for
    ``state.steps`` steps of size ``state.alpha``, with the initialisation's own ``adapt``.

    With no support points only step 0 is computed; if a step diverges, the steps before it are
    returned and ``problem`` says which step and what to change.
    """
    xs, ys = state.support()
    if len(xs) == 0:
        traj = trained.init.adapt(trained.net, trained.params, np.zeros((1, 1)), np.zeros((1, 1)), 1.0, 0)
        return _evaluate(state, trained.net, traj, "no support points: click to add some")
    traj = _try_adapt(trained, xs, ys, state.alpha, state.steps)
    if traj is None:
        traj = _try_adapt(trained, xs, ys, state.alpha, _longest_finite(state, trained, xs, ys))
    ad = _evaluate(state, trained.net, traj, None)
    bad = np.flatnonzero(~np.isfinite(ad.mse))
    n = len(ad.mse) if bad.size == 0 else int(bad[0])  # steps 0 .. n-1 are finite
    if n <= state.steps:
        problem = f"alpha {state.alpha:.3g} diverges at step {n}: lower it"
        return Adaptation(ad.x, ad.predictions[:n], ad.mse[:n], problem)
    if ad.mse[-1] > EXPLODED * max(ad.mse[0], 1.0):
        return ad._replace(problem=f"alpha {state.alpha:.3g} overshoots (the loss grows): lower it")
    return ad


def _evaluate(state, net, traj, problem):
    x = np.linspace(*X_RANGE, PLOT_POINTS)
    with np.errstate(all="ignore"):
        predictions = np.stack([net.forward(phi, x[:, None])[:, 0] for phi in traj])
        mse = np.array([query_mse(state, net, phi) for phi in traj])
    return Adaptation(x, predictions, mse, problem)


def _try_adapt(trained, xs, ys, alpha, steps):
    """The trajectory of ``steps`` steps, or None if a step diverges (reported in ``problem``, not as
    a warning)."""
    try:
        with np.errstate(all="ignore"):
            traj = trained.init.adapt(trained.net, trained.params, xs, ys, alpha, steps)
    except DivergenceError:
        return None
    return traj if np.all(np.isfinite(traj)) else None


def _longest_finite(state, trained, xs, ys):
    """The largest n < steps whose n-step adaptation is finite (bisection: steps are cheap, a few calls)."""
    lo, hi = 0, state.steps  # lo succeeds (0 steps), hi fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        ok = _try_adapt(trained, xs, ys, state.alpha, mid)
        lo, hi = (mid, hi) if ok is not None else (lo, mid)
    return lo


def _finite(name, value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a finite number; got {type(value).__name__} {value!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    return value
