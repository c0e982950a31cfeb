import { describe, expect, it } from 'vitest';
import {
  buildRequestBody,
  fieldsFromSchema,
  initialValues,
  mapErrors,
  splitList,
  toNumber,
  type FieldSpec,
} from './form';
import type { JsonSchema } from './types';

// The schemas exactly as GET /task-types gives them (pydantic's model_json_schema()).
const EMAIL = '^[^@ \\x00-\\x1f\\x7f-\\x9f]+@[^@ \\x00-\\x1f\\x7f-\\x9f]+\\.[^@ \\x00-\\x1f\\x7f-\\x9f]+$';
const SCHEMAS: Record<string, JsonSchema> = {
  compute_sum: {
    additionalProperties: false,
    properties: {
      numbers: { items: { type: 'number' }, maxItems: 10000, minItems: 1, title: 'Numbers', type: 'array' },
    },
    required: ['numbers'],
    title: 'ComputeSum',
    type: 'object',
  } as JsonSchema,
  generate_report: {
    properties: {
      title: { maxLength: 200, minLength: 1, title: 'Title', type: 'string' },
      sections: { default: 3, maximum: 20, minimum: 1, title: 'Sections', type: 'integer' },
    },
    required: ['title'],
    type: 'object',
  },
  batch_email: {
    properties: {
      recipients: {
        items: {
          description: 'local@domain.tld, without spaces or control characters',
          maxLength: 254,
          pattern: EMAIL,
          type: 'string',
        },
        maxItems: 100,
        minItems: 1,
        title: 'Recipients',
        type: 'array',
      },
      subject: { maxLength: 200, minLength: 1, title: 'Subject', type: 'string' },
    },
    required: ['recipients', 'subject'],
    type: 'object',
  },
  image_processing: {
    properties: {
      count: { maximum: 50, minimum: 1, title: 'Count', type: 'integer' },
      operation: { enum: ['resize', 'convert', 'thumbnail'], title: 'Operation', type: 'string' },
    },
    required: ['count', 'operation'],
    type: 'object',
  },
  find_longest_consecutive_letters: {
    properties: { string: { maxLength: 100000, minLength: 1, title: 'String', type: 'string' } },
    required: ['string'],
    type: 'object',
  },
  unstable_task: {
    properties: {
      failure_rate: { default: 0.5, maximum: 1, minimum: 0, title: 'Failure Rate', type: 'number' },
    },
    type: 'object',
  },
};

const field = (fields: FieldSpec[], name: string) => fields.find((f) => f.name === name)!;

