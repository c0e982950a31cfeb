/**
 * The submit form, generated from each task type's JSON Schema (`GET /task-types`):
 * `fieldsFromSchema` describes the fields, `buildRequestBody` turns what was typed into the
 * body of `POST /tasks`, and `mapErrors` puts a problem's `errors` next to their fields.
 *
 * Validation is the server's: values are sent as typed (a word in a list of numbers is sent
 * as a string), so every message the user sees is the one the API gives.
 */
import type { FieldError, JsonSchema } from './types';

export type FieldKind =
  | 'integer'
  | 'number'
  | 'string'
  | 'text'
  | 'enum'
  | 'boolean'
  | 'number-list'
  | 'string-list'
  | 'json';

export interface FieldSpec {
  name: string;
  label: string;
  kind: FieldKind;
  required: boolean;
  description?: string;
  /** The schema's default, if any. */
  default?: unknown;
  /** The default as the input shows it ('' when none). */
  defaultText: string;
  /** Human summary of the constraints, shown under the input. */
  hint: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  /** Choices of an `enum` field. */
  options?: Array<string | number>;
  /** How a list's items are separated in the text box. */
  separator?: 'lines' | 'any';
  /** Description of a list's items (e.g. what an e-mail address must look like). */
  itemDescription?: string;
  /** An item's kind for lists. */
  itemKind?: 'number' | 'integer' | 'string';
}

export type FormValue = string | boolean;
export type FormValues = Record<string, FormValue>;

type Defs = Record<string, JsonSchema>;

