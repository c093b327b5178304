"""The demo's Meta-SGD and ANIL entries: each trains with its own algorithm and adapts as it was trained."""

from __future__ import annotations

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.anil import head_mask
from tinymeta.demo import inits, store
from tinymeta.metasgd import metasgd_trajectory

pytestmark = pytest.mark.fast

QUICK = store.QuickTraining(iterations=3, backend="numpy")
X, Y = np.linspace(-4, 4, 5)[:, None], np.sin(np.linspace(-4, 4, 5))[:, None]


def test_metasgd_trains_phi_and_steps_and_adapts_with_the_learned_steps(tmp_path):
    trained = store.load_or_train(["metasgd"], tmp_path, QUICK, log=lambda line: None)["metasgd"]
    net, P = trained.net, trained.net.num_params
    assert trained.params.shape == (2 * P,) and not np.all(trained.params[P:] == QUICK.alpha)  # steps moved
    rows = trained.init.adapt(net, trained.params, X, Y, 0.5, 3)  # the slider's 0.5 does not apply
    want = metasgd_trajectory(net, trained.params[:P], trained.params[P:], X, Y, 3)[0]
    np.testing.assert_array_equal(rows, want)
    again = store.load_or_train(["metasgd"], tmp_path, QUICK, log=lambda line: None)["metasgd"]
    np.testing.assert_array_equal(again.params, trained.params)  # cached [phi; alphas] read back
    with pytest.raises(ValueError, match=r"must have shape \(3522,\)"):
        trained.init.adapt(net, trained.params[:P], X, Y, 0.01, 1)


def test_anil_adapts_the_head_only():
    entry, net = inits.get("anil"), tm.MLP([1, 40, 40, 1], "relu")
    phi = net.init(0)
    rows = entry.adapt(net, phi, X, Y, 0.05, 2)
    body = ~head_mask(net).astype(bool)
    assert rows.shape == (3, net.num_params) and np.array_equal(rows[-1, body], phi[body])
    assert not np.array_equal(rows[-1], phi)
    assert [name for name in inits.REGISTRY][-2:] == ["metasgd", "anil"]


def test_from_params_takes_metasgd_phi_and_steps_and_names_a_wrong_size():
    net = tm.MLP([1, 40, 40, 1], "relu")
    P, phi = net.num_params, net.init(0)
    given = store.from_params({"metasgd": np.concatenate([phi, np.full(P, 0.01)]), "maml": phi})
    assert list(given) == ["maml", "metasgd"] and given["metasgd"].params.shape == (2 * P,)
    rows = given["metasgd"].init.adapt(net, given["metasgd"].params, X, Y, 0.5, 2)
    np.testing.assert_array_equal(rows, metasgd_trajectory(net, phi, np.full(P, 0.01), X, Y, 2)[0])
    with pytest.raises(ValueError, match=r"params\[.metasgd.\] \(Meta-SGD: 2 vectors.*expected \(3522\)"):
        store.from_params({"metasgd": phi})  # phi alone: the learned step sizes are missing
    with pytest.raises(ValueError, match=r"params\[.maml.\].*expected \(1761\)"):
        store.from_params({"maml": np.concatenate([phi, phi])})
    with pytest.raises(ValueError, match=r"params\['maml'\].*(non-finite|NaN)"):
        store.from_params({"maml": np.full(P, np.nan)})