describe('fieldsFromSchema', () => {
  it('describes a list of numbers', () => {
    const [numbers] = fieldsFromSchema(SCHEMAS.compute_sum!);
    expect(numbers).toMatchObject({
      name: 'numbers',
      label: 'Numbers',
      kind: 'number-list',
      required: true,
      minItems: 1,
      maxItems: 10000,
      itemKind: 'number',
      defaultText: '',
      hint: '1–10000 numbers, separated by commas or spaces',
    });
  });

  it('describes strings with lengths and integers with bounds and defaults', () => {
    const fields = fieldsFromSchema(SCHEMAS.generate_report!);
    expect(fields.map((f) => f.name)).toEqual(['title', 'sections']);
    expect(field(fields, 'title')).toMatchObject({
      kind: 'string',
      required: true,
      minLength: 1,
      maxLength: 200,
      hint: '1–200 characters',
    });
    expect(field(fields, 'sections')).toMatchObject({
      kind: 'integer',
      required: false,
      minimum: 1,
      maximum: 20,
      default: 3,
      defaultText: '3',
      hint: 'a whole number, 1–20',
    });
  });

  it('describes a list of e-mail addresses, with the pattern and what it means', () => {
    const recipients = field(fieldsFromSchema(SCHEMAS.batch_email!), 'recipients');
    expect(recipients).toMatchObject({
      kind: 'string-list',
      separator: 'any',
      pattern: EMAIL,
      itemDescription: 'local@domain.tld, without spaces or control characters',
      hint: '1–100 e-mail addresses, separated by commas, spaces or new lines',
    });
  });

  it('describes an enum as a choice, a long string as a text area, a number with a default', () => {
    expect(field(fieldsFromSchema(SCHEMAS.image_processing!), 'operation')).toMatchObject({
      kind: 'enum',
      options: ['resize', 'convert', 'thumbnail'],
      defaultText: '',
    });
    expect(field(fieldsFromSchema(SCHEMAS.find_longest_consecutive_letters!), 'string').kind).toBe('text');
    expect(field(fieldsFromSchema(SCHEMAS.unstable_task!), 'failure_rate')).toMatchObject({
      kind: 'number',
      label: 'Failure Rate',
      required: false,
      defaultText: '0.5',
      hint: 'a number, 0–1',
    });
  });

  it('follows $ref, Optional (anyOf with null), Literal unions, booleans; falls back to JSON', () => {
    const fields = fieldsFromSchema({
      type: 'object',
      $defs: { Mode: { enum: ['fast', 'slow'], type: 'string', title: 'Mode' } },
      properties: {
        mode: { $ref: '#/$defs/Mode', default: 'slow' },
        limit: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'null' }], default: null, title: 'Limit' },
        kind: { anyOf: [{ const: 'a' }, { const: 'b' }] },
        dry_run: { type: 'boolean', default: true },
        options: { type: 'object' },
        tags: { type: 'array', items: { type: 'string' } },
      },
    });
    expect(field(fields, 'mode')).toMatchObject({ kind: 'enum', options: ['fast', 'slow'], defaultText: 'slow' });
    expect(field(fields, 'limit')).toMatchObject({ kind: 'integer', minimum: 0, defaultText: '' });
    expect(field(fields, 'kind')).toMatchObject({ kind: 'enum', options: ['a', 'b'] });
    expect(field(fields, 'dry_run')).toMatchObject({ kind: 'boolean', label: 'Dry run' });
    expect(field(fields, 'options').kind).toBe('json');
    expect(field(fields, 'tags')).toMatchObject({ kind: 'string-list', separator: 'lines' });
    expect(initialValues(fields)).toEqual({ mode: 'slow', limit: '', kind: '', dry_run: true, options: '', tags: '' });
  });
});

describe('form values -> request body', () => {
  it('builds a compute_sum body from typed numbers', () => {
    const fields = fieldsFromSchema(SCHEMAS.compute_sum!);
    expect(buildRequestBody('compute_sum', fields, { numbers: '1, 2 3.5\n-4e2' }, 'high')).toEqual({
      task_type: 'compute_sum',
      parameters: { numbers: [1, 2, 3.5, -400] },
      priority: 'high',
    });
  });

  it('sends what is not a number as typed, so the server names the bad item', () => {
    const fields = fieldsFromSchema(SCHEMAS.compute_sum!);
    expect(buildRequestBody('compute_sum', fields, { numbers: 'x, 2, 0x10' }, 'normal').parameters).toEqual({
      numbers: ['x', 2, '0x10'],
    });
    expect(toNumber('Infinity')).toBe('Infinity');
  });

  it('sends an empty required list as [] (so the answer says "at least 1")', () => {
    const fields = fieldsFromSchema(SCHEMAS.compute_sum!);
    expect(buildRequestBody('compute_sum', fields, { numbers: ' , ' }, 'normal').parameters).toEqual({ numbers: [] });
  });

  it('leaves out empty optional fields so their defaults apply', () => {
    const fields = fieldsFromSchema(SCHEMAS.generate_report!);
    expect(buildRequestBody('generate_report', fields, { title: 'Q3', sections: '' }, 'low').parameters).toEqual({
      title: 'Q3',
    });
    expect(buildRequestBody('generate_report', fields, { title: '', sections: '5' }, 'low').parameters).toEqual({
      title: '',
      sections: 5,
    });
    const unstable = fieldsFromSchema(SCHEMAS.unstable_task!);
    expect(buildRequestBody('unstable_task', unstable, initialValues(unstable), 'normal').parameters).toEqual({
      failure_rate: 0.5,
    });
  });

  it('splits e-mail addresses on commas, spaces and lines; enums keep their type', () => {
    const fields = fieldsFromSchema(SCHEMAS.batch_email!);
    expect(
      buildRequestBody('batch_email', fields, { recipients: 'a@x.io, b@y.io\n\nc@z.io', subject: 'Hi' }, 'normal')
        .parameters,
    ).toEqual({ recipients: ['a@x.io', 'b@y.io', 'c@z.io'], subject: 'Hi' });
    const image = fieldsFromSchema(SCHEMAS.image_processing!);
    expect(buildRequestBody('image_processing', image, { count: '3', operation: 'resize' }, 'normal').parameters).toEqual(
      { count: 3, operation: 'resize' },
    );
    expect(buildRequestBody('image_processing', image, { count: '', operation: '' }, 'normal').parameters).toEqual({});
  });

  it('parses JSON fields, sending text that is not JSON as is; booleans as booleans', () => {
    const fields = fieldsFromSchema({
      type: 'object',
      properties: { options: { type: 'object' }, dry_run: { type: 'boolean' } },
    });
    expect(buildRequestBody('x', fields, { options: '{"a": 1}', dry_run: false }, 'normal').parameters).toEqual({
      options: { a: 1 },
      dry_run: false,
    });
    expect(buildRequestBody('x', fields, { options: '{oops', dry_run: true }, 'normal').parameters).toEqual({
      options: '{oops',
      dry_run: true,
    });
  });

  it('splits lists', () => {
    expect(splitList(' a \n\n b,c ', 'lines')).toEqual(['a', 'b,c']);
    expect(splitList('1,2;3 4\t5', 'any')).toEqual(['1', '2', '3', '4', '5']);
  });
});

