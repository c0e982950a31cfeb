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
  /** The name of the API key that submitted it; only when the service asks for keys. */
  owner?: string;
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

/** `GET /whoami`: the key a request carries. With keys off: no name, and admin. */
export interface Identity {
  keys: boolean;
  name: string | null;
  admin: boolean;
}

export const OUTCOMES = ['completed', 'failed', 'cancelled'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Run times of one task type in one interval, in seconds (a histogram bucket's upper bound). */
export interface RunTimes {
  count: number;
  p50: number | null;
  p95: number | null;
}

export interface StatsInterval {
  /** RFC 3339, the interval's start. */
  start: string;
  /** Tasks that ended in the interval, by outcome. */
  finished: Record<Outcome, number>;
  /** Tasks waiting, and processing, at the interval's end (sampled); null before any sample. */
  queued: number | null;
  processing: number | null;
  /** By task type: completed and failed tasks' run times. */
  run_time_s: Record<string, RunTimes>;
}

/** `GET /stats`: counts now, and the last 15 minutes, oldest interval first (service-wide). */
export interface Stats {
  interval_s: number;
  counts: Record<TaskStatus, number>;
  intervals: StatsInterval[];
}

/** One event of `GET /tasks/{id}/history`. */
export interface TimelineEvent {
  id: number;
  event: TaskEventName;
  /** When it was recorded (RFC 3339). */
  at: string;
  status: TaskStatus;
  attempt: number;
  progress: number;
  error: TaskError | null;
}

export interface TaskHistory {
  task_id: string;
  events: TimelineEvent[];
}
