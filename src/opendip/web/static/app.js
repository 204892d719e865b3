// Charts on the home page (ECharts, vendored). Data comes from data-* attributes.
(function () {
  function fen(v) { return (Number(v || 0) / 100).toFixed(2); }
  var el = document.getElementById("chart-months");
  if (el && window.echarts) {
    var rows = JSON.parse(el.dataset.months || "[]");
    echarts.init(el).setOption({
      tooltip: { trigger: "axis" },
      legend: { data: ["病例数", "医疗总费用（万元）"] },
      xAxis: { type: "category", data: rows.map(function (r) { return r.settle_month; }) },
      yAxis: [{ type: "value", name: "病例数" }, { type: "value", name: "万元" }],
      series: [
        { name: "病例数", type: "bar", data: rows.map(function (r) { return r.n; }) },
        { name: "医疗总费用（万元）", type: "line", yAxisIndex: 1,
          data: rows.map(function (r) { return (Number(r.cost || 0) / 1e6).toFixed(2); }) }
      ]
    });
  }
  var ffs = document.getElementById("chart-ffs");
  if (ffs && window.echarts) {
    var hs = JSON.parse(ffs.dataset.rows || "[]");
    echarts.init(ffs).setOption({
      tooltip: { trigger: "axis" },
      legend: { data: ["DIP 统筹基金应支付（元）", "按项目统筹基金支付（元）"] },
      xAxis: { type: "category", data: hs.map(function (r) { return r.hospital_id; }) },
      yAxis: { type: "value" },
      series: [
        { name: "DIP 统筹基金应支付（元）", type: "bar", data: hs.map(function (r) { return fen(r.fund); }) },
        { name: "按项目统筹基金支付（元）", type: "bar", data: hs.map(function (r) { return fen(r.ffs); }) }
      ]
    });
  }
})();

// Refused input (422) and conflicts (400/409) come back as a fragment with the message:
// swap it in like a success, so the message shows where the result would have been.
document.addEventListener("htmx:beforeSwap", function (evt) {
  var status = evt.detail.xhr.status;
  if (status === 400 || status === 409 || status === 422) {
    evt.detail.shouldSwap = true;
    evt.detail.isError = false;
  }
});