describe('mapErrors', () => {
  it('maps parameters.<name> and parameters.<name>.<index> to the field, naming the item', () => {
    const fields = fieldsFromSchema(SCHEMAS.batch_email!);
    const mapped = mapErrors(
      [
        { field: 'parameters.recipients.1', type: 'string_pattern_mismatch', detail: "String should match pattern '^…$'" },
        { field: 'parameters.subject', type: 'string_too_short', detail: 'String should have at least 1 character' },
        { field: 'priority', type: 'literal_error', detail: "Input should be 'low', 'normal' or 'high'" },
        { field: 'parameters.bogus', type: 'extra_forbidden', detail: 'Extra inputs are not permitted' },
        { field: 'parameters', type: 'missing', detail: 'Field required' },
      ],
      fields,
      { recipients: 'ok@x.io, not-an-email', subject: '' },
    );
    expect(mapped.fields).toEqual({
      recipients: ['Item 2 (“not-an-email”): should be local@domain.tld, without spaces or control characters'],
      subject: ['String should have at least 1 character'],
    });
    expect(mapped.top).toEqual({ priority: ["Input should be 'low', 'normal' or 'high'"] });
    expect(mapped.form).toEqual([
      'parameters.bogus: Extra inputs are not permitted',
      'parameters: Field required',
    ]);
  });

  it('maps numbers errors with and without an index, and task_type', () => {
    const fields = fieldsFromSchema(SCHEMAS.compute_sum!);
    const mapped = mapErrors(
      [
        { field: 'parameters.numbers', type: 'too_short', detail: 'List should have at least 1 item after validation, not 0' },
        { field: 'parameters.numbers.0', type: 'float_type', detail: 'Input should be a valid number' },
        { field: 'parameters.numbers.7', type: 'float_type', detail: 'Input should be a valid number' },
        { field: 'task_type', type: 'union_tag_invalid', detail: 'task_type must be one of: …' },
      ],
      fields,
      { numbers: 'x' },
    );
    expect(mapped.fields.numbers).toEqual([
      'List should have at least 1 item after validation, not 0',
      'Item 1 (“x”): Input should be a valid number',
      'Item 8: Input should be a valid number',
    ]);
    expect(mapped.top.task_type).toEqual(['task_type must be one of: …']);
  });
});
