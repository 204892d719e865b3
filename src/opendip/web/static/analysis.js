// Charts of the 院端分析 page (ECharts, vendored); data comes from data-* attributes and
// is drawn again after each htmx swap of #analysis-body. A static file: the platform's
// Content-Security-Policy allows no inline script.
(function () {
  function draw() {
    if (!window.echarts) { return; }
    document.querySelectorAll("#analysis-body .chart[data-chart]").forEach(function (el) {
      var c = JSON.parse(el.dataset.chart);
      var old = echarts.getInstanceByDom(el);
      if (old) { old.dispose(); }
      echarts.init(el).setOption({
        tooltip: { trigger: "axis" },
        grid: { left: 80, right: 20, bottom: 80 },
        xAxis: { type: "category", data: c.x, axisLabel: { rotate: c.x.length > 8 ? 45 : 0 } },
        yAxis: { type: "value", name: el.dataset.unit || "" },
        series: [{ name: c.name, type: "bar", data: c.y.map(Number),
                   barCategoryGap: el.dataset.kind === "histogram" ? "2%" : "20%" }]
      });
    });
  }
  window.drawAnalysisCharts = draw;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
  document.body.addEventListener("htmx:afterSettle", draw);
})();
