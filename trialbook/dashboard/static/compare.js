/* Comparing two variants (of one job or of two jobs): deltas with 95% confidence intervals and
 * the tasks that flipped. Statistics:
 *  - success rate over trials: difference of two proportions, Newcombe's hybrid score interval
 *    (from the two Wilson intervals), which behaves at 0 and 1 where the Wald interval does not;
 *  - per-task success rate (pass@1) over the tasks both ran: mean of the paired differences,
 *    t interval (n - 1 degrees of freedom).
 * A task flipped when one side resolved it in some attempt and the other in none. */
"use strict";
(function () {
  var el = TB.el, fmt = TB.fmt;
  TB.pages = TB.pages || {};
  var Z = 1.959963984540054;
  var T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
    2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042];

  function wilson(c, n) {
    if (!n) return null;
    var p = c / n, d = 1 + Z * Z / n, center = (p + Z * Z / (2 * n)) / d;
    var half = Z * Math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / d;
    return [center - half, center + half];
  }
  TB.stats = {
    wilson: wilson,
    /* (B - A, [low, high]) for success proportions cA/nA and cB/nB. */
    newcombe: function (cA, nA, cB, nB) {
      if (!nA || !nB) return null;
      var pA = cA / nA, pB = cB / nB, a = wilson(cA, nA), b = wilson(cB, nB), d = pB - pA;
      return { delta: d, low: d - Math.sqrt(Math.pow(pB - b[0], 2) + Math.pow(a[1] - pA, 2)),
        high: d + Math.sqrt(Math.pow(b[1] - pB, 2) + Math.pow(pA - a[0], 2)) };
    },
    t975: function (df) {
      if (df <= 30) return T975[df - 1];
      var z = Z;
      return z + (z * z * z + z) / (4 * df) + (5 * Math.pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * df * df);
    },
    /* Mean of paired differences with its t interval (clipped to [-1, 1], the range of a rate difference). */
    paired: function (diffs) {
      var n = diffs.length;
      if (!n) return null;
      var mean = diffs.reduce(function (a, b) { return a + b; }, 0) / n;
      if (n < 2) return { delta: mean, low: null, high: null, n: n };
      var sd = Math.sqrt(diffs.reduce(function (a, b) { return a + (b - mean) * (b - mean); }, 0) / (n - 1));
      var h = TB.stats.t975(n - 1) * sd / Math.sqrt(n);
      return { delta: mean, low: Math.max(-1, mean - h), high: Math.min(1, mean + h), n: n };
    }
  };

  function parseSide(s) {
    var m = /^([0-9a-f]{6,40})\.([0-9]{1,4})$/.exec(s || "");
    return m ? { job: m[1], v: parseInt(m[2], 10) } : null;
  }

  function ci(r) {
    if (!r) return "—";
    return (r.low === null || r.low === undefined) ? "n too small" : "[" + signed(r.low) + ", " + signed(r.high) + "]";
  }
  function signed(v) { return v === null || v === undefined ? "—" : (v > 0 ? "+" : "") + v.toFixed(3); }

  function picker(site, current, onPick) {
    var sel = el("select", {});
    site.jobs.forEach(function (j) {
      j.variants.forEach(function (v, i) {
        var val = j.id + "." + i;
        sel.appendChild(el("option", { value: val, text: j.name + " › " + v, selected: val === current }));
      });
    });
    sel.addEventListener("change", function () { onPick(sel.value); });
    return sel;
  }

  TB.pages.compare = function (query) {
    return TB.load("jobs").then(function (site) {
      var a = parseSide(query.get("a")), b = parseSide(query.get("b"));
      var first = site.jobs[0];
      if (!a && first) a = { job: first.id, v: 0 };
      if (!b && first) b = { job: site.jobs.length > 1 && first.variants.length < 2 ? site.jobs[1].id : first.id, v: first.variants.length > 1 ? 1 : 0 };
      var cur = { a: a ? a.job + "." + a.v : "", b: b ? b.job + "." + b.v : "" };
      function go(side, val) { cur[side] = val; location.hash = "#/compare?a=" + cur.a + "&b=" + cur.b; }
      var head = [el("h1", { text: "Compare" }), el("div", { class: "toolbar" }, "A ", picker(site, cur.a, function (v) { go("a", v); }),
        " B ", picker(site, cur.b, function (v) { go("b", v); }))];
      if (!a || !b) return { title: "Compare", node: el("div", {}, head, el("p", { class: "muted", text: "No jobs to compare." })) };
      return Promise.all([TB.load("job/" + a.job), TB.load("job/" + b.job)]).then(function (jobs) {
        var va = jobs[0].summary.variants[a.v], vb = jobs[1].summary.variants[b.v];
        if (!va || !vb) return { title: "Compare", node: el("div", {}, head, el("p", { class: "warn", text: "unknown variant" })) };
        return { title: "Compare", node: el("div", {}, head, compare(jobs[0], va, jobs[1], vb)) };
      });
    });
  };

  function compare(ja, va, jb, vb) {
    var ta = {}, tb = {};
    (va.tasks || []).forEach(function (t) { ta[t.task] = t; });
    (vb.tasks || []).forEach(function (t) { tb[t.task] = t; });
    var common = Object.keys(ta).filter(function (k) { return tb[k] && ta[k].n_trials && tb[k].n_trials; }).sort();
    var diffs = common.map(function (k) { return tb[k].n_success / tb[k].n_trials - ta[k].n_success / ta[k].n_trials; });
    var overall = TB.stats.newcombe(va.n_success, va.n_trials, vb.n_success, vb.n_trials);
    var paired = TB.stats.paired(diffs);
    var label = function (j, v) { return j.name + " › " + v.variant; };
    var rows = [
      ["success rate (trials)", fmt.rate(va.success_rate), fmt.rate(vb.success_rate), overall ? signed(overall.delta) : "—", ci(overall),
        "Newcombe hybrid score interval; n = " + va.n_trials + " vs " + vb.n_trials + " trials"],
      ["per-task success rate (paired)", paired ? fmt.rate(mean(common.map(function (k) { return ta[k].n_success / ta[k].n_trials; }))) : "—",
        paired ? fmt.rate(mean(common.map(function (k) { return tb[k].n_success / tb[k].n_trials; }))) : "—",
        paired ? signed(paired.delta) : "—", ci(paired), "mean of per-task differences, t interval; " + common.length + " tasks in common"],
      ["pass@1", fmt.rate((va.pass_at_k || {})["1"]), fmt.rate((vb.pass_at_k || {})["1"]), "", "", "over each side's own tasks"],
      ["errors", fmt.int(va.n_errors), fmt.int(vb.n_errors), "", "", ""],
      ["tokens", fmt.int(va.total_tokens), fmt.int(vb.total_tokens), "", "", ""],
      ["cost", fmt.cost(va.cost_usd), fmt.cost(vb.cost_usd), "", "", ""]
    ];
    var summary = el("table", { class: "data", data: { table: "compare" } },
      el("thead", {}, el("tr", {}, ["", "A", "B", "Δ (B − A)", "95% CI", "how"].map(function (h) { return el("th", { text: h }); }))),
      el("tbody", {}, rows.map(function (r) {
        return el("tr", { data: { metric: r[0] } }, r.map(function (c, i) { return el("td", { class: i && i < 5 ? "num" : "", text: c }); }));
      })));
    var gained = [], lost = [], changed = [];
    common.forEach(function (k, i) {
      var sa = ta[k].n_success > 0, sb = tb[k].n_success > 0;
      if (!sa && sb) gained.push(k); else if (sa && !sb) lost.push(k);
      if (diffs[i] !== 0) changed.push({ task: k, a: ta[k], b: tb[k], d: diffs[i] });
    });
    var onlyA = Object.keys(ta).filter(function (k) { return !tb[k]; }), onlyB = Object.keys(tb).filter(function (k) { return !ta[k]; });
    var flips = TB.table([{ key: "task", label: "task" },
      { key: "a", label: "A resolved", num: true, get: function (r) { return r.a.n_success + "/" + r.a.n_trials; } },
      { key: "b", label: "B resolved", num: true, get: function (r) { return r.b.n_success + "/" + r.b.n_trials; } },
      { key: "d", label: "Δ rate", num: true, fmt: function (v) { return signed(v); } },
      { key: "flip", label: "flipped", get: function (r) { return gained.indexOf(r.task) >= 0 ? "gained by B" : lost.indexOf(r.task) >= 0 ? "lost by B" : ""; } }],
      changed, { name: "flips" });
    return el("div", {},
      el("p", {}, el("b", { text: "A: " }), TB.link("#/job/" + ja.id, label(ja, va)), el("b", { text: "   B: " }), TB.link("#/job/" + jb.id, label(jb, vb))),
      el("div", { class: "panel" }, summary),
      el("h2", { text: "Tasks that flipped" }),
      el("div", { class: "cards" }, TB.card("gained by B", String(gained.length), "gained"), TB.card("lost by B", String(lost.length), "lost"),
        TB.card("rate changed", String(changed.length), "changed"), TB.card("only in A / B", onlyA.length + " / " + onlyB.length, "only")),
      el("p", { class: "flip-gain", text: gained.length ? "gained: " + gained.join(", ") : "" }),
      el("p", { class: "flip-loss", text: lost.length ? "lost: " + lost.join(", ") : "" }),
      el("div", { class: "panel" }, flips));
  }
  function mean(xs) { return xs.length ? xs.reduce(function (a, b) { return a + b; }, 0) / xs.length : null; }
})();