function resolve(schema: JsonSchema, defs: Defs, depth = 0): JsonSchema {
  if (depth > 10) return schema;
  if (schema.$ref) {
    const name = schema.$ref.replace(/^#\/(\$defs|definitions)\//, '');
    const target = defs[name];
    if (target) {
      const { $ref: _ref, ...rest } = schema;
      return resolve({ ...target, ...rest }, defs, depth + 1);
    }
  }
  if (schema.allOf && schema.allOf.length === 1) {
    const { allOf, ...rest } = schema;
    return resolve({ ...resolve(allOf[0]!, defs, depth + 1), ...rest }, defs, depth + 1);
  }
  const union = schema.anyOf ?? schema.oneOf;
  if (union) {
    // Optional[X] comes as anyOf [X, {type: null}]: the field is X, and may be left empty.
    const options = union.map((s) => resolve(s, defs, depth + 1)).filter((s) => s.type !== 'null');
    if (options.length === 1) {
      const { anyOf: _a, oneOf: _o, ...rest } = schema;
      return { ...options[0]!, ...rest };
    }
    // Literal unions (const each) become one enum.
    if (options.length > 1 && options.every((s) => s.const !== undefined || s.enum)) {
      const { anyOf: _a, oneOf: _o, ...rest } = schema;
      return { ...rest, enum: options.flatMap((s) => (s.enum ? s.enum : [s.const])) };
    }
  }
  if (schema.const !== undefined && !schema.enum) return { ...schema, enum: [schema.const] };
  return schema;
}

function typeOf(schema: JsonSchema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((t) => t !== 'null');
  return schema.type;
}

export function humanize(name: string): string {
  const words = name.replace(/[_-]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const range = (min: number | undefined, max: number | undefined, unit: string): string => {
  if (min !== undefined && max !== undefined) return `${min}–${max} ${unit}`;
  if (min !== undefined) return `at least ${min} ${unit}`;
  if (max !== undefined) return `at most ${max} ${unit}`;
  return '';
};

const plural = (word: string, n: number | undefined) => (n === 1 ? word : `${word}s`);

function isEmailLike(item: JsonSchema): boolean {
  return item.format === 'email' || (item.pattern ?? '').includes('@');
}

function describeField(name: string, raw: JsonSchema, required: boolean, defs: Defs): FieldSpec {
  const schema = resolve(raw, defs);
  const base = {
    name,
    label: schema.title ?? humanize(name),
    required,
    ...(schema.description ? { description: schema.description } : {}),
    ...('default' in schema ? { default: schema.default } : {}),
  };
  const min = schema.minimum ?? schema.exclusiveMinimum;
  const max = schema.maximum ?? schema.exclusiveMaximum;
  const type = typeOf(schema);
  const bounds = {
    ...(min !== undefined ? { minimum: min } : {}),
    ...(max !== undefined ? { maximum: max } : {}),
  };

  if (schema.enum && schema.enum.length > 0) {
    const options = schema.enum.filter(
      (v): v is string | number => typeof v === 'string' || typeof v === 'number',
    );
    return {
      ...base,
      kind: 'enum',
      options,
      defaultText: base.default === undefined ? '' : String(base.default),
      hint: `one of ${options.join(', ')}`,
    };
  }
  if (type === 'integer' || type === 'number') {
    const kindWord = type === 'integer' ? 'a whole number' : 'a number';
    const r = range(min, max, '').trim();
    return {
      ...base,
      ...bounds,
      kind: type,
      defaultText: typeof base.default === 'number' ? String(base.default) : '',
      hint: r ? `${kindWord}, ${r}` : kindWord,
    };
  }
  if (type === 'boolean') {
    return { ...base, kind: 'boolean', defaultText: base.default === true ? 'true' : '', hint: '' };
  }
  if (type === 'string') {
    const long = schema.maxLength === undefined || schema.maxLength > 200;
    return {
      ...base,
      kind: long ? 'text' : 'string',
      ...(schema.minLength !== undefined ? { minLength: schema.minLength } : {}),
      ...(schema.maxLength !== undefined ? { maxLength: schema.maxLength } : {}),
      ...(schema.pattern !== undefined ? { pattern: schema.pattern } : {}),
      defaultText: typeof base.default === 'string' ? base.default : '',
      hint: range(schema.minLength, schema.maxLength, 'characters'),
    };
  }
  if (type === 'array' && schema.items) {
    const item = resolve(schema.items, defs);
    const itemType = typeOf(item);
    const counts = {
      ...(schema.minItems !== undefined ? { minItems: schema.minItems } : {}),
      ...(schema.maxItems !== undefined ? { maxItems: schema.maxItems } : {}),
    };
    const defaultList = Array.isArray(base.default) ? base.default : null;
    if ((itemType === 'number' || itemType === 'integer') && !item.enum) {
      const r = range(schema.minItems, schema.maxItems, plural(itemType, schema.maxItems));
      return {
        ...base,
        ...counts,
        kind: 'number-list',
        itemKind: itemType,
        separator: 'any',
        defaultText: defaultList ? defaultList.join(', ') : '',
        hint: `${r || `${itemType}s`}, separated by commas or spaces`,
      };
    }
    if (itemType === 'string' && !item.enum) {
      const email = isEmailLike(item);
      const noun = email ? 'e-mail address' : 'item';
      const nouns = email ? 'e-mail addresses' : 'items';
      const r = range(schema.minItems, schema.maxItems, schema.maxItems === 1 ? noun : nouns);
      return {
        ...base,
        ...counts,
        kind: 'string-list',
        itemKind: 'string',
        separator: email ? 'any' : 'lines',
        ...(item.pattern !== undefined ? { pattern: item.pattern } : {}),
        ...(item.description ? { itemDescription: item.description } : {}),
        defaultText: defaultList ? defaultList.join('\n') : '',
        hint: `${r || nouns}, ${email ? 'separated by commas, spaces or new lines' : 'one per line'}`,
      };
    }
  }
  // Anything else (objects, lists of objects, unions): typed as JSON.
  return {
    ...base,
    kind: 'json',
    defaultText: base.default === undefined ? '' : JSON.stringify(base.default),
    hint: 'JSON',
  };
}

/** Describes the form fields of a task type's parameters schema, in the schema's order. */
export function fieldsFromSchema(schema: JsonSchema): FieldSpec[] {
  const defs: Defs = { ...(schema.definitions ?? {}), ...(schema.$defs ?? {}) };
  const root = resolve(schema, defs);
  const required = new Set(root.required ?? []);
  return Object.entries(root.properties ?? {}).map(([name, prop]) =>
    describeField(name, prop, required.has(name), defs),
  );
}

export function initialValues(fields: FieldSpec[]): FormValues {
  const values: FormValues = {};
  for (const field of fields) {
    values[field.name] = field.kind === 'boolean' ? field.default === true : field.defaultText;
  }
  return values;
}

/** Splits a list field's text into its items (empty ones dropped). */
export function splitList(text: string, separator: 'lines' | 'any'): string[] {
  const pattern = separator === 'lines' ? /\r?\n/ : /[\s,;]+/;
  return text
    .split(pattern)
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

const JSON_NUMBER = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A number if the text is one, else the text itself (so the server names what is wrong). */
export function toNumber(text: string): number | string {
  const trimmed = text.trim();
  if (!JSON_NUMBER.test(trimmed)) return trimmed;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : trimmed;
}

function fieldValue(field: FieldSpec, value: FormValue | undefined): { value?: unknown } {
  if (field.kind === 'boolean') return { value: value === true };
  const text = typeof value === 'string' ? value : '';
  switch (field.kind) {
    case 'integer':
    case 'number':
      return text.trim() === '' ? {} : { value: toNumber(text) };
    case 'enum': {
      if (text === '') return {};
      const option = field.options?.find((o) => String(o) === text);
      return { value: option ?? text };
    }
    case 'string':
    case 'text':
      // An empty required string is sent, so the answer says how long it must be.
      return text === '' && !field.required ? {} : { value: text };
    case 'number-list': {
      const items = splitList(text, 'any');
      if (items.length === 0 && !field.required) return {};
      return { value: items.map(toNumber) };
    }
    case 'string-list': {
      const items = splitList(text, field.separator ?? 'lines');
      if (items.length === 0 && !field.required) return {};
      return { value: items };
    }
    case 'json': {
      if (text.trim() === '') return {};
      try {
        return { value: JSON.parse(text) as unknown };
      } catch {
        return { value: text };
      }
    }
  }
}

/** The `parameters` object: empty optional fields are left out, so their defaults apply. */
export function buildParameters(fields: FieldSpec[], values: FormValues): Record<string, unknown> {
  const parameters: Record<string, unknown> = {};
  for (const field of fields) {
    const result = fieldValue(field, values[field.name]);
    if ('value' in result) parameters[field.name] = result.value;
  }
  return parameters;
}

export function buildRequestBody(
  taskType: string,
  fields: FieldSpec[],
  values: FormValues,
  priority: string,
): { task_type: string; parameters: Record<string, unknown>; priority: string } {
  return { task_type: taskType, parameters: buildParameters(fields, values), priority };
}

export interface MappedErrors {
  /** Errors of `task_type` and `priority`. */
  top: Record<string, string[]>;
  /** Errors of each parameter field, by field name. */
  fields: Record<string, string[]>;
  /** Errors that belong to no field. */
  form: string[];
}

function friendly(error: FieldError, schemaDescription: string | undefined): string {
  if (error.type === 'string_pattern_mismatch' && schemaDescription) {
    return `should be ${schemaDescription}`;
  }
  return error.detail;
}

/**
 * Sorts a problem's `errors` to the fields they belong to: `parameters.<name>[.<index>...]`
 * goes to field `<name>` (with the item named), `task_type` and `priority` to theirs.
 */
export function mapErrors(
  errors: FieldError[],
  fields: FieldSpec[],
  values: FormValues = {},
): MappedErrors {
  const mapped: MappedErrors = { top: {}, fields: {}, form: [] };
  const byName = new Map(fields.map((f) => [f.name, f]));
  const push = (bucket: Record<string, string[]>, key: string, message: string) => {
    (bucket[key] ??= []).push(message);
  };
  for (const error of errors) {
    const path = error.field.split('.');
    const [head, name, ...rest] = path;
    if (path.length === 1 && (head === 'task_type' || head === 'priority')) {
      push(mapped.top, head, error.detail);
      continue;
    }
    const field = head === 'parameters' && name !== undefined ? byName.get(name) : undefined;
    if (!field) {
      mapped.form.push(`${error.field}: ${error.detail}`);
      continue;
    }
    const isList = field.kind === 'number-list' || field.kind === 'string-list';
    if (rest.length === 0) {
      push(mapped.fields, field.name, friendly(error, field.description));
    } else if (isList && /^\d+$/.test(rest[0]!)) {
      const index = Number(rest[0]);
      const text = values[field.name];
      const items = typeof text === 'string' ? splitList(text, field.separator ?? 'any') : [];
      const item = items[index];
      const which = item === undefined ? `Item ${index + 1}` : `Item ${index + 1} (“${item}”)`;
      push(mapped.fields, field.name, `${which}: ${friendly(error, field.itemDescription)}`);
    } else {
      push(mapped.fields, field.name, `${rest.join('.')}: ${error.detail}`);
    }
  }
  return mapped;
}
