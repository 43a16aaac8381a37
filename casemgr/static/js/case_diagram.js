/*
 * The case page's diagram: the BPMN of the case's own version, drawn by bpmn-js's
 * NavigatedViewer (window.BpmnJS, served from static/vendor by `make setup`), with the
 * case's state marked on it:
 *   cm-completed  elements that ran (green), and the sequence flows certainly taken
 *   cm-active     open human tasks (blue, pulsing)
 *   cm-waiting    timers the case waits on (amber), with the due time as an overlay
 *   cm-failed     where a broken case stopped (red)
 *
 * The page's Content-Security-Policy allows scripts from this site only, so everything
 * comes from data- attributes on #case-diagram; text is set with textContent, never HTML.
 */
(function () {
  'use strict';

  var host = document.getElementById('case-diagram');
  if (!host) {
    return;
  }
  var canvasEl = host.querySelector('[data-diagram-canvas]');
  var statusEl = host.querySelector('[data-diagram-status]');
  var summaryEl = document.querySelector('[data-diagram-summary]');

  function say(text, kind) {
    statusEl.textContent = text;
    statusEl.className = 'diagram-status notice ' + (kind || 'notice-info');
    statusEl.hidden = false;
  }

  if (typeof window.BpmnJS !== 'function' || typeof window.fetch !== 'function') {
    say('The diagram is unavailable: the diagram viewer did not load.', 'notice-warn');
    host.setAttribute('data-diagram-ready', 'unavailable');
    return;
  }

  function fetchOk(url, as) {
    return fetch(url, { credentials: 'same-origin', headers: { Accept: as === 'json' ? 'application/json' : 'application/xml' } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error('HTTP ' + response.status + ' for ' + url);
        }
        return as === 'json' ? response.json() : response.text();
      });
  }

  /* "2026-12-02T12:08:07+00:00" -> "2026-12-02 12:08 UTC" (the app shows UTC everywhere). */
  function utc(iso) {
    var moment = new Date(iso);
    if (isNaN(moment.getTime())) {
      return iso;
    }
    return moment.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  }

  function elementName(registry, id) {
    var element = registry.get(id);
    var bo = element && element.businessObject;
    return (bo && bo.name) || id;
  }

  function isSequenceFlow(connection) {
    return connection.type === 'bpmn:SequenceFlow';
  }

  /*
   * A sequence flow was certainly taken when its source ran and has no other way out, or
   * its target was reached and has no other way in. Anything less certain stays unmarked.
   */
  function takenFlows(registry, completed, reached) {
    return registry.filter(function (element) {
      if (!isSequenceFlow(element) || !element.source || !element.target) {
        return false;
      }
      var source = element.source;
      var target = element.target;
      var onlyWayOut = completed[source.id] &&
        (source.outgoing || []).filter(isSequenceFlow).length === 1;
      var onlyWayIn = reached[target.id] &&
        (target.incoming || []).filter(isSequenceFlow).length === 1;
      return Boolean(onlyWayOut || onlyWayIn);
    });
  }

  function asSet(ids) {
    var set = {};
    (ids || []).forEach(function (id) { set[id] = true; });
    return set;
  }

  function timerOverlay(text) {
    var badge = document.createElement('div');
    badge.className = 'cm-timer-badge';
    badge.textContent = text;
    badge.title = text;
    return badge;
  }

  function mark(viewer, state) {
    var canvas = viewer.get('canvas');
    var registry = viewer.get('elementRegistry');
    var overlays = viewer.get('overlays');
    var known = function (id) { return Boolean(registry.get(id)); };

    var active = asSet(state.active);
    var failed = asSet(state.failed);
    var waiting = asSet((state.waiting_timers || []).map(function (t) { return t.id; }));
    var completed = asSet(state.completed);
    var reached = Object.assign({}, completed, active, waiting, failed);

    // A task that ran before and is open again (a loop) shows as active, not completed.
    Object.keys(completed).filter(known).forEach(function (id) {
      if (!active[id] && !waiting[id] && !failed[id]) {
        canvas.addMarker(id, 'cm-completed');
      }
    });
    takenFlows(registry, completed, reached).forEach(function (flow) {
      canvas.addMarker(flow.id, 'cm-completed');
    });
    Object.keys(active).filter(known).forEach(function (id) {
      canvas.addMarker(id, 'cm-active');
    });
    (state.waiting_timers || []).filter(function (t) { return known(t.id); }).forEach(function (t) {
      canvas.addMarker(t.id, 'cm-waiting');
      var text = 'due ' + utc(t.due_at);
      overlays.add(t.id, 'cm-timer', { position: { bottom: 2, left: -34 }, html: timerOverlay(text) });
      var gfx = canvas.getGraphics(t.id);
      if (gfx) {
        var title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
        title.textContent = elementName(registry, t.id) + ': ' + text;
        gfx.appendChild(title);
      }
    });
    Object.keys(failed).filter(known).forEach(function (id) {
      canvas.addMarker(id, 'cm-failed');
    });
    summarize(registry, state);
  }

  /* The same facts as text, for screen readers and for whoever prefers a list. */
  function summarize(registry, state) {
    if (!summaryEl) {
      return;
    }
    summaryEl.textContent = '';
    function line(label, items) {
      if (!items.length) {
        return;
      }
      var li = document.createElement('li');
      var strong = document.createElement('strong');
      strong.textContent = label + ': ';
      li.appendChild(strong);
      li.appendChild(document.createTextNode(items.join('; ')));
      summaryEl.appendChild(li);
    }
    line('Active', (state.active || []).map(function (id) { return elementName(registry, id); }));
    line('Waiting timers', (state.waiting_timers || []).map(function (t) {
      return elementName(registry, t.id) + ' (due ' + utc(t.due_at) + ')';
    }));
    line('Failed', (state.failed || []).map(function (id) { return elementName(registry, id); }));
  }

  say('Loading the diagram…');
  host.setAttribute('data-diagram-ready', 'loading');
  var viewer = new window.BpmnJS({ container: canvasEl });

  Promise.all([fetchOk(host.dataset.bpmnUrl, 'xml'), fetchOk(host.dataset.stateUrl, 'json')])
    .then(function (results) {
      return viewer.importXML(results[0]).then(function () {
        var canvas = viewer.get('canvas');
        if (!viewer.get('elementRegistry').getAll().some(function (e) { return e.type !== 'bpmn:Process' && e.type !== 'bpmn:Collaboration'; })) {
          throw new Error('this version has no diagram layout');
        }
        canvas.zoom('fit-viewport', 'auto');
        mark(viewer, results[1]);
        statusEl.hidden = true;
        host.setAttribute('data-diagram-ready', 'yes');
      });
    })
    .catch(function (error) {
      var text = /no diagram layout/.test(String(error && error.message))
        ? 'This version has no diagram layout, so there is nothing to draw.'
        : 'The diagram could not be drawn (' + (error && error.message ? error.message : error) + ').';
      say(text, 'notice-warn');
      host.setAttribute('data-diagram-ready', 'failed');
    });
}());
