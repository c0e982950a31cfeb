/** Starts the real Taskwire service on a free port for the browser tests, and stops it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const UI_DIR = fileURLToPath(new URL('..', import.meta.url));
export const REPO = path.resolve(UI_DIR, '..');

/** A client of a keys-file service: its name, its key, and whether it is an admin. */
export interface ApiKey {
  name: string;
  key: string;
  admin?: boolean;
}

/** Writes a keys file (`NAME SHA256HEX [admin]` lines) to a new temporary folder; answers its path and a clean-up. */
export function writeKeysFile(keys: readonly ApiKey[]): { file: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'taskwire-keys-'));
  const file = path.join(dir, 'keys');
  const digest = (key: string) => createHash('sha256').update(key).digest('hex');
  writeFileSync(file, keys.map((k) => `${k.name} ${digest(k.key)}${k.admin ? ' admin' : ''}\n`).join(''));
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Service {
  url: string;
  stop: () => Promise<void>;
  /** What the service wrote to stderr (for failure messages). */
  log: () => string;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForHealth(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the service exited (${child.exitCode}):\n${log()}`);
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the service did not answer /healthz within 20 s:\n${log()}`);
}

export async function startService(env: Record<string, string>): Promise<Service> {
  const python = process.env.TASKWIRE_PYTHON ?? path.join(REPO, '.venv', 'bin', 'python');
  if (!existsSync(python)) {
    throw new Error(`no Python at ${python}: run \`make\` at the repository root (or set TASKWIRE_PYTHON)`);
  }
  const dist = path.join(UI_DIR, 'dist');
  if (!existsSync(path.join(dist, 'index.html'))) {
    throw new Error('ui/dist is not built: run `npm run build` first (`npm run e2e` does)');
  }
  const port = await freePort();
  const child = spawn(
    python,
    ['-m', 'uvicorn', 'asgi:app', '--host', '127.0.0.1', '--port', String(port), '--no-access-log'],
    {
      cwd: REPO,
      env: {
        ...process.env,
        TASKWIRE_UI_DIR: dist,
        TASKWIRE_LOG_LEVEL: 'warning',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-20_000);
  });
  const log = () => stderr;
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timeout = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timeout);
  };
  try {
    await waitForHealth(url, child, log);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop, log };
}
