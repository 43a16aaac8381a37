/* The dashboard's charts: Chart.js (window.Chart, from /static/vendor) drawn from
 * /dashboard/data.json, the same figures as the tables beside each chart. No inline
 * script (the CSP is self-only): the page says where the data is in data-source.
 * When Chart.js or the data is missing, the tables stay and a note says so. */
(function () {
  "use strict";

  var root = document.querySelector("[data-dashboard]");
  if (!root) {
    return;
  }

  var PALETTE = ["#2a62b8", "#1d6b3a", "#b4690e", "#7a3fb0", "#b42318", "#1b7f8c", "#5d6b7d"];
  var COLORS = {
    median: "#2a62b8",
    p90: "#9dbbe6",
    overdue: "#b42318",
    late: "#e8a33d",
    onTime: "#7fb893",
    aging: ["#7fb893", "#c9d86b", "#e8c33d", "#e8a33d", "#d9682e", "#b42318"]
  };

  function unavailable(reason) {
    root.setAttribute("data-charts", "unavailable");
    var note = root.querySelector(".dash-no-charts");
    if (note) {
      note.hidden = false;
      note.title = reason;
    }
  }

  function canvas(name) {
    return root.querySelector('canvas[data-chart="' + name + '"]');
  }

  function baseOptions(extra) {
    var options = {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true }, y: { beginAtZero: true } }
    };
    Object.keys(extra || {}).forEach(function (key) {
      options[key] = extra[key];
    });
    return options;
  }

  // Counts are whole numbers: no 0.5 ticks on their axis ("x" for horizontal bars).
  function countScales(valueAxis, stacked) {
    var scales = {
      x: { beginAtZero: true, stacked: !!stacked },
      y: { beginAtZero: true, stacked: !!stacked }
    };
    scales[valueAxis].ticks = { precision: 0 };
    return scales;
  }

  function typeColors(rows) {
    var seen = {};
    var next = 0;
    return rows.map(function (row) {
      if (!(row.case_type in seen)) {
        seen[row.case_type] = PALETTE[next % PALETTE.length];
        next += 1;
      }
      return seen[row.case_type];
    });
  }

  function draw(name, config) {
    var element = canvas(name);
    if (element) {
      return new window.Chart(element, config);
    }
    return null;
  }

  function openByStep(rows) {
    draw("open_by_step", {
      type: "bar",
      data: {
        // Two-line labels (step, then case type) keep long names readable.
        labels: rows.map(function (r) { return [r.step, r.case_type_name]; }),
        datasets: [{
          label: "Open cases",
          data: rows.map(function (r) { return r.open_cases; }),
          backgroundColor: typeColors(rows)
        }]
      },
      options: baseOptions({ indexAxis: "y", scales: countScales("x") })
    });
  }

  function timeToResolve(rows) {
    draw("time_to_resolve", {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return r.case_type_name; }),
        datasets: [
          { label: "Median (days)", data: rows.map(function (r) { return r.median_days; }),
            backgroundColor: COLORS.median },
          { label: "90th percentile (days)", data: rows.map(function (r) { return r.p90_days; }),
            backgroundColor: COLORS.p90 }
        ]
      },
      options: baseOptions({ plugins: { legend: { display: true, position: "bottom" } } })
    });
  }

  function sla(rows) {
    draw("sla", {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return r.case_type_name; }),
        datasets: [
          { label: "Open, overdue now", data: rows.map(function (r) { return r.open_overdue; }),
            backgroundColor: COLORS.overdue },
          { label: "Completed late", data: rows.map(function (r) { return r.completed_late; }),
            backgroundColor: COLORS.late },
          { label: "Completed in time",
            data: rows.map(function (r) { return r.completed_on_time; }),
            backgroundColor: COLORS.onTime }
        ]
      },
      options: baseOptions({
        scales: countScales("y", true),
        plugins: { legend: { display: true, position: "bottom" } }
      })
    });
  }

  function approvals(rows) {
    draw("approvals", {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return r.approver; }),
        datasets: [{
          label: "Approvals waiting",
          data: rows.map(function (r) { return r.waiting; }),
          backgroundColor: rows.map(function (r) {
            return r.kind === "queue" ? "#9dbbe6" : "#2a62b8";
          })
        }]
      },
      options: baseOptions({ indexAxis: "y", scales: countScales("x") })
    });
  }

  function aging(figures, labels) {
    draw("aging", {
      type: "bar",
      data: {
        labels: figures.buckets.map(function (b) { return labels[b] || b; }),
        datasets: [{
          label: "Open amount",
          // Only the bar heights are floats; the exact amounts are in the table.
          data: figures.buckets.map(function (b) { return parseFloat(figures.totals[b]); }),
          backgroundColor: COLORS.aging
        }]
      },
      options: baseOptions()
    });
  }

  if (typeof window.Chart === "undefined") {
    unavailable("Chart.js did not load");
    return;
  }

  fetch(root.getAttribute("data-source"), {
    credentials: "same-origin",
    headers: { Accept: "application/json" }
  })
    .then(function (response) {
      if (!response.ok) {
        throw new Error("the figures answered " + response.status);
      }
      return response.json();
    })
    .then(function (data) {
      openByStep(data.open_by_step);
      timeToResolve(data.time_to_resolve);
      sla(data.sla);
      approvals(data.approvals);
      aging(data.aging, data.bucket_labels || {});
      root.setAttribute("data-charts", "ready");
    })
    .catch(function (error) {
      unavailable(String(error && error.message ? error.message : error));
    });
})();
