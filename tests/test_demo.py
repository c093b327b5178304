"""The sine demo: its pure state functions, what the window draws after each callback (lines, the MSE
shown against an independent computation), the cache of initialisations, run directories, the CLI
and the notebook fallback. Everything runs on the Agg canvas with injected or 2-iteration
initialisations, so the file takes seconds."""

from __future__ import annotations

import dataclasses
import os
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backend_bases import MouseEvent  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import tinymeta as tm  # noqa: E402
from tinymeta.cli.demo import main  # noqa: E402
from tinymeta.demo import inits, notebook, store  # noqa: E402
from tinymeta.demo import state as st  # noqa: E402
from tinymeta.demo.app import FIGSIZE, DemoApp  # noqa: E402

NET = tm.MLP([1, 40, 40, 1], "relu")
NAMES = ("maml", "fomaml", "reptile", "joint")
QUICK = store.QuickTraining(iterations=2, backend="numpy")


@pytest.fixture(scope="module")
def trained():
    """Four different initialisations, injected directly (what a tutorial that has trained them does)."""
    return store.from_params({name: NET.init(i) for i, name in enumerate(NAMES)})


def independent_mse(phi, state, steps, alpha=None):
    """The query MSE after ``steps`` SGD steps, computed without the demo's code."""
    x = np.asarray(state.x, float)[:, None]
    y = np.asarray(state.y, float)[:, None]
    phi_s = tm.adapt_trajectory(NET, phi, x, y, state.alpha if alpha is None else alpha, steps)[-1]
    xq = np.linspace(-5.0, 5.0, 100)
    truth = state.amplitude * np.sin(xq - state.phase)
    return float(np.mean((NET.forward(phi_s, xq[:, None])[:, 0] - truth) ** 2))


def shown_mse(ax):
    """The number in the MSE text of a fit panel."""
    (text,) = [t for t in ax.texts if t.get_gid() == "mse"]
    return float(re.search(r": (\S+)$", text.get_text()).group(1))


def make_app(trained, **kw):
    """The demo on a figure whose canvas draws nothing (fast); FigureCanvasAgg(fig).draw() renders it."""
    fig = Figure(figsize=FIGSIZE)
    state = st.start_state("maml", seed=3, num_points=5, steps=10, **kw)
    return DemoApp(fig, trained, state, np.random.default_rng(0), num_points=5)


def press(app, x, y, button):
    ax = app.fit_axes[0]
    px, py = ax.transData.transform((x, y))
    app.fig.canvas.callbacks.process("button_press_event", MouseEvent("button_press_event", app.fig.canvas,
                                                                      px, py, button=button))  # fmt: skip


# ---------------------------------------------------------------------------------------- pure state
@pytest.mark.fast
def test_state_functions_add_remove_step_and_clip():
    s = st.start_state("maml", seed=0, num_points=3, steps=4)
    assert len(s.x) == 3 and s.shown == 0
    s = st.add_point(s, 1.0, 2.0)
    assert s.x[-1] == 1.0 and s.y[-1] == 2.0 and len(s.x) == 4
    assert st.remove_nearest(s, 4.9, -5.9) == s  # nothing within the radius: unchanged
    assert len(st.remove_nearest(s, 1.1, 2.1).x) == 3
    assert len(st.click(s, 1.05, 2.0, 3).x) == 3  # right click removes
    assert len(st.click(st.toggle_remove_mode(s), 1.05, 2.0, 1).x) == 3  # remove mode: left click too
    assert len(st.click(s, 0.0, 0.0, 1).x) == 5
    for _ in range(6):
        s = st.step(s)
    assert s.shown == 4  # never past the last step
    assert st.set_steps(s, 2).shown == 2 and st.reset(s).shown == 0
    with pytest.raises(ValueError, match="alpha"):
        st.set_alpha(s, -1.0)
    with pytest.raises(ValueError, match="x must be a finite number; got nan"):
        st.add_point(s, float("nan"), 0.0)


@pytest.mark.fast
def test_adaptation_matches_an_independent_computation(trained):
    s = dataclasses.replace(st.start_state("fomaml", seed=1, steps=6), alpha=0.02)
    ad = st.adaptation(s, trained["fomaml"])
    assert ad.problem is None and ad.predictions.shape == (7, st.PLOT_POINTS)
    for k in (0, 1, 6):
        assert ad.mse[k] == pytest.approx(independent_mse(trained["fomaml"].params, s, k), rel=1e-12)


@pytest.mark.fast
def test_a_diverging_step_size_is_reported_not_raised(trained):
    s = dataclasses.replace(st.start_state("maml", seed=1, steps=30), alpha=50.0)
    ad = st.adaptation(s, trained["maml"])
    assert "lower it" in ad.problem and np.all(np.isfinite(ad.mse))
    assert st.adaptation(st.clear_points(s), trained["maml"]).problem.startswith("no support points")


