"""Report every display equation of the built site that does not fit on the page.

Opens each page of a built site in headless Chromium at the given window widths, waits until
MathJax has typeset it (and ``_static/tinymeta.js`` has fitted the equations), and measures every
display equation:

- **overflow**: the rendered equation reaches outside the page's text column, or outside a box
  that clips or scrolls it, so that part of it is cut off or hidden behind a scroll bar;
- **overlap**: the equation's ink touches its number (Sphinx's ``(2.1)`` or MathJax's ``\\tag``);
- **tables**: a table with math in it that is wider than the column (scrolled or cut off);
- **scaled**: the equation fits only because it was drawn smaller; reported, not counted as an
  error, unless it is smaller than ``--min-scale``.

Usage (exit status 1 if any problem was found)::

    python docs/_tools/check_math_overflow.py docs/_build/html                # 1280 and 1920 px
    python docs/_tools/check_math_overflow.py docs/_build/html --widths 1024 1280 --pages derivations/hvp.html

Chromium (Debian: ``apt-get install chromium``) is driven through the DevTools protocol over a
pipe (``--remote-debugging-pipe``), so nothing beyond the standard library is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SKIP = {"genindex.html", "search.html", "py-modindex.html"}
SKIP_DIRS = {"_static", "_sources", "_modules", "_images", "jupyter_execute"}

# Runs inside the page. Resolves to {"equations": [...]} once MathJax has finished.
MEASURE_JS = r"""
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < 200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++) {
    if (!document.querySelector("div.math, span.math, .math")) break;   // a page without math
    await sleep(50);
  }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  if (window.tinymetaMathFitted) await window.tinymetaMathFitted;
  await sleep(100);
  const main = document.querySelector("article[role=main]") || document.body;
  const column = main.getBoundingClientRect();
  const leaves = (el, skip) => {  // glyph boxes, without MathJax's hidden MathML copy
    const out = [];
    for (const e of el.querySelectorAll("*")) {
      if (e.children.length || e.closest("mjx-assistive-mml") || (skip && skip.contains(e))) continue;
      const r = e.getBoundingClientRect();
      if (r.width > 0.5 && r.height > 0.5) out.push(r);
    }
    return out;
  };
  const span = (rects) => rects.length ? {
    left: Math.min(...rects.map((r) => r.left)), right: Math.max(...rects.map((r) => r.right)),
    top: Math.min(...rects.map((r) => r.top)), bottom: Math.max(...rects.map((r) => r.bottom)),
  } : null;
  const hits = (a, b) =>
    a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const label = (c) => {
    const math = c.closest("div.math");
    if (math) {
      const no = math.querySelector("span.eqno");
      if (no) return no.textContent.replace(/[^\d.()]/g, "");
      if (math.id) return "#" + math.id;
    }
    const tag = c.querySelector("mjx-labels");
    if (tag) return tag.textContent.trim() || "(tag)";
    const section = c.closest("section[id]");
    return section ? "in #" + section.id : "";
  };
  const items = new Map();
  if (window.MathJax && MathJax.startup && MathJax.startup.document) {
    for (const item of MathJax.startup.document.math) {
      if (item.typesetRoot) items.set(item.typesetRoot, item.math);
    }
  }
  const out = [];
  for (const c of document.querySelectorAll('mjx-container[display="true"]')) {
    const labels = c.querySelector("mjx-labels");
    const inkRects = leaves(c, labels);
    const labelInk = labels ? leaves(labels) : [];
    const ink = span(inkRects);
    if (!ink) continue;
    const problems = [];
    // The text column, and every ancestor that clips or scrolls, must contain the ink.
    let box = c;
    const limits = [["page column", column]];
    while (box && box !== main) {
      const st = getComputedStyle(box);
      const what = box.tagName.toLowerCase() + "." + (box.className || "").split(" ")[0];
      if (st.overflowX !== "visible") limits.push([what, box.getBoundingClientRect()]);
      box = box.parentElement;
    }
    for (const [what, r] of limits) {
      const over = Math.max(r.left - ink.left, ink.right - r.right);
      if (over > 1) { problems.push(`overflow: ${over.toFixed(0)} px outside the ${what}`); break; }
    }
    // Sphinx's number beside the equation, or MathJax's own \tag.
    const holder = c.closest("div.math");
    const eqno = holder ? holder.querySelector("span.eqno") : null;
    const numberRects = [];
    if (eqno) numberRects.push(eqno.getBoundingClientRect());
    if (labelInk.length) numberRects.push(span(labelInk));
    for (const n of numberRects) {
      const overlapping = inkRects.filter((r) => hits(r, n));
      if (overlapping.length) { problems.push("overlap: the equation runs into its number"); break; }
      if (n.left < column.left - 1 || n.right > column.right + 1) {
        problems.push("overflow: the number is outside the page column");
        break;
      }
    }
    const scale = parseFloat(c.dataset.tmScale || "1");
    out.push({
      label: label(c), tex: (items.get(c) || "").trim().replace(/\s+/g, " "),
      width: Math.round(ink.right - ink.left), column: Math.round(column.width), scale, problems,
    });
  }
  // Tables (furo scrolls a wide table inside its wrapper): those with math must fit as well.
  const tables = [];
  for (const t of main.querySelectorAll("table")) {
    if (!t.querySelector("mjx-container")) continue;
    const wrapper = t.closest(".table-wrapper") || t.parentElement;
    // (furo pads the wrapper by 0.2rem, so a table may reach that far past the column)
    const over = Math.max(
      wrapper.scrollWidth - wrapper.clientWidth, t.getBoundingClientRect().right - column.right - 5);
    const section = t.closest("section[id]");
    if (over > 1) tables.push({where: section ? "#" + section.id : "", over: Math.round(over)});
  }
  return {equations: out, tables, title: document.title};
})()
"""


def _as_fds_3_and_4(read_end: int, write_end: int) -> None:
    """In the child: Chromium reads DevTools commands on fd 3 and writes replies on fd 4."""
    import fcntl

    high_read = fcntl.fcntl(read_end, fcntl.F_DUPFD, 10)  # out of the way of 3 and 4 first
    high_write = fcntl.fcntl(write_end, fcntl.F_DUPFD, 10)
    os.dup2(high_read, 3)
    os.dup2(high_write, 4)


class Chromium:
    """A headless Chromium driven through the DevTools protocol over a pipe (fds 3 and 4)."""

    def __init__(self, binary: str):
        self.profile = tempfile.mkdtemp(prefix="tm-chromium-")
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()
        self.proc = subprocess.Popen(
            [
                binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "about:blank",
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False,  # keep fds 3 and 4, made below in the child
            preexec_fn=lambda: _as_fds_3_and_4(to_browser_r, from_browser_w),
        )  # fmt: skip
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buffer = b""
        self.next_id = 0

    def send(self, method: str, params: dict | None = None, tab: str | None = None) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if tab:  # the DevTools protocol's id of the page's connection
            message["sessionId"] = tab
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read(self) -> dict:
        while b"\0" not in self.buffer:
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def measure(browser: Chromium, url: str, width: int, height: int = 1000) -> dict:
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    tab = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    try:
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            tab,
        )
        browser.send("Page.navigate", {"url": url}, tab)
        for _ in range(400):  # wait for the document to finish loading (up to 20 s)
            state = browser.send("Runtime.evaluate", {"expression": "document.readyState"}, tab)
            if state["result"].get("value") == "complete":
                break
            time.sleep(0.05)
        result = browser.send(
            "Runtime.evaluate",
            {"expression": MEASURE_JS, "awaitPromise": True, "returnByValue": True, "timeout": 60000},
            tab,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{url}: {result['exceptionDetails']}")
        return result["result"]["value"]
    finally:
        browser.send("Target.closeTarget", {"targetId": target})


def pages_of(site: Path) -> list[Path]:
    return sorted(
        p
        for p in site.rglob("*.html")
        if p.name not in SKIP and not (set(p.relative_to(site).parts[:-1]) & SKIP_DIRS)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="the built HTML site (sphinx-build's output folder)")
    parser.add_argument("--widths", type=int, nargs="+", default=[1280, 1920], help="window widths, px")
    parser.add_argument("--pages", nargs="*", help="only these pages (paths relative to the site)")
    parser.add_argument("--min-scale", type=float, default=0.85, help="smaller equations count as problems")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    parser.add_argument("--verbose", action="store_true", help="also list the equations that were scaled")
    args = parser.parse_args(argv)
    if not args.chromium:
        parser.error("Chromium not found (apt-get install chromium), or give --chromium PATH")
    site = args.site.resolve()
    pages = [site / p for p in args.pages] if args.pages else pages_of(site)

    browser = Chromium(args.chromium)
    problems = checked = scaled = 0
    try:
        for width in args.widths:
            for page in pages:
                name = page.relative_to(site).as_posix()
                result = measure(browser, page.as_uri(), width)
                for eq in result["equations"]:
                    checked += 1
                    tag = re.search(r"\\tag\{([^}]*)\}", eq["tex"])
                    if tag:
                        eq["label"] = f"({tag.group(1)})"
                    issues = list(eq["problems"])
                    if eq["scale"] < 1:
                        scaled += 1
                        if eq["scale"] < args.min_scale:
                            issues.append(f"drawn at {eq['scale']:.0%}, below {args.min_scale:.0%}")
                        elif args.verbose:
                            print(f"{width}px {name} {eq['label']}: scaled to {eq['scale']:.0%}")
                    if issues:
                        problems += 1
                        tex = eq["tex"] if len(eq["tex"]) <= 90 else eq["tex"][:87] + "..."
                        print(f"{width}px {name} {eq['label']}: {'; '.join(issues)}")
                        print(f"    ink {eq['width']} px, column {eq['column']} px: {tex}")
                for table in result["tables"]:
                    problems += 1
                    print(
                        f"{width}px {name} table with math in {table['where']}: {table['over']} px too wide"
                    )
    finally:
        browser.close()
    print(
        f"{len(pages)} pages x {len(args.widths)} widths, {checked} display equations checked: "
        f"{problems} problems, {scaled} drawn smaller to fit"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
