/*
 * The modeler page: bpmn-js's Modeler with its properties panel and casemgr's provider for
 * the spiffworkflow namespace. Save keeps a draft (however incomplete), Validate shows what
 * publishing would refuse and marks it on the diagram, Publish makes version N+1.
 *
 * Everything the page needs comes from #modeler-config (a JSON script element: the CSP
 * allows no inline code); requests carry the CSRF token from the layout's meta tag. The
 * modeler is exposed as window.casemgrModeler for browser tests and the curious.
 */
import Modeler from 'bpmn-js/lib/Modeler';
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule } from 'bpmn-js-properties-panel';
import spiffworkflow from './spiffworkflow.json';
import CaseManagementProvider from './provider';

const CaseManagementModule = {
  __init__: ['caseManagementProvider'],
  caseManagementProvider: ['type', CaseManagementProvider],
};

const configEl = document.getElementById('modeler-config');
const canvasEl = document.getElementById('canvas');
const statusEl = document.querySelector('[data-modeler-status]');
const problemsEl = document.querySelector('[data-problems]');
const buttons = {};
document.querySelectorAll('[data-action]').forEach((button) => { buttons[button.dataset.action] = button; });

function say(text, kind) {
  statusEl.textContent = text;
  statusEl.className = `pm-status notice notice-${kind || 'info'}`;
  statusEl.hidden = false;
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute('content') : '';
}

async function answer(response) {
  const type = response.headers.get('Content-Type') || '';
  const body = type.includes('json') ? await response.json() : {};
  if (!response.ok && !(body && body.errors)) {
    throw new Error(body.error || `the server answered ${response.status}`);
  }
  return body;
}

