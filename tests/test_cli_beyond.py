"""`tinymeta sine --algo imaml|metasgd|anil`: each runs and writes the usual summary; settings are checked."""

from __future__ import annotations

import json

import pytest

from tinymeta import load_checkpoint
from tinymeta.cli import main

pytestmark = pytest.mark.fast

FAST = ["--backend", "numpy", "--eval-tasks", "8", "--no-progress"]


@pytest.fixture(scope="module")
def maml_keys(tmp_path_factory):
    out = tmp_path_factory.mktemp("maml") / "run"
    assert main(["sine", "--algo", "maml", "--iterations", "3", "--out", str(out), *FAST]) == 0
    return set(json.loads((out / "summary.json").read_text()))


@pytest.mark.parametrize(
    ("algo", "extra", "k", "settings"),
    [
        ("metasgd", [], 1, {}),
        ("anil", [], 1, {}),
        ("imaml", [], 1, {"lam": 50.0, "cg_iterations": 5, "tol": None}),  # the practical variant on ReLU
        ("imaml", ["--tol", "1e-6", "--activation", "tanh", "--lam", "4"], 0,
         {"lam": 4.0, "cg_iterations": None, "tol": 1e-6}),  # exact, on a smooth network
    ],
    ids=["metasgd", "anil", "imaml-practical", "imaml-exact"],
)  # fmt: skip
def test_each_new_algorithm_writes_the_usual_summary(algo, extra, k, settings, maml_keys, tmp_path):
    out = tmp_path / "run"
    assert main(["sine", "--algo", algo, "--iterations", "3", "--out", str(out), *extra, *FAST]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == maml_keys and summary["algo"] == algo and summary["k"] == k
    assert list(summary["mse_after_steps"]) == [str(s) for s in range(11)] and not summary["diverged"]
    assert {key: summary["config"][key] for key in settings} == settings
    assert (out / "sine.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    size = load_checkpoint(out / "checkpoint.npz").phi.size
    assert size == (2 if algo == "metasgd" else 1) * 1761  # Meta-SGD's checkpoint holds [phi; alphas]


def test_compare_all_trains_the_seven(tmp_path):
    out = tmp_path / "run"
    assert (
        main(["sine", "--algo", "anil", "--iterations", "2", "--out", str(out), "--compare", "all", *FAST])
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["compare"]) == sorted(
        ["maml", "fomaml", "reptile", "joint", "imaml", "metasgd", "anil"]
    )


REFUSED = [
    (["--algo", "imaml", "--tol", "1e-8"], "exact iMAML needs a smooth activation"),
    (["--algo", "maml", "--lam", "2"], "lam, tol and cg_iterations are iMAML's settings"),
    (
        ["--algo", "imaml", "--tol", "1e-8", "--cg-iterations", "3", "--activation", "tanh"],
        "pass one of the two",
    ),
    (["--algo", "imaml", "--tol", "2", "--activation", "tanh"], "tol must be a finite number in (0, 1)"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED)
def test_refused_settings_exit_2_with_one_line(args, message, capsys, tmp_path):
    assert main(["sine", *args, "--out", str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinymeta sine: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("algo", "extra", "k"), [("metasgd", [], 1), ("anil", [], 1), ("imaml", ["--k", "2"], 2)]
)
def test_omniglot_runs_each_new_algorithm(algo, extra, k, shared, tmp_path):
    from tinymeta.cli.omniglot import main as omniglot

    out = tmp_path / algo
    argv = ["--algo", algo, "--iterations", "2", "--test-tasks", "4", "--hidden", "16", "--backend", "numpy",
            "--data-dir", str(shared), "--out", str(out), "--no-progress", *extra]  # fmt: skip
    assert omniglot(argv) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["algo"] == algo and s["test_steps"] == k and 0.0 <= s["accuracy"] <= 1.0
    P = 784 * 16 + 16 + 16 * 5 + 5
    assert load_checkpoint(out / "checkpoint.npz").phi.shape == ((2 if algo == "metasgd" else 1) * P,)


def test_omniglot_refuses_exact_imaml_on_its_relu_network(capsys, tmp_path):
    from tinymeta.cli.omniglot import main as omniglot

    assert omniglot(["--algo", "imaml", "--tol", "1e-8", "--out", str(tmp_path / "o")]) == 2
    assert "exact iMAML needs a smooth activation" in capsys.readouterr().err


def test_the_figure_marks_a_diverged_adaptation_instead_of_failing():
    import numpy as np
    from matplotlib.figure import Figure

    from tinymeta import MLP, Sine
    from tinymeta.plots import plot_adaptation

    net, task = MLP([1, 8, 1], "tanh"), Sine().sample(np.random.default_rng(0), 1)[0]
    phi = net.init(0)
    diverged = lambda p, t, steps: np.array([p if s == 0 else np.full(p.size, np.nan) for s in steps])  # noqa: E731
    ax = Figure().subplots()
    plot_adaptation(ax, net, phi, task, 0.01, 1.0, 0.0, steps=(0, 1), adapt=diverged)
    assert "after 1 step: diverged" in [t.get_text() for t in ax.get_legend().get_texts()]
