import { describe, expect, it, vi } from 'vitest';
import {
  Api,
  describeProblem,
  parseProblem,
  parseRateLimit,
  parseRetryAfter,
  parseSfList,
  type RateInfo,
} from './api';

const NOW = Date.parse('2026-11-22T08:00:00Z');

function respond(status: number, body: string, headers: Record<string, string> = {}) {
  return vi.fn(
    async (_input: RequestInfo | URL, _init?: RequestInit) =>
      new Response(status === 204 ? null : body, { status, headers }),
  );
}

describe('rate-limit fields', () => {
  it('parses the Structured Field form the service sends', () => {
    expect(parseSfList('"per-ip";r=3;t=42')).toEqual([{ name: 'per-ip', params: { r: 3, t: 42 } }]);
    expect(parseSfList('"a";q=10;w=60, b;q=1000;w=3600;flag')).toEqual([
      { name: 'a', params: { q: 10, w: 60 } },
      { name: 'b', params: { q: 1000, w: 3600, flag: true } },
    ]);
    expect(parseSfList(null)).toEqual([]);
    expect(parseSfList('')).toEqual([]);
  });

  it('reads remaining, reset, quota and window', () => {
    const headers = new Headers({
      RateLimit: '"per-ip";r=7;t=51',
      'RateLimit-Policy': '"per-ip";q=10;w=60',
    });
    expect(parseRateLimit(headers, NOW)).toEqual({
      remaining: 7,
      resetS: 51,
      quota: 10,
      windowS: 60,
      at: NOW,
    } satisfies RateInfo);
  });

  it('picks the policy named like the limit, and copes without a policy', () => {
    const headers = new Headers({
      RateLimit: '"burst";r=0;t=5',
      'RateLimit-Policy': '"day";q=1000;w=86400, "burst";q=3;w=10',
    });
    expect(parseRateLimit(headers, NOW)).toMatchObject({ remaining: 0, quota: 3, windowS: 10 });
    expect(parseRateLimit(new Headers({ RateLimit: '"x";r=2;t=1' }), NOW)).toMatchObject({
      remaining: 2,
      quota: null,
    });
    expect(parseRateLimit(new Headers(), NOW)).toBeNull();
    expect(parseRateLimit(new Headers({ RateLimit: 'garbage' }), NOW)).toBeNull();
  });

  it('reads Retry-After as seconds or as a date', () => {
    expect(parseRetryAfter('42', NOW)).toBe(42);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
    expect(parseRetryAfter('Sun, 22 Nov 2026 08:00:30 GMT', NOW)).toBe(30);
    expect(parseRetryAfter('Sun, 22 Nov 2026 07:00:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('soon', NOW)).toBeNull();
    expect(parseRetryAfter(null, NOW)).toBeNull();
  });
});

describe('problem JSON', () => {
  const body = JSON.stringify({
    type: 'about:blank',
    title: 'Bad Request',
    status: 400,
    detail: 'invalid parameters.numbers.0',
    instance: '/tasks',
    request_id: 'abc',
    errors: [
      { in: 'body', field: 'parameters.numbers.0', type: 'float_type', detail: 'Input should be a valid number' },
      { nonsense: true },
    ],
  });

  it('keeps every field and each well-formed error', () => {
    expect(parseProblem(400, 'Bad Request', body)).toEqual({
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      detail: 'invalid parameters.numbers.0',
      instance: '/tasks',
      request_id: 'abc',
      errors: [{ in: 'body', field: 'parameters.numbers.0', type: 'float_type', detail: 'Input should be a valid number' }],
    });
  });

  it('makes one up from a body that is not problem JSON', () => {
    expect(parseProblem(502, 'Bad Gateway', '<html>proxy error</html>')).toEqual({
      type: 'about:blank',
      title: 'Bad Gateway',
      status: 502,
      detail: '<html>proxy error</html>',
    });
    expect(parseProblem(500, '', '')).toEqual({ type: 'about:blank', title: 'HTTP 500', status: 500 });
    expect(describeProblem({ type: 'x', title: 'Conflict', status: 409, detail: 'task is failed' })).toBe(
      'Conflict: task is failed',
    );
  });
});

describe('Api', () => {
  it('answers data and reports the rate-limit fields', async () => {
    const onRate = vi.fn();
    const fetch = respond(200, '[]', {
      'Content-Type': 'application/json',
      RateLimit: '"per-ip";r=9;t=60',
      'RateLimit-Policy': '"per-ip";q=10;w=60',
    });
    const api = new Api({ fetch, now: () => NOW, onRate });
    const result = await api.listTasks(200);
    expect(result).toEqual({ ok: true, status: 200, data: [] });
    expect(fetch).toHaveBeenCalledWith('/tasks?limit=200', expect.objectContaining({ method: 'GET' }));
    expect(onRate).toHaveBeenCalledWith({ remaining: 9, resetS: 60, quota: 10, windowS: 60, at: NOW });
  });

  it('sends JSON bodies and uses the right method and path for each action', async () => {
    const fetch = respond(202, '{"task_id":"x"}');
    const api = new Api({ fetch, now: () => NOW });
    await api.submit({ task_type: 'compute_sum', parameters: { numbers: [1] }, priority: 'high' });
    await api.cancel('a b');
    await api.retry('id1');
    expect(fetch.mock.calls.map(([path, init]) => [path, (init as RequestInit).method])).toEqual([
      ['/tasks', 'POST'],
      ['/tasks/a%20b', 'DELETE'],
      ['/tasks/id1/retry', 'POST'],
    ]);
    const init = fetch.mock.calls[0]![1] as RequestInit;
    expect(JSON.parse(init.body as string)).toEqual({
      task_type: 'compute_sum',
      parameters: { numbers: [1] },
      priority: 'high',
    });
    expect(init.headers).toMatchObject({ 'Content-Type': 'application/json' });
  });

  it('on 429 parses the problem and reports when Retry-After ends', async () => {
    const onLimited = vi.fn();
    const onRate = vi.fn();
    const fetch = respond(
      429,
      JSON.stringify({
        type: 'https://iana.org/assignments/http-problem-types#quota-exceeded',
        title: 'Too Many Requests',
        status: 429,
        detail: 'too many requests from this address; retry in 17 s',
      }),
      {
        'Content-Type': 'application/problem+json',
        'Retry-After': '17',
        RateLimit: '"per-ip";r=0;t=17',
        'RateLimit-Policy': '"per-ip";q=10;w=60',
      },
    );
    const api = new Api({ fetch, now: () => NOW, onLimited, onRate });
    const result = await api.submit({ task_type: 't', parameters: {}, priority: 'normal' });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.status).toBe(429);
    expect(result.retryAfterS).toBe(17);
    expect(result.problem.title).toBe('Too Many Requests');
    expect(onLimited).toHaveBeenCalledWith(NOW + 17_000);
    expect(onRate).toHaveBeenCalledWith(expect.objectContaining({ remaining: 0, resetS: 17 }));
  });

  it('on 429 without Retry-After falls back to the RateLimit reset', async () => {
    const onLimited = vi.fn();
    const fetch = respond(429, '{}', { RateLimit: '"per-ip";r=0;t=5' });
    await new Api({ fetch, now: () => NOW, onLimited }).listTasks(1);
    expect(onLimited).toHaveBeenCalledWith(NOW + 5000);
  });

  it('answers a field-error problem with its errors', async () => {
    const fetch = respond(
      400,
      JSON.stringify({
        type: 'about:blank',
        title: 'Bad Request',
        status: 400,
        errors: [{ in: 'body', field: 'parameters.numbers', type: 'too_short', detail: 'List should have at least 1 item' }],
      }),
      { 'Content-Type': 'application/problem+json' },
    );
    const onLimited = vi.fn();
    const result = await new Api({ fetch, now: () => NOW, onLimited }).submit({
      task_type: 'compute_sum',
      parameters: { numbers: [] },
      priority: 'normal',
    });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem.errors?.[0]?.field).toBe('parameters.numbers');
    expect(onLimited).not.toHaveBeenCalled();
  });

  it('turns a network failure into a problem with status 0', async () => {
    const fetch = vi.fn(async () => {
      throw new TypeError('Failed to fetch');
    });
    const result = await new Api({ fetch, now: () => NOW }).taskTypes();
    expect(result).toMatchObject({ ok: false, status: 0, problem: { title: 'Network error', detail: 'Failed to fetch' } });
  });
});

