/* The approval inbox: decide inline or in bulk without leaving the page, by mouse or keys.
 * j/k next/previous, a approve, r reject, s send back, c comment, x select, X select all,
 * Shift+A approve the selected, o open. Posts JSON with the X-CSRFToken header from the
 * page's meta tag; each approval gets its own result. Without script the form still works. */
(function () {
  "use strict";
  var form = document.getElementById("approvals-form");
  if (!form) { return; }
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : "";
  var bulkComment = document.getElementById("bulk-comment");
  var bulkResult = form.querySelector("[data-testid=bulk-result]");
  var countEl = form.querySelector("[data-selected-count]");
  var remainingEl = document.querySelector("[data-remaining]");
  var selectAll = form.querySelector("[data-select-all]");
  var busy = false;
  var current = -1;

  function rows() { return Array.prototype.slice.call(form.querySelectorAll("tbody tr[data-task]")); }
  function open(row) { return !row.classList.contains("done"); }
  function box(row) { return row.querySelector("input[name=task]"); }
  function selected() { return rows().filter(function (r) { return open(r) && box(r).checked; }); }

  function updateCount() {
    countEl.textContent = String(selected().length);
    var live = rows().filter(open);
    selectAll.checked = live.length > 0 && live.every(function (r) { return box(r).checked; });
  }

  function setCurrent(index) {
    var all = rows();
    if (!all.length) { return; }
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (r) { r.classList.remove("current"); });
    current = index;
    var row = all[index];
    row.classList.add("current");
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    var i = current < 0 ? (step > 0 ? -1 : all.length) : current;
    for (i += step; i >= 0 && i < all.length; i += step) {
      if (open(all[i])) { setCurrent(i); return; }
    }
  }

  function currentRow() {
    var all = rows();
    if (current < 0 || current >= all.length) { move(1); }
    return rows()[current];
  }

  function show(text, kind) {
    bulkResult.textContent = text;
    bulkResult.className = "bulk-result " + (kind || "");
  }

  function finish(row, result) {
    var out = row.querySelector(".row-result");
    out.textContent = result.message || (result.status === 200 ? "Done" : result.error || "Refused");
    row.classList.remove("busy");
    if (result.status === 200) {
      row.classList.add("done");
      row.classList.remove("refused");
      box(row).checked = false;
      Array.prototype.forEach.call(row.querySelectorAll("input, button"), function (el) { el.disabled = true; });
    } else {
      row.classList.add("refused");
    }
  }

  function decide(list, action, comment) {
    if (busy) { return; }
    list = list.filter(open);
    if (!list.length) { show("Select at least one approval first (x, or the box above).", "error"); return; }
    var comments = {};
    list.forEach(function (r) {
      var text = r.querySelector(".row-comment").value.trim();
      if (text) { comments[r.getAttribute("data-task")] = text; }
      r.classList.add("busy");
    });
    busy = true;
    show("Working on " + list.length + "…");
    fetch(form.getAttribute("action"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": token },
      body: JSON.stringify({
        tasks: list.map(function (r) { return r.getAttribute("data-task"); }),
        action: action,
        comment: comment || "",
        comments: comments
      })
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (answer) {
      busy = false;
      list.forEach(function (r) { r.classList.remove("busy"); });
      if (!answer.ok || !answer.body.results) {
        show(answer.body.error || "The decision was not sent; reload the page and try again.", "error");
        return;
      }
      var done = 0, refused = 0;
      list.forEach(function (r) {
        var result = answer.body.results[r.getAttribute("data-task")];
        if (!result) { return; }
        finish(r, result);
        if (result.status === 200) { done += 1; } else { refused += 1; }
      });
      if (remainingEl) {
        remainingEl.textContent = String(Math.max(0, parseInt(remainingEl.textContent, 10) - done));
      }
      var verb = { approve: "Approved", reject: "Rejected", send_back: "Sent back" }[action];
      show(verb + " " + done + " of " + list.length + (refused ? " · " + refused + " refused: see the row" + (refused > 1 ? "s" : "") : ""),
        refused ? "error" : "success");
      updateCount();
      if (list.length === 1 && done === 1) { move(1); }
    }).catch(function () {
      busy = false;
      list.forEach(function (r) { r.classList.remove("busy"); });
      show("No answer from the server; nothing you cannot see changed. Try again.", "error");
    });
  }

  form.addEventListener("click", function (event) {
    var button = event.target.closest("button[type=submit]");
    if (!button) {
      var row = event.target.closest("tr[data-task]");
      if (row && !event.target.closest("a, input")) { setCurrent(rows().indexOf(row)); }
      return;
    }
    event.preventDefault();
    if (button.getAttribute("data-action")) {
      var own = button.closest("tr[data-task]");
      setCurrent(rows().indexOf(own));
      decide([own], button.getAttribute("data-action"), "");
    } else if (button.getAttribute("data-bulk")) {
      decide(selected(), button.getAttribute("data-bulk"), bulkComment.value.trim());
    }
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  form.addEventListener("change", function (event) {
    if (event.target === selectAll) {
      rows().filter(open).forEach(function (r) { box(r).checked = selectAll.checked; });
    }
    updateCount();
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target.matches && target.matches("input[type=text], input[type=search], textarea, select");
    if (typing) {
      if (event.key === "Escape" || (event.key === "Enter" && target.form === form)) {
        event.preventDefault();
        target.blur();
        if (current >= 0) { setCurrent(current); }
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var row;
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "x":
        row = currentRow();
        if (row && open(row)) { box(row).checked = !box(row).checked; updateCount(); }
        break;
      case "X":
        selectAll.checked = !selectAll.checked;
        rows().filter(open).forEach(function (r) { box(r).checked = selectAll.checked; });
        updateCount();
        break;
      case "a": row = currentRow(); if (row) { decide([row], "approve", ""); } break;
      case "A": decide(selected(), "approve", bulkComment.value.trim()); break;
      case "r": row = currentRow(); if (row) { decide([row], "reject", ""); } break;
      case "s": row = currentRow(); if (row) { decide([row], "send_back", ""); } break;
      case "c":
        row = currentRow();
        if (row && open(row)) { row.querySelector(".row-comment").focus(); }
        break;
      case "o":
      case "Enter":
        row = currentRow();
        if (row && target.tagName !== "BUTTON" && target.tagName !== "A") { window.location.href = row.getAttribute("data-href"); }
        break;
      default: return;
    }
    event.preventDefault();
  });
  updateCount();
}());
