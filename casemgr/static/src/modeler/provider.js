/*
 * casemgr's properties-panel provider: edits exactly what the engine reads, in the
 * spiffworkflow namespace, with the choices the server offers (config.casemgr):
 *
 *   user and manual tasks  role override, form (from the registered forms), due date,
 *                          four-eyes (user tasks whose completer may not do this one)
 *   start events           the start form
 *   lanes                  the role the lane names
 *   script tasks           the script (Python)
 *   every task             scripts run before and after it
 *   sequence flows         the condition (Python) and "default flow" out of a gateway
 *   business-rule tasks    the decision table
 *   service tasks          the operation, its result variable and its parameters
 *   timer events           a reminder that the time is a Python expression
 *
 * The groups sit after bpmn-js-properties-panel's own (name, id, documentation, timer).
 */
import { is, isAny, getBusinessObject } from 'bpmn-js/lib/util/ModelUtil';
import {
  SelectEntry, TextFieldEntry, TextAreaEntry, CheckboxEntry, DescriptionEntry,
  isSelectEntryEdited, isTextFieldEntryEdited, isTextAreaEntryEdited, isCheckboxEntryEdited,
} from '@bpmn-io/properties-panel';
import { useService } from 'bpmn-js-properties-panel';
import { h } from '@bpmn-io/properties-panel/preact';
import {
  getProperty, setProperty, getBody, setBody, getOperator, setOperatorAttr,
  getParameters, setParameters, parseParameterLines,
} from './extensions';

// An ISO duration or interval without quotes: read by Python as a name, the classic trap.
const UNQUOTED_ISO = /^(R\d*\/)?P(\d+[YMWD])*(T(\d+(\.\d+)?[HMS])+)?$/;
const HUMAN = ['bpmn:UserTask', 'bpmn:ManualTask'];
const TASKS = [
  'bpmn:Task', 'bpmn:UserTask', 'bpmn:ManualTask', 'bpmn:ScriptTask', 'bpmn:ServiceTask',
  'bpmn:BusinessRuleTask', 'bpmn:SendTask', 'bpmn:ReceiveTask', 'bpmn:CallActivity',
  'bpmn:SubProcess',
];

function quotedHint(value) {
  const text = (value || '').trim();
  return UNQUOTED_ISO.test(text) && text !== 'P'
    ? `This is read as Python: write "${text}" in quotes.`
    : null;
}

function options(list, empty) {
  const items = list.map((item) => (typeof item === 'string' ? { value: item, label: item } : item));
  return empty === undefined ? items : [{ value: '', label: empty }, ...items];
}

function withCurrent(items, current) {
  return current && !items.some((item) => item.value === current)
    ? [...items, { value: current, label: `${current} (unknown)` }]
    : items;
}

function laneName(element) {
  const bo = getBusinessObject(element);
  const lanes = bo.get('lanes') || [];
  const lane = lanes[0];
  return lane ? lane.get('name') || lane.get('id') : '';
}

/* --- entry components ----------------------------------------------------------------------- */

function PropertySelect(props) {
  const { element, id, label, name, choices, empty, description } = props;
  const injector = useService('injector');
  return h(SelectEntry, {
    element, id, label, description,
    getValue: () => getProperty(element, name),
    setValue: (value) => setProperty(injector, element, name, value),
    getOptions: () => withCurrent(options(choices, empty), getProperty(element, name)),
  });
}

function PropertyText(props) {
  const { element, id, label, name, description, validate } = props;
  const injector = useService('injector');
  const debounce = useService('debounceInput');
  return h(TextFieldEntry, {
    element, id, label, description, debounce, validate,
    getValue: () => getProperty(element, name),
    setValue: (value) => setProperty(injector, element, name, value),
  });
}

function BodyArea(props) {
  const { element, id, label, type, description, rows } = props;
  const injector = useService('injector');
  const debounce = useService('debounceInput');
  return h(TextAreaEntry, {
    element, id, label, description, debounce, rows: rows || 3, monospace: true,
    getValue: () => getBody(element, type),
    setValue: (value) => setBody(injector, element, type, value),
  });
}

function RoleOverride(props) {
  const { element, id, roles } = props;
  const fromLane = laneName(element);
  return h(PropertySelect, {
    element, id, name: 'role', label: 'Role',
    choices: roles,
    empty: fromLane ? `from the lane (${fromLane})` : 'from the lane (none: put it in a lane)',
    description: 'Whose queue the task lands in. Normally the lane decides; choose a role only to override it.',
  });
}

