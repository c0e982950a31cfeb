/** Shapes of the Taskwire API (see SPEC.md sections 1, 2 and 6). */

export const STATUSES = ['queued', 'processing', 'completed', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof STATUSES)[number];

export const PRIORITIES = ['low', 'normal', 'high'] as const;
export type Priority = (typeof PRIORITIES)[number];

export interface TaskError {
  type: string;
  message: string;
}

export interface Task {
  task_id: string;
  task_type: string;
  status: TaskStatus;
  priority: Priority;
  parameters: Record<string, unknown>;
  progress: number;
  eta_s: number | null;
  result: unknown;
  error: TaskError | null;
  attempt: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** A JSON Schema, as far as the form builder reads it. */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  definitions?: Record<string, JsonSchema>;
}

export interface TaskType {
  task_type: string;
  description: string;
  parameters_schema: JsonSchema;
  duration_s: { min: number; max: number };
}

export interface FieldError {
  in?: string;
  field: string;
  type?: string;
  detail: string;
}

/** RFC 9457 problem details, as every Taskwire error answer carries them. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  request_id?: string;
  errors?: FieldError[];
}

export const TASK_EVENTS = [
  'task.queued',
  'task.processing',
  'task.progress',
  'task.completed',
  'task.failed',
  'task.cancelled',
  'task.expired',
] as const;
export type TaskEventName = (typeof TASK_EVENTS)[number];

/** One Server-Sent Event from `/events`, parsed. */
export type FeedEvent =
  | { id: number; name: TaskEventName; task: Task }
  | { id: number | null; name: 'resync' };
