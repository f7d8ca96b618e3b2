import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { ViewerMessage } from '../../src/viewer/hub.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
let child: ChildProcess | undefined;
afterEach(() => {
  if (child?.exitCode === null) child.kill('SIGKILL');
});

describe('keel inspect', () => {
  it('runs the demo in the viewer (one runtime per scenario), serves on, and exits cleanly on SIGTERM', async () => {
    const proc = spawn(process.execPath, ['bin/keel.js', 'inspect', '--port', '0', '--no-wait'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      // No Postgres: the breaker scenario skips its fleet case (three runtimes more), so one runtime per scenario.
      env: { ...process.env, KEEL_PG_URL: 'postgres://postgres@127.0.0.1:1/none' },
    });
    child = proc;
    let out = '';
    proc.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
    const over = new Promise<void>((resolve, reject) => {
      proc.stdout?.setEncoding('utf8').on('data', (c: string) => {
        out += c;
        if (out.includes('the demo is over')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`exited early with ${code}:\n${out}`)));
    });
    await over;
    const url = /keel live viewer: (\S+)/.exec(out)?.[1] as string;
    const state = (await (await fetch(`${url}state`)).json()) as Extract<ViewerMessage, { kind: 'hello' }>;
    expect(state.runtimes.map((r) => r.label.split(':')[0])).toEqual([
      'event bus',
      'circuit breaker',
      'task queue',
      'saga',
    ]);
    expect(state.runtimes.every((r) => r.status === 'stopped')).toBe(true);
    const exited = new Promise<number | null>((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
