import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { describeProblem, type Result, type SubmitBody } from '../lib/api';
import { shortId } from '../lib/format';
import {
  buildRequestBody,
  fieldsFromSchema,
  initialValues,
  mapErrors,
  type FieldSpec,
  type FormValue,
  type FormValues,
  type MappedErrors,
} from '../lib/form';
import { PRIORITIES, type Task, type TaskType } from '../lib/types';
import { Icon } from './Icon';

interface Props {
  taskTypes: TaskType[];
  onSubmit: (body: SubmitBody) => Promise<Result<Task>>;
  /** Seconds left of the rate-limit countdown; 0 when none runs. */
  limitedS: number;
  onOpen: (taskId: string) => void;
}

const NO_ERRORS: MappedErrors = { top: {}, fields: {}, form: [] };

const fieldId = (type: string, name: string) => `field-${type}-${name}`;

export function SubmitForm({ taskTypes, onSubmit, limitedS, onOpen }: Props) {
  const [taskTypeName, setTaskTypeName] = useState(taskTypes[0]?.task_type ?? '');
  const [valuesByType, setValuesByType] = useState<Record<string, FormValues>>({});
  const [priority, setPriority] = useState<string>('normal');
  const [errors, setErrors] = useState<MappedErrors>(NO_ERRORS);
  const [submitting, setSubmitting] = useState(false);
  const [queued, setQueued] = useState<Task | null>(null);
  const formRef = useRef<HTMLFormElement>(null);
  const focusError = useRef(false);
  // Once the errors are on the page, focus the first field in error, else the summary.
  useEffect(() => {
    if (!focusError.current) return;
    focusError.current = false;
    const target =
      formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"]') ??
      formRef.current?.querySelector<HTMLElement>('.form-errors');
    target?.focus();
  }, [errors]);

  const taskType = taskTypes.find((t) => t.task_type === taskTypeName) ?? taskTypes[0];
  const fields = useMemo(
    () => (taskType ? fieldsFromSchema(taskType.parameters_schema) : []),
    [taskType],
  );
  const values = (taskType && valuesByType[taskType.task_type]) || initialValues(fields);

  if (!taskType) return <p>No task types are registered.</p>;
  const type = taskType.task_type;

  const setValue = (name: string, value: FormValue) => {
    setValuesByType((all) => ({ ...all, [type]: { ...values, [name]: value } }));
  };

  const chooseType = (name: string) => {
    setTaskTypeName(name);
    setErrors(NO_ERRORS);
  };

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (submitting || limitedS > 0) return;
    setSubmitting(true);
    setQueued(null);
    const result = await onSubmit(buildRequestBody(type, fields, values, priority));
    setSubmitting(false);
    if (result.ok) {
      setErrors(NO_ERRORS);
      setQueued(result.data);
      return;
    }
    if (result.status === 429) {
      // The countdown next to the button (and in the status bar) says it all.
      setErrors(NO_ERRORS);
      return;
    }
    const mapped = mapErrors(result.problem.errors ?? [], fields, values);
    const anyField = Object.keys(mapped.fields).length + Object.keys(mapped.top).length > 0;
    if (!anyField && mapped.form.length === 0) mapped.form.push(describeProblem(result.problem));
    setErrors(mapped);
    focusError.current = true;
  }


  const limited = limitedS > 0;
  const typeErrors = errors.top.task_type ?? [];
  const priorityErrors = errors.top.priority ?? [];

  return (
    <form ref={formRef} className="submit-form" onSubmit={submit} noValidate aria-labelledby="submit-heading">
      <h2 id="submit-heading">New task</h2>

      {errors.form.length > 0 && (
        <div className="form-errors" role="alert" tabIndex={-1}>
          <ul>
            {errors.form.map((message) => (
              <li key={message}>{message}</li>
            ))}
          </ul>
        </div>
      )}

      <div className="field">
        <label htmlFor="field-task-type">Task type</label>
        <select
          id="field-task-type"
          value={type}
          onChange={(e) => chooseType(e.target.value)}
          aria-describedby="task-type-hint task-type-errors"
          aria-invalid={typeErrors.length > 0}
        >
          {taskTypes.map((t) => (
            <option key={t.task_type} value={t.task_type}>
              {t.task_type}
            </option>
          ))}
        </select>
        <p className="hint" id="task-type-hint">
          {taskType.description} Base duration{' '}
          <span className="nowrap">
            {taskType.duration_s.min}–{taskType.duration_s.max} s
          </span>
          .
        </p>
        <FieldErrors id="task-type-errors" messages={typeErrors} />
      </div>

      {fields.map((field) => (
        <Field
          key={`${type}.${field.name}`}
          id={fieldId(type, field.name)}
          field={field}
          value={values[field.name] ?? ''}
          onChange={(value) => setValue(field.name, value)}
          errors={errors.fields[field.name] ?? []}
        />
      ))}

      <div className="field">
        <label htmlFor="field-priority">Priority</label>
        <select
          id="field-priority"
          value={priority}
          onChange={(e) => setPriority(e.target.value)}
          aria-describedby="priority-hint priority-errors"
          aria-invalid={priorityErrors.length > 0}
        >
          {PRIORITIES.map((p) => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
        <p className="hint" id="priority-hint">
          High runs before normal, normal before low. Default: normal.
        </p>
        <FieldErrors id="priority-errors" messages={priorityErrors} />
      </div>

      <div className="form-actions">
        <button
          type="submit"
          className="primary"
          disabled={submitting || limited}
          aria-describedby={limited ? 'submit-limited' : undefined}
        >
          {submitting ? 'Submitting…' : 'Submit task'}
        </button>
        {limited && (
          <span id="submit-limited" className="limited-note" data-testid="submit-countdown">
            Rate limit reached: wait <span className="tabular">{limitedS} s</span>
          </span>
        )}
      </div>

      {queued && (
        <p className="flash" data-task-id={queued.task_id}>
          Queued {queued.task_type} task{' '}
          <button type="button" className="link mono" onClick={() => onOpen(queued.task_id)}>
            {shortId(queued.task_id)}
          </button>
          .
        </p>
      )}
    </form>
  );
}

function FieldErrors({ id, messages }: { id: string; messages: string[] }) {
  // Always rendered, so aria-describedby never points at nothing.
  return (
    <ul className="field-errors" id={id}>
      {messages.map((message) => (
        <li key={message}>
          <Icon name="warning" /> {message}
        </li>
      ))}
    </ul>
  );
}

interface FieldProps {
  id: string;
  field: FieldSpec;
  value: FormValue;
  onChange: (value: FormValue) => void;
  errors: string[];
}

function Field({ id, field, value, onChange, errors }: FieldProps) {
  const hintId = `${id}-hint`;
  const errorId = `${id}-errors`;
  const common = {
    id,
    name: field.name,
    'aria-describedby': `${hintId} ${errorId}`,
    'aria-invalid': errors.length > 0,
    'aria-required': field.required,
  };
  const text = typeof value === 'string' ? value : '';
  const onText = (e: { target: { value: string } }) => onChange(e.target.value);
  const defaultNote =
    field.default !== undefined && field.default !== null ? `Default: ${formatDefault(field.default)}.` : '';
  const hint = [field.hint && `${capitalize(field.hint)}.`, field.description, field.itemDescription && `Each: ${field.itemDescription}.`, defaultNote]
    .filter(Boolean)
    .join(' ');

  let control;
  switch (field.kind) {
    case 'integer':
    case 'number':
      control = (
        <input
          {...common}
          type="number"
          inputMode={field.kind === 'integer' ? 'numeric' : 'decimal'}
          step={field.kind === 'integer' ? 1 : 'any'}
          min={field.minimum}
          max={field.maximum}
          value={text}
          placeholder={field.defaultText}
          onChange={onText}
        />
      );
      break;
    case 'enum':
      control = (
        <select {...common} value={text} onChange={onText}>
          {field.default === undefined && <option value="">{field.required ? 'Choose…' : '(not set)'}</option>}
          {field.options?.map((option) => (
            <option key={String(option)} value={String(option)}>
              {String(option)}
            </option>
          ))}
        </select>
      );
      break;
    case 'boolean':
      control = (
        <input {...common} type="checkbox" checked={value === true} onChange={(e) => onChange(e.target.checked)} />
      );
      break;
    case 'number-list':
      control = (
        <input
          {...common}
          type="text"
          inputMode="decimal"
          autoComplete="off"
          spellCheck={false}
          placeholder="1, 2, 3.5"
          value={text}
          onChange={onText}
        />
      );
      break;
    case 'string-list':
      control = (
        <textarea
          {...common}
          rows={3}
          spellCheck={false}
          autoComplete="off"
          placeholder={field.separator === 'any' ? 'ada@example.com, grace@example.com' : 'one item per line'}
          value={text}
          onChange={onText}
        />
      );
      break;
    case 'text':
      control = <textarea {...common} rows={3} value={text} onChange={onText} />;
      break;
    case 'json':
      control = <textarea {...common} rows={3} className="mono" spellCheck={false} value={text} onChange={onText} />;
      break;
    default:
      control = <input {...common} type="text" value={text} onChange={onText} />;
  }

  return (
    <div className={`field${field.kind === 'boolean' ? ' field-checkbox' : ''}${errors.length ? ' has-error' : ''}`}>
      <label htmlFor={id}>
        {field.label}
        {!field.required && <span className="optional"> (optional)</span>}
      </label>
      {control}
      <p className="hint" id={hintId}>
        {hint}
      </p>
      <FieldErrors id={errorId} messages={errors} />
    </div>
  );
}

function formatDefault(value: unknown): string {
  if (Array.isArray(value)) return value.join(', ');
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
