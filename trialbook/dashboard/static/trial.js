/* The page of one trial: outcome, rewards, timeline, trajectory step by step, files, LLM calls. */
"use strict";
(function () {
  var el = TB.el, fmt = TB.fmt;
  TB.pages = TB.pages || {};

  function kv(rows) {
    return el("table", { class: "data kv" }, el("tbody", {}, rows.filter(function (r) { return r[1] !== undefined; }).map(function (r) {
      return el("tr", { data: { field: r[0] } }, el("th", { text: r[0] }), el("td", {}, r[1] instanceof Node ? r[1] : fmt.text(r[1])));
    })));
  }

  function diffBlock(v) {
    if (v && typeof v === "object") return TB.textBlock(v, "diff");
    var pre = el("pre", { class: "diff" });
    String(v || "").split("\n").forEach(function (line) {
      var c = line.indexOf("+++") === 0 || line.indexOf("---") === 0 ? "hunk" : line.charAt(0) === "+" ? "add" : line.charAt(0) === "-" ? "del" : line.indexOf("@@") === 0 ? "hunk" : "";
      pre.appendChild(el("span", { class: c, text: line || " " }));
    });
    return pre;
  }

  function step(s, trial) {
    var metrics = s.m ? [s.m.prompt !== null && s.m.prompt !== undefined ? "prompt " + fmt.int(s.m.prompt) : null,
      s.m.completion !== null && s.m.completion !== undefined ? "completion " + fmt.int(s.m.completion) : null,
      s.m.cached ? "cached " + fmt.int(s.m.cached) : null, s.m.cost ? fmt.cost(s.m.cost) : null].filter(Boolean).join(" · ") : "";
    var box = el("div", { class: "step src-" + (/^[a-z]+$/.test(s.src) ? s.src : "x"), data: { step: s.id } },
      el("div", { class: "head" }, el("b", { text: "#" + s.id + " " + s.src }), s.model ? el("span", { text: s.model }) : null,
        s.ts ? el("span", { text: s.ts }) : null, metrics ? el("span", { class: "tokens", text: metrics }) : null));
    if (s.msg !== null && TB.plainText(s.msg) !== "") box.appendChild(TB.textBlock(s.msg, "msg", trial.path));
    if (s.reasoning) box.appendChild(el("details", {}, el("summary", { text: "reasoning" }), TB.textBlock(s.reasoning, "reasoning", trial.path)));
    (s.calls || []).forEach(function (c) {
      box.appendChild(el("div", { class: "call" }, el("span", { class: "name", text: "→ " + TB.plainText(c.name) }),
        el("span", { class: "note", text: " " + fmt.text(c.id) }), TB.textBlock(c.args, "args", trial.path)));
    });
    (s.obs || []).forEach(function (o) {
      box.appendChild(el("div", { class: "obs" }, el("span", { class: "note", text: "observation" + (o.call ? " of " + o.call : "") }),
        TB.textBlock(o.content === null ? "" : o.content, "obs", trial.path)));
    });
    return box;
  }

  function trajectory(t) {
    var tr = t.trajectory, out = [el("h2", { text: "Trajectory" })];
    if (tr.error) out.push(el("div", { class: "warn", text: tr.error }));
    if (!tr.total) { out.push(el("p", { class: "muted", text: tr.error ? "" : "This trial has no trajectory." })); return out; }
    out.push(el("p", { class: "muted", text: tr.total + " steps · agent " + tr.agent.name + " " + tr.agent.version +
      (tr.agent.model ? " · " + tr.agent.model : "") + (tr.n_subagents ? " · " + tr.n_subagents + " subagent trajectories" : "") }));
    if (tr.final) out.push(kv(Object.keys(tr.final).map(function (k) { return [k, tr.final[k]]; })));
    if (tr.notes) out.push(TB.textBlock(tr.notes, "notes"));
    out.push(TB.plots([tr.tokens_plot]));
    var list = el("div", { class: "steps" });
    tr.steps.forEach(function (s) { list.appendChild(step(s, t)); });
    out.push(list);
    var pages = (tr.pages || []).slice(), loaded = tr.steps.length;
    if (pages.length) {
      var info = el("span", { class: "note" });
      var btn = el("button", { type: "button", text: "show more steps" });
      var upd = function () { info.textContent = " " + loaded + " of " + tr.total + " steps shown"; if (!pages.length) btn.remove(); };
      btn.addEventListener("click", function () {
        btn.disabled = true;
        TB.load(pages.shift()).then(function (more) {
          more.forEach(function (s) { list.appendChild(step(s, t)); }); loaded += more.length; btn.disabled = false; upd();
        });
      });
      upd();
      out.push(el("div", {}, btn, info));
    }
    return out;
  }

  function files(t) {
    if (!t.files.length) return [];
    var out = [el("h2", { text: "Grading and output files" })];
    t.files.forEach(function (f) {
      out.push(el("div", { class: "panel", data: { file: f.label } }, el("h3", { text: f.label + " — " + f.name + " (" + fmt.size(f.size) + ")" }),
        f.kind === "diff" ? diffBlock(f.text) : TB.textBlock(f.text, f.kind, t.path),
        f.partial ? el("p", { class: "note", text: "only the beginning of this file is in the site" }) : null));
    });
    return out;
  }

  function llm(t) {
    if (!t.llm) return [];
    var cols = [{ key: "seq", label: "#", num: true }, { key: "status", label: "status" },
      { key: "model", label: "model", fmt: function (v) { return TB.plainText(v); } },
      { key: "prompt", label: "prompt tokens", num: true, fmt: fmt.int }, { key: "completion", label: "completion tokens", num: true, fmt: fmt.int },
      { key: "raw", label: "call", sort: false, fmt: function (v) { return el("details", {}, el("summary", { text: "request and response" }), TB.textBlock(v, "raw", t.path)); } }];
    return [el("h2", { text: "Raw LLM calls (" + t.llm.file + ", " + fmt.size(t.llm.size) + ")" }),
      t.llm.partial ? el("p", { class: "note", text: "only the first calls of a large log are in the site" }) : null,
      el("div", { class: "panel" }, TB.table(cols, t.llm.calls, { name: "llm", limit: 100 }))];
  }

  TB.pages.trial = function (jid, tid) {
    return TB.load("trial/" + jid + "/" + tid).then(function (t) {
      var ex = t.exception;
      var body = [
        el("div", { class: "crumbs" }, TB.link("#/", "Jobs"), " › ", TB.link("#/job/" + t.job.id, t.job.name), " › trial"),
        el("h1", { text: t.name }),
        el("div", { class: "cards" }, el("div", { class: "card", data: { stat: "outcome" } }, el("div", { class: "label", text: "outcome" }), TB.badge(t.outcome)),
          TB.card("reward", fmt.rate(t.reward), "reward"), TB.card("duration", fmt.dur(t.duration_s), "duration"),
          TB.card("turns", fmt.int(t.n_turns), "n_turns"), TB.card("tool calls", fmt.int(t.n_tool_calls), "n_tool_calls"),
          TB.card("tokens", fmt.int(t.usage ? t.usage.total_tokens : null), "tokens"), TB.card("cost", fmt.cost(t.usage ? t.usage.cost_usd : null), "cost"))
      ];
      if (t.reason) body.push(el("div", { class: "panel" }, el("b", { text: "reason: " }), TB.textBlock(t.reason, "reason")));
      if (ex) body.push(el("div", { class: "panel" }, el("b", { text: "exception " + ex.type + (ex.phase ? " in " + ex.phase : "") }),
        TB.textBlock(ex.message, "exc"), ex.traceback ? el("details", {}, el("summary", { text: "traceback" }), TB.textBlock(ex.traceback, "tb")) : null));
      body.push(el("h2", { text: "Identity and rewards" }), el("div", { class: "panel" }, kv([
        ["task", t.task], ["variant", t.variant], ["agent", t.agent], ["model", t.model], ["attempt", t.attempt], ["status", t.status],
        ["rewards", t.rewards ? Object.keys(t.rewards).map(function (k) { return k + " = " + t.rewards[k]; }).join(", ") : null],
        ["usage", t.usage ? Object.keys(t.usage).map(function (k) { return k + " = " + t.usage[k]; }).join(", ") : null],
        ["started", t.started_at], ["finished", t.finished_at], ["layout", t.layout], ["source", t.path]])));
      body.push(el("h2", { text: "Timings" }), TB.plots([t.timeline_plot]));
      if (t.timings.length) body.push(el("div", { class: "panel" }, TB.table([{ key: "phase", label: "phase" },
        { key: "offset_s", label: "starts at (s)", num: true, fmt: function (v) { return fmt.num(v, 3); } },
        { key: "duration_s", label: "duration", num: true, fmt: fmt.dur }, { key: "started_at", label: "started" }, { key: "finished_at", label: "finished" }],
        t.timings, { name: "timings", filter: false })));
      body = body.concat(trajectory(t), files(t), llm(t));
      return { title: t.name, node: el("div", {}, body), live: t.status === "running" };
    });
  };
})();
