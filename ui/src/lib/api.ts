/**
 * The HTTP client: every call answers a `Result` (never throws), problem JSON parsed, and
 * the rate-limit fields of every counted answer passed to `onRate`, a 429's `Retry-After`
 * to `onLimited`, and a 401 to `onUnauthorized`. With an API key, every request carries it
 * as `Authorization: Bearer`.
 */
import { authHeaders } from './auth';
import type { Identity, Problem, Stats, Task, TaskHistory, TaskType } from './types';

/** What the latest `RateLimit` and `RateLimit-Policy` fields said. */
export interface RateInfo {
  /** Requests left in the window (`r`). */
  remaining: number;
  /** Seconds until the oldest counted request leaves the window (`t`). */
  resetS: number;
  /** Quota per window (`q` of the policy), when the policy field came too. */
  quota: number | null;
  /** The window in seconds (`w` of the policy). */
  windowS: number | null;
  /** Client time (ms) the answer arrived. */
  at: number;
}

export type Result<T> =
  | { ok: true; status: number; data: T }
  | { ok: false; status: number; problem: Problem; retryAfterS: number | null };

/** An answer's body with the server's clock: its `Date` field (ms, 1 s resolution) and when it came. */
export interface Dated<T> {
  body: T;
  /** The server's time from the `Date` field, or null without one. */
  serverDate: number | null;
  /** Client time (ms) the answer arrived. */
  receivedAt: number;
}

export interface SubmitBody {
  task_type: string;
  parameters: Record<string, unknown>;
  priority: string;
}

/** One item of a Structured Field list: `"per-ip";r=3;t=42` -> name and parameters. */
export interface SfItem {
  name: string;
  params: Record<string, string | number | boolean>;
}

