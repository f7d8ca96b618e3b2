import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cli } from './run.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('keel command line', () => {
  it('prints help for keel and for every command, with exit code 0', async () => {
    for (const argv of [['--help'], ['-h'], ['help'], ['demo', '--help'], ['diagram', '-h'], ['inspect', '--help']]) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.out, argv.join(' ')).toMatch(/^(usage: keel|keel: )/);
      expect(r.err).toBe('');
    }
    expect((await cli('--help')).out).toMatch(/demo[\s\S]*diagram[\s\S]*inspect/);
  });

  it('exits with 2 and says what is wrong for unknown commands, flags and values', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /usage: keel <command>/],
      [['deploy'], /unknown command 'deploy'/],
      [['--verbose'], /unknown option '--verbose'/],
      [['demo', '--fast'], /keel demo: unknown option '--fast'/],
      [['demo', 'extra'], /keel demo: unexpected argument 'extra'/],
      [['diagram'], /which machine\? one of breaker, saga, task, queue, schedule, bus, runtime/],
      [['diagram', 'lock'], /unknown machine 'lock'/],
      [['diagram', 'breaker', '--format', 'png'], /--format must be mermaid, json or svg, got 'png'/],
      [['diagram', 'breaker', '--format'], /option '--format' needs a value/],
      [['diagram', 'breaker', '--colour'], /unknown option '--colour'/],
      [['inspect', '--port', 'http'], /--port must be a number from 0 to 65535, got 'http'/],
      [['inspect', '--port', '70000'], /--port must be a number/],
      [['inspect', '--watch'], /keel inspect: unknown option '--watch'/],
    ];
    for (const [argv, message] of cases) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err, argv.join(' ')).toMatch(message);
      expect(r.out).toBe('');
    }
    expect((await cli('diagram', 'x')).err).toContain("see 'keel diagram --help'");
  });

  it('treats Object.prototype names as unknown commands, options and machines (exit 2)', async () => {
    const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];
    for (const name of names) {
      const cases: Array<[string[], string]> = [
        [[name], `keel: unknown command '${name}' (commands: demo, diagram, inspect, console)\nsee 'keel --help'\n`],
        [['demo', `--${name}`], `keel demo: unknown option '--${name}'\nsee 'keel demo --help'\n`],
        [['diagram', name], `keel diagram: unknown machine '${name}'`],
        [['diagram', 'task', '--format', name], `--format must be mermaid, json or svg, got '${name}'`],
        [['inspect', '--port', name], `--port must be a number from 0 to 65535, got '${name}'`],
      ];
      for (const [argv, message] of cases) {
        const r = await cli(...argv);
        expect(r.code, argv.join(' ')).toBe(2);
        expect(r.err, argv.join(' ')).toContain(message);
        expect(r.out, argv.join(' ')).toBe('');
      }
    }
  });

  it('keel inspect says so when its port is taken (exit 1)', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await cli('inspect', '--port', String(port));
      expect(r.code).toBe(1);
      expect(r.err).toContain(`port ${port} is in use`);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('runs through the package bin (bin/keel.js) with the exit codes', async () => {
    const run = promisify(execFile);
    const ok = await run(process.execPath, ['bin/keel.js', 'diagram', 'task'], { cwd: root });
    expect(ok.stdout).toMatch(/^stateDiagram-v2\n/);
    const bad = await run(process.execPath, ['bin/keel.js', 'frobnicate'], { cwd: root }).catch((e) => e);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown command 'frobnicate'");
  });
});