if (configEl && canvasEl) {
  const config = JSON.parse(configEl.textContent);
  const state = { revision: config.revision || 0, dirty: false, busy: false, markers: [] };

  const modeler = new Modeler({
    container: canvasEl,
    // Our group opens first: role, form, due date and four-eyes are what owners edit most.
    propertiesPanel: { parent: '#properties', layout: { groups: { casemgr: { open: true } } } },
    additionalModules: [BpmnPropertiesPanelModule, BpmnPropertiesProviderModule, CaseManagementModule],
    moddleExtensions: { spiffworkflow },
    casemgr: config.catalog,
  });
  window.casemgrModeler = modeler;

  const canvas = () => modeler.get('canvas');
  const registry = () => modeler.get('elementRegistry');
  const overlays = () => modeler.get('overlays');

  function setBusy(busy) {
    state.busy = busy;
    Object.values(buttons).forEach((button) => { button.disabled = busy; });
  }

  function clearMarks() {
    state.markers.forEach((id) => {
      if (registry().get(id)) {
        canvas().removeMarker(id, 'cm-error');
      }
    });
    state.markers = [];
    overlays().remove({ type: 'cm-error' });
  }

  /* Mark each element with a problem and list every problem; a click selects the element. */
  function showProblems(errors) {
    clearMarks();
    problemsEl.textContent = '';
    if (!errors.length) {
      const ok = document.createElement('p');
      ok.className = 'muted';
      ok.dataset.testid = 'validation-ok';
      ok.textContent = 'The draft validates.';
      problemsEl.appendChild(ok);
      return;
    }
    const list = document.createElement('ul');
    list.className = 'pm-problems';
    list.dataset.testid = 'validation-errors';
    const counts = {};
    errors.forEach((error) => {
      const item = document.createElement('li');
      const shape = error.element && registry().get(error.element);
      if (error.element) {
        const code = document.createElement('code');
        code.textContent = error.element;
        item.appendChild(code);
        item.appendChild(document.createTextNode(' '));
      }
      item.appendChild(document.createTextNode(error.message));
      if (shape) {
        item.dataset.element = error.element;
        item.tabIndex = 0;
        counts[error.element] = (counts[error.element] || 0) + 1;
      }
      list.appendChild(item);
    });
    problemsEl.appendChild(list);
    Object.keys(counts).forEach((id) => {
      canvas().addMarker(id, 'cm-error');
      state.markers.push(id);
      const badge = document.createElement('div');
      badge.className = 'pm-error-badge';
      badge.textContent = counts[id] === 1 ? '1 problem' : `${counts[id]} problems`;
      overlays().add(id, 'cm-error', { position: { top: -10, right: 10 }, html: badge });
    });
  }

  problemsEl.addEventListener('click', (event) => {
    const item = event.target.closest('[data-element]');
    if (!item) {
      return;
    }
    const shape = registry().get(item.dataset.element);
    if (shape) {
      modeler.get('selection').select(shape);
      canvas().scrollToElement(shape);
    }
  });

  async function send(url, body, headers) {
    const response = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: Object.assign({ 'X-CSRFToken': csrfToken(), Accept: 'application/json' }, headers || {}),
      body,
    });
    return { status: response.status, body: await answer(response) };
  }

  async function save() {
    const { xml } = await modeler.saveXML({ format: true });
    const { status, body } = await send(config.saveUrl, xml, {
      'Content-Type': 'application/xml',
      'X-Draft-Revision': String(state.revision || ''),
    });
    if (status === 409 || status === 413 || status === 422) {
      throw new Error(body.error || `the server answered ${status}`);
    }
    state.revision = body.revision;
    state.dirty = false;
    return body;
  }

  async function run(action) {
    if (state.busy) {
      return;
    }
    setBusy(true);
    try {
      if (action === 'save' || action === 'validate') {
        say(action === 'save' ? 'Saving…' : 'Validating…');
        const result = await save();
        showProblems(result.errors);
        const count = result.errors.length;
        say(
          `Draft saved (revision ${result.revision}). ${count ? `${count} problem${count > 1 ? 's' : ''} to fix before publishing.` : 'It validates.'}`,
          count && action === 'validate' ? 'error' : 'ok',
        );
      } else if (action === 'publish') {
        say('Saving and publishing…');
        await save();
        const { status, body } = await send(config.publishUrl, null, {});
        if (status === 201) {
          showProblems([]);
          state.revision = 0; // the draft became the version
          say(body.message, 'ok');
          statusEl.dataset.published = String(body.version);
          const link = document.createElement('a');
          link.href = body.versionsUrl;
          link.textContent = ' See the versions.';
          statusEl.appendChild(link);
        } else {
          showProblems(body.errors || []);
          say(`Not published: ${(body.errors || []).length} problem(s) to fix first.`, 'error');
        }
      }
    } catch (error) {
      say(`Nothing changed: ${error.message}`, 'error');
    } finally {
      setBusy(false);
    }
  }

  Object.entries(buttons).forEach(([action, button]) => {
    button.addEventListener('click', () => run(action));
  });

  modeler.on('commandStack.changed', () => {
    state.dirty = true;
    if (!state.busy) {
      say('Unsaved changes.', 'warn');
    }
  });
  window.addEventListener('beforeunload', (event) => {
    if (state.dirty) {
      event.preventDefault();
      event.returnValue = '';
    }
  });

  fetch(config.xmlUrl, { credentials: 'same-origin', headers: { Accept: 'application/xml' } })
    .then((response) => {
      if (!response.ok) {
        throw new Error(`the diagram could not be loaded (${response.status})`);
      }
      return response.text();
    })
    .then((xml) => modeler.importXML(xml))
    .then(({ warnings }) => {
      canvas().zoom('fit-viewport', 'auto');
      setBusy(false);
      say(warnings && warnings.length
        ? `Loaded, with ${warnings.length} part(s) the modeler could not read; they are kept as they are.`
        : 'Ready. Select an element to edit its role, form, due date, scripts or conditions.', 'info');
      if ((config.errors || []).length) {
        showProblems(config.errors); // the saved draft's problems, marked on the diagram
      }
      canvasEl.dataset.ready = 'yes';
      state.dirty = false;
    })
    .catch((error) => {
      say(`The diagram could not be opened: ${error.message}. Upload a corrected file.`, 'error');
      canvasEl.dataset.ready = 'failed';
    });
}