describe('Api with an API key', () => {
  it('sends it as a Bearer header on every request, and none without a key', async () => {
    const fetch = respond(200, '{"keys":true,"name":"alice","admin":false}');
    const api = new Api({ fetch, now: () => NOW, apiKey: 'k-1' });
    await api.whoami();
    await api.submit({ task_type: 't', parameters: {}, priority: 'normal' });
    await api.history('id 1');
    for (const [, init] of fetch.mock.calls) {
      expect((init as RequestInit).headers).toMatchObject({ Authorization: 'Bearer k-1' });
    }
    expect(fetch.mock.calls.map(([path]) => path)).toEqual(['/whoami', '/tasks', '/tasks/id%201/history']);

    const open = respond(200, '[]');
    await new Api({ fetch: open, now: () => NOW }).listTasks(1);
    expect((open.mock.calls[0]![1] as RequestInit).headers).not.toHaveProperty('Authorization');
  });

  it('reports a 401 with its problem', async () => {
    const onUnauthorized = vi.fn();
    const fetch = respond(401, JSON.stringify({ type: 'about:blank', title: 'Unauthorized', status: 401 }), {
      'WWW-Authenticate': 'Bearer realm="taskwire"',
    });
    const result = await new Api({ fetch, now: () => NOW, apiKey: 'wrong', onUnauthorized }).listTasks(1);
    expect(result).toMatchObject({ ok: false, status: 401 });
    expect(onUnauthorized).toHaveBeenCalledWith(expect.objectContaining({ title: 'Unauthorized' }));
  });
});

describe('Api.stats', () => {
  it('answers the body with the server clock of its Date field', async () => {
    const body = { interval_s: 15, counts: {}, intervals: [] };
    const fetch = respond(200, JSON.stringify(body), { Date: 'Sun, 22 Nov 2026 08:00:07 GMT' });
    const result = await new Api({ fetch, now: () => NOW + 250 }).stats();
    expect(result).toEqual({
      ok: true,
      status: 200,
      data: { body, serverDate: NOW + 7000, receivedAt: NOW + 250 },
    });
    const undated = await new Api({ fetch: respond(200, JSON.stringify(body)), now: () => NOW }).stats();
    expect(undated.ok && undated.data.serverDate).toBeNull();
  });
});
