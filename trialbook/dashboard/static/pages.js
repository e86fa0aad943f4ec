/* Pages: the jobs list, a job's analysis, SFT datasets, run archives. */
"use strict";
(function () {
  var el = TB.el, fmt = TB.fmt;
  TB.pages = TB.pages || {};

  TB.pages.jobs = function () {
    return TB.load("jobs").then(function (site) {
      var rows = site.jobs;
      var selected = {};
      var status = el("select", {}, el("option", { value: "", text: "any status" }));
      var layout = el("select", {}, el("option", { value: "", text: "any layout" }));
      uniq(rows.map(function (r) { return r.status || "unknown"; })).forEach(function (s) { status.appendChild(el("option", { value: s, text: s })); });
      uniq(rows.map(function (r) { return r.layout; })).forEach(function (s) { layout.appendChild(el("option", { value: s, text: s })); });
      var compareBtn = el("button", { type: "button", text: "compare selected" });
      var cols = [
        { key: "sel", label: "", sort: false, fmt: function (_, r) {
          var box = el("input", { type: "checkbox", data: { job: r.id } });
          box.checked = !!selected[r.id];
          box.addEventListener("change", function () { if (box.checked) selected[r.id] = Date.now(); else delete selected[r.id]; });
          return box;
        } },
        { key: "name", label: "job", fmt: function (v, r) { return TB.link("#/job/" + r.id, v); } },
        { key: "layout", label: "layout" },
        { key: "status", label: "status", fmt: function (v, r) {
          var out = [el("span", { class: "badge s-" + (/^[a-z_]+$/.test(v || "") ? v : "x"), text: v || "unknown" })];
          if (r.n_unfinished > 0) out.push(TB.progress(r.n_listed - r.n_unfinished, r.n_listed));
          return el("span", {}, out);
        } },
        { key: "n_trials", label: "trials", num: true, fmt: fmt.int },
        { key: "success_rate", label: "success rate", num: true, fmt: fmt.rate },
        { key: "pass", label: "pass@k (best variant)", num: true, get: function (r) { return r.pass ? r.pass.value : null; },
          fmt: function (v, r) { return r.pass ? "@" + r.pass.k + " " + fmt.rate(r.pass.value) : "—"; } },
        { key: "failures", label: "errors", num: true, fmt: fmt.int },
        { key: "cost_usd", label: "cost", num: true, fmt: fmt.cost },
        { key: "total_tokens", label: "tokens", num: true, fmt: fmt.int },
        { key: "duration_s", label: "duration", num: true, fmt: fmt.dur },
        { key: "started_at", label: "started" }
      ];
      var tbl = TB.table(cols, rows, { name: "jobs", filter: true, tools: [status, layout, compareBtn], where: function (r) {
        return (!status.value || (r.status || "unknown") === status.value) && (!layout.value || r.layout === layout.value);
      } });
      status.addEventListener("change", tbl.refresh); layout.addEventListener("change", tbl.refresh);
      compareBtn.addEventListener("click", function () {
        var ids = Object.keys(selected).sort(function (a, b) { return selected[a] - selected[b]; });
        if (ids.length !== 2) { compareBtn.textContent = "select two jobs"; return; }
        location.hash = "#/compare?a=" + ids[0] + ".0&b=" + ids[1] + ".0";
      });
      return {
        title: "Jobs",
        node: el("div", {},
          el("h1", { text: "Jobs" }),
          el("p", { class: "muted", text: rows.length + " jobs from " + (site.block ? "block " + site.block : "the given roots") +
            (site.roots.length ? "; roots: " + site.roots.join(", ") : "") }),
          TB.warnings(site.warnings), el("div", { class: "panel" }, tbl))
      };
    });
  };

  function uniq(list) { return list.filter(function (v, i) { return list.indexOf(v) === i; }).sort(); }

  function genericTable(t) {
    var cols = t.columns.map(function (c, i) {
      return { key: String(i), label: c, num: false, get: function (r) { return r[i]; },
        fmt: function (v) { return typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : fmt.text(v); } };
    });
    var rows = t.rows;
    return el("div", { class: "panel" }, el("h3", { text: t.title + (t.n > rows.length ? " (first " + rows.length + " of " + t.n + ")" : "") }),
      TB.table(cols, rows, { limit: 200 }));
  }

  TB.pages.analysis = function (jid) {
    return TB.load("analysis/" + jid).then(function (a) {
      var body = [el("div", { class: "crumbs" }, TB.link("#/", "Jobs"), " › ", TB.link("#/job/" + jid, a.job.name), " › analysis"),
        el("h1", { text: "Analysis of " + a.job.name }), TB.warnings(a.warnings), TB.plots(a.plots)];
      if (!a.sections.length) body.push(el("p", { class: "muted", text: "No analysis files for this job." }));
      var toc = el("ul");
      a.sections.forEach(function (s, i) {
        toc.appendChild(el("li", {}, el("span", { text: s.title + " (" + s.file + ", " + s.tables.length + " tables)" })));
        body.push(el("h2", { text: s.title, data: { section: String(i) } }), el("p", { class: "note", text: "analysis/" + s.file }));
        s.tables.forEach(function (t) { body.push(genericTable(t)); });
      });
      body.splice(4, 0, toc);
      return { title: "Analysis: " + a.job.name, node: el("div", {}, body) };
    });
  };

  TB.pages.sft = function () {
    return TB.load("sft").then(function (d) {
      var body = [el("h1", { text: "SFT datasets" }), TB.warnings(d.warnings)];
      if (!d.datasets.length) body.push(el("p", { class: "muted", text: "No lf.stats.json under artifacts/sft_data/ (run `trialbook convert`)." }));
      d.datasets.forEach(function (ds) {
        body.push(el("h2", { text: ds.name, data: { dataset: ds.name } }),
          el("div", { class: "cards" }, TB.card("trajectories in", fmt.int(ds["in"]), "in"), TB.card("kept", fmt.int(ds.kept), "kept"),
            TB.card("dropped", fmt.int(ds.dropped_total), "dropped"), TB.card("tokenizer", fmt.text(ds.tokenizer))),
          TB.plots(ds.plots),
          el("div", { class: "panel" }, el("h3", { text: "Distributions of kept examples" }),
            TB.table(ds.distributions.columns.map(function (c, i) { return { key: String(i), label: c, num: i > 0, get: function (r) { return r[i]; }, fmt: fmt.text }; }),
              ds.distributions.rows, { filter: false, name: "sft-dist" })),
          el("div", { class: "panel" }, el("h3", { text: "By variant (in / kept)" }), pairTable(ds.by_variant, "variant")),
          el("div", { class: "panel" }, el("h3", { text: "By task (in / kept)" }), pairTable(ds.by_task, "task")));
      });
      return { title: "SFT", node: el("div", {}, body) };
    });
  };
  function pairTable(rows, what) {
    return TB.table([{ key: "0", label: what, get: function (r) { return r[0]; } },
      { key: "1", label: "in", num: true, get: function (r) { return r[1]; }, fmt: fmt.int },
      { key: "2", label: "kept", num: true, get: function (r) { return r[2]; }, fmt: fmt.int }], rows, { limit: 200 });
  }

  TB.pages.archives = function () {
    return TB.load("archives").then(function (d) {
      var cols = [
        { key: "number", label: "run", num: true }, { key: "archive", label: "archive" }, { key: "run_id", label: "run id" },
        { key: "job", label: "job" }, { key: "status", label: "status" }, { key: "trigger", label: "trigger" },
        { key: "started_at", label: "started" }, { key: "finished_at", label: "finished" },
        { key: "n_trials", label: "trials", num: true, fmt: fmt.int }, { key: "n_resolved", label: "resolved", num: true, fmt: fmt.int },
        { key: "n_errors", label: "errors", num: true, fmt: fmt.int }, { key: "success_rate", label: "success rate", num: true, fmt: fmt.rate },
        { key: "variants", label: "per variant", sort: false, fmt: function (v) {
          return Object.keys(v || {}).map(function (k) { return k + ": " + fmt.rate(v[k]); }).join(", ") || "—"; } },
        { key: "present", label: "state", fmt: function (v, r) { return r.orphan ? "orphan (no index entry)" : v ? "archived" : "directory missing"; } }
      ];
      var body = [el("h1", { text: "Run archives" }), TB.warnings(d.warnings)];
      if (!d.runs.length) body.push(el("p", { class: "muted", text: "No archived run (artifacts/index.yaml is empty or absent)." }));
      else body.push(TB.plots([d.plot]), el("div", { class: "panel" }, TB.table(cols, d.runs, { name: "archives" })));
      return { title: "Archives", node: el("div", {}, body) };
    });
  };
})();
