"""Hostile inputs to the library: the same bad input gives the same error type and message in both backends,
and the training loop refuses what it cannot do before doing anything.

Every case names the argument in its message; a case passes only if both backends raise the same
exception type with the same text (the kernels run the NumPy reference's own validators).
"""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import MLP, Adam, DivergenceError, Sine, Task, TaskBatch, TrainConfig, meta_train
from tinymeta.backends import batch_functions, default_backend

pytestmark = pytest.mark.fast

NET = MLP([1, 8, 8, 1], "tanh")
CE_NET = MLP([2, 6, 3], "tanh")


def sine_batch(B=3, K=5, seed=0):
    return TaskBatch(*Sine(K, 4).sample_arrays(np.random.default_rng(seed), B)[2:])


def ce_batch(B=2, seed=0):
    rng = np.random.default_rng(seed)
    return TaskBatch(rng.standard_normal((B, 6, 2)), rng.integers(0, 3, (B, 6)),
                     rng.standard_normal((B, 4, 2)),
                     rng.integers(0, 3, (B, 4)))  # fmt: skip


PHI, CE_PHI = NET.init(0), CE_NET.init(0)
GOOD = sine_batch()
STATE = Adam(1e-3).init(NET.num_params)


def _replace(batch, **arrays):
    return batch._replace(**arrays)


nan_xs = GOOD.xs.copy()
nan_xs[1, 2, 0] = np.nan
inf_yq = GOOD.yq.copy()
inf_yq[0, 0, 0] = np.inf
bad_labels = ce_batch().ys.copy()
bad_labels[1, 0] = 3

# (name, algorithm, keyword overrides): everything else is a valid call
CASES = [
    ("nan in x_support", "maml", dict(batch=_replace(GOOD, xs=nan_xs))),
    ("inf in y_query", "fomaml", dict(batch=_replace(GOOD, yq=inf_yq))),
    ("nan in x_support (reptile)", "reptile", dict(batch=_replace(GOOD, xs=nan_xs))),
    ("label out of range", "maml", dict(net=CE_NET, phi=CE_PHI, batch=ce_batch()._replace(ys=bad_labels),
                                        loss="cross_entropy")),
    ("float labels", "maml", dict(net=CE_NET, phi=CE_PHI, batch=ce_batch()._replace(ys=ce_batch().ys * 1.0),
                                  loss="cross_entropy")),
    ("empty batch", "maml", dict(batch=TaskBatch(*(a[:0] for a in GOOD)))),
    ("empty batch (reptile)", "reptile", dict(batch=TaskBatch(*(a[:0] for a in GOOD)))),
    ("a tuple, not a TaskBatch", "maml", dict(batch=tuple(GOOD))),
    ("a list of Task", "reptile", dict(batch=[GOOD.task(0)])),
    ("batch.xq with fewer tasks", "maml", dict(batch=_replace(GOOD, xq=GOOD.xq[:2]))),
    ("wrong input width", "maml", dict(batch=_replace(GOOD, xs=np.zeros((3, 5, 2))))),
    ("phi too short", "maml", dict(phi=PHI[:-1])),
    ("phi with nan", "reptile", dict(phi=np.where(np.arange(PHI.size) == 3, np.nan, PHI))),
    ("phi as a string", "fomaml", dict(phi="phi")),
    ("alpha = 0", "maml", dict(alpha=0.0)),
    ("alpha = nan", "reptile", dict(alpha=float("nan"))),
    ("alpha as a string", "maml", dict(alpha="0.1")),
    ("k = -1", "maml", dict(k=-1)),
    ("k = 1.5", "reptile", dict(k=1.5)),
    ("k = True", "fomaml", dict(k=True)),
    ("unknown loss", "maml", dict(loss="hinge")),
    ("net not an MLP", "maml", dict(net="net")),
    ("float inner_indices", "reptile", dict(inner_indices=np.zeros((3, 2, 2)))),
    ("inner_indices out of range", "reptile", dict(inner_indices=np.full((3, 2, 2), 5))),
    ("negative inner_indices", "reptile", dict(inner_indices=np.full((3, 2, 2), -1))),
    ("inner_indices of another k", "reptile", dict(inner_indices=np.zeros((3, 1, 2), np.int64))),
    ("empty mini-batches", "reptile", dict(inner_indices=np.zeros((3, 2, 0), np.int64))),
    ("adam state missing t", "reptile_adam", dict(adam_state={"m": STATE["m"], "v": STATE["v"]})),
    ("adam state negative v", "reptile_adam", dict(adam_state={**STATE, "v": STATE["v"] - 1.0})),
    ("adam state of another size", "reptile_adam", dict(adam_state=Adam(1e-3).init(5))),
    ("beta1 = 1", "reptile_adam", dict(beta1=1.0)),
    ("beta1 negative", "reptile_adam", dict(beta1=-0.1)),
    ("diverging inner loop", "maml", dict(alpha=1e6, k=3, batch=_replace(GOOD, ys=GOOD.ys * 1e200))),
    ("diverging query pass", "maml", dict(alpha=1e-3, k=1, batch=_replace(GOOD, yq=GOOD.yq * 1e300))),
    ("diverging Reptile", "reptile", dict(alpha=1e6, k=3, batch=_replace(GOOD, ys=GOOD.ys * 1e200))),
    ("diverging Reptile with Adam", "reptile_adam",
     dict(alpha=1e30, k=3, batch=_replace(GOOD, ys=GOOD.ys * 1e300))),
]  # fmt: skip


