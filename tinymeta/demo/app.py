"""The demo's window: the panels of :mod:`tinymeta.demo.draw` and matplotlib's own widgets.

Controls: left click on a fit panel adds a support point, right click (or a left click with
"remove" on) removes the nearest; radio buttons choose the initialisation; sliders set alpha
(log scale) and the number of steps; buttons step, play/pause, reset, draw a new random task,
clear the points, and switch to the teacher's view (every initialisation side by side). Each
callback applies one pure function of :mod:`tinymeta.demo.state` and redraws, so tests drive the
same callbacks on a figure with a non-interactive canvas.
"""

from __future__ import annotations

import numpy as np

from . import state as st
from .draw import colors, draw, layout
from .state import adaptation

PLOT_RECT = (0.0, 0.30, 1.0, 0.68)  # figure fraction kept for the panels; the widgets sit below
ALPHA_RANGE = (-3.0, -0.5)  # log10 alpha on the slider: 0.001 .. 0.316 (large enough to diverge)
MAX_STEPS = 50
PLAY_INTERVAL_MS = 350
FIGSIZE = (12.0, 6.8)  # fits a 1366 x 768 screen with its toolbar


class DemoApp:
    """The interactive demo on ``fig`` (a pyplot figure for a window, any Figure for tests).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    trained : dict name -> Trained, the initialisations offered (menu order)
    state : DemoState, the first frame (``state.init`` among ``trained``)
    rng : np.random.Generator, draws the new random tasks
    num_points : int, support points of a new random task

    Attributes
    ----------
    state : DemoState, the frame shown
    fit_axes : list of Axes, mse_ax : Axes, the panels currently drawn
    playing : bool
    """

    def __init__(self, fig, trained, state, rng, num_points=5):
        if state.init not in trained:
            raise ValueError(f"state.init must be one of {list(trained)}; got {state.init!r}")
        if state.steps > MAX_STEPS:
            raise ValueError(f"state.steps must be at most {MAX_STEPS} (the steps slider); got {state.steps}")
        self.fig, self.trained, self.state, self.rng, self.num_points = fig, trained, state, rng, num_points
        self.names = list(trained)
        self.labels = {n: t.init.label for n, t in trained.items()}
        self.palette = colors(self.names)
        self.playing = False
        self._memo = {}
        self.fit_axes, self.mse_ax, self._compare = [], None, None
        self._build_widgets()
        self.timer = fig.canvas.new_timer(interval=PLAY_INTERVAL_MS)
        self.timer.add_callback(self.on_tick)
        fig.canvas.mpl_connect("button_press_event", self.on_click)
        self.redraw()

    # ------------------------------------------------------------------ widgets
    def _build_widgets(self):
        from matplotlib.widgets import Button, RadioButtons, Slider

        fig, s = self.fig, self.state
        fig.text(0.02, 0.27, "initialisation", fontsize="medium", weight="bold")
        labels = [self.labels[n] for n in self.names]
        self.radio = RadioButtons(fig.add_axes((0.02, 0.03, 0.17, 0.23)), labels,
                                  active=self.names.index(s.init),
                                  radio_props={"facecolor": self.palette[s.init]})  # fmt: skip
        for text in self.radio.labels:  # room for the algorithms still to come
            text.set_fontsize("medium" if len(labels) <= 5 else "small")
        self.radio.on_clicked(self.on_select)
        self.alpha_slider = Slider(fig.add_axes((0.30, 0.20, 0.30, 0.035)), "alpha", *ALPHA_RANGE,
                                   valinit=float(np.clip(np.log10(s.alpha), *ALPHA_RANGE)))  # fmt: skip
        self.alpha_slider.valtext.set_text(f"{s.alpha:.3g}")
        self.alpha_slider.on_changed(self.on_alpha)
        self.steps_slider = Slider(fig.add_axes((0.30, 0.13, 0.30, 0.035)), "steps", 1, MAX_STEPS,
                                   valinit=min(s.steps, MAX_STEPS), valstep=1, valfmt="%d")  # fmt: skip
        self.steps_slider.on_changed(self.on_steps)
        self.buttons = {}
        rows = [(0.19, [("step", self.on_step), ("play", self.on_play), ("reset", self.on_reset)]),
                (0.11, [("new task", self.on_new_task), ("clear points", self.on_clear),
                        ("remove: off", self.on_remove_mode)]),
                (0.03, [("compare all", self.on_compare)])]  # fmt: skip
        for y, row in rows:
            for i, (text, callback) in enumerate(row):
                button = Button(fig.add_axes((0.68 + i * 0.105, y, 0.095, 0.06)), text)
                button.on_clicked(callback)
                self.buttons[text] = button
        fig.text(0.22, 0.05, "left click on a panel: add a point     right click: remove the nearest\n"
                 "alpha: test-time step size (log scale)     play: one step every "
                 f"{PLAY_INTERVAL_MS} ms", fontsize="small", color="0.3")  # fmt: skip

    def _set_button_text(self, key, text):
        self.buttons[key].label.set_text(text)

    # ------------------------------------------------------------------ drawing
    def adaptations(self):
        """``{name: Adaptation}`` of what is shown, memoised on everything an adaptation depends on."""
        s = self.state
        key = (s.amplitude, s.phase, s.x, s.y, s.alpha, s.steps)
        names = self.names if s.compare else [s.init]
        for name in names:
            if self._memo.get(name, (None,))[0] != key:
                self._memo[name] = (key, adaptation(s, self.trained[name]))
        return {name: self._memo[name][1] for name in names}

    def redraw(self):
        """Lay out the panels if the view changed, draw the state, and refresh the canvas."""
        if self._compare != self.state.compare:
            for ax in self.fit_axes + ([self.mse_ax] if self.mse_ax is not None else []):
                ax.remove()
            self.fit_axes, self.mse_ax = layout(self.fig, self.names, self.state.compare, PLOT_RECT)
            self._compare = self.state.compare
        draw(self.fit_axes, self.mse_ax, self.state, self.adaptations(), self.labels, self.palette)
        self._set_button_text("compare all", "one at a time" if self.state.compare else "compare all")
        self._set_button_text("remove: off", f"remove: {'on' if self.state.remove_mode else 'off'}")
        self.fig.canvas.draw_idle()

    def update(self, new_state):
        """Show ``new_state`` (any function of :mod:`tinymeta.demo.state` applied to the current one)."""
        self.state = new_state
        self.redraw()

    # ------------------------------------------------------------------ callbacks
    def on_click(self, event):
        """A mouse press: on a fit panel, add (button 1) or remove (button 3) a support point."""
        toolbar = getattr(self.fig.canvas, "toolbar", None)
        if event.inaxes not in self.fit_axes or event.xdata is None or getattr(toolbar, "mode", ""):
            return  # outside the panels, or the toolbar is zooming or panning
        button = getattr(event.button, "value", event.button)  # a MouseButton enum, or an int
        self.update(st.click(self.state, event.xdata, event.ydata, button))

    def on_step(self, _event=None):
        self.update(st.step(self.state))

    def on_reset(self, _event=None):
        self.stop()
        self.update(st.reset(self.state))

    def on_play(self, _event=None):
        """Play from the step shown (from 0 if at the end), one step per tick; pressed again: pause."""
        if self.playing:
            self.stop()
            return
        if self.state.shown == self.state.steps:
            self.update(st.reset(self.state))
        self.playing = True
        self._set_button_text("play", "pause")
        self.timer.start()

    def on_tick(self):
        """One timer tick while playing: one more step, and stop at the last."""
        self.update(st.step(self.state))
        if self.state.shown >= self.state.steps:
            self.stop()

    def stop(self):
        self.playing = False
        self.timer.stop()
        self._set_button_text("play", "play")
        self.fig.canvas.draw_idle()

    def on_new_task(self, _event=None):
        self.update(st.new_task(self.state, self.rng, self.num_points))

    def on_clear(self, _event=None):
        self.update(st.clear_points(self.state))

    def on_remove_mode(self, _event=None):
        self.update(st.toggle_remove_mode(self.state))

    def on_compare(self, _event=None):
        self.update(st.toggle_compare(self.state))

    def on_select(self, label):
        """The radio buttons give the label; the state keeps the name."""
        name = next(n for n in self.names if self.labels[n] == label)
        self.radio.set_radio_props({"facecolor": self.palette[name]})
        self.update(st.select(self.state, name))

    def on_alpha(self, log_alpha):
        alpha = float(10.0**log_alpha)
        self.alpha_slider.valtext.set_text(f"{alpha:.3g}")
        self.update(st.set_alpha(self.state, alpha))

    def on_steps(self, steps):
        self.update(st.set_steps(self.state, int(round(steps))))


def window(trained, state, rng, num_points=5):
    """Open the demo in a pyplot window and return the :class:`DemoApp` (keep a reference to it:
    the widgets stop responding once it is garbage collected). ``plt.show()`` is up to the caller."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=FIGSIZE)
    if fig.canvas.manager is not None:
        fig.canvas.manager.set_window_title("tinymeta demo: few-shot sine regression")
    return DemoApp(fig, trained, state, rng, num_points)
