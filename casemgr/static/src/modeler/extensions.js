/*
 * Reading and writing the spiffworkflow extension elements the engine reads, as undoable
 * commands on the modeler's command stack:
 *
 *   <spiffworkflow:properties><spiffworkflow:property name="formKey" value="..."/>
 *   <spiffworkflow:preScript> / <spiffworkflow:postScript> / <spiffworkflow:calledDecisionId>
 *   <spiffworkflow:serviceTaskOperator id="..." resultVariable="..."><spiffworkflow:parameters>
 *
 * Each setter builds one list of commands and runs it through the properties panel's
 * multi-command executor, so one edit is one undo step.
 */
import { getBusinessObject, is } from 'bpmn-js/lib/util/ModelUtil';

const MULTI = 'properties-panel.multi-command-executor';

function update(element, moddleElement, properties) {
  return { cmd: 'element.updateModdleProperties', context: { element, moddleElement, properties } };
}

export function extensionsOf(bo, type) {
  const extensions = bo && bo.get('extensionElements');
  const values = (extensions && extensions.get('values')) || [];
  return type ? values.filter((value) => is(value, type)) : values;
}

/* The commands that make sure `bo` has extension elements; returns [commands, container]. */
function ensureExtensions(element, bo, bpmnFactory) {
  let extensions = bo.get('extensionElements');
  if (extensions) {
    return [[], extensions];
  }
  extensions = bpmnFactory.create('bpmn:ExtensionElements', { values: [] });
  extensions.$parent = bo;
  return [[update(element, bo, { extensionElements: extensions })], extensions];
}

/* The one extension element of `type`, created when missing; returns [commands, it]. */
function ensureExtension(element, bo, type, attrs, bpmnFactory) {
  const [commands, extensions] = ensureExtensions(element, bo, bpmnFactory);
  let found = extensions.get('values').find((value) => is(value, type));
  if (!found) {
    found = bpmnFactory.create(type, attrs || {});
    found.$parent = extensions;
    commands.push(update(element, extensions, { values: [...extensions.get('values'), found] }));
  }
  return [commands, found];
}

/* Drop an extension element, and the container when nothing else is left in it. */
function removeExtension(element, bo, value) {
  const extensions = bo.get('extensionElements');
  const rest = extensions.get('values').filter((v) => v !== value);
  if (!rest.length) {
    return [update(element, bo, { extensionElements: undefined })];
  }
  return [update(element, extensions, { values: rest })];
}

export function getProperty(element, name) {
  const bo = getBusinessObject(element);
  for (const container of extensionsOf(bo, 'spiffworkflow:Properties')) {
    const property = (container.get('properties') || []).find((p) => p.get('name') === name);
    if (property) {
      return property.get('value') || '';
    }
  }
  return '';
}

export function setProperty(injector, element, name, value) {
  const bpmnFactory = injector.get('bpmnFactory');
  const commandStack = injector.get('commandStack');
  const bo = getBusinessObject(element);
  const text = (value || '').trim();
  const existing = extensionsOf(bo, 'spiffworkflow:Properties')[0];
  const current = existing && existing.get('properties').find((p) => p.get('name') === name);
  if (!text) {
    if (!current) {
      return;
    }
    const rest = existing.get('properties').filter((p) => p !== current);
    const commands = rest.length
      ? [update(element, existing, { properties: rest })]
      : removeExtension(element, bo, existing);
    commandStack.execute(MULTI, commands);
    return;
  }
  if (current) {
    commandStack.execute(MULTI, [update(element, current, { value: text })]);
    return;
  }
  const [commands, container] = ensureExtension(
    element, bo, 'spiffworkflow:Properties', { properties: [] }, bpmnFactory);
  const property = bpmnFactory.create('spiffworkflow:Property', { name, value: text });
  property.$parent = container;
  commands.push(update(element, container, { properties: [...container.get('properties'), property] }));
  commandStack.execute(MULTI, commands);
}

/* A body-only extension: preScript, postScript, calledDecisionId. */
export function getBody(element, type) {
  const found = extensionsOf(getBusinessObject(element), type)[0];
  return (found && found.get('value')) || '';
}

export function setBody(injector, element, type, value) {
  const bpmnFactory = injector.get('bpmnFactory');
  const commandStack = injector.get('commandStack');
  const bo = getBusinessObject(element);
  const found = extensionsOf(bo, type)[0];
  const text = value || '';
  if (!text.trim()) {
    if (found) {
      commandStack.execute(MULTI, removeExtension(element, bo, found));
    }
    return;
  }
  if (found) {
    commandStack.execute(MULTI, [update(element, found, { value: text })]);
    return;
  }
  const [commands] = ensureExtension(element, bo, type, { value: text }, bpmnFactory);
  commandStack.execute(MULTI, commands);
}

export function getOperator(element) {
  return extensionsOf(getBusinessObject(element), 'spiffworkflow:ServiceTaskOperator')[0];
}

export function setOperatorAttr(injector, element, attr, value) {
  const bpmnFactory = injector.get('bpmnFactory');
  const commandStack = injector.get('commandStack');
  const bo = getBusinessObject(element);
  const [commands, operator] = ensureExtension(
    element, bo, 'spiffworkflow:ServiceTaskOperator', {}, bpmnFactory);
  commands.push(update(element, operator, { [attr]: value || undefined }));
  commandStack.execute(MULTI, commands);
}

/* Parameters as lines of "name = expression" (the type attribute is kept, default str). */
export function getParameters(element) {
  const operator = getOperator(element);
  const list = operator && operator.get('parameterList');
  return ((list && list.get('parameters')) || [])
    .map((p) => `${p.get('id')} = ${p.get('value') || ''}`)
    .join('\n');
}

export function parseParameterLines(text) {
  const params = [];
  const problems = [];
  (text || '').split('\n').forEach((line, index) => {
    if (!line.trim()) {
      return;
    }
    const at = line.indexOf('=');
    const name = at > 0 ? line.slice(0, at).trim() : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      problems.push(`line ${index + 1}: write name = expression`);
      return;
    }
    params.push({ id: name, value: line.slice(at + 1).trim() });
  });
  return { params, problems };
}

export function setParameters(injector, element, text) {
  const { params, problems } = parseParameterLines(text);
  if (problems.length) {
    return;
  }
  const bpmnFactory = injector.get('bpmnFactory');
  const commandStack = injector.get('commandStack');
  const bo = getBusinessObject(element);
  const [commands, operator] = ensureExtension(
    element, bo, 'spiffworkflow:ServiceTaskOperator', {}, bpmnFactory);
  const oldList = operator.get('parameterList');
  const types = {};
  ((oldList && oldList.get('parameters')) || []).forEach((p) => { types[p.get('id')] = p.get('type'); });
  const list = bpmnFactory.create('spiffworkflow:Parameters', { parameters: [] });
  list.$parent = operator;
  list.get('parameters').push(...params.map((p) => {
    const param = bpmnFactory.create('spiffworkflow:Parameter', {
      id: p.id, type: types[p.id] || 'str', value: p.value,
    });
    param.$parent = list;
    return param;
  }));
  commands.push(update(element, operator, { parameterList: params.length ? list : undefined }));
  commandStack.execute(MULTI, commands);
}