function FourEyes(props) {
  const { element, id } = props;
  const registry = useService('elementRegistry');
  const userTasks = registry.filter((e) => is(e, 'bpmn:UserTask') && e.id !== element.id).map((e) => e.id);
  return h(PropertyText, {
    element, id, name: 'fourEyes', label: 'Four-eyes: not by whoever completed',
    description: `User task ids, comma separated (here: ${userTasks.join(', ') || 'none'}).`,
    validate: (value) => {
      const unknown = (value || '').split(',').map((t) => t.trim()).filter((t) => t && !userTasks.includes(t));
      return unknown.length ? `Not a user task here: ${unknown.join(', ')}` : null;
    },
  });
}

function DueDate(props) {
  const { element, id } = props;
  return h(PropertyText, {
    element, id, name: 'dueDate', label: 'Due date',
    description: 'A Python expression: "P3D" (in quotes) for three days, business_hours_from_now(8), a date field…',
    validate: quotedHint,
  });
}

function LaneRole(props) {
  const { element, id, roles } = props;
  const modeling = useService('modeling');
  const current = getBusinessObject(element).get('name') || '';
  return h(SelectEntry, {
    element, id, label: 'Role of this lane',
    description: 'The tasks in this lane land in this role\'s queue.',
    getValue: () => getBusinessObject(element).get('name') || '',
    setValue: (value) => modeling.updateProperties(element, { name: value }),
    getOptions: () => withCurrent(options(roles, '(choose a role)'), current),
  });
}

function ScriptBody(props) {
  const { element, id } = props;
  const modeling = useService('modeling');
  const debounce = useService('debounceInput');
  return h(TextAreaEntry, {
    element, id, label: 'Script (Python)', debounce, rows: 8, monospace: true,
    description: 'Runs in the restricted environment: no imports; its variables become case data.',
    getValue: () => getBusinessObject(element).get('script') || '',
    setValue: (value) => modeling.updateProperties(element, { scriptFormat: 'python', script: value || undefined }),
  });
}

function Condition(props) {
  const { element, id } = props;
  const modeling = useService('modeling');
  const bpmnFactory = useService('bpmnFactory');
  const debounce = useService('debounceInput');
  return h(TextAreaEntry, {
    element, id, label: 'Condition (Python)', debounce, rows: 2, monospace: true,
    description: 'True takes this flow, e.g. decision == "approve".',
    getValue: () => {
      const expression = getBusinessObject(element).get('conditionExpression');
      return (expression && expression.get('body')) || '';
    },
    setValue: (value) => {
      const text = (value || '').trim();
      const expression = text ? bpmnFactory.create('bpmn:FormalExpression', { body: text }) : undefined;
      modeling.updateProperties(element, { conditionExpression: expression });
    },
  });
}

function DefaultFlow(props) {
  const { element, id } = props;
  const modeling = useService('modeling');
  const source = element.source;
  return h(CheckboxEntry, {
    element, id, label: 'Default flow (taken when no condition holds)',
    getValue: () => getBusinessObject(source).get('default') === getBusinessObject(element),
    setValue: (checked) => modeling.updateProperties(source, {
      default: checked ? getBusinessObject(element) : undefined,
    }),
  });
}

function Decision(props) {
  const { element, id, decisions } = props;
  const injector = useService('injector');
  const type = 'spiffworkflow:CalledDecisionId';
  return h(SelectEntry, {
    element, id, label: 'Decision table',
    getValue: () => getBody(element, type).trim(),
    setValue: (value) => setBody(injector, element, type, value),
    getOptions: () => withCurrent(options(decisions, '(choose a decision)'), getBody(element, type).trim()),
  });
}

function Operation(props) {
  const { element, id, operations } = props;
  const injector = useService('injector');
  const current = () => { const op = getOperator(element); return (op && op.get('id')) || ''; };
  return h(SelectEntry, {
    element, id, label: 'Operation',
    getValue: current,
    setValue: (value) => setOperatorAttr(injector, element, 'id', value),
    getOptions: () => withCurrent(options(operations, '(choose an operation)'), current()),
  });
}

function ResultVariable(props) {
  const { element, id } = props;
  const injector = useService('injector');
  const debounce = useService('debounceInput');
  return h(TextFieldEntry, {
    element, id, label: 'Result variable', debounce,
    getValue: () => { const op = getOperator(element); return (op && op.get('resultVariable')) || ''; },
    setValue: (value) => setOperatorAttr(injector, element, 'resultVariable', value),
  });
}

function Parameters(props) {
  const { element, id } = props;
  const injector = useService('injector');
  const debounce = useService('debounceInput');
  return h(TextAreaEntry, {
    element, id, label: 'Parameters', debounce, rows: 5, monospace: true,
    description: 'One per line: name = Python expression (strings in quotes).',
    validate: (value) => parseParameterLines(value).problems[0] || null,
    getValue: () => getParameters(element),
    setValue: (value) => setParameters(injector, element, value),
  });
}