# ---------------------------------------------------------------------------------------- the window
@pytest.mark.fast
def test_click_step_reset_draw_what_they_should(trained):
    app = make_app(trained)
    ax = app.fit_axes[0]
    assert len(ax.lines) == 2  # truth and step 0
    assert shown_mse(ax) == pytest.approx(independent_mse(trained["maml"].params, app.state, 0), rel=1e-3)
    press(app, 2.0, 1.5, 1)  # left click: one more point, at the click
    assert len(app.state.x) == 6 and ax.collections[0].get_offsets().shape == (6, 2)
    assert app.state.x[-1] == pytest.approx(2.0, abs=1e-9) and app.state.y[-1] == pytest.approx(1.5, abs=1e-9)
    for _ in range(3):
        app.on_step()
    assert len(ax.lines) == 3 + 2 and ax.lines[-1].get_gid() == "step 3"
    assert shown_mse(ax) == pytest.approx(independent_mse(trained["maml"].params, app.state, 3), rel=1e-3)
    (curve,) = app.mse_ax.lines
    np.testing.assert_allclose(curve.get_xdata(), [0, 1, 2, 3])
    assert curve.get_ydata()[-1] == pytest.approx(independent_mse(trained["maml"].params, app.state, 3))
    press(app, 2.0, 1.5, 3)  # right click on it: removed
    assert len(app.state.x) == 5
    app.on_reset()
    assert app.state.shown == 0 and len(ax.lines) == 2
    FigureCanvasAgg(app.fig).draw()  # and it renders


@pytest.mark.fast
def test_switching_initialisation_and_sliders_update_the_mse_shown(trained):
    app = make_app(trained)
    app.on_step()
    app.on_step()
    app.radio.set_active(2)  # Reptile, through the widget
    ax = app.fit_axes[0]
    assert app.state.init == "reptile" and ax.get_title().startswith("Reptile: step 2 of 10")
    assert shown_mse(ax) == pytest.approx(independent_mse(trained["reptile"].params, app.state, 2), rel=1e-3)
    app.alpha_slider.set_val(np.log10(0.03))
    assert app.state.alpha == pytest.approx(0.03) and app.alpha_slider.valtext.get_text() == "0.03"
    assert shown_mse(ax) == pytest.approx(independent_mse(trained["reptile"].params, app.state, 2), rel=1e-3)
    app.steps_slider.set_val(7)
    for _ in range(9):
        app.on_step()
    assert app.state.steps == 7 and app.state.shown == 7 and len(ax.lines) == 9
    app.steps_slider.set_val(4)  # shorter than the step shown: clipped
    assert app.state.shown == 4 and len(ax.lines) == 6 and app.mse_ax.get_xlim()[1] == pytest.approx(4.3)


@pytest.mark.fast
def test_play_runs_to_the_last_step_and_stops(trained):
    app = make_app(trained)
    app.steps_slider.set_val(3)
    app.on_play()
    assert app.playing and app.buttons["play"].label.get_text() == "pause"
    ticks = 0
    while app.playing and ticks < 10:
        app.on_tick()  # what the timer calls
        ticks += 1
    assert ticks == 3 and app.state.shown == 3 and app.buttons["play"].label.get_text() == "play"
    app.on_play()  # at the end: plays again from step 0
    assert app.state.shown == 0 and app.playing
    app.on_play()  # pause
    assert not app.playing


@pytest.mark.fast
def test_teacher_view_shows_every_initialisation_on_the_same_points(trained):
    app = make_app(trained)
    for _ in range(4):
        app.on_step()
    app.on_compare()
    assert len(app.fit_axes) == 4 and len(app.mse_ax.lines) == 4
    for ax, name in zip(app.fit_axes, NAMES, strict=True):
        assert len(ax.lines) == 3  # truth, step 0, step 4
        assert ax.collections[0].get_offsets().shape == (5, 2)
        assert shown_mse(ax) == pytest.approx(independent_mse(trained[name].params, app.state, 4), rel=1e-3)
    press(app, -1.0, 0.5, 1)  # a click in a panel adds the point for everybody
    assert all(ax.collections[0].get_offsets().shape == (6, 2) for ax in app.fit_axes)
    FigureCanvasAgg(app.fig).draw()
    app.on_compare()
    assert len(app.fit_axes) == 1 and len(app.fig.axes) == 2 + 1 + 2 + 7  # panels, radio, sliders, buttons
    before = app.state.amplitude
    app.on_new_task()
    assert len(app.state.x) == 5 and app.state.amplitude != pytest.approx(before) and app.state.shown == 0


