import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { ViewerMessage } from '../../src/viewer/hub.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
let child: ChildProcess | undefined;
afterEach(() => {
  if (child?.exitCode === null) child.kill('SIGKILL');
});

/** Starts `keel inspect` with `args`; `seen(text)` resolves once its output contains `text`. */
function inspect(...args: string[]) {
  const proc = spawn(process.execPath, ['bin/keel.js', 'inspect', '--port', '0', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    // No Postgres for the SMS scenario's fleet case: its three extra runtimes would push the others out of the viewer.
    env: { ...process.env, KEEL_PG_URL: 'postgres://postgres@127.0.0.1:1/none' },
  });
  child = proc;
  let out = '';
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  const check = () => {
    for (const w of waiters.filter((x) => out.includes(x.text))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  proc.stdout?.setEncoding('utf8').on('data', (c: string) => {
    out += c;
    check();
  });
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<number | null>((r) => proc.once('exit', r));
  return {
    proc,
    exited,
    output: () => out,
    seen: (text: string) =>
      Promise.race([
        new Promise<void>((resolve) => {
          waiters.push({ text, resolve });
          check();
        }),
        exited.then((code) => {
          throw new Error(`keel inspect exited with ${code} before printing '${text}':\n${out}`);
        }),
      ]),
  };
}

const state = async (out: string) => {
  const url = /keel live viewer: (\S+)/.exec(out)?.[1] as string;
  return (await (await fetch(`${url}state`)).json()) as Extract<ViewerMessage, { kind: 'hello' }>;
};

describe('keel inspect', () => {
  it('runs the demo round after round (one runtime per scenario) until SIGTERM, then exits cleanly', async () => {
    const k = inspect('--no-wait');
    // The second round starting means the first one ended and the viewer went on with more to watch.
    await k.seen('-- round 2 of the demo');
    const s = await state(k.output());
    const scenarios = s.runtimes.map((r) => r.label.split(':')[0]);
    expect(scenarios.slice(0, 4)).toEqual(['event bus', 'circuit breaker', 'task queue', 'saga']);
    expect(s.runtimes.slice(0, 4).every((r) => r.status === 'stopped')).toBe(true);
    k.proc.kill('SIGTERM');
    expect(await k.exited).toBe(0);
    expect(k.output()).toContain('keel inspect: stopped');
  });

  it('stops on SIGINT while waiting for the page, and --exit runs the demo once', async () => {
    const waiting = inspect();
    await waiting.seen('the demo starts when the page is connected');
    waiting.proc.kill('SIGINT');
    expect(await waiting.exited).toBe(0);
    expect(waiting.output()).not.toContain('== event bus');

    const once = inspect('--no-wait', '--exit');
    expect(await once.exited).toBe(0);
    expect(once.output()).toContain('keel inspect: stopped');
    expect(once.output()).not.toContain('-- round 2');
  });
});
