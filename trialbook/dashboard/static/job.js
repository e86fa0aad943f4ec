/* The page of one job: headline numbers, variants, plots, the task x variant matrix, trials. */
"use strict";
(function () {
  var el = TB.el, fmt = TB.fmt;
  TB.pages = TB.pages || {};

  function trialObjects(job) {
    var c = job.trial_columns;
    return job.trials.map(function (row) {
      var o = {}; c.forEach(function (k, i) { o[k] = row[i]; }); return o;
    });
  }

  function variantsTable(job) {
    var s = job.summary, ks = [];
    for (var k = 1; k <= (s.k_max || 1); k++) ks.push(String(k));
    var cols = [
      { key: "variant", label: "variant" }, { key: "agent", label: "agent" }, { key: "model", label: "model" },
      { key: "n_trials", label: "trials", num: true, fmt: fmt.int }, { key: "n_success", label: "resolved", num: true, fmt: fmt.int },
      { key: "success_rate", label: "success rate", num: true, fmt: fmt.rate },
      { key: "mean_reward", label: "mean reward", num: true, fmt: fmt.rate },
      { key: "n_errors", label: "errors", num: true, fmt: fmt.int }
    ];
    ks.forEach(function (k) {
      cols.push({ key: "pass@" + k, label: "pass@" + k, num: true, get: function (v) { return (v.pass_at_k || {})[k]; }, fmt: fmt.rate });
    });
    cols.push({ key: "total_tokens", label: "tokens", num: true, fmt: fmt.int }, { key: "cost_usd", label: "cost", num: true, fmt: fmt.cost },
      { key: "mean_turns", label: "mean turns", num: true, fmt: function (v) { return fmt.num(v, 1); } },
      { key: "outcomes", label: "outcomes", sort: false, fmt: function (v) {
        return Object.keys(v || {}).map(function (o) { return o + "=" + v[o]; }).join(", ") || "—"; } });
    return TB.table(cols, s.variants, { name: "variants", filter: false });
  }

  function matrix(job, trials) {
    var variants = job.summary.variants.map(function (v) { return v.variant; });
    var tasks = [], byCell = {};
    trials.forEach(function (t) {
      var key = t.task + "\u0000" + t.variant;
      if (!byCell[key]) byCell[key] = [];
      byCell[key].push(t);
      if (tasks.indexOf(t.task) < 0) tasks.push(t.task);
    });
    tasks.sort();
    var rateOf = {};
    job.summary.variants.forEach(function (v) { (v.tasks || []).forEach(function (t) { rateOf[t.task + "\u0000" + v.variant] = t; }); });
    var head = el("tr", {}, el("th", { text: "task" }), variants.map(function (v) { return el("th", { text: v }); }));
    var body = el("tbody");
    var limit = 400;
    function rows(n) {
      body.textContent = "";
      tasks.slice(0, n).forEach(function (task) {
        var tr = el("tr", {}, el("td", { text: task }));
        variants.forEach(function (v) {
          var cell = el("td", { class: "cell" });
          (byCell[task + "\u0000" + v] || []).forEach(function (t) {
            cell.appendChild(el("a", { class: "att o-" + (t.outcome || "none"), href: "#/trial/" + job.id + "/" + t.id,
              title: task + " · " + v + " · attempt " + t.attempt + ": " + (t.outcome || "running") }));
          });
          var r = rateOf[task + "\u0000" + v];
          if (r) cell.appendChild(el("span", { class: "note", text: " " + r.n_success + "/" + r.n_trials }));
          tr.appendChild(cell);
        });
        body.appendChild(tr);
      });
    }
    rows(limit);
    var foot = el("div", { class: "note" });
    if (tasks.length > limit) foot.appendChild(el("button", { type: "button", text: "show all " + tasks.length + " tasks",
      on: { click: function (e) { rows(tasks.length); e.target.remove(); } } }));
    return el("div", {}, el("table", { class: "data matrix", data: { table: "matrix" } }, el("thead", {}, head), body), foot);
  }

  function trialsTable(job, trials) {
    var outcome = el("select", {}, el("option", { value: "", text: "any outcome" }));
    ["resolved", "unresolved", "agent_error", "timeout", "verifier_error", "infra_error", "cancelled", "running"].forEach(function (o) {
      outcome.appendChild(el("option", { value: o, text: o }));
    });
    var cols = [
      { key: "name", label: "trial", fmt: function (v, t) { return TB.link("#/trial/" + job.id + "/" + t.id, v); } },
      { key: "task", label: "task" }, { key: "variant", label: "variant" }, { key: "attempt", label: "attempt", num: true },
      { key: "outcome", label: "outcome", fmt: function (v) { return TB.badge(v); } },
      { key: "reward", label: "reward", num: true, fmt: fmt.rate }, { key: "duration_s", label: "duration", num: true, fmt: fmt.dur },
      { key: "total_tokens", label: "tokens", num: true, fmt: fmt.int }, { key: "cost_usd", label: "cost", num: true, fmt: fmt.cost },
      { key: "n_turns", label: "turns", num: true, fmt: fmt.int }, { key: "error", label: "error" }
    ];
    var tbl = TB.table(cols, trials, { name: "trials", filter: true, tools: [outcome], where: function (t) {
      return !outcome.value || (t.outcome || "running") === outcome.value;
    } });
    outcome.addEventListener("change", tbl.refresh);
    return tbl;
  }

  TB.pages.job = function (jid) {
    return TB.load("job/" + jid).then(function (job) {
      var s = job.summary, trials = trialObjects(job);
      var best = job.pass;
      var head = [
        el("div", { class: "crumbs" }, TB.link("#/", "Jobs"), " › " + job.layout),
        el("h1", { text: job.name }),
        el("div", {}, el("span", { class: "badge s-" + (/^[a-z_]+$/.test(s.status || "") ? s.status : "x"), text: s.status || "unknown" }),
          job.n_unfinished > 0 ? TB.progress(job.n_listed - job.n_unfinished, job.n_listed) : null,
          el("span", { class: "muted", text: "  " + fmt.text(s.started_at) + " → " + fmt.text(s.finished_at) })),
        el("div", { class: "cards" },
          TB.card("trials", fmt.int(s.n_trials), "n_trials"), TB.card("listed", fmt.int(s.n_trials_listed), "n_trials_listed"),
          TB.card("success rate", fmt.rate(s.overall_success_rate), "overall_success_rate"),
          TB.card("errors", fmt.int(s.failures), "failures"),
          TB.card(best ? "pass@" + best.k + " (" + best.variant + ")" : "pass@k", best ? fmt.rate(best.value) : "—", "best_pass"),
          TB.card("tasks", fmt.int(s.n_tasks), "n_tasks"), TB.card("variants", fmt.int(s.n_variants), "n_variants"),
          TB.card("tokens", fmt.int(s.total_tokens), "total_tokens"), TB.card("cost", fmt.cost(s.cost_usd), "cost_usd"),
          TB.card("duration", fmt.dur(job.duration_s), "duration")),
        el("p", { class: "note", text: "success rate = " + s.success_rate_counts }),
        el("div", { class: "toolbar" },
          job.has_analysis ? TB.link("#/analysis/" + job.id, "Analysis: failure distributions, tiers, score comparison, correlations", { data: { link: "analysis" } }) : el("span", { class: "muted", text: "no analysis for this job" }),
          s.variants.length > 1 ? TB.link("#/compare?a=" + job.id + ".0&b=" + job.id + ".1", "compare variants", { data: { link: "compare" } }) : null)
      ];
      (s.baseline_findings || []).forEach(function (b) { head.push(el("div", { class: "warn", text: b.message })); });
      var body = head.concat([
        el("h2", { text: "Variants" }), el("div", { class: "panel" }, variantsTable(job)),
        TB.plots([job.plots.pass_at_k, job.plots.outcomes, job.plots.errors, job.plots.cost]),
        el("h2", { text: "Tasks × variants" }),
        el("p", { class: "note", text: "one square per attempt (green resolved, red unresolved, other colours errors); click for the trial" }),
        el("div", { class: "panel" }, matrix(job, trials)),
        el("h2", { text: "Errors by type" }),
        el("div", { class: "panel" }, Object.keys(job.errors_by_type).length ? TB.table(
          [{ key: "0", label: "type", get: function (r) { return r[0]; } }, { key: "1", label: "trials", num: true, get: function (r) { return r[1]; } }],
          Object.keys(job.errors_by_type).map(function (k) { return [k, job.errors_by_type[k]]; }), { name: "errors", filter: false })
          : el("span", { class: "muted", text: "no error trials" })),
        el("h2", { text: "Trials" }), el("div", { class: "panel" }, trialsTable(job, trials))
      ]);
      return { title: job.name, node: el("div", {}, body), live: s.status === "running" || job.n_unfinished > 0 };
    });
  };
})();
