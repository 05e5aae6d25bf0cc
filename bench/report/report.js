(function () {
  var figures = JSON.parse(document.getElementById("figures").textContent);
  var config = {displaylogo: false, responsive: true, showLink: false, showSendToCloud: false};
  var drawn = Object.keys(figures).map(function (id) {
    var fig = figures[id];
    return Plotly.newPlot(document.getElementById(id), fig.data, fig.layout, config);
  });
  Promise.all(drawn).then(function () { document.body.dataset.ready = "1"; },
                          function (e) { document.body.dataset.ready = "error"; console.error(e); });
  // Sortable tables: numbers (data-v) by value, before text; "-" (nothing) always last.
  function rank(cell) { return cell.dataset.v !== undefined ? 0 : (cell.textContent === "-" ? 2 : 1); }
  document.querySelectorAll("table.sortable th").forEach(function (th) {
    th.addEventListener("click", function () {
      var table = th.closest("table"), body = table.tBodies[0], i = th.cellIndex;
      var asc = th.dataset.dir !== "asc";
      table.querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = asc ? "asc" : "desc";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[i], y = b.cells[i];
        if (rank(x) !== rank(y)) { return rank(x) - rank(y); }
        if (rank(x) === 2) { return 0; }
        var d = rank(x) === 0 ? Number(x.dataset.v) - Number(y.dataset.v)
                              : x.textContent.localeCompare(y.textContent, undefined, {numeric: true});
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();
