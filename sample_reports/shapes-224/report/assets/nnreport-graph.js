// nnreport graph page: opens and closes any set of groups in place; the layout itself comes from
// nnreport-graph-layout.js (loaded first), run in a Web Worker made from its source.
function nnreportGraphViewer() {
  "use strict";
  var svg = document.getElementById("graph-svg"), source = document.getElementById("graph-data");
  if (!svg || !source) { return; }
  var G = window.nnreportGraph, data = JSON.parse(source.textContent), graph = G.decode(data.graph);
  var layer = document.getElementById("graph-layer"), card = document.getElementById("graph-card");
  var where = document.getElementById("graph-where"), mini = document.getElementById("graph-minimap");
  var miniRect = document.getElementById("graph-minimap-viewport");
  var open = new Set(), size = [parseFloat(layer.getAttribute("data-w")), parseFloat(layer.getAttribute("data-h"))];
  var box = null, requested = 0, drawnId = 0, pending = new Map(), cache = new Map(), worker = startWorker();
  var SVGNS = "http://www.w3.org/2000/svg";

  function startWorker() {
    if (typeof Worker === "undefined" || typeof Blob === "undefined") { return null; }
    try {
      var url = URL.createObjectURL(new Blob(["(" + nnreportGraphModule.toString() + ")(self);"], { type: "text/javascript" }));
      var w = new Worker(url);
      w.onmessage = function (ev) { var cb = pending.get(ev.data.id); pending.delete(ev.data.id); if (cb) { cb(ev.data); } };
      w.onerror = function (ev) { if (ev.preventDefault) { ev.preventDefault(); } fallBack(); };
      w.postMessage({ type: "init", data: data.graph, restarts: data.restarts });
      return w;
    } catch (err) {
      return null;  // no worker (an old browser or a strict policy): lay out on the page itself
    }
  }
  function fallBack() {
    worker = null;
    var waiting = Array.from(pending.entries());
    pending.clear();
    waiting.forEach(function (entry) { entry[1].retry(); });
  }
  // Lay out the view with `expand` open: in the worker when there is one, else here (after a paint).
  function layout(expand, done) {
    var id = ++requested;
    var local = function () { setTimeout(function () { done({ id: id, view: G.drawView(graph, expand, data.restarts, cache) }); }, 0); };
    if (!worker) { local(); return id; }
    var cb = function (m) { done(m); };
    cb.retry = local;
    pending.set(id, cb);
    worker.postMessage({ type: "view", id: id, expand: expand });
    return id;
  }

  function esc(t) {
    return String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function pathD(p) {
    var d = "M" + p[0][0] + "," + p[0][1];
    for (var i = 1; i < p.length; i++) {
      var a = p[i - 1], b = p[i];
      if (a[0] === b[0]) { d += " L" + b[0] + "," + b[1]; }
      else { var my = Math.round((a[1] + b[1]) * 5) / 10; d += " C" + a[0] + "," + my + " " + b[0] + "," + my + " " + b[0] + "," + b[1]; }
    }
    return d;
  }
  function hue(b) { return b.hue >= 0 ? " gv-hue-" + b.hue : ""; }
  // The same markup as templates/graph.svg, as strings (every name escaped), in drawing order.
  function markup(view) {
    var out = [];
    view.boxes.forEach(function (b) {
      if (b.kind !== "expanded") { return; }
      out.push('<g class="gv-frame' + hue(b) + '" data-id="' + esc(b.id) + '" data-depth="' + b.depth + '"><rect x="' + b.x +
        '" y="' + b.y + '" width="' + b.width + '" height="' + b.height + '" rx="6"/><text class="gv-frame-label" x="' +
        r1(b.x + 8) + '" y="' + r1(b.y + 15) + '">\u25BE ' + esc(b.label) + ' <tspan class="gv-sub">' + esc(b.sublabel) + "</tspan></text></g>");
    });
    view.edges.forEach(function (e) {
      if (e.points.length < 2) { return; }
      out.push('<path class="gv-edge" d="' + pathD(e.points) + '" stroke-width="' + e.width + '" data-from="' + esc(e.source) +
        '" data-to="' + esc(e.target) + '"><title>' + esc(e.label) + (e.count > 1 ? " \u00b7 " + e.count + " data edges" : "") + "</title></path>");
    });
    view.edges.forEach(function (e) {
      if (e.labelAt) { out.push('<text class="gv-elabel" x="' + e.labelAt[0] + '" y="' + e.labelAt[1] + '">' + esc(e.label) + "</text>"); }
    });
    view.boxes.forEach(function (b) {
      if (b.kind === "expanded") { return; }
      var rx = b.kind === "input" || b.kind === "output" ? 11 : (b.kind === "group" ? 5 : 3);
      var s = '<g class="gv-node gv-' + b.kind + hue(b) + '" data-id="' + esc(b.id) + '" transform="translate(' + b.x + "," + b.y +
        ')"><rect width="' + b.width + '" height="' + b.height + '" rx="' + rx + '"/>';
      if (b.kind === "group") { s += '<rect class="gv-stack" x="3" y="' + r1(b.height - 3) + '" width="' + r1(b.width - 6) + '" height="3"/>'; }
      s += '<text x="' + r1(b.width / 2) + '" y="' + (b.sublabel ? 15 : r1(b.height / 2 + 4)) + '" text-anchor="middle">' + esc(b.label) + "</text>";
      if (b.sublabel) { s += '<text class="gv-sub" x="' + r1(b.width / 2) + '" y="' + (b.kind === "group" ? 27 : 25) + '" text-anchor="middle">' + esc(b.sublabel) + "</text>"; }
      out.push(s + "</g>");
    });
    return out;
  }
  function r1(v) { return Math.round(v * 10) / 10; }

  // Draw a view: the markup is parsed into a detached group a few thousand elements per frame (the page
  // stays live), then swapped in at once, so the browser lays out and paints the big drawing only once.
  function draw(view, then, anchor) {
    var parts = markup(view), CHUNK = 4000, at = 0, token = ++drawnId, next = document.createElementNS(SVGNS, "g");
    var was = anchor && position(anchor);
    function step() {
      if (token !== drawnId) { return; }
      next.insertAdjacentHTML("beforeend", parts.slice(at, at + CHUNK).join(""));
      at += CHUNK;
      if (at < parts.length) { svg.setAttribute("data-state", "drawing"); requestAnimationFrame(step); return; }
      layer.textContent = "";
      layer.appendChild(next);
      minimap(view);
      size = [view.width, view.height];
      layer.setAttribute("data-w", view.width); layer.setAttribute("data-h", view.height);
      layer.setAttribute("data-key", view.expanded.length > 200 ? "*" : view.expanded.join(","));
      var now = anchor && view.boxes.filter(function (b) { return b.id === anchor; })[0];
      mini.setAttribute("viewBox", "0 0 " + size[0] + " " + size[1]);
      // Opened or closed in place: the group keeps its place on the screen, at the same zoom.
      if (was && now && box) { setBox([box[0] + now.x - was.x, box[1] + now.y - was.y, box[2], box[3]]); } else { fit(); }
      if (then) { then(); }
    }
    step();
  }

  // Top-left corner of a drawn node or open group's frame, in drawing coordinates.
  function position(id) {
    var el = layer.querySelector('[data-id="' + CSS.escape(id) + '"]');
    if (!el) { return null; }
    if (el.classList.contains("gv-frame")) {
      var r = el.querySelector("rect");
      return { x: parseFloat(r.getAttribute("x")), y: parseFloat(r.getAttribute("y")) };
    }
    var t = el.transform.baseVal;
    return t.numberOfItems ? { x: t.getItem(0).matrix.e, y: t.getItem(0).matrix.f } : null;
  }

  // The minimap is the boxes as two paths, not a copy of the drawing: a <use> of a 10k-node drawing
  // doubled the cost of every redraw.
  function minimap(view) {
    var frames = [], nodes = [];
    view.boxes.forEach(function (b) {
      (b.kind === "expanded" ? frames : nodes).push("M" + b.x + "," + b.y + "h" + b.width + "v" + b.height + "h" + (-b.width) + "z");
    });
    var use = document.getElementById("graph-minimap-use");
    if (use) { use.parentNode.removeChild(use); }
    var paths = mini.querySelectorAll(".gv-mini");
    if (!paths.length) {
      [["gv-mini gv-mini-frames", "none"], ["gv-mini gv-mini-nodes", "#999999"]].forEach(function (c) {
        var el = document.createElementNS(SVGNS, "path");
        el.setAttribute("class", c[0]); el.setAttribute("fill", c[1]); el.setAttribute("stroke", "#888888");
        el.setAttribute("vector-effect", "non-scaling-stroke");
        mini.insertBefore(el, miniRect);
      });
      paths = mini.querySelectorAll(".gv-mini");
    }
    paths[0].setAttribute("d", frames.join(""));
    paths[1].setAttribute("d", nodes.join(""));
  }

  function leaves() {
    var list = Array.from(open);
    return list.filter(function (g) {
      return !list.some(function (h) { return h !== g && G.chain(graph, h).indexOf(g) >= 0; });
    }).sort();
  }
  function setHash() {
    if (!window.history || !window.history.replaceState) { return; }
    var ids = leaves(), all = ids.length && open.size === graph.groups.length - 1;
    var hash = all ? "#graph:*" : (ids.length ? "#graph:" + ids.map(encodeURIComponent).join(",") : "");
    try { window.history.replaceState(null, "", hash || window.location.pathname + window.location.search); } catch (e) { /* file:// */ }
  }
  // Show the view with the groups in `open`; `then` runs once it is drawn.
  function refresh(then, keepHash, anchor) {
    var expand = Array.from(open).sort(), started = performance.now();
    svg.setAttribute("data-state", "busy");
    where.textContent = "laying out\u2026";
    layout(expand, function (m) {
      if (m.id !== requested) { return; }  // a newer request is on its way
      if (m.error) { console.error("nnreport graph layout: " + m.error); svg.setAttribute("data-state", "error"); return; }
      svg.setAttribute("data-layout-ms", Math.round(performance.now() - started));
      draw(m.view, function () {
        var n = m.view.expanded.length;
        where.textContent = n === 0 ? "overview" : (n === graph.groups.length - 1 ? "all groups open" : n + " group" + (n === 1 ? "" : "s") + " open");
        svg.setAttribute("data-crossings", m.view.crossings);
        svg.setAttribute("data-ms", Math.round(performance.now() - started));
        svg.setAttribute("data-worker", worker ? "yes" : "no");
        svg.setAttribute("data-state", "idle");
        if (then) { then(); }
      }, anchor);
    });
    if (!keepHash) { setHash(); }
  }
  function isGroup(id) { var d = graph.byId.get(id); return !!(d && d.isGroup); }
  function openGroup(id) {
    if (!isGroup(id) || id === "") { return; }
    open.add(id);
    G.chain(graph, id).forEach(function (a) { if (a) { open.add(a); } });
  }
  function closeGroup(id) {
    Array.from(open).forEach(function (g) { if (g === id || G.chain(graph, g).indexOf(id) >= 0) { open.delete(g); } });
  }

  function setBox(b) {
    box = b;
    svg.setAttribute("viewBox", b.join(" "));
    miniRect.setAttribute("x", b[0]); miniRect.setAttribute("y", b[1]);
    miniRect.setAttribute("width", b[2]); miniRect.setAttribute("height", b[3]);
  }
  function fit() {
    var w = size[0], h = size[1], r = svg.getBoundingClientRect(), aspect = r.width && r.height ? r.width / r.height : 1.5;
    var bw = Math.max(w, h * aspect), bh = bw / aspect;
    if (bw < 200) { bw = 200; bh = bw / aspect; }
    setBox([(w - bw) / 2, Math.min(0, (h - bh) / 2), bw, bh]);
    mini.setAttribute("viewBox", "0 0 " + w + " " + h);
  }

  var dragging = null, moved = false;
  svg.addEventListener("click", function (ev) {
    if (moved) { return; }
    var label = ev.target.closest(".gv-frame-label"), node = ev.target.closest(".gv-group");
    var id;
    if (label) { id = label.parentNode.getAttribute("data-id"); closeGroup(id); refresh(null, false, id); }
    else if (node) { id = node.getAttribute("data-id"); openGroup(id); refresh(null, false, id); }
  });

  function row(dl, k, v) {
    if (v === undefined || v === null || v === "" || v === "0" || v.length === 0) { return; }
    var dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k; dd.textContent = Array.isArray(v) ? v.join(", ") : String(v);
    dl.appendChild(dt); dl.appendChild(dd);
  }
  svg.addEventListener("mousemove", function (ev) {
    var el = ev.target.closest("[data-id]"), d = el && !dragging ? graph.byId.get(el.getAttribute("data-id")) : null;
    if (!d) { card.hidden = true; return; }
    card.textContent = "";
    var title = document.createElement("strong");
    title.textContent = d.isGroup ? d.name : d.label;
    card.appendChild(title);
    var dl = document.createElement("dl");
    if (d.isGroup) {
      row(dl, "module", d.module); row(dl, "type", d.type); row(dl, "ops", String(d.ops));
      row(dl, "parameters", G.compact(d.params)); row(dl, "mult-adds", G.compact(d.macs));
      row(dl, "click", open.has(d.id) ? "its title closes it" : "open this group");
    } else {
      row(dl, "op", d.op); row(dl, "module", d.module); row(dl, "type", d.type);
      row(dl, "output", d.shapes.map(function (s) { return G.shapeLabel(s, graph.batch); })); row(dl, "dtype", d.dtypes);
      row(dl, "parameters", G.compact(d.params)); row(dl, "weights", d.paramNames.slice(0, 8));
      row(dl, "mult-adds", G.compact(d.macs)); row(dl, "folded ops", d.aux); row(dl, "source", d.source);
    }
    card.appendChild(dl);
    var r = document.getElementById("graph-viewer").getBoundingClientRect();
    card.style.left = Math.min(ev.clientX - r.left + 14, r.width - 260) + "px";
    card.style.top = (ev.clientY - r.top + 14) + "px";
    card.hidden = false;
  });
  svg.addEventListener("mouseleave", function () { card.hidden = true; });

  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var r = svg.getBoundingClientRect(), k = ev.deltaY > 0 ? 1.15 : 1 / 1.15;
    var px = box[0] + (ev.clientX - r.left) / r.width * box[2], py = box[1] + (ev.clientY - r.top) / r.height * box[3];
    setBox([px - (px - box[0]) * k, py - (py - box[1]) * k, box[2] * k, box[3] * k]);
  }, { passive: false });
  svg.addEventListener("mousedown", function (ev) { dragging = [ev.clientX, ev.clientY, box[0], box[1]]; moved = false; });
  window.addEventListener("mousemove", function (ev) {
    if (!dragging) { return; }
    var r = svg.getBoundingClientRect(), dx = ev.clientX - dragging[0], dy = ev.clientY - dragging[1];
    if (Math.abs(dx) + Math.abs(dy) > 3) { moved = true; svg.classList.add("panning"); }
    if (moved) { setBox([dragging[2] - dx / r.width * box[2], dragging[3] - dy / r.height * box[3], box[2], box[3]]); }
  });
  window.addEventListener("mouseup", function () { dragging = null; svg.classList.remove("panning"); setTimeout(function () { moved = false; }, 0); });
  mini.addEventListener("click", function (ev) {
    var r = mini.getBoundingClientRect(), vb = mini.viewBox.baseVal, s = Math.max(vb.width / r.width, vb.height / r.height);
    var cx = vb.x + (ev.clientX - r.left - (r.width - vb.width / s) / 2) * s;
    var cy = vb.y + (ev.clientY - r.top - (r.height - vb.height / s) / 2) * s;
    setBox([cx - box[2] / 2, cy - box[3] / 2, box[2], box[3]]);
  });

  // Search: the first match (Enter for the next one) is opened where it is and centred.
  var search = document.getElementById("graph-search"), status = document.getElementById("graph-search-status");
  var hits = [], hitAt = -1, items = graph.groups.filter(function (g) { return g.id; }).concat(graph.nodes);
  function element(id) { return layer.querySelector('[data-id="' + CSS.escape(id) + '"]'); }
  function highlight(id) {
    Array.prototype.forEach.call(layer.querySelectorAll(".gv-hit"), function (e) { e.classList.remove("gv-hit"); });
    var el = null, target = id;
    while (target && !(el = element(target))) { target = graph.parentOf.get(target) || ""; }
    if (!el) { return; }
    el.classList.add("gv-hit");
    var b = el.getBBox(), m = el.transform && el.transform.baseVal.numberOfItems ? el.transform.baseVal.getItem(0).matrix : { e: 0, f: 0 };
    setBox([b.x + m.e + b.width / 2 - box[2] / 2, b.y + m.f + b.height / 2 - box[3] / 2, box[2], box[3]]);
  }
  function reveal(id, keepHash) {
    var parent = isGroup(id) ? graph.byId.get(id).parent : (graph.byId.get(id) || {}).group;
    var need = parent && !open.has(parent);
    if (need) { openGroup(parent); refresh(function () { highlight(id); }, keepHash); } else { highlight(id); }
  }
  function find(q) {
    q = q.trim().toLowerCase();
    hits = [];
    if (!q) { status.textContent = ""; return; }
    items.forEach(function (d) {
      var text = [d.isGroup ? d.name : d.label, d.op || "", d.module || "", d.type || ""].join(" ").toLowerCase();
      if (text.indexOf(q) >= 0) { hits.push(d.id); }
    });
    hitAt = -1;
    next();
  }
  function next() {
    if (!hits.length) { status.textContent = "no match"; return; }
    hitAt = (hitAt + 1) % hits.length;
    var d = graph.byId.get(hits[hitAt]);
    status.textContent = (hitAt + 1) + " of " + hits.length + ": " + (d.isGroup ? d.name : d.label);
    reveal(hits[hitAt]);
  }
  search.addEventListener("input", function () { find(search.value); });
  search.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { ev.preventDefault(); next(); } });

  document.getElementById("graph-overview").addEventListener("click", function () { open.clear(); refresh(); });
  document.getElementById("graph-all").addEventListener("click", function () {
    graph.groups.forEach(function (g) { if (g.id) { open.add(g.id); } });
    refresh();
  });
  document.getElementById("graph-fit").addEventListener("click", fit);
  document.getElementById("graph-download").addEventListener("click", function () {
    var out = document.createElementNS(SVGNS, "svg"), w = String(size[0]), h = String(size[1]);
    out.setAttribute("xmlns", SVGNS);
    out.setAttribute("viewBox", "0 0 " + w + " " + h); out.setAttribute("width", w); out.setAttribute("height", h);
    var st = document.createElementNS(SVGNS, "style");
    st.textContent = document.getElementById("graph-svg-style").textContent;
    out.appendChild(st);
    var g = layer.cloneNode(true); g.removeAttribute("id"); out.appendChild(g);
    this.setAttribute("href", "data:image/svg+xml;charset=utf-8," + encodeURIComponent(new XMLSerializer().serializeToString(out)));
  });

  // Deep links: #graph:a,b,c opens those groups together (an op's id opens its group and marks it).
  function fromHash() {
    var h = window.location.hash;
    if (h.indexOf("#graph:") !== 0) { return; }
    var ids = h.slice(7).split(",").map(function (s) { try { return decodeURIComponent(s); } catch (e) { return s; } });
    open.clear();
    var mark = null;
    ids.forEach(function (id) {
      if (id === "*") { graph.groups.forEach(function (g) { if (g.id) { open.add(g.id); } }); }
      else if (isGroup(id)) { openGroup(id); }
      else if (graph.byId.has(id)) { openGroup(graph.byId.get(id).group); mark = id; }
    });
    refresh(function () { if (mark) { highlight(mark); } }, true);
  }
  window.addEventListener("hashchange", fromHash);
  where.textContent = "overview";
  fit();
  svg.setAttribute("data-ready", "true");
  svg.setAttribute("data-ready-ms", Math.round(performance.now()));
  fromHash();
  window.nnreportGraphPage = { open: open, refresh: refresh, graph: graph, openGroup: openGroup, closeGroup: closeGroup };
}

if (typeof window !== "undefined") { nnreportGraphViewer(); }
