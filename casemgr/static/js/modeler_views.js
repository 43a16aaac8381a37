/*
 * Read-only diagrams for process owners, drawn by bpmn-js's NavigatedViewer (window.BpmnJS):
 *
 *   [data-diff]  two versions side by side: on the old one the removed and changed elements,
 *                on the new one the added and changed ones (from #diff-data);
 *   [data-heat]  the version's diagram, each task warmer the more cases wait at it, with a
 *                badge "N waiting · median 2 d 4 h" (from #heat-data).
 *
 * No inline code (the CSP forbids it): data comes from JSON script elements and data- urls.
 */
(function () {
  'use strict';

  if (typeof window.BpmnJS !== 'function' || typeof window.fetch !== 'function') {
    return;
  }

  function readJson(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function draw(container) {
    var viewer = new window.BpmnJS({ container: container });
    return fetch(container.getAttribute('data-bpmn-url'), { credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) {
          throw new Error('HTTP ' + response.status);
        }
        return response.text();
      })
      .then(function (xml) { return viewer.importXML(xml); })
      .then(function () {
        viewer.get('canvas').zoom('fit-viewport', 'auto');
        container.setAttribute('data-ready', 'yes');
        return viewer;
      })
      .catch(function (error) {
        var note = document.createElement('p');
        note.className = 'notice notice-warn';
        note.textContent = 'The diagram could not be drawn (' + error.message + ').';
        container.appendChild(note);
        container.setAttribute('data-ready', 'failed');
        return null;
      });
  }

  function mark(viewer, ids, css) {
    var canvas = viewer.get('canvas');
    var registry = viewer.get('elementRegistry');
    ids.forEach(function (id) {
      if (registry.get(id)) {
        canvas.addMarker(id, css);
      }
    });
  }

  function ids(items) {
    return (items || []).map(function (item) { return item.element; });
  }

  var diff = document.querySelector('[data-diff]');
  if (diff) {
    var changes = readJson('diff-data') || {};
    var old = diff.querySelector('[data-diff-side="old"]');
    var young = diff.querySelector('[data-diff-side="new"]');
    draw(old).then(function (viewer) {
      if (viewer) {
        mark(viewer, ids(changes.removed), 'pm-removed');
        mark(viewer, ids(changes.changed), 'pm-changed');
      }
    });
    draw(young).then(function (viewer) {
      if (viewer) {
        mark(viewer, ids(changes.added), 'pm-added');
        mark(viewer, ids(changes.changed), 'pm-changed');
        mark(viewer, ids(changes.moved), 'pm-moved');
      }
    });
  }

  function duration(seconds) {
    var s = Math.round(seconds);
    if (s < 3600) {
      return Math.floor(s / 60) + ' min';
    }
    if (s < 86400) {
      return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    }
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }

  var heat = document.querySelector('[data-heat]');
  if (heat) {
    var elements = readJson('heat-data') || [];
    var most = elements.reduce(function (max, e) { return Math.max(max, e.waiting); }, 0);
    draw(heat).then(function (viewer) {
      if (!viewer) {
        return;
      }
      var canvas = viewer.get('canvas');
      var overlays = viewer.get('overlays');
      var registry = viewer.get('elementRegistry');
      elements.forEach(function (e) {
        if (!registry.get(e.element)) {
          return;
        }
        var level = Math.max(1, Math.ceil((e.waiting / most) * 4));
        canvas.addMarker(e.element, 'pm-heat-' + level);
        var badge = document.createElement('div');
        badge.className = 'pm-heat-badge';
        badge.setAttribute('data-heat-element', e.element);
        badge.textContent = e.waiting + ' waiting';
        var median = document.createElement('small');
        median.textContent = ' · median ' + duration(e.median_wait_seconds);
        badge.appendChild(median);
        overlays.add(e.element, 'pm-heat', { position: { top: -12, left: 0 }, html: badge });
      });
    });
  }
}());
