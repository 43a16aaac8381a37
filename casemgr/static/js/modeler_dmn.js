/*
 * The decision table editor: dmn-js's modeler (window.DmnJS, served from static/vendor by
 * `make setup`). Save keeps a draft, Validate shows what publishing would refuse, Publish
 * makes the table's next version and a new version of every case type that calls it.
 * The page's CSP allows scripts from this site only: settings come from #modeler-config.
 */
(function () {
  'use strict';

  var configEl = document.getElementById('modeler-config');
  var canvasEl = document.getElementById('canvas');
  var statusEl = document.querySelector('[data-modeler-status]');
  var problemsEl = document.querySelector('[data-problems]');
  var viewsEl = document.querySelector('[data-dmn-views]');
  if (!configEl || !canvasEl) {
    return;
  }
  var config = JSON.parse(configEl.textContent);
  var state = { revision: config.revision || 0, dirty: false, busy: false };
  var buttons = {};
  Array.prototype.forEach.call(document.querySelectorAll('[data-action]'), function (button) {
    buttons[button.getAttribute('data-action')] = button;
  });

  function say(text, kind) {
    statusEl.textContent = text;
    statusEl.className = 'pm-status notice notice-' + (kind || 'info');
  }

  if (typeof window.DmnJS !== 'function' || typeof window.fetch !== 'function') {
    say('The table editor did not load; upload and download still work.', 'warn');
    return;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : '';
  }

  function setBusy(busy) {
    state.busy = busy;
    Object.keys(buttons).forEach(function (key) { buttons[key].disabled = busy; });
  }

  function showProblems(errors) {
    problemsEl.textContent = '';
    if (!errors.length) {
      var ok = document.createElement('p');
      ok.className = 'muted';
      ok.textContent = 'The draft validates.';
      problemsEl.appendChild(ok);
      return;
    }
    var list = document.createElement('ul');
    list.className = 'pm-problems';
    list.setAttribute('data-testid', 'validation-errors');
    errors.forEach(function (error) {
      var item = document.createElement('li');
      if (error.element) {
        var code = document.createElement('code');
        code.textContent = error.element;
        item.appendChild(code);
        item.appendChild(document.createTextNode(' '));
      }
      item.appendChild(document.createTextNode(error.message));
      list.appendChild(item);
    });
    problemsEl.appendChild(list);
  }

  var editor = new window.DmnJS({ container: canvasEl });
  window.casemgrDmnEditor = editor;

  function renderViews() {
    viewsEl.textContent = '';
    var active = editor.getActiveView();
    editor.getViews().forEach(function (view) {
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'small';
      var name = view.element && (view.element.name || view.element.id);
      button.textContent = (view.type === 'drd' ? 'Requirements diagram' : name) || view.type;
      button.setAttribute('aria-pressed', String(Boolean(active && active.element === view.element)));
      button.addEventListener('click', function () { editor.open(view); });
      viewsEl.appendChild(button);
    });
  }

  function watchChanges() {
    var viewer = editor.getActiveViewer();
    if (viewer && !viewer.__casemgrWatched) {
      viewer.__casemgrWatched = true;
      viewer.on('elements.changed', function () {
        state.dirty = true;
        if (!state.busy) {
          say('Unsaved changes.', 'warn');
        }
      });
    }
  }

  editor.on('views.changed', function () {
    renderViews();
    watchChanges();
  });

  function post(url, body, headers) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: Object.assign({ 'X-CSRFToken': csrfToken(), Accept: 'application/json' }, headers || {}),
      body: body
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        return { status: response.status, body: json };
      });
    });
  }

  function save() {
    return editor.saveXML({ format: true }).then(function (result) {
      return post(config.saveUrl, result.xml, {
        'Content-Type': 'application/xml',
        'X-Draft-Revision': String(state.revision || '')
      });
    }).then(function (answer) {
      if (answer.status !== 200) {
        throw new Error(answer.body.error || 'the server answered ' + answer.status);
      }
      state.revision = answer.body.revision;
      state.dirty = false;
      return answer.body;
    });
  }

  function run(action) {
    if (state.busy) {
      return;
    }
    setBusy(true);
    var done;
    if (action === 'publish') {
      say('Saving and publishing…');
      done = save().then(function () {
        return post(config.publishUrl, null, {});
      }).then(function (answer) {
        if (answer.status === 201) {
          state.revision = 0;
          showProblems([]);
          say(answer.body.message, 'ok');
        } else if (answer.body.errors) {
          showProblems(answer.body.errors);
          say('Not published: fix the problems listed below first.', 'error');
        } else {
          throw new Error(answer.body.error || 'the server answered ' + answer.status);
        }
      });
    } else {
      say(action === 'save' ? 'Saving…' : 'Validating…');
      done = save().then(function (body) {
        showProblems(body.errors);
        var count = body.errors.length;
        say('Draft saved (revision ' + body.revision + '). ' +
          (count ? count + ' problem(s) to fix before publishing.' : 'It validates.'),
          count && action === 'validate' ? 'error' : 'ok');
      });
    }
    done.catch(function (error) {
      say('Nothing changed: ' + error.message, 'error');
    }).then(function () { setBusy(false); });
  }

  Object.keys(buttons).forEach(function (action) {
    buttons[action].addEventListener('click', function () { run(action); });
  });
  window.addEventListener('beforeunload', function (event) {
    if (state.dirty) {
      event.preventDefault();
      event.returnValue = '';
    }
  });

  fetch(config.xmlUrl, { credentials: 'same-origin', headers: { Accept: 'application/xml' } })
    .then(function (response) {
      if (!response.ok) {
        throw new Error('the table could not be loaded (' + response.status + ')');
      }
      return response.text();
    })
    .then(function (xml) { return editor.importXML(xml); })
    .then(function () {
      // Open the first decision table rather than the requirements diagram.
      var table = editor.getViews().filter(function (v) { return v.type === 'decisionTable'; })[0];
      if (table) {
        editor.open(table);
      }
      renderViews();
      watchChanges();
      setBusy(false);
      state.dirty = false;
      canvasEl.setAttribute('data-ready', 'yes');
      say('Ready. Edit the rules, then save or publish.', 'info');
    })
    .catch(function (error) {
      say('The table could not be opened: ' + error.message + '. Upload a corrected file.', 'error');
      canvasEl.setAttribute('data-ready', 'failed');
    });
}());
