/* trialbook dashboard: data loading, safe DOM building, formatting, tables, plots.
 * Every string from the results (names, messages, logs) is untrusted: it only ever reaches the
 * page through textContent / createTextNode, links are only in-site "#/..." routes, and data
 * files are loaded with <script src> under a CSP that forbids inline script and eval. */
"use strict";
(function () {
  var TB = window.TB = { data: {}, pending: {}, route: null };
  var KEY = /^[a-z]+(\/[0-9a-z._-]+)*$/;

  /* Called by every data file: TB.put("job/<id>", {...}). */
  TB.put = function (key, value) {
    TB.data[key] = value;
    var waiting = TB.pending[key];
    if (waiting) { delete TB.pending[key]; waiting.forEach(function (w) { w.resolve(value); }); }
  };

  /* Load data/<key>.js once (fresh=true reloads it, for live updates). */
  TB.load = function (key, fresh) {
    if (!KEY.test(key)) return Promise.reject(new Error("bad data key"));
    if (!fresh && Object.prototype.hasOwnProperty.call(TB.data, key)) return Promise.resolve(TB.data[key]);
    return new Promise(function (resolve, reject) {
      (TB.pending[key] = TB.pending[key] || []).push({ resolve: resolve, reject: reject });
      var s = document.createElement("script");
      s.src = "data/" + key + ".js" + (fresh ? "?v=" + Date.now() : "");
      s.onload = function () { s.remove(); };
      s.onerror = function () {
        s.remove();
        var waiting = TB.pending[key] || []; delete TB.pending[key];
        waiting.forEach(function (w) { w.reject(new Error("no data file for " + key + " (rebuild the dashboard)")); });
      };
      document.head.appendChild(s);
    });
  };

  /* el("td", {class: "num", text: "3"}, child...) — no innerHTML anywhere. */
  TB.el = function (tag, props) {
    var node = document.createElement(tag);
    props = props || {};
    Object.keys(props).forEach(function (k) {
      var v = props[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = String(v);
      else if (k === "href") {
        if (typeof v !== "string" || v.charAt(0) !== "#") throw new Error("only in-site links");
        node.setAttribute("href", v);
      } else if (k === "on") Object.keys(v).forEach(function (ev) { node.addEventListener(ev, v[ev]); });
      else if (k === "data") Object.keys(v).forEach(function (d) { node.dataset[d] = String(v[d]); });
      else if (k === "style") node.style.cssText = v;
      else if (/^(title|type|value|placeholder|colspan|checked|selected|disabled|open|id|name|min|max)$/.test(k)) {
        if (k === "checked" || k === "selected" || k === "disabled" || k === "open") node[k] = !!v;
        else node.setAttribute(k, String(v));
      } else throw new Error("attribute not allowed: " + k);
    });
    for (var i = 2; i < arguments.length; i++) TB.append(node, arguments[i]);
    return node;
  };
  TB.append = function (node, child) {
    if (child === null || child === undefined || child === false) return node;
    if (Array.isArray(child)) { child.forEach(function (c) { TB.append(node, c); }); return node; }
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  };
  TB.link = function (route, text, props) {
    var p = Object.assign({}, props || {}); p.href = route; p.text = text;
    return TB.el("a", p);
  };
  TB.isId = function (s) { return typeof s === "string" && /^[0-9a-f]{6,40}$/.test(s); };

  /* Formatting (null is "—": unknown is not zero). */
  var DASH = "—";
  TB.fmt = {
    rate: function (v) { return v === null || v === undefined ? DASH : Number(v).toFixed(3); },
    num: function (v, d) { return v === null || v === undefined ? DASH : Number(v).toFixed(d === undefined ? 3 : d); },
    int: function (v) { return v === null || v === undefined ? DASH : Math.round(v).toLocaleString("en-US"); },
    cost: function (v) { return v === null || v === undefined ? DASH : "$" + Number(v).toFixed(4); },
    dur: function (v) {
      if (v === null || v === undefined) return DASH;
      if (v < 60) return Number(v).toFixed(1) + " s";
      if (v < 3600) return (v / 60).toFixed(1) + " min";
      return (v / 3600).toFixed(2) + " h";
    },
    text: function (v) { return v === null || v === undefined || v === "" ? DASH : String(v); },
    size: function (n) { return n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KB" : (n / 1048576).toFixed(1) + " MB"; }
  };

  TB.badge = function (outcome) {
    var o = outcome || "running";
    return TB.el("span", { class: "badge o-" + (/^[a-z_]+$/.test(o) ? o : "x"), text: o });
  };
  TB.progress = function (done, total) {
    var pct = total ? Math.round(100 * done / total) : 0;
    var bar = TB.el("span"); bar.style.width = pct + "%";
    return TB.el("span", { title: done + " of " + total + " finished" },
      TB.el("span", { class: "progress" }, bar), " " + done + "/" + total);
  };
  TB.card = function (label, value, stat) {
    return TB.el("div", { class: "card", data: stat ? { stat: stat } : null },
      TB.el("div", { class: "label", text: label }), TB.el("div", { class: "value", text: value }));
  };
  TB.warnings = function (list) {
    return (list || []).map(function (w) { return TB.el("div", { class: "warn", text: w }); });
  };

  /* A text the builder may have cut: a string, or {head, len, more: [keys], cut}. */
  TB.textBlock = function (v, cls, source) {
    var pre = TB.el("pre", { class: cls || "" });
    if (v === null || v === undefined) return null;
    if (typeof v === "string") { pre.textContent = v; return pre; }
    pre.appendChild(document.createTextNode(v.head));
    var shown = v.head.length, next = 0;
    var wrap = TB.el("div", {}, pre);
    var info = TB.el("span", { class: "note" });
    var btn = TB.el("button", { class: "more", type: "button" });
    function update() {
      info.textContent = " showing " + shown.toLocaleString("en-US") + " of " + v.len.toLocaleString("en-US") + " characters";
      if (next >= v.more.length) {
        btn.remove();
        if (v.cut) info.textContent += "; the site keeps only the first part" + (source ? " (full text: " + source + ")" : "");
      } else btn.textContent = "show more";
    }
    btn.addEventListener("click", function () {
      btn.disabled = true;
      TB.load(v.more[next]).then(function (chunk) {
        pre.appendChild(document.createTextNode(chunk)); shown += chunk.length; next++;
        btn.disabled = false; update();
      }, function (e) { info.textContent = " " + e.message; });
    });
    update();
    wrap.appendChild(TB.el("div", {}, btn, info));
    return wrap;
  };
  TB.plainText = function (v) { return v === null || v === undefined ? "" : typeof v === "string" ? v : v.head; };

  /* A sortable, filterable table. cols: [{key, label, fmt(v,row) -> string|Node, num, sort}] */
  TB.table = function (cols, rows, opts) {
    opts = opts || {};
    var limit = opts.limit || 500, state = { key: null, dir: 1, filter: "", all: false };
    var table = TB.el("table", { class: "data " + (opts.cls || ""), data: opts.name ? { table: opts.name } : null });
    var thead = TB.el("thead"), tbody = TB.el("tbody"), foot = TB.el("div", { class: "note" });
    var tr = TB.el("tr");
    cols.forEach(function (c, i) {
      var th = TB.el("th", { text: c.label, class: c.sort === false ? "" : "sortable", data: { col: c.key } });
      if (c.sort !== false) th.addEventListener("click", function () {
        state.dir = state.key === i ? -state.dir : 1; state.key = i; render();
        Array.prototype.forEach.call(tr.children, function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
        th.classList.add(state.dir > 0 ? "sorted-asc" : "sorted-desc");
      });
      tr.appendChild(th);
    });
    thead.appendChild(tr); table.appendChild(thead); table.appendChild(tbody);
    function value(row, c) { return typeof c.get === "function" ? c.get(row) : row[c.key]; }
    function render() {
      var list = rows;
      if (state.filter) {
        var f = state.filter.toLowerCase();
        list = list.filter(function (r) {
          return cols.some(function (c) { var v = value(r, c); return v !== null && v !== undefined && String(v).toLowerCase().indexOf(f) >= 0; });
        });
      }
      if (opts.where) list = list.filter(opts.where);
      if (state.key !== null) {
        var c = cols[state.key];
        list = list.slice().sort(function (a, b) {
          var x = value(a, c), y = value(b, c);
          if (x === y) return 0; if (x === null || x === undefined) return 1; if (y === null || y === undefined) return -1;
          return (x < y ? -1 : 1) * state.dir;
        });
      }
      tbody.textContent = "";
      var shown = state.all ? list : list.slice(0, limit);
      shown.forEach(function (r) {
        var row = TB.el("tr");
        cols.forEach(function (c) {
          var v = value(r, c);
          var out = c.fmt ? c.fmt(v, r) : TB.fmt.text(v);
          row.appendChild(TB.el("td", { class: c.num ? "num" : "", data: { col: c.key } }, out));
        });
        tbody.appendChild(row);
      });
      foot.textContent = "";
      if (shown.length < list.length) {
        foot.appendChild(document.createTextNode(shown.length + " of " + list.length + " rows shown "));
        foot.appendChild(TB.el("button", { type: "button", text: "show all", on: { click: function () { state.all = true; render(); } } }));
      } else foot.textContent = list.length + " rows";
    }
    var box = TB.el("div", { class: "tablebox" });
    if (opts.filter === true || (opts.filter !== false && rows.length > 8)) {
      var input = TB.el("input", { type: "search", placeholder: "filter…" });
      input.addEventListener("input", function () { state.filter = input.value; render(); });
      box.appendChild(TB.el("div", { class: "toolbar" }, input, opts.tools || null));
    } else if (opts.tools) box.appendChild(TB.el("div", { class: "toolbar" }, opts.tools));
    box.appendChild(table); box.appendChild(foot);
    box.refresh = render;
    render();
    return box;
  };

  /* A plotly figure built by the site builder (never hand-drawn). */
  TB.plot = function (fig) {
    if (!fig) return null;
    var div = TB.el("div", { class: "plot" });
    TB.afterRender.push(function () {
      return TB.loadPlotly().then(function (Plotly) {
        if (div.isConnected) return Plotly.newPlot(div, fig.data, fig.layout, { displaylogo: false, responsive: true });
      });
    });
    return div;
  };
  TB.afterRender = [];
  /* plotly.js (copied from the plotly package at build time) is loaded on the first plot. */
  var plotlyPromise = null;
  TB.loadPlotly = function () {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!plotlyPromise) plotlyPromise = new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = "assets/plotly.min.js";
      s.onload = function () { resolve(window.Plotly); };
      s.onerror = function () { plotlyPromise = null; reject(new Error("assets/plotly.min.js missing")); };
      document.head.appendChild(s);
    });
    return plotlyPromise;
  };
  TB.plots = function (figs) {
    var divs = (figs || []).map(TB.plot).filter(Boolean);
    return divs.length ? TB.el("div", { class: "plots" }, divs) : null;
  };
})();
