// tinymeta: fit each display equation to the text column.
//
// MathJax 3 does not break long equations across lines. After it has typeset the page, each
// display equation that does not fit beside its number is drawn smaller, in steps of 2 %, down to
// 80 % of the text size; one that still does not fit gets a horizontal scroll bar (class
// tm-too-wide) and should be broken into lines in its source. The scale used is kept in
// data-tm-scale, which docs/_tools/check_math_overflow.py reports. Refitted on resize.
(function () {
  "use strict";
  const MIN_SCALE = 0.8;
  const STEP = 0.02;

  // Bounding boxes of the glyphs and rules an element draws (its leaf elements), without the
  // hidden MathML copy that MathJax keeps for screen readers; those inside `skip` are left out.
  function leaves(el, skip) {
    const out = [];
    for (const e of el.querySelectorAll("*")) {
      if (e.children.length || e.closest("mjx-assistive-mml") || (skip && skip.contains(e))) continue;
      const r = e.getBoundingClientRect();
      if (r.width > 0.5 && r.height > 0.5) out.push(r);
    }
    return out;
  }

  function span(rects) {
    if (!rects.length) return null;
    return {
      left: Math.min(...rects.map((r) => r.left)),
      right: Math.max(...rects.map((r) => r.right)),
      top: Math.min(...rects.map((r) => r.top)),
      bottom: Math.max(...rects.map((r) => r.bottom)),
    };
  }

  function hits(a, b) {
    return a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  }

  // The horizontal room an equation may use: its block, inside the article's text column, and
  // left of Sphinx's equation number.
  function room(c) {
    const holder = c.parentElement;
    const r = holder.getBoundingClientRect();
    const st = getComputedStyle(holder);
    let left = r.left + parseFloat(st.paddingLeft);
    let right = r.right - parseFloat(st.paddingRight);
    const main = document.querySelector("article[role=main]");
    if (main) {
      const m = main.getBoundingClientRect();
      left = Math.max(left, m.left);
      right = Math.min(right, m.right);
    }
    const eqno = holder.querySelector(":scope > span.eqno");
    if (eqno) right = Math.min(right, eqno.getBoundingClientRect().left - 2);
    return { left, right };
  }

  function fits(c) {
    const labels = c.querySelector("mjx-labels");
    const ink = leaves(c, labels);
    const labelInk = labels ? leaves(labels) : [];
    const box = span(ink);
    if (!box) return true;
    const { left, right } = room(c);
    if (box.left < left - 0.5 || box.right > right + 0.5) return false;
    const tag = span(labelInk);
    if (tag) {
      if (tag.left < left - 0.5 || tag.right > right + 0.5) return false;
      if (ink.some((r) => hits(r, tag))) return false;
    }
    return true;
  }

  function fit(c) {
    // MathJax sets its own font-size on the container (to match the text's x-height): scale that.
    if (c.dataset.tmBase === undefined) c.dataset.tmBase = c.style.fontSize || "100%";
    const base = parseFloat(c.dataset.tmBase) / 100;
    c.style.fontSize = c.dataset.tmBase;
    c.classList.remove("tm-too-wide");
    delete c.dataset.tmScale;
    if (fits(c)) return;
    let scale = 1;
    while (scale - STEP >= MIN_SCALE - 1e-9) {
      scale -= STEP;
      c.style.fontSize = (100 * base * scale).toFixed(1) + "%";
      if (fits(c)) break;
    }
    c.dataset.tmScale = scale.toFixed(2);
    if (!fits(c)) c.classList.add("tm-too-wide");
  }

  function fitAll() {
    for (const c of document.querySelectorAll('mjx-container[display="true"]')) fit(c);
  }

  async function whenTypeset() {
    for (let i = 0; i < 400; i++) {
      if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
        await MathJax.startup.promise;
        return true;
      }
      if (!document.querySelector(".math")) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  window.tinymetaMathFitted = (async () => {
    if (document.readyState === "loading") {
      await new Promise((r) => document.addEventListener("DOMContentLoaded", r, { once: true }));
    }
    if (await whenTypeset()) fitAll();
  })();

  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(fitAll, 150);
  });
})();
