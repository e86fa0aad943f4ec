/* Routing (#/..., so the site works from file:// and any static server) and live updates. */
"use strict";
(function () {
  var el = TB.el;
  var ID = /^[0-9a-f]{6,40}$/;
  var lastStamp = null, live = false, rendering = 0;

  function parse(hash) {
    var h = (hash || "").replace(/^#\/?/, "");
    var q = h.indexOf("?"), query = new URLSearchParams(q >= 0 ? h.slice(q + 1) : "");
    var parts = (q >= 0 ? h.slice(0, q) : h).split("/").filter(Boolean);
    return { name: parts[0] || "jobs", args: parts.slice(1), query: query };
  }

  function page(r) {
    var P = TB.pages, a = r.args;
    var ok = a.every(function (x) { return ID.test(x); });
    if (!ok) return null;
    if (r.name === "jobs" && !a.length) return P.jobs();
    if (r.name === "job" && a.length === 1) return P.job(a[0]);
    if (r.name === "analysis" && a.length === 1) return P.analysis(a[0]);
    if (r.name === "trial" && a.length === 2) return P.trial(a[0], a[1]);
    if (r.name === "compare" && !a.length) return P.compare(r.query);
    if (r.name === "sft" && !a.length) return P.sft();
    if (r.name === "archives" && !a.length) return P.archives();
    return null;
  }

  function render(keepScroll) {
    var r = parse(location.hash), main = document.getElementById("main"), ticket = ++rendering;
    var y = window.scrollY;
    /* in-page timings (ms since the page was opened), read by benchmarks/dashboard_build.py */
    TB.timing = { start: performance.now() };
    document.body.removeAttribute("data-ready");
    document.body.removeAttribute("data-plotted");
    Array.prototype.forEach.call(document.querySelectorAll("nav a"), function (a) {
      a.classList.toggle("active", a.dataset.nav === (r.name === "job" || r.name === "trial" || r.name === "analysis" ? "jobs" : r.name));
    });
    TB.afterRender = [];
    var p = page(r);
    if (!p) p = Promise.resolve({ title: "Not found", node: el("p", { class: "warn", text: "No such page." }) });
    p.then(function (out) {
      if (ticket !== rendering) return;
      main.textContent = "";
      main.appendChild(out.node);
      document.title = out.title + " · trialbook";
      live = !!out.live;
      if (keepScroll) window.scrollTo(0, y);
      document.body.dataset.ready = r.name;
      TB.timing.ready = performance.now();
      var jobs = TB.afterRender; TB.afterRender = [];
      /* Plots come after the content has been painted: compiling plotly.js (4.8 MB) in a new tab
       * takes a second or two, and the tables and text must not wait for it. */
      return new Promise(function (resolve) { requestAnimationFrame(function () { setTimeout(resolve, 0); }); })
        .then(function () { TB.timing.shown = performance.now(); return Promise.all(jobs.map(function (f) { return f(); })); })
        .then(function () {
          if (ticket !== rendering) return;
          TB.timing.plotted = performance.now();
          document.body.dataset.plotted = r.name;
        });
    }).catch(function (e) {
      if (ticket !== rendering) return;
      main.textContent = "";
      main.appendChild(el("p", { class: "warn", text: "Could not show this page: " + e.message }));
      document.body.dataset.ready = "error";
    });
  }

  /* Served over HTTP (trialbook dashboard --serve), the builder rewrites data/stamp.js after
   * every rebuild: a changed stamp reloads the data and redraws the page. */
  function poll() {
    TB.load("stamp", true).then(function (s) {
      if (lastStamp !== null && s.n !== lastStamp) {
        var keep = { stamp: s }; TB.data = keep;
        render(true);
      }
      lastStamp = s.n;
      showStamp(s);
    }, function () {}).then(function () { setTimeout(poll, live ? 2000 : 5000); });
  }
  function showStamp(s) {
    var b = document.getElementById("built");
    if (b) b.textContent = "built " + s.built_at + (location.protocol.indexOf("http") === 0 ? " · live" : "");
  }

  window.addEventListener("hashchange", function () { render(false); });
  document.addEventListener("DOMContentLoaded", function () {
    render(false);
    if (location.protocol.indexOf("http") === 0) poll();
    else TB.load("stamp").then(showStamp, function () {});
  });
})();