@pytest.mark.fast
def test_a_registered_initialisation_brings_its_own_adapt(trained):
    def double_steps(net, params, x, y, alpha, steps):  # a stand-in for Meta-SGD's own rule
        return tm.adapt_trajectory(net, params, x, y, 2 * alpha, steps)

    entry = inits.Initialisation("double", "double-step SGD", "maml", 1, adapt=double_steps)
    extra = {**trained, "double": inits.Trained(entry, NET, NET.init(9), 0.01, "given")}
    app = make_app(extra)
    assert [t.get_text() for t in app.radio.labels][-1] == "double-step SGD"
    app.radio.set_active(4)
    app.on_step()
    want = independent_mse(NET.init(9), app.state, 1, alpha=0.02)
    assert shown_mse(app.fit_axes[0]) == pytest.approx(want, rel=1e-3)


# ---------------------------------------------------------------------------------------- sources
def test_cache_trains_once_reuses_and_rebuilds_a_corrupt_file(tmp_path):
    log = []
    first = store.load_or_train(["joint"], tmp_path, QUICK, log.append)
    path = store.cache_file(tmp_path, inits.get("joint"), QUICK)
    assert path.exists() and any("training" in line for line in log)
    log.clear()
    again = store.load_or_train(["joint"], tmp_path, QUICK, log.append)
    assert log == [] and np.array_equal(again["joint"].params, first["joint"].params)
    other = store.cache_file(tmp_path, inits.get("joint"), dataclasses.replace(QUICK, iterations=3))
    assert other != path  # other settings, another file: a stale cache is never used
    assert store.cache_file(tmp_path, inits.get("joint"), dataclasses.replace(QUICK, backend="numba")) == path
    path.write_bytes(b"not an npz")
    store.load_or_train(["joint"], tmp_path, QUICK, log.append)
    assert "unusable" in log[0] and "training" in log[1]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # atomic writes leave no debris


def test_run_directory_checkpoints_are_read(tmp_path):
    result = tm.meta_train(NET, tm.Sine(), "fomaml", 2, alpha=0.02, k=1, seed=0, backend="numpy",
                           progress=False, checkpoint_path=tmp_path / "checkpoint.npz")  # fmt: skip
    found = store.load_run_dir(tmp_path)
    assert list(found) == ["fomaml"] and found["fomaml"].alpha == 0.02
    np.testing.assert_array_equal(found["fomaml"].params, result.phi)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        store.load_run_dir(tmp_path / "empty")


# ---------------------------------------------------------------------------------------- CLI, notebook
def test_snapshot_cli_writes_a_png_and_rejects_bad_arguments(tmp_path, capsys):
    out = tmp_path / "frames" / "maml.png"
    args = ["--cache-dir", str(tmp_path / "cache"), "--iterations", "2", "--backend", "numpy"]
    assert main(["--snapshot", str(out), "--points", "-3,1;0,2;2.5,-1", "--steps", "3", *args]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["--snapshot", str(tmp_path / "all.png"), "--compare", "--task", "2,0.5", *args]) == 0
    for bad, expected in ((["--points", "1,2;3"], "--points"), (["--points", "a,b"], "--points"),
                          (["--steps", "0"], "--steps"), (["--alpha", "-1"], "--alpha"),
                          (["--from", str(tmp_path / "nowhere")], "--from")):  # fmt: skip
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            main(["--snapshot", str(tmp_path / "x.png"), *bad, *args])
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count("\n") == 1 and expected in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["--snapshot", str(tmp_path / "x.pdf"), *args])
    assert not (tmp_path / "x.png").exists()
    assert main(args) == 1  # a window on the Agg backend: a clear error, no hang
    assert "no interactive backend" in capsys.readouterr().err


@pytest.mark.fast
def test_notebook_show_without_an_interactive_backend_says_what_to_install(trained, capsys):
    params = {name: t.params for name, t in trained.items()}
    frame = notebook.show("reptile", params=params, steps=3)
    assert isinstance(frame, notebook.StaticFrame)
    said = capsys.readouterr().out
    assert "static frame" in said and "ipympl" in said and "%matplotlib widget" in said
    (ax, mse_ax) = frame.figure.axes
    assert len(ax.lines) == 3 + 2 and ax.get_title().startswith("Reptile: step 3 of 3")
    assert not notebook.is_interactive_backend("agg") and notebook.is_interactive_backend("TkAgg")
    assert not notebook.is_interactive_backend("module://matplotlib_inline.backend_inline")


@pytest.mark.fast
def test_show_switches_to_ipympl_only_from_the_inline_backend_of_a_notebook(monkeypatch):
    class Shell:
        magics = []

        def run_line_magic(self, *args):
            self.magics.append(args)

    monkeypatch.setattr(notebook, "_jupyter_shell", lambda: Shell())
    monkeypatch.setitem(__import__("sys").modules, "ipympl", type(os)("ipympl"))
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "module://matplotlib_inline.backend_inline")
    assert notebook._interactive_backend_available() and Shell.magics == [("matplotlib", "widget")]
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "agg")  # chosen on purpose (CI): kept
    assert not notebook._interactive_backend_available() and len(Shell.magics) == 1