function TimerHint(props) {
  const { element, id } = props;
  return h(DescriptionEntry, {
    element, id,
    value: 'Timer values are Python expressions: a duration is a string, "P10D" in quotes; a date can be computed, e.g. business_hours_from_now(8).',
  });
}

/* --- groups ----------------------------------------------------------------------------------- */

function isGatewayFlow(element) {
  return is(element, 'bpmn:SequenceFlow') && element.source
    && isAny(element.source, ['bpmn:ExclusiveGateway', 'bpmn:InclusiveGateway']);
}

function hasTimer(element) {
  const bo = getBusinessObject(element);
  return (bo.get('eventDefinitions') || []).some((d) => is(d, 'bpmn:TimerEventDefinition'));
}

function caseGroup(element, catalog) {
  const entries = [];
  if (isAny(element, HUMAN)) {
    entries.push(
      { id: 'casemgr-role', component: RoleOverride, roles: catalog.roles, isEdited: isSelectEntryEdited },
      {
        id: 'casemgr-form', component: PropertySelect, name: 'formKey', label: 'Form',
        choices: catalog.forms, empty: '(no form: the task has an empty form)', isEdited: isSelectEntryEdited,
      },
      { id: 'casemgr-due', component: DueDate, isEdited: isTextFieldEntryEdited },
    );
    if (is(element, 'bpmn:UserTask')) {
      entries.push({ id: 'casemgr-four-eyes', component: FourEyes, isEdited: isTextFieldEntryEdited });
    }
  } else if (is(element, 'bpmn:StartEvent') && !getBusinessObject(element).get('eventDefinitions').length) {
    entries.push({
      id: 'casemgr-start-form', component: PropertySelect, name: 'formKey', label: 'Start form',
      choices: catalog.forms, empty: '(none)', isEdited: isSelectEntryEdited,
      description: 'What a person fills in to start a case.',
    });
  } else if (is(element, 'bpmn:Lane')) {
    entries.push({ id: 'casemgr-lane-role', component: LaneRole, roles: catalog.roles, isEdited: isSelectEntryEdited });
  } else if (is(element, 'bpmn:ScriptTask')) {
    entries.push({ id: 'casemgr-script', component: ScriptBody, isEdited: isTextAreaEntryEdited });
  } else if (isGatewayFlow(element)) {
    entries.push(
      { id: 'casemgr-condition', component: Condition, isEdited: isTextAreaEntryEdited },
      { id: 'casemgr-default', component: DefaultFlow, isEdited: isCheckboxEntryEdited },
    );
  } else if (is(element, 'bpmn:BusinessRuleTask')) {
    entries.push({ id: 'casemgr-decision', component: Decision, decisions: catalog.decisions, isEdited: isSelectEntryEdited });
  } else if (is(element, 'bpmn:ServiceTask')) {
    entries.push(
      { id: 'casemgr-operation', component: Operation, operations: catalog.operations, isEdited: isSelectEntryEdited },
      { id: 'casemgr-result', component: ResultVariable, isEdited: isTextFieldEntryEdited },
      { id: 'casemgr-parameters', component: Parameters, isEdited: isTextAreaEntryEdited },
    );
  }
  if (isAny(element, ['bpmn:StartEvent', 'bpmn:IntermediateCatchEvent', 'bpmn:BoundaryEvent']) && hasTimer(element)) {
    entries.push({ id: 'casemgr-timer-hint', component: TimerHint });
  }
  return entries.length ? { id: 'casemgr', label: 'Case management', entries } : null;
}

function scriptsGroup(element) {
  if (!isAny(element, TASKS)) {
    return null;
  }
  return {
    id: 'casemgr-scripts',
    label: 'Scripts before and after',
    entries: [
      {
        id: 'casemgr-prescript', component: BodyArea, type: 'spiffworkflow:PreScript',
        label: 'Before the task (Python)', isEdited: isTextAreaEntryEdited,
      },
      {
        id: 'casemgr-postscript', component: BodyArea, type: 'spiffworkflow:PostScript',
        label: 'After the task (Python)', isEdited: isTextAreaEntryEdited,
        description: 'Runs when the task completes, with its data, e.g. count = len(items or []).',
      },
    ],
  };
}

export default class CaseManagementProvider {
  constructor(propertiesPanel, config) {
    this.catalog = Object.assign({ roles: [], forms: [], decisions: [], operations: [] }, config || {});
    propertiesPanel.registerProvider(400, this);
  }

  getGroups(element) {
    return (groups) => {
      const ours = [caseGroup(element, this.catalog), scriptsGroup(element)].filter(Boolean);
      const general = groups.findIndex((group) => group.id === 'general');
      groups.splice(general + 1, 0, ...ours);
      return groups;
    };
  }
}

CaseManagementProvider.$inject = ['propertiesPanel', 'config.casemgr'];
