// nnreport graph layout: nnreport's own layered (Sugiyama) layout and compound drawing, ported from
// nnreport/graph/layout.py and nnreport/graph/drawing.py so that the page can lay out any set of open
// groups the way Python does (same ranking, crossing reduction, crossings count). No third-party code.
// The whole module is one function: the page runs it, and also hands its source to a Web Worker
// (a blob: URL, which works from file://), where the heavy layouts run off the main thread.
function nnreportGraphModule(root) {
  "use strict";

  // ---- Python's random.Random(seed) (MT19937, shuffle), so that restarts shuffle as in Python.
  function PyRandom(seed) {
    var N = 624, mt = new Uint32Array(N), index = N + 1;
    function initGenrand(s) {
      mt[0] = s >>> 0;
      for (var i = 1; i < N; i++) {
        var p = mt[i - 1] ^ (mt[i - 1] >>> 30);
        mt[i] = (Math.imul(1812433253, p) + i) >>> 0;
      }
      index = N;
    }
    function initByArray(key) {
      initGenrand(19650218);
      var i = 1, j = 0, k = Math.max(N, key.length);
      for (; k; k--) {
        var p = mt[i - 1] ^ (mt[i - 1] >>> 30);
        mt[i] = ((mt[i] ^ Math.imul(p, 1664525)) + key[j] + j) >>> 0;
        i++; j++;
        if (i >= N) { mt[0] = mt[N - 1]; i = 1; }
        if (j >= key.length) { j = 0; }
      }
      for (k = N - 1; k; k--) {
        var q = mt[i - 1] ^ (mt[i - 1] >>> 30);
        mt[i] = ((mt[i] ^ Math.imul(q, 1566083941)) - i) >>> 0;
        i++;
        if (i >= N) { mt[0] = mt[N - 1]; i = 1; }
      }
      mt[0] = 0x80000000;
    }
    function next() {
      var y, kk;
      if (index >= N) {
        for (kk = 0; kk < N; kk++) {
          y = (mt[kk] & 0x80000000) | (mt[(kk + 1) % N] & 0x7fffffff);
          mt[kk] = mt[(kk + 397) % N] ^ (y >>> 1) ^ ((y & 1) ? 0x9908b0df : 0);
        }
        index = 0;
      }
      y = mt[index++];
      y ^= (y >>> 11);
      y ^= (y << 7) & 0x9d2c5680;
      y ^= (y << 15) & 0xefc60000;
      y ^= (y >>> 18);
      return y >>> 0;
    }
    function getrandbits(k) { return k === 0 ? 0 : next() >>> (32 - k); }
    function randbelow(n) {
      var k = 32 - Math.clz32(n), r = getrandbits(k);
      while (r >= n) { r = getrandbits(k); }
      return r;
    }
    initByArray([seed >>> 0]);
    return {
      random32: next,
      shuffle: function (x) {
        for (var i = x.length - 1; i >= 1; i--) {
          var j = randbelow(i + 1), t = x[i];
          x[i] = x[j]; x[j] = t;
        }
      }
    };
  }

  // ---- The layered layout (layout.py).
  var KEY = 4194304;  // segment (a, b) -> a * KEY + b

  function acyclic(pairs, n) {
    var succ = [], i;
    for (i = 0; i < n; i++) { succ.push([]); }
    pairs.forEach(function (p) { succ[p[0]].push(p[1]); });
    var state = new Int8Array(n), back = new Set();
    for (var rootNode = 0; rootNode < n; rootNode++) {
      if (state[rootNode]) { continue; }
      var stack = [[rootNode, 0]];
      state[rootNode] = 1;
      while (stack.length) {
        var top = stack[stack.length - 1], node = top[0];
        if (top[1] >= succ[node].length) { state[node] = 2; stack.pop(); continue; }
        var nxt = succ[node][top[1]++];
        if (state[nxt] === 1) { back.add(node * KEY + nxt); }
        else if (state[nxt] === 0) { state[nxt] = 1; stack.push([nxt, 0]); }
      }
    }
    return pairs.map(function (p) { return back.has(p[0] * KEY + p[1]) ? [p[1], p[0]] : [p[0], p[1]]; });
  }

  function topological(n, succ, pred) {
    var indeg = pred.map(function (p) { return p.length; }), ready = [], out = [], v;
    for (v = 0; v < n; v++) { if (indeg[v] === 0) { ready.push(v); } }
    ready.reverse();
    while (ready.length) {
      v = ready.pop();
      out.push(v);
      for (var k = succ[v].length - 1; k >= 0; k--) {
        var s = succ[v][k];
        indeg[s] -= 1;
        if (indeg[s] === 0) { ready.push(s); }
      }
    }
    return out;
  }

  function layering(n, pairs, top, bottom) {
    var succ = [], pred = [], v, k;
    for (v = 0; v < n; v++) { succ.push([]); pred.push([]); }
    pairs.forEach(function (p) { succ[p[0]].push(p[1]); pred[p[1]].push(p[0]); });
    var order = topological(n, succ, pred), layer = new Array(n).fill(0);
    order.forEach(function (v) {
      if (pred[v].length) { var m = -Infinity; pred[v].forEach(function (u) { m = Math.max(m, layer[u]); }); layer[v] = m + 1; }
    });
    for (k = order.length - 1; k >= 0; k--) {
      v = order[k];
      if (succ[v].length && !top.has(v) && succ[v].length >= pred[v].length) {
        var limit = Infinity;
        succ[v].forEach(function (s) { limit = Math.min(limit, layer[s]); });
        limit -= 1;
        if (limit > layer[v] && (succ[v].length > pred[v].length || !pred[v].length)) { layer[v] = limit; }
      }
    }
    if (top.size) {
      var low = Infinity, any = false;
      for (v = 0; v < n; v++) { if (!top.has(v)) { low = Math.min(low, layer[v]); any = true; } }
      if (any) { for (v = 0; v < n; v++) { if (!top.has(v)) { layer[v] = layer[v] - low + 1; } } }
      top.forEach(function (v) { layer[v] = 0; });
    }
    if (bottom.size) {
      var last = -1;
      for (v = 0; v < n; v++) { if (!bottom.has(v)) { last = Math.max(last, layer[v]); } }
      bottom.forEach(function (v) { layer[v] = last + 1; });
    }
    var used = Array.from(new Set(layer)).sort(function (a, b) { return a - b; }), remap = new Map();
    used.forEach(function (old, i) { remap.set(old, i); });
    return layer.map(function (v) { return remap.get(v); });
  }

  function Proper(n, layer, pairs) {
    var g = this;
    g.n = n;
    g.layerOf = layer.slice();
    g.chain = new Map();
    g.weight = new Map();
    var segments = new Set(), bySource = new Map();
    pairs.forEach(function (p) {
      if (!bySource.has(p[0])) { bySource.set(p[0], []); }
      bySource.get(p[0]).push(p[1]);
    });
    bySource.forEach(function (targets, u) {
      var deepest = -Infinity, prev = u, links = new Map();
      targets.forEach(function (v) { deepest = Math.max(deepest, g.layerOf[v]); });
      for (var lay = g.layerOf[u] + 1; lay < deepest; lay++) {
        var d = g.layerOf.length;
        g.layerOf.push(lay);
        links.set(lay, d);
        segments.add(prev * KEY + d);
        var count = 0;
        targets.forEach(function (v) { if (g.layerOf[v] > lay) { count++; } });
        g.weight.set(prev * KEY + d, count);
        prev = d;
      }
      g.chain.set(u, links);
      targets.forEach(function (v) {
        var a = links.has(g.layerOf[v] - 1) ? links.get(g.layerOf[v] - 1) : u, key = a * KEY + v;
        segments.add(key);
        g.weight.set(key, a === u ? (g.weight.get(key) || 0) + 1 : 1);
      });
    });
    g.count = g.layerOf.length;
    var depth = -1, v;
    g.layerOf.forEach(function (l) { depth = Math.max(depth, l); });
    g.layers = [];
    for (v = 0; v <= depth; v++) { g.layers.push([]); }
    for (v = 0; v < g.count; v++) { g.layers[g.layerOf[v]].push(v); }
    g.up = []; g.down = [];
    for (v = 0; v < g.count; v++) { g.up.push([]); g.down.push([]); }
    Array.from(segments).sort(function (a, b) { return a - b; }).forEach(function (key) {
      var a = Math.floor(key / KEY), b = key - a * KEY;
      g.down[a].push(b); g.up[b].push(a);
    });
    g.pos = new Float64Array(g.count);
    g.renumber();
  }
  Proper.prototype.renumber = function () {
    var pos = this.pos;
    this.layers.forEach(function (nodes) { nodes.forEach(function (v, i) { pos[v] = i; }); });
  };
  Proper.prototype.w = function (a, b) { return this.weight.get(a * KEY + b); };
  Proper.prototype.path = function (u, v) {
    var links = this.chain.get(u) || new Map(), out = [];
    for (var lay = this.layerOf[u] + 1; lay < this.layerOf[v]; lay++) { if (links.has(lay)) { out.push(links.get(lay)); } }
    return out;
  };
  // Weighted inversions between the segment ends (a < a' and b > b'), with a Fenwick tree.
  Proper.prototype.crossingsBetween = function (i) {
    var g = this, segs = [];
    g.layers[i].forEach(function (a) { g.down[a].forEach(function (b) { segs.push([g.pos[a], g.pos[b], g.w(a, b)]); }); });
    if (segs.length < 2) { return 0; }
    segs.sort(function (s, t) { return s[0] - t[0] || s[1] - t[1]; });
    var size = g.layers[i + 1].length + 1, tree = new Float64Array(size + 1), total = 0, all = 0, k = 0;
    function add(p, w) { for (p += 1; p <= size; p += p & -p) { tree[p] += w; } }
    function upTo(p) { var s = 0; for (p += 1; p > 0; p -= p & -p) { s += tree[p]; } return s; }
    while (k < segs.length) {
      var j = k;
      while (j < segs.length && segs[j][0] === segs[k][0]) { j++; }
      for (var q = k; q < j; q++) { total += segs[q][2] * (all - upTo(segs[q][1])); }
      for (q = k; q < j; q++) { add(segs[q][1], segs[q][2]); all += segs[q][2]; }
      k = j;
    }
    return total;
  };
  Proper.prototype.crossings = function () {
    var total = 0;
    for (var i = 0; i < this.layers.length - 1; i++) { total += this.crossingsBetween(i); }
    return total;
  };

  function copyLayers(layers) { return layers.map(function (nodes) { return nodes.slice(); }); }

  function order(g, restarts, maxSweeps, seed) {
    initialDfs(g);
    var best = copyLayers(g.layers), bestCost = g.crossings(), rng = PyRandom(seed);
    for (var attempt = 0; attempt < Math.max(1, restarts); attempt++) {
      if (bestCost === 0) { break; }
      if (attempt === 1) { g.layers = best.map(function (nodes) { return nodes.slice().reverse(); }); }
      else if (attempt > 1) { g.layers = copyLayers(best); g.layers.forEach(function (nodes) { rng.shuffle(nodes); }); }
      g.renumber();
      var cost = g.crossings(), stale = 0;
      for (var sweep = 0; sweep < maxSweeps; sweep++) {
        var downward = sweep % 2 === 0, i;
        if (downward) { for (i = 1; i < g.layers.length; i++) { barycentre(g, i, true); } }
        else { for (i = g.layers.length - 2; i >= 0; i--) { barycentre(g, i, false); } }
        transpose(g);
        var now = g.crossings();
        if (now < bestCost) { bestCost = now; best = copyLayers(g.layers); }
        stale = now >= cost ? stale + 1 : 0;
        cost = Math.min(cost, now);
        if (bestCost === 0 || stale >= 3) { break; }
      }
    }
    g.layers = best;
    g.renumber();
  }

  function initialDfs(g) {
    var seen = new Uint8Array(g.count), ord = [], v;
    for (var r = 0; r < g.count; r++) {
      if (seen[r] || g.up[r].length) { continue; }
      var stack = [r];
      while (stack.length) {
        v = stack.pop();
        if (seen[v]) { continue; }
        seen[v] = 1;
        ord.push(v);
        for (var k = g.down[v].length - 1; k >= 0; k--) { stack.push(g.down[v][k]); }
      }
    }
    for (v = 0; v < g.count; v++) { if (!seen[v]) { ord.push(v); } }
    var rank = new Int32Array(g.count);
    ord.forEach(function (v, i) { rank[v] = i; });
    g.layers = g.layers.map(function (nodes) { return nodes.slice().sort(function (a, b) { return rank[a] - rank[b]; }); });
    g.renumber();
  }

  function barycentre(g, i, up) {
    var nodes = g.layers[i], keys = [], nb = up ? g.up : g.down;
    nodes.forEach(function (v) {
      if (!nb[v].length) { keys.push(g.pos[v]); return; }
      var s = 0, ws = 0;
      nb[v].forEach(function (u) { var w = up ? g.w(u, v) : g.w(v, u); s += g.pos[u] * w; ws += w; });
      keys.push(s / ws);
    });
    var idx = nodes.map(function (_, k) { return k; });
    idx.sort(function (a, b) { return keys[a] - keys[b] || g.pos[nodes[a]] - g.pos[nodes[b]]; });
    g.layers[i] = idx.map(function (k) { return nodes[k]; });
    g.layers[i].forEach(function (v, k) { g.pos[v] = k; });
  }

  function pairCrossings(g, v, w) {
    var total = 0;
    [[g.up, true], [g.down, false]].forEach(function (side) {
      var nb = side[0], up = side[1];
      if (nb[v].length && nb[w].length) {
        nb[v].forEach(function (a) {
          var x = up ? g.w(a, v) : g.w(v, a), pa = g.pos[a];
          nb[w].forEach(function (b) { if (pa > g.pos[b]) { total += x * (up ? g.w(b, w) : g.w(w, b)); } });
        });
      }
    });
    return total;
  }

  function transpose(g) {
    for (var pass = 0; pass < 4; pass++) {
      var improved = false;
      g.layers.forEach(function (nodes) {
        for (var k = 0; k < nodes.length - 1; k++) {
          var v = nodes[k], w = nodes[k + 1];
          if (pairCrossings(g, v, w) > pairCrossings(g, w, v)) {
            nodes[k] = w; nodes[k + 1] = v; g.pos[v] = k + 1; g.pos[w] = k; improved = true;
          }
        }
      });
      if (!improved) { return; }
    }
  }

  function isotonic(target, weight) {
    var values = [], weights = [], sizes = [];
    for (var i = 0; i < target.length; i++) {
      values.push(target[i]); weights.push(weight[i]); sizes.push(1);
      while (values.length > 1 && values[values.length - 2] > values[values.length - 1]) {
        var n = values.length, w2 = weights[n - 2] + weights[n - 1];
        values[n - 2] = (values[n - 2] * weights[n - 2] + values[n - 1] * weights[n - 1]) / w2;
        weights[n - 2] = w2; sizes[n - 2] += sizes[n - 1];
        values.pop(); weights.pop(); sizes.pop();
      }
    }
    var out = [];
    values.forEach(function (v, k) { for (var s = 0; s < sizes[k]; s++) { out.push(v); } });
    return out;
  }

  function xCoordinates(g, w, spacing) {
    var x = new Float64Array(g.count), offsets = [];
    function dummy(v) { return v >= g.n; }
    g.layers.forEach(function (nodes) {
      var off = new Float64Array(nodes.length);
      for (var k = 1; k < nodes.length; k++) {
        var a = nodes[k - 1], b = nodes[k], gap = (dummy(a) || dummy(b)) ? spacing.dummyGap : spacing.nodeGap;
        off[k] = off[k - 1] + (w[a] + w[b]) / 2 + gap;
      }
      offsets.push(off);
      var half = nodes.length ? off[nodes.length - 1] / 2 : 0;
      nodes.forEach(function (v, k) { x[v] = off[k] - half; });
    });
    function place(i, sides) {
      var nodes = g.layers[i];
      if (!nodes.length) { return; }
      var target = [], weight = [];
      nodes.forEach(function (v) {
        var tot = 0, wsum = 0;
        sides.forEach(function (side) {
          side[v].forEach(function (u) {
            var wt = (dummy(u) && dummy(v)) ? 8 : ((dummy(u) || dummy(v)) ? 2 : 1);
            tot += wt * x[u]; wsum += wt;
          });
        });
        if (wsum) { target.push(tot / wsum); weight.push(wsum); } else { target.push(x[v]); weight.push(0.05); }
      });
      var off = offsets[i], fit = isotonic(target.map(function (t, k) { return t - off[k]; }), weight);
      nodes.forEach(function (v, k) { x[v] = fit[k] + off[k]; });
    }
    var depth = g.layers.length, i;
    for (var round = 0; round < 6; round++) {
      for (i = 1; i < depth; i++) { place(i, [g.up]); }
      for (i = depth - 2; i >= 0; i--) { place(i, [g.down]); }
    }
    for (i = 0; i < depth; i++) { place(i, [g.up, g.down]); }
    var left = Infinity;
    for (var v = 0; v < g.count; v++) { left = Math.min(left, x[v] - w[v] / 2); }
    if (left === Infinity) { left = 0; }
    for (v = 0; v < g.count; v++) { x[v] -= left; }
    return x;
  }

  function spreadPorts(g, pairs, x, w, outgoing) {
    var hops = new Map(), ports = new Map();
    pairs.forEach(function (p, k) {
      var flip = g.layerOf[p[0]] > g.layerOf[p[1]], a = flip ? p[1] : p[0], b = flip ? p[0] : p[1];
      if (a === b) { return; }
      var path = g.path(a, b), node, hop;
      if (outgoing) { node = a; hop = path.length ? path[0] : b; } else { node = b; hop = path.length ? path[path.length - 1] : a; }
      if (!hops.has(node)) { hops.set(node, new Map()); }
      var byHop = hops.get(node);
      if (!byHop.has(hop)) { byHop.set(hop, []); }
      byHop.get(hop).push(k);
    });
    hops.forEach(function (byHop, node) {
      var ordered = Array.from(byHop.keys()).sort(function (a, b) { return x[a] - x[b] || a - b; });
      var span = w[node] * 0.6;
      ordered.forEach(function (hop, j) {
        var px = ordered.length === 1 ? x[node] : x[node] - span / 2 + span * j / (ordered.length - 1);
        byHop.get(hop).forEach(function (k) { ports.set(node * KEY + k, px); });
      });
    });
    return ports;
  }

  // sizes: [[w, h], ...] in node order; edges: [[u, v], ...]; top, bottom: node indices.
  function layered(sizes, edges, top, bottom, opts) {
    var n = sizes.length, spacing = opts.spacing;
    var dag = acyclic(edges.filter(function (p) { return p[0] !== p[1]; }), n);
    var layer = layering(n, dag, new Set(top), new Set(bottom));
    var g = new Proper(n, layer, dag);
    order(g, opts.restarts, opts.maxSweeps || 12, opts.seed || 0);
    var w = new Float64Array(g.count), h = new Float64Array(g.count), i;
    for (i = 0; i < n; i++) { w[i] = sizes[i][0]; h[i] = sizes[i][1]; }
    var x = xCoordinates(g, w, spacing);
    var heights = g.layers.map(function (nodes) { var m = 0; nodes.forEach(function (v) { m = Math.max(m, h[v]); }); return m; });
    var tops = heights.map(function () { return 0; });
    for (i = 1; i < heights.length; i++) { tops[i] = tops[i - 1] + heights[i - 1] + spacing.layerGap; }
    var cx = [], cy = [];
    for (i = 0; i < n; i++) { cx.push(x[i]); cy.push(tops[layer[i]] + heights[layer[i]] / 2); }
    var outPorts = spreadPorts(g, edges, x, w, true), inPorts = spreadPorts(g, edges, x, w, false);
    var routes = edges.map(function (p, k) {
      var flip = g.layerOf[p[0]] > g.layerOf[p[1]], a = flip ? p[1] : p[0], b = flip ? p[0] : p[1];
      if (a === b) { return []; }
      var la = g.layerOf[a], lb = g.layerOf[b];
      var pts = [[outPorts.get(a * KEY + k), cy[a] + h[a] / 2], [outPorts.get(a * KEY + k), tops[la] + heights[la]]];
      g.path(a, b).forEach(function (d) {
        var ld = g.layerOf[d];
        pts.push([x[d], tops[ld]], [x[d], tops[ld] + heights[ld]]);
      });
      pts.push([inPorts.get(b * KEY + k), tops[lb]], [inPorts.get(b * KEY + k), cy[b] - h[b] / 2]);
      var clean = pts.filter(function (q, j) { return j === 0 || q[0] !== pts[j - 1][0] || q[1] !== pts[j - 1][1]; });
      return flip ? clean.reverse() : clean;
    });
    var width = 0;
    for (i = 0; i < g.count; i++) { width = Math.max(width, x[i] + w[i] / 2); }
    var height = tops.length ? tops[tops.length - 1] + heights[heights.length - 1] : 0;
    return { cx: cx, cy: cy, routes: routes, layers: layer, width: width, height: height, crossings: g.crossings() };
  }

  // ---- The graph: decoded from the page's compact form (nnreport/graph/packed.py).
  function split(row, at) { var n = row[at]; return [row.slice(at + 1, at + 1 + n), at + 1 + n]; }
  function unrel(rel, base) {
    if (!base) { return rel; }
    if (rel === ".") { return base; }
    return rel.charAt(0) === "/" ? rel.slice(1) : base + "." + rel;
  }

  function decode(data) {
    var S = data.strings, types = data.types, nodes = [], groups = [], edges = [], rank = new Map();
    var byId = new Map(), kids = new Map();
    function visit(t, gid, parent, name, module, prefix, depth) {
      var row = types[t], count = row[6], series = row[5], own = series ? prefix : gid;
      var g = { id: gid, key: "g" + groups.length, parent: parent, name: name, type: S[row[0]], module: module,
                children: [], hash: S[row[1]], params: row[2], macs: row[3], ops: row[4], series: series, isGroup: true,
                depth: depth };
      groups.push(g); byId.set(gid, g); kids.set(gid, g.children);
      for (var i = 0; i < count; i++) {
        var it = row.slice(7 + 5 * i, 12 + 5 * i), text = S[it[1]];
        var cid = text.charAt(0) === "/" ? text.slice(1) : (own ? own + "." + text : text);
        g.children.push(cid);
        if (it[0]) { visit(it[2], cid, gid, S[it[3]], unrel(S[it[4]], module), own, depth + 1); }
        else { rank.set(cid, nodes.length); nodes.push(op(data, it[2], cid, gid, module)); byId.set(cid, nodes[nodes.length - 1]); }
      }
      var pos = 7 + 5 * count;
      while (pos < row.length) {
        var slot = row[pos], shape = data.shapes[row[pos + 1]], r = split(row, pos + 2), src = r[0];
        r = split(row, r[1]);
        pos = r[1];
        edges.push([slot, resolve(gid, src), resolve(gid, r[0]), shape]);
      }
    }
    function resolve(gid, path) { var item = gid; path.forEach(function (i) { item = kids.get(item)[i]; }); return item; }
    visit(data.root, "", "", S[types[data.root][0]], "", "", 0);
    edges.sort(function (a, b) { return rank.get(a[2]) - rank.get(b[2]) || a[0] - b[0]; });
    var graph = { nodes: nodes, groups: groups, byId: byId, batch: data.batch,
                  edges: edges.map(function (e) { return { source: e[1], target: e[2], shape: e[3], numel: numel(e[3]) }; }) };
    index(graph);
    return graph;
  }

  function op(data, ref, id, group, groupModule) {
    var S = data.strings, row = data.records[ref], r = split(row, 8), shapes = r[0];
    r = split(row, r[1]); var dtypes = r[0];
    r = split(row, r[1]); var names = r[0];
    var module = unrel(S[row[3]], groupModule);
    return { id: id, op: S[row[0]], kind: S[row[1]], label: S[row[2]], group: group, module: module, type: S[row[4]],
             shapes: shapes.map(function (s) { return data.shapes[s]; }), dtypes: dtypes.map(function (d) { return S[d]; }),
             source: S[row[5]], params: row[6], macs: row[7],
             paramNames: names.map(function (p) { return unrel(S[p], module); }),
             aux: row.slice(r[1]).map(function (a) { return S[a]; }) };
  }

  function numel(shape) { var out = 1; shape.forEach(function (d) { out *= d; }); return out; }

  function index(graph) {
    var lo = Infinity, hi = -Infinity, counts = new Map();
    graph.edges.forEach(function (e) { lo = Math.min(lo, e.numel); hi = Math.max(hi, e.numel); });
    if (!graph.edges.length) { lo = hi = 1; }
    graph.logLo = Math.log10(Math.max(lo, 1)); graph.logHi = Math.log10(Math.max(hi, 1));
    graph.groups.forEach(function (g) { if (g.id) { counts.set(g.hash, (counts.get(g.hash) || 0) + 1); } });
    graph.hue = new Map();
    var k = 0;
    counts.forEach(function (c, h) { if (c > 1) { graph.hue.set(h, k % 10); k++; } });
    graph.parentOf = new Map();
    graph.groups.forEach(function (g) { g.children.forEach(function (c) { graph.parentOf.set(c, g.id); }); });
  }

  function chain(graph, item) {
    var out = [];
    while (item) { item = graph.parentOf.get(item) || ""; out.push(item); }
    return out.reverse();
  }

  function closedExpansion(graph, expand) {
    var out = new Set([""]);
    expand.forEach(function (gid) {
      var g = graph.byId.get(gid);
      if (g && g.isGroup) { out.add(gid); chain(graph, gid).forEach(function (a) { out.add(a); }); }
    });
    return out;
  }

  // ---- The compound drawing (drawing.py).
  var PAD = 12, HEADER = 22, CHAR = 6.4, LABEL_CHAR = 5.6, IN = "\u0000in", OUT = "\u0000out";

  function len(text) { return Array.from(text).length; }
  function clip(text, n) { var cs = Array.from(text); return cs.length <= n ? text : cs.slice(0, n - 1).join("") + "\u2026"; }
  function g3(x) {
    var s = x.toPrecision(3);
    if (s.indexOf("e") >= 0) {
      var m = s.split("e"), e = parseInt(m[1], 10), mant = m[0].indexOf(".") >= 0 ? m[0].replace(/\.?0+$/, "") : m[0];
      return mant + "e" + (e < 0 ? "-" : "+") + (Math.abs(e) < 10 ? "0" : "") + Math.abs(e);
    }
    return s.indexOf(".") >= 0 ? s.replace(/\.?0+$/, "") : s;
  }
  function compact(n) {
    var units = [["G", 1e9], ["M", 1e6], ["k", 1e3]];
    for (var i = 0; i < units.length; i++) { if (Math.abs(n) >= units[i][1]) { return g3(n / units[i][1]) + units[i][0]; } }
    return String(Math.trunc(n));
  }
  function shapeLabel(shape, batch) {
    var dims = shape.length >= 2 && shape[0] === batch ? shape.slice(1) : shape;
    return dims.length ? dims.join("\u00d7") : "scalar";
  }

  function labels(graph, item) {
    var d = graph.byId.get(item);
    if (d.isGroup) {
      var parts = [d.type];
      if (d.params) { parts.push(compact(d.params) + " params"); }
      return [clip(d.name, 34), clip(parts.join(" \u00b7 "), 40)];
    }
    if (d.kind !== "op") { return [clip(d.label, 30), ""]; }
    var sub = d.label !== d.op ? d.op : "";
    if (d.aux.length) { sub = (sub ? sub + " " : "") + "+" + d.aux.slice(0, 2).join(",") + (d.aux.length > 2 ? "\u2026" : ""); }
    return [clip(d.label, 30), clip(sub, 34)];
  }

  function visible(graph, expanded, node) {
    var ch = chain(graph, node);
    for (var i = 0; i < ch.length; i++) { if (!expanded.has(ch[i])) { return ch[i]; } }
    return node;
  }

  function levelEdges(graph, expanded) {
    var levels = new Map();
    expanded.forEach(function (g) { levels.set(g, new Map()); });
    function add(level, a, b, e) {
      var m = levels.get(level), key = a + "\u0001" + b, bundle = m.get(key);
      if (!bundle) { bundle = { a: a, b: b, count: 0, numel: 0, shapes: [], sources: new Set() }; m.set(key, bundle); }
      bundle.count += 1; bundle.numel += e.numel; bundle.sources.add(e.source);
      var s = e.shape.join(",");
      if (bundle.shapes.indexOf(s) < 0) { bundle.shapes.push(s); }
    }
    var vis = new Map();
    function visOf(n) { if (!vis.has(n)) { vis.set(n, visible(graph, expanded, n)); } return vis.get(n); }
    graph.edges.forEach(function (e) {
      var va = visOf(e.source), vb = visOf(e.target);
      if (va === vb) { return; }
      var ca = chain(graph, va), cb = chain(graph, vb), common = 0, k;
      while (common < Math.min(ca.length, cb.length) && ca[common] === cb[common]) { common++; }
      var xa = ca.concat([va]), xb = cb.concat([vb]);
      add(ca[common - 1], xa[common], xb[common], e);
      for (k = common; k < ca.length; k++) { add(ca[k], xa[k + 1], OUT, e); }
      for (k = common; k < cb.length; k++) { add(cb[k], IN, xb[k + 1], e); }
    });
    return levels;
  }

  var SPACING = { nodeGap: 22, dummyGap: 9, layerGap: 38 };

  // Lays out one view. `cache` maps a level's layout input to its layout: equal blocks (a 720-block
  // stack) are laid out once, and opening a group re-lays out only it and its ancestors.
  function drawView(graph, expand, restarts, cache) {
    var expanded = closedExpansion(graph, expand), levels = levelEdges(graph, expanded);
    var size = new Map(), inner = new Map(), stats = { computed: 0, crossings: 0 };
    function isOpen(item) { var d = graph.byId.get(item); return expanded.has(item) && d && d.isGroup; }
    function itemSize(item) {
      if (isOpen(item)) { return layout(item); }
      var lab = labels(graph, item), width = Math.max(len(lab[0]) * CHAR, len(lab[1]) * CHAR * 0.85) + 18;
      if (graph.byId.get(item).isGroup) { return [Math.min(Math.max(width, 60), 240), 36]; }
      return [Math.min(Math.max(width, 40), 200), lab[1] ? 30 : 22];
    }
    function layout(gid) {
      if (size.has(gid)) { return size.get(gid); }
      var items = graph.byId.get(gid).children, bundles = Array.from((levels.get(gid) || new Map()).values());
      var sizes = items.map(itemSize), names = items.slice(), at = new Map();
      var hasIn = bundles.some(function (b) { return b.a === IN; }), hasOut = bundles.some(function (b) { return b.b === OUT; });
      if (hasIn) { names.push(IN); sizes.push([0, 0]); }
      if (hasOut) { names.push(OUT); sizes.push([0, 0]); }
      names.forEach(function (nm, i) { at.set(nm, i); });
      var edges = bundles.map(function (b) { return [at.get(b.a), at.get(b.b)]; });
      var top = hasIn ? [at.get(IN)] : [], bottom = hasOut ? [at.get(OUT)] : [];
      var key = JSON.stringify([sizes, edges, top, bottom, restarts]);
      var result = cache.get(key);
      if (!result) {
        result = layered(sizes, edges, top, bottom, { spacing: SPACING, restarts: restarts });
        cache.set(key, result);
        stats.computed++;
      }
      stats.crossings += result.crossings;
      inner.set(gid, { lay: result, names: names, at: at, bundles: bundles });
      var width = Math.max(result.width, 40), s;
      if (gid) {
        var lab = labels(graph, gid);
        width = Math.max(width, (len(lab[0]) + 2) * CHAR + len(lab[1]) * CHAR * 0.8 + 16 - 2 * PAD);
        s = [width + 2 * PAD, result.height + HEADER + PAD];
      } else {
        s = [width + 2 * PAD, result.height + 2 * PAD];
      }
      size.set(gid, s);
      return s;
    }
    layout("");
    var boxes = [], drawn = [], absLeft = new Map();
    function shift(gid) { return Math.max((size.get(gid)[0] - 2 * PAD - inner.get(gid).lay.width) / 2, 0); }
    function portX(gid, port) { var L = inner.get(gid); return absLeft.get(gid) + shift(gid) + PAD + L.lay.cx[L.at.get(port)]; }
    function place(gid, left, top, depth) {
      var L = inner.get(gid), lay = L.lay, ox = PAD + left + shift(gid), oy = (gid === "" ? PAD : HEADER) + top;
      absLeft.set(gid, left);
      graph.byId.get(gid).children.forEach(function (item, i) {
        var wh = itemSize(item), x = ox + lay.cx[i] - wh[0] / 2, y = oy + lay.cy[i] - wh[1] / 2;
        var open = isOpen(item), d = graph.byId.get(item), lab = labels(graph, item);
        boxes.push({ id: item, x: r1(x), y: r1(y), width: r1(wh[0]), height: r1(wh[1]), label: lab[0], sublabel: lab[1],
                     kind: open ? "expanded" : (d.isGroup ? "group" : d.kind), group: gid,
                     hue: d.isGroup ? (graph.hue.has(d.hash) ? graph.hue.get(d.hash) : -1) : -1, depth: depth });
        if (open) { place(item, x, y, depth + 1); }
      });
      var pin = L.at.has(IN) ? [ox + lay.cx[L.at.get(IN)], top] : null;
      var pout = L.at.has(OUT) ? [ox + lay.cx[L.at.get(OUT)], top + size.get(gid)[1]] : null;
      L.bundles.forEach(function (b, k) {
        var pts = lay.routes[k].map(function (p) { return [ox + p[0], oy + p[1]]; });
        if (b.a === IN && pin) { pts.unshift(pin); }
        if (b.b === OUT && pout) { pts.push(pout); }
        drawn.push({ a: b.a, b: b.b, gid: gid, pts: pts, bundle: b });
      });
    }
    place("", 0, 0, 0);
    var edges = drawn.map(function (e) {
      var pts = snap(e.a, e.b, e.pts);
      return edge(graph, e.a === IN ? e.gid : e.a, e.b === OUT ? e.gid : e.b, pts, e.bundle);
    });
    function snap(a, b, pts) {
      pts = pts.slice();
      if (inner.has(b) && isOpen(b) && inner.get(b).at.has(IN) && pts.length >= 2) {
        var px = portX(b, IN), old = pts[pts.length - 1][0];
        pts[pts.length - 1] = [px, pts[pts.length - 1][1]];
        if (pts.length > 2 && pts[pts.length - 2][0] === old) { pts[pts.length - 2] = [px, pts[pts.length - 2][1]]; }
      }
      if (inner.has(a) && isOpen(a) && inner.get(a).at.has(OUT) && pts.length >= 2) {
        var qx = portX(a, OUT), was = pts[0][0];
        pts[0] = [qx, pts[0][1]];
        if (pts.length > 2 && pts[1][0] === was) { pts[1] = [qx, pts[1][1]]; }
      }
      return pts;
    }
    edges = placeLabels(edges, boxes);
    var whole = size.get("");
    return { expanded: Array.from(expanded).filter(function (g) { return g; }).sort(), width: r1(whole[0]),
             height: r1(whole[1]), boxes: boxes, edges: edges, crossings: stats.crossings, computed: stats.computed };
  }

  function r1(v) { return Math.round(v * 10) / 10; }

  function edge(graph, a, b, pts, bundle) {
    var label;
    if (bundle.shapes.length === 1) {
      var shape = bundle.shapes[0] === "" ? [] : bundle.shapes[0].split(",").map(Number);
      label = shapeLabel(shape, graph.batch);
      if (bundle.sources.size > 1) { label = bundle.sources.size + "\u00d7 " + label; }
    } else {
      label = bundle.sources.size + " tensors";
    }
    var lo = graph.logLo, hi = graph.logHi;
    var frac = hi <= lo ? 0.5 : (Math.log10(Math.max(bundle.numel, 1)) - lo) / (hi - lo);
    var width = Math.round((1 + 3 * Math.min(Math.max(frac, 0), 1)) * 100) / 100;
    return { source: a, target: b, points: pts.map(function (p) { return [r1(p[0]), r1(p[1])]; }), count: bundle.count,
             numel: bundle.numel, label: label, width: width, labelAt: null };
  }

  // Shape labels below each edge's first bend, unless they would cover a box or another label (a grid
  // of cells keeps this linear in the number of edges).
  function placeLabels(edges, boxes) {
    var CELL = 96, grid = new Map(), placed = new Map(), kinds = new Map(), inside = new Map(), seen = new Set();
    function cells(r, fn) {
      for (var i = Math.floor(r[0] / CELL); i <= Math.floor(r[2] / CELL); i++) {
        for (var j = Math.floor(r[1] / CELL); j <= Math.floor(r[3] / CELL); j++) { fn(i + "," + j); }
      }
    }
    function put(map, r) { cells(r, function (c) { if (!map.has(c)) { map.set(c, []); } map.get(c).push(r); }); }
    function hits(map, r) {
      var hit = false;
      cells(r, function (c) {
        if (hit || !map.has(c)) { return; }
        hit = map.get(c).some(function (q) { return q[0] < r[2] && q[2] > r[0] && q[1] < r[3] && q[3] > r[1]; });
      });
      return hit;
    }
    boxes.forEach(function (b) {
      put(grid, [b.x, b.y, b.x + b.width, b.y + (b.kind !== "expanded" ? b.height : HEADER)]);
      kinds.set(b.id, b.kind);
      if (!inside.has(b.group)) { inside.set(b.group, new Set()); }
      inside.get(b.group).add(b.id);
    });
    edges.forEach(function (e) {
      var port = kinds.get(e.source) === "expanded" && (inside.get(e.source) || new Set()).has(e.target);
      port = port || (kinds.has(e.target) && (inside.get(e.target) || new Set()).has(e.source));
      var key = e.source + "\u0001" + e.label;
      if (e.points.length >= 2 && !seen.has(key) && !port) {
        var x0 = e.points[0][0], y0 = e.points[0][1], r = [x0 + 3, y0 + 2, x0 + 3 + len(e.label) * LABEL_CHAR, y0 + 13];
        if (!hits(grid, r) && !hits(placed, r)) {
          put(placed, r);
          seen.add(key);
          e.labelAt = [r1(r[0]), r1(r[3] - 2)];
        }
      }
    });
    return edges;
  }

  var api = { PyRandom: PyRandom, layered: layered, decode: decode, drawView: drawView, chain: chain,
              compact: compact, shapeLabel: shapeLabel, closedExpansion: closedExpansion };

  // In a worker: decode once, then answer view requests, keeping the per-level cache between them.
  if (typeof root.document === "undefined" && typeof root.postMessage === "function" && typeof root.importScripts === "function") {
    var state = { graph: null, cache: new Map(), restarts: 4 };
    root.onmessage = function (ev) {
      var m = ev.data;
      try {
        if (m.type === "init") { state.graph = decode(m.data); state.restarts = m.restarts; state.cache = new Map(); return; }
        var started = Date.now(), view = drawView(state.graph, m.expand, state.restarts, state.cache);
        view.ms = Date.now() - started;
        root.postMessage({ id: m.id, view: view });
      } catch (err) {
        root.postMessage({ id: m.id, error: String(err && err.stack || err) });
      }
    };
  }
  root.nnreportGraph = api;
  return api;
}
if (typeof window !== "undefined") { nnreportGraphModule(window); }
