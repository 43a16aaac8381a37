/* The inbox: keys to work the queue (j/k move, Enter or o open, x select, c claim, / search),
 * a select-all box for the bulk buttons, and filters that apply as soon as a list changes. */
(function () {
  "use strict";
  var table = document.querySelector("table.inbox");
  var filters = document.getElementById("filters");
  var search = document.getElementById("q");
  var current = -1;

  if (filters) {
    Array.prototype.forEach.call(filters.querySelectorAll("select"), function (select) {
      select.addEventListener("change", function () { filters.submit(); });
    });
  }

  function rows() { return table ? Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-task]")) : []; }
  function box(row) { return row.querySelector("input[name=task]"); }
  var count = document.querySelector("[data-selected-count]");
  var selectAll = table ? table.querySelector("[data-select-all]") : null;

  function updateCount() {
    if (!count) { return; }
    var list = rows();
    var n = list.filter(function (r) { return box(r).checked; }).length;
    count.textContent = String(n);
    if (selectAll) { selectAll.checked = list.length > 0 && n === list.length; }
  }

  function setCurrent(index) {
    var list = rows();
    if (!list.length) { return; }
    current = Math.max(0, Math.min(list.length - 1, index));
    list.forEach(function (r) { r.classList.remove("current"); });
    list[current].classList.add("current");
    list[current].scrollIntoView({ block: "nearest" });
  }

  if (table) {
    table.addEventListener("change", function (event) {
      if (event.target === selectAll) {
        rows().forEach(function (r) { box(r).checked = selectAll.checked; });
      }
      updateCount();
    });
    table.addEventListener("click", function (event) {
      var row = event.target.closest("tr[data-task]");
      if (row && !event.target.closest("a, input, button")) { setCurrent(rows().indexOf(row)); }
    });
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target.matches && target.matches("input, textarea, select")) {
      if (event.key === "Escape") { target.blur(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var list = rows();
    var row = current >= 0 ? list[current] : null;
    switch (event.key) {
      case "j": setCurrent(current + 1); break;
      case "k": setCurrent(current < 0 ? 0 : current - 1); break;
      case "/": if (search) { search.focus(); search.select(); } break;
      case "x": if (row) { box(row).checked = !box(row).checked; updateCount(); } break;
      case "c": if (row && row.querySelector("[data-claim]")) { row.querySelector("[data-claim]").click(); } break;
      case "o":
      case "Enter":
        if (!row || target.tagName === "A" || target.tagName === "BUTTON") { return; }
        window.location.href = row.getAttribute("data-href");
        break;
      default: return;
    }
    event.preventDefault();
  });
  updateCount();
}());
