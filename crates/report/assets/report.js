"use strict";
// Sorting, filtering and CSV download of the report's tables; no request of any kind.
(function () {
  function cellKey(row, index, kind) {
    var cell = row.cells[index];
    if (!cell) return kind === "number" ? -Infinity : "";
    var raw = cell.getAttribute("data-value");
    var text = raw !== null ? raw : cell.textContent;
    if (kind === "number") {
      var value = parseFloat(text);
      return isNaN(value) ? -Infinity : value;
    }
    return text;
  }
  function sortBy(table, header) {
    var index = Array.prototype.indexOf.call(header.parentNode.cells, header);
    var kind = header.getAttribute("data-sort");
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(header.parentNode.cells, function (other) { other.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, position) {
      return { row: row, key: cellKey(row, index, kind), position: position };
    });
    rows.sort(function (a, b) {
      var order = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
      return (ascending ? order : -order) || a.position - b.position;
    });
    rows.forEach(function (entry) { body.appendChild(entry.row); });
  }
  function csvField(text) {
    return /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }
  function toCsv(table) {
    var lines = [];
    Array.prototype.forEach.call(table.rows, function (row) {
      if (row.style.display === "none") return;
      var fields = Array.prototype.map.call(row.cells, function (cell) {
        var column = cell.getAttribute("data-column");
        var raw = cell.getAttribute("data-value");
        var text = column !== null ? column : raw !== null ? raw : cell.textContent;
        if (raw !== null && raw.charAt(0) === '"') text = JSON.parse(raw);
        return csvField(text);
      });
      lines.push(fields.join(","));
    });
    return lines.join("\n") + "\n";
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable th[data-sort]"), function (header) {
    header.setAttribute("tabindex", "0");
    var table = header.closest("table");
    header.addEventListener("click", function () { sortBy(table, header); });
    header.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, header); }
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("input[data-filter]"), function (input) {
    var table = document.getElementById("table-" + input.getAttribute("data-filter"));
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.style.display = !needle || row.textContent.toLowerCase().indexOf(needle) >= 0 ? "" : "none";
      });
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("button[data-download]"), function (button) {
    var name = button.getAttribute("data-download");
    var table = document.getElementById("table-" + name);
    button.addEventListener("click", function () {
      var blob = new Blob([toCsv(table)], { type: "text/csv;charset=utf-8" });
      var link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = name + ".csv";
      document.body.appendChild(link);
      link.click();
      setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 0);
    });
  });
})();
