// Sortable tables: click (or Enter on) a header of a table.sortable to sort its rows by that
// column, again to reverse. Cells that start with a number ("0.81 ± 0.02", "1,234", "-3e-4")
// sort as numbers, others as text; empty cells always last. aria-sort marks the column.
"use strict";

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?(\s|%|±|$)/i;

function sortKey(cell) {
  const text = cell.textContent.trim().replace(/,/g, "");
  if (text === "") return null;
  return NUMBER.test(text) ? parseFloat(text) : text.toLowerCase();
}

function compareKeys(a, b, sign) {
  if (a === null || b === null) return (a === null) - (b === null);
  if (typeof a !== typeof b) return sign * (typeof a === "number" ? -1 : 1);
  return sign * (a < b ? -1 : a > b ? 1 : 0);
}

function sortTable(table, index, header) {
  const ascending = header.getAttribute("aria-sort") !== "ascending";
  for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => compareKeys(sortKey(a.cells[index]), sortKey(b.cells[index]),
                                  ascending ? 1 : -1));
  body.append(...rows);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table.sortable")) {
    Array.from(table.tHead.rows[0].cells).forEach((header, index) => {
      header.tabIndex = 0;
      header.title = "sort by this column";
      header.addEventListener("click", () => sortTable(table, index, header));
      header.addEventListener("keydown", (event) => {
        if (event.key === "Enter") sortTable(table, index, header);
      });
    });
  }
});