def call(backend, algo, over):
    kw = dict(net=NET, phi=PHI, batch=GOOD, alpha=0.05, k=2, loss="mse") | over
    fn = batch_functions(backend)[algo]
    args = (kw["net"], kw["phi"], kw["batch"], kw["alpha"], kw["k"])
    if algo == "reptile_adam":
        extra = {key: kw[key] for key in ("beta1", "inner_indices") if key in kw}
        return fn(*args, kw.get("adam_state", STATE), kw["loss"], **extra)
    if algo == "reptile":
        return fn(*args, kw["loss"], inner_indices=kw.get("inner_indices"))
    return fn(*args, kw["loss"])


def outcome(backend, algo, over):
    try:
        with np.errstate(all="ignore"):
            call(backend, algo, over)
    except Exception as e:  # noqa: BLE001 (the point is to compare whatever is raised)
        return type(e), str(e)
    return None, None


@pytest.mark.parametrize(("name", "algo", "over"), CASES, ids=[c[0] for c in CASES])
def test_both_backends_raise_the_same_error(name, algo, over):
    numpy_error, numba_error = outcome("numpy", algo, over), outcome("numba", algo, over)
    assert numpy_error[0] is not None, f"{name}: the reference accepted it"
    assert numpy_error == numba_error
    assert issubclass(numpy_error[0], (ValueError, TypeError, DivergenceError))


def test_valid_but_unusual_inputs_are_accepted_alike():
    """float32 data, uint8 mini-batch rows, lists: converted, same numbers in both backends."""
    cases = [("maml", dict(batch=TaskBatch(*(a.astype(np.float32) for a in GOOD)))),
             ("reptile", dict(inner_indices=np.zeros((3, 2, 2), np.uint8))),
             ("fomaml", dict(phi=list(PHI)))]  # fmt: skip
    for algo, over in cases:
        a, b = call("numpy", algo, over), call("numba", algo, over)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-15)  # the parity tolerance


def test_batch_norm_nets_run_alike_on_both_backends():
    net = MLP([1, 8, 1], "tanh", batch_norm=True)
    phi = net.init(0)
    a, b = call("numpy", "maml", dict(net=net, phi=phi)), call("numba", "maml", dict(net=net, phi=phi))
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-12 * np.abs(a[1]).max())  # parity tolerance


@pytest.mark.parametrize(("value", "expected"), [("", "numba"), ("  ", "numba"), ("numpy", "numpy")])
def test_an_empty_environment_variable_means_unset(monkeypatch, value, expected):
    monkeypatch.setenv("TINYMETA_BACKEND", value)
    assert default_backend() == expected


def test_a_garbage_backend_variable_is_named(monkeypatch):
    monkeypatch.setenv("TINYMETA_BACKEND", "cuda")
    with pytest.raises(ValueError, match=r"TINYMETA_BACKEND='cuda' is not a backend.*numpy.*numba"):
        meta_train(NET, Sine(), "maml", 2, alpha=0.01, k=1, progress=False)


CONFIG = dict(algo="maml", iterations=3, alpha=0.01, k=1, backend="numpy")
BAD_CONFIGS = [
    (dict(iterations=10**0 - 1), ValueError, "iterations must be an integer >= 1"),
    (dict(iterations=2.0), TypeError, "iterations must be an integer"),
    (dict(meta_batch=-3), ValueError, "meta_batch must be an integer >= 1"),
    (dict(time_budget=float("inf")), ValueError, "time_budget must be a finite number > 0"),
    (dict(eval_every_seconds=-1.0), ValueError, "eval_every_seconds must be a finite number > 0"),
    (dict(eval_steps=(0, -1)), ValueError, "each entry of steps must be an integer >= 0"),
    (dict(checkpoint_every=0), ValueError, "checkpoint_every must be an integer >= 1"),
    (dict(outer_optimizer={"name": "adam", "lr": -1.0}), ValueError, "lr must be a finite number > 0"),
    (dict(outer_optimizer={"name": "adam", "lr": 1e-3, "beta2": 1.5}), ValueError,
     r"beta2 must be in \[0, 1\)"),
    (dict(outer_optimizer={"name": "rmsprop", "lr": 1e-3}), TypeError, "outer_optimizer must be"),
    (dict(outer_optimizer={"name": "sgd", "lr": 1e-3, "momentum": 0.9}), TypeError, "unknown fields"),
    (dict(algo="reptile", k=2, epsilon=(0.5, 0.7)), ValueError, r"epsilon end must be in \[0, start=0.5\]"),
    (dict(algo="reptile", k=2, epsilon=(0.5, 0.1, 0.0)), ValueError, "a number or a \\(start, end\\) pair"),
    (dict(algo="reptile", k=2, eval_batch_size=5), ValueError, "eval_batch_size is used only with"),
    (dict(inner_batch_size=4), ValueError, "inner_batch_size is used only by algo='reptile'"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "error", "message"), BAD_CONFIGS)
def test_bad_configs_are_named(change, error, message):
    with pytest.raises(error, match=message):
        TrainConfig(**(CONFIG | change))


def test_a_config_read_back_is_checked_again():
    text = TrainConfig(**CONFIG).to_json().replace('"alpha": 0.01', '"alpha": -0.01')
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        TrainConfig.from_json(text)


def test_the_wrong_net_for_a_config_is_refused():
    from tinymeta import train

    config = TrainConfig(**CONFIG, net={"sizes": [1, 40, 40, 1], "activation": "relu"})
    with pytest.raises(ValueError, match="is not the config's"):
        train(NET, Sine(), config, progress=False)


def test_eval_tasks_of_the_wrong_shape_fail_before_training():
    bad = [Task(np.zeros((5, 2)), np.zeros((5, 1)), np.zeros((5, 2)), np.zeros((5, 1)))]
    with pytest.raises(ValueError, match=r"x_support has shape \(5, 2\); expected \(any, 1\)"):
        meta_train(NET, Sine(), "maml", 2, alpha=0.01, k=1, backend="numpy", progress=False, eval_tasks=bad)
