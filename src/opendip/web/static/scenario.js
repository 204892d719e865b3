// 方案测算 charts: per-hospital change of the clearing total, and the distribution of the
// DIP ÷ FFS ratio before and after (data in data-* attributes; no inline script, CSP-safe).
(function () {
  if (typeof echarts === "undefined") { return; }
  var change = document.getElementById("chart-scenario-change");
  if (change) {
    var rows = JSON.parse(change.dataset.rows || "[]");
    echarts.init(change).setOption({
      tooltip: { trigger: "axis" },
      grid: { left: 80, right: 20, bottom: 80 },
      xAxis: { type: "category", data: rows.map(function (r) { return r.label; }),
               axisLabel: { rotate: 60 } },
      yAxis: { type: "value", name: "清算应付较现行（元）" },
      series: [{ name: "清算应付变化（元）", type: "bar",
                 data: rows.map(function (r) { return (Number(r.change) / 100).toFixed(2); }) }]
    });
  }
  var dist = document.getElementById("chart-scenario-ratio");
  if (dist) {
    var bins = JSON.parse(dist.dataset.bins || "[]");
    echarts.init(dist).setOption({
      tooltip: { trigger: "axis" },
      legend: { data: ["现行方案", "本方案"] },
      xAxis: { type: "category", name: "DIP/按项目比值", data: bins.map(function (b) { return b.bin; }) },
      yAxis: { type: "value", name: "医疗机构数" },
      series: [
        { name: "现行方案", type: "bar", data: bins.map(function (b) { return b.base; }) },
        { name: "本方案", type: "bar", data: bins.map(function (b) { return b.variant; }) }
      ]
    });
  }
})();
