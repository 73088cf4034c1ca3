// nnreport page script: draws every chart with the bundled vega-embed (no network), and wires small
// interactions. It runs from file:// and inside a single-file report alike.
(function () {
  "use strict";

  function vegaConfig() {
    var el = document.getElementById("nnreport-vega-config");
    try { return el ? JSON.parse(el.textContent) : {}; } catch (e) { return {}; }
  }

  function drawCharts() {
    var config = vegaConfig();
    var nodes = Array.prototype.slice.call(document.querySelectorAll(".vega-chart[data-spec]"));
    var pending = nodes.map(function (node) {
      var source = document.getElementById(node.getAttribute("data-spec"));
      var spec = JSON.parse(source.textContent);
      // actions:false keeps vega-embed from linking to the online editor.
      return window.vegaEmbed(node, spec, { actions: false, renderer: "svg", config: config })
        .then(function () { node.setAttribute("data-rendered", "true"); })
        .catch(function (err) { node.setAttribute("data-rendered", "error"); console.error("chart " + node.id + ": " + err); });
    });
    Promise.all(pending).then(function () { document.body.setAttribute("data-charts-ready", String(nodes.length)); });
  }

  function start() {
    if (typeof window.vegaEmbed !== "function") {
      if (document.querySelector(".vega-chart")) { console.error("nnreport: the chart runtime did not load"); }
      document.body.setAttribute("data-charts-ready", "0");
    } else {
      drawCharts();
    }
    document.dispatchEvent(new CustomEvent("nnreport:ready"));
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