/** Parses a Structured Field list (RFC 8941) as far as the rate-limit fields need. */
export function parseSfList(value: string | null): SfItem[] {
  if (!value) return [];
  const items: SfItem[] = [];
  let i = 0;
  const skipSpaces = () => {
    while (value[i] === ' ' || value[i] === '\t') i++;
  };
  const readBare = () => {
    const start = i;
    while (i < value.length && !/[;,=\s"]/.test(value[i]!)) i++;
    return value.slice(start, i);
  };
  const readString = () => {
    let out = '';
    i++; // opening quote
    while (i < value.length && value[i] !== '"') {
      if (value[i] === '\\') i++;
      out += value[i] ?? '';
      i++;
    }
    i++; // closing quote
    return out;
  };
  const readValue = (): string | number | boolean => {
    if (value[i] === '"') return readString();
    const bare = readBare();
    if (bare === '?1') return true;
    if (bare === '?0') return false;
    return /^-?\d+(\.\d+)?$/.test(bare) ? Number(bare) : bare;
  };
  while (i < value.length) {
    skipSpaces();
    const name = String(readValue());
    const params: SfItem['params'] = {};
    skipSpaces();
    while (value[i] === ';') {
      i++;
      skipSpaces();
      const key = readBare().toLowerCase();
      if (value[i] === '=') {
        i++;
        params[key] = readValue();
      } else {
        params[key] = true;
      }
      skipSpaces();
    }
    if (name || Object.keys(params).length) items.push({ name, params });
    while (i < value.length && value[i] !== ',') i++; // skip anything unexpected
    i++;
  }
  return items;
}

function numberParam(item: SfItem | undefined, key: string): number | null {
  const value = item?.params[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/**
 * Reads the IETF rate-limit fields of an answer; null when it has none (an uncounted path).
 * With several policies, the one named like the `RateLimit` item is used.
 */
export function parseRateLimit(headers: Headers, at: number): RateInfo | null {
  const limit = parseSfList(headers.get('RateLimit'))[0];
  const remaining = numberParam(limit, 'r');
  if (!limit || remaining === null) return null;
  const policies = parseSfList(headers.get('RateLimit-Policy'));
  const policy = policies.find((p) => p.name === limit.name) ?? policies[0];
  return {
    remaining,
    resetS: numberParam(limit, 't') ?? 0,
    quota: numberParam(policy, 'q'),
    windowS: numberParam(policy, 'w'),
    at,
  };
}

/** `Retry-After` in seconds: delta-seconds or an HTTP date; null when absent or invalid. */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/** Reads an error answer's body as problem details, making one up when it is not. */
export function parseProblem(status: number, statusText: string, body: string): Problem {
  try {
    const data: unknown = JSON.parse(body);
    if (data && typeof data === 'object' && !Array.isArray(data)) {
      const raw = data as Record<string, unknown>;
      const problem: Problem = {
        type: typeof raw.type === 'string' ? raw.type : 'about:blank',
        title: typeof raw.title === 'string' ? raw.title : statusText || `HTTP ${status}`,
        status: typeof raw.status === 'number' ? raw.status : status,
      };
      if (typeof raw.detail === 'string') problem.detail = raw.detail;
      if (typeof raw.instance === 'string') problem.instance = raw.instance;
      if (typeof raw.request_id === 'string') problem.request_id = raw.request_id;
      if (Array.isArray(raw.errors)) {
        problem.errors = raw.errors.flatMap((e: unknown) => {
          if (!e || typeof e !== 'object') return [];
          const err = e as Record<string, unknown>;
          if (typeof err.field !== 'string') return [];
          return [
            {
              field: err.field,
              detail: typeof err.detail === 'string' ? err.detail : 'invalid',
              ...(typeof err.type === 'string' ? { type: err.type } : {}),
              ...(typeof err.in === 'string' ? { in: err.in } : {}),
            },
          ];
        });
      }
      return problem;
    }
  } catch {
    // not JSON: fall through
  }
  const problem: Problem = { type: 'about:blank', title: statusText || `HTTP ${status}`, status };
  const text = body.trim();
  if (text) problem.detail = text.length > 300 ? `${text.slice(0, 300)}…` : text;
  return problem;
}

export interface ApiOptions {
  fetch?: typeof fetch;
  now?: () => number;
  /** Called with the rate-limit fields of every counted answer. */
  onRate?: (info: RateInfo) => void;
  /** Called on a 429 with the client time (ms) its `Retry-After` ends. */
  onLimited?: (until: number) => void;
  /** Called when an answer is a 401: the key (or its absence) is not accepted. */
  onUnauthorized?: (problem: Problem) => void;
  /** The API key to send with every request; none when null. */
  apiKey?: string | null;
}

export class Api {
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;

  constructor(private readonly options: ApiOptions = {}) {
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.now = options.now ?? Date.now;
  }

  request<T>(method: string, path: string, body?: unknown): Promise<Result<T>> {
    return this.send<T>(method, path, body).then(({ result }) => result);
  }

  /** Like `request`, with the server's clock (for figures tied to its time). */
  private async requestDated<T>(method: string, path: string): Promise<Result<Dated<T>>> {
    const { result, headers } = await this.send<T>(method, path);
    if (!result.ok) return result;
    const date = Date.parse(headers?.get('Date') ?? '');
    const body = { body: result.data, serverDate: Number.isNaN(date) ? null : date, receivedAt: this.now() };
    return { ok: true, status: result.status, data: body };
  }

  private async send<T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ result: Result<T>; headers: Headers | null }> {
    const sent: Record<string, string> = { Accept: 'application/json', ...authHeaders(this.options.apiKey ?? null) };
    const init: RequestInit = { method, headers: sent };
    if (body !== undefined) {
      sent['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await this.fetchImpl(path, init);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      const problem: Problem = { type: 'about:blank', title: 'Network error', status: 0, detail };
      return { result: { ok: false, status: 0, retryAfterS: null, problem }, headers: null };
    }
    const now = this.now();
    const rate = parseRateLimit(response.headers, now);
    if (rate) this.options.onRate?.(rate);
    const text = await response.text().catch(() => '');
    const { headers } = response;
    if (response.ok) {
      try {
        return { result: { ok: true, status: response.status, data: JSON.parse(text) as T }, headers };
      } catch {
        const problem = parseProblem(response.status, 'Unreadable answer', text);
        return { result: { ok: false, status: response.status, retryAfterS: null, problem }, headers };
      }
    }
    let retryAfterS = parseRetryAfter(headers.get('Retry-After'), now);
    if (response.status === 429) {
      retryAfterS ??= rate?.resetS ?? 1;
      this.options.onLimited?.(now + retryAfterS * 1000);
    }
    const problem = parseProblem(response.status, response.statusText, text);
    if (response.status === 401) this.options.onUnauthorized?.(problem);
    return { result: { ok: false, status: response.status, retryAfterS, problem }, headers };
  }

  /** Which key this client sends, and what it reaches (not counted with a valid key or keys off). */
  whoami(): Promise<Result<Identity>> {
    return this.request('GET', '/whoami');
  }

  /** Counts now and the last 15 minutes (not rate limited), with the server's clock. */
  stats(): Promise<Result<Dated<Stats>>> {
    return this.requestDated('GET', '/stats');
  }

  /** A task's events still in the history, oldest first. */
  history(taskId: string): Promise<Result<TaskHistory>> {
    return this.request('GET', `/tasks/${encodeURIComponent(taskId)}/history`);
  }

  taskTypes(): Promise<Result<TaskType[]>> {
    return this.request('GET', '/task-types');
  }

  listTasks(limit: number): Promise<Result<Task[]>> {
    return this.request('GET', `/tasks?limit=${limit}`);
  }

  submit(body: SubmitBody): Promise<Result<Task>> {
    return this.request('POST', '/tasks', body);
  }

  cancel(taskId: string): Promise<Result<Task>> {
    return this.request('DELETE', `/tasks/${encodeURIComponent(taskId)}`);
  }

  retry(taskId: string): Promise<Result<Task>> {
    return this.request('POST', `/tasks/${encodeURIComponent(taskId)}/retry`);
  }
}

/** A one-line description of a problem, for a banner or an announcement. */
export function describeProblem(problem: Problem): string {
  if (problem.detail && problem.detail !== problem.title) return `${problem.title}: ${problem.detail}`;
  return problem.title;
}
