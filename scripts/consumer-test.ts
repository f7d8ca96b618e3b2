/**
 * `npm run test:consumer` (run by `.ci/run` after `npm test`): uses keel the way an
 * app developer gets it. Packs the tarball (`npm pack`, which builds dist/), installs
 * it into a throw-away app under the temp dir, then checks that
 *   (a) a plain-`node` ESM program runs a breaker, a queue on SQLite, a saga and the bus,
 *       and that postgresStore without `pg` installed says to run `npm i pg`;
 *   (b) `require('keel')` works from CommonJS;
 *   (c) a strict TypeScript app (and every ```ts block of README.md that imports keel)
 *       compiles with moduleResolution nodenext, node16 and bundler, skipLibCheck off,
 *       without @types/* installed;
 *   (d) `npx keel --help` and `npx keel diagram saga` run;
 *   (e) an esbuild bundle of an app with `createRuntime({ viewer })` serves the page.
 * One install serves every check: compiling better-sqlite3 dominates the run time.
 * Prints PASS/FAIL per check; exits 1 when one failed. `--keep` leaves the temp dir.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repo = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
const keep = process.argv.includes('--keep');
const work = mkdtempSync(join(tmpdir(), 'keel-consumer-'));
const app = join(work, 'app');
const results: Array<{ name: string; ok: boolean; detail?: string }> = [];

function write(path: string, text: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}

/** Runs a command in the app; throws with its output when it fails. */
function run(cmd: string, args: string[], cwd = app, timeoutMs = 120_000): string {
  // JOBS: node-gyp compiles better-sqlite3 on every core when no prebuilt binary can be fetched.
  const env = { ...process.env, CI: 'true', JOBS: 'max' };
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`.trim());
  }
  return r.stdout;
}

async function check(name: string, fn: () => void | Promise<void>): Promise<void> {
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`PASS ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    results.push({ name, ok: false, detail });
    console.log(`FAIL ${name}\n${detail.replace(/^/gm, '    ')}`);
  }
}

/** The ```ts blocks of README.md that import from keel and from nothing else outside node. */
function readmeSamples(): string[] {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((m) => m[1] as string);
  return blocks.filter((code) => {
    const sources = [...code.matchAll(/from '([^']+)'/g)].map((m) => m[1] as string);
    return sources.some((s) => s === 'keel' || s.startsWith('keel/')) && sources.every((s) => /^(keel|node:)/.test(s));
  });
}

const esmProgram = `
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CircuitOpenError, createRuntime, KeelError, postgresStore, sqliteStore } from 'keel';

const rt = createRuntime({ store: sqliteStore({ path: join(process.argv[2], 'keel.db') }) });
const seen = [];
rt.bus.subscribe('order.*', (payload, event) => seen.push([event.type, payload]));

const breaker = rt.breaker('sms', { failureThreshold: 2, resetTimeoutMs: 60_000 });
const delivered = [];
const queue = rt.queue('profile-sync', { handler: async (task) => { delivered.push(task.payload); } });
const undone = [];
const saga = rt.saga('checkout', {
  steps: [
    { name: 'createOrder', run: () => 'order-1', compensate: (ctx) => { undone.push(ctx.results.createOrder); } },
    { name: 'charge', run: (ctx) => { if (ctx.input.declined) throw new Error('card declined'); return 'paid'; } },
  ],
});
await rt.start();

assert.equal(await breaker.call(async () => 42), 42);
for (let i = 0; i < 2; i++) await assert.rejects(breaker.call(async () => { throw new Error('down'); }), /down/);
assert.equal(breaker.state, 'open');
await assert.rejects(breaker.call(async () => 1), (e) => e instanceof CircuitOpenError && e.retryAfterMs > 0);

for (const id of ['a', 'b', 'c']) await queue.enqueue({ id }, { key: id });
assert.equal((await queue.enqueue({ id: 'a' }, { key: 'a' })).deduplicated, true);
await queue.drain();
assert.equal((await queue.stats()).succeeded, 3);
assert.deepEqual(delivered.map((p) => p.id).sort(), ['a', 'b', 'c']);

const ok = await saga.execute({ declined: false });
assert.equal(ok.status, 'completed');
const bad = await saga.execute({ declined: true });
assert.equal(bad.status, 'compensated');
assert.deepEqual(bad.compensated, ['createOrder']);
assert.deepEqual(undone, ['order-1']);

assert.equal(rt.bus.publish('order.placed', { total: 3 }), 1);
await new Promise((r) => setTimeout(r, 10));
assert.deepEqual(seen, [['order.placed', { total: 3 }]]);
await rt.stop();

// pg is an optional peer: without it, postgresStore fails on start with what to install.
const pgRt = createRuntime({ store: postgresStore({ connectionString: 'postgres://nobody@127.0.0.1:1/none' }) });
await assert.rejects(pgRt.start(), (e) => e instanceof KeelError && e.code === 'MISSING_DEPENDENCY' && /npm i pg/.test(e.message));
console.log('esm ok');
`;

const cjsProgram = `
const assert = require('node:assert/strict');
const keel = require('keel');
const testing = require('keel/testing');
assert.equal(typeof keel.createRuntime, 'function');
assert.equal(typeof testing.planPaths, 'function');
(async () => {
  const rt = keel.createRuntime();
  await rt.start();
  assert.equal(await rt.breaker('b').call(async () => 'ok'), 'ok');
  await rt.stop();
  console.log('cjs ok');
})().catch((e) => { console.error(e); process.exit(1); });
`;

const tsApp = `
import { type Breaker, type BusEvent, createRuntime, KeelError, type KeelErrorCode, memoryStore, postgresStore,
  type QueueStats, type SagaResult, sqliteStore } from 'keel';
import { planPaths, TestClock } from 'keel/testing';

interface Events { 'user.updated': { id: string }; [topic: string]: unknown }
declare const pgUrl: string | undefined;
const rt = createRuntime<Events>({ store: pgUrl ? postgresStore({ connectionString: pgUrl }) : memoryStore() });
const sms: Breaker = rt.breaker('sms', { failureThreshold: 2, isFailure: (e) => !(e instanceof KeelError) });
const n: number = await sms.call(async (signal) => (signal.aborted ? 0 : 42));
rt.bus.subscribe('user.updated', (user: { id: string }, event: BusEvent) => console.log(user.id, event.time));
const q = rt.queue('sync', { handler: async (task) => String(task.payload), concurrency: 2 });
const stats: QueueStats = await q.stats();
const saga = rt.saga('s', { steps: [{ name: 'a', run: () => 1 }] });
const result: SagaResult = await saga.execute({});
const code: KeelErrorCode = 'MISSING_DEPENDENCY';
void [n, stats, result, code, sqliteStore, planPaths, new TestClock(0)];
`;

function tsconfig(moduleResolution: 'nodenext' | 'node16' | 'bundler', files: string[]): string {
  return JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2022',
        module: moduleResolution === 'bundler' ? 'esnext' : moduleResolution,
        moduleResolution,
        strict: true,
        exactOptionalPropertyTypes: true,
        noPropertyAccessFromIndexSignature: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: false,
        noEmit: true,
        // No @types/* at all: keel's declarations must stand on their own.
        types: [],
      },
      files,
    },
    null,
    2,
  );
}

/** Type errors, except in xstate's own declarations (statelyai/xstate#4613: they fail exactOptionalPropertyTypes). */
function typeErrors(project: string): string[] {
  const r = spawnSync(process.execPath, [tsc, '-p', project, '--pretty', 'false'], { cwd: app, encoding: 'utf8' });
  return r.stdout.split('\n').filter((line) => /error TS\d+/.test(line) && !line.startsWith('node_modules/xstate/'));
}

async function main(): Promise<void> {
  const started = Date.now();
  console.log(`consumer test in ${work}`);
  const tarball = run('npm', ['pack', '--silent', '--pack-destination', work], repo)
    .trim()
    .split('\n')
    .at(-1) as string;
  write(join(app, 'package.json'), JSON.stringify({ name: 'keel-consumer', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', join(work, tarball)], app, 600_000);
  const installed = readdirSync(join(app, 'node_modules')).filter((d) => !d.startsWith('.'));
  console.log(`installed ${tarball} in ${((Date.now() - started) / 1000).toFixed(0)} s`);

  await check('production install has no tsx, typescript, @types, pg, elkjs, prom-client or @opentelemetry', () => {
    const optional = ['tsx', 'typescript', '@types', 'pg', 'esbuild', 'elkjs', 'prom-client', '@opentelemetry'];
    const extra = installed.filter((d) => optional.includes(d));
    if (extra.length > 0) throw new Error(`unexpected packages: ${extra.join(', ')}`);
  });

  await check('(a) plain node ESM: breaker, queue on SQLite, saga, bus; postgresStore asks for pg', () => {
    write(join(app, 'esm.mjs'), esmProgram);
    if (!run('node', ['esm.mjs', work]).includes('esm ok')) throw new Error('no "esm ok"');
  });

  await check("(b) require('keel') from CommonJS", () => {
    write(join(app, 'cjs.cjs'), cjsProgram);
    if (!run('node', ['cjs.cjs']).includes('cjs ok')) throw new Error('no "cjs ok"');
  });

  const samples = readmeSamples();
  const files = ['app.ts', ...samples.map((_, i) => `readme-${i + 1}.ts`)];
  write(join(app, 'ts', 'app.ts'), tsApp);
  for (const [i, code] of samples.entries()) write(join(app, 'ts', `readme-${i + 1}.ts`), code);
  // README samples call the reader's own services (orders, smsApi, ...): declare each unknown name as `any`,
  // so what is checked is keel's part of the sample.
  write(join(app, 'ts', 'tsconfig.probe.json'), tsconfig('nodenext', files));
  const unknown = new Set<string>();
  for (const line of typeErrors('ts/tsconfig.probe.json')) {
    const m = /^ts\/readme-\d+\.ts.*error TS2304: Cannot find name '(\w+)'/.exec(line);
    if (m) unknown.add(m[1] as string);
  }
  write(join(app, 'ts', 'readme-ambient.d.ts'), [...unknown].map((n) => `declare const ${n}: any;\n`).join(''));
  for (const resolution of ['nodenext', 'node16', 'bundler'] as const) {
    await check(`(c) strict TypeScript app + ${samples.length} README samples, moduleResolution ${resolution}`, () => {
      const project = `ts/tsconfig.${resolution}.json`;
      write(join(app, project), tsconfig(resolution, [...files, 'readme-ambient.d.ts']));
      const errors = typeErrors(project);
      if (errors.length > 0) throw new Error(errors.join('\n'));
    });
  }

  await check('(d) npx keel --help; npx keel diagram saga', () => {
    if (!run('npx', ['--no-install', 'keel', '--help']).includes('usage: keel')) throw new Error('no usage line');
    if (!run('npx', ['--no-install', 'keel', 'diagram', 'saga']).includes('stateDiagram-v2')) {
      throw new Error('no stateDiagram-v2');
    }
  });

  await check('(e) esbuild bundle serves the viewer page', async () => {
    // The viewer's diagrams need the optional peer elkjs, as an app that serves the viewer installs it.
    run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', 'elkjs@^0.12.1'], app, 300_000);
    write(
      join(app, 'viewer-app.mjs'),
      `import { createRuntime } from 'keel';
const rt = createRuntime({ viewer: { port: 0 } });
await rt.start();
const page = await fetch(rt.viewer.url).then((r) => r.text());
const script = await fetch(new URL('/viewer.js', rt.viewer.url)).then((r) => r.status);
await rt.stop();
console.log(JSON.stringify({ page, script }));
`,
    );
    // The bundle holds keel and xstate; only the native driver stays outside. It runs from a folder
    // without keel's files beside it, as a deployed bundle does.
    await build({
      entryPoints: [join(app, 'viewer-app.mjs')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: join(app, 'bundle', 'server.mjs'),
      external: ['better-sqlite3', 'pg'],
      logLevel: 'error',
    });
    const out = JSON.parse(
      run('node', [join('bundle', 'server.mjs')])
        .trim()
        .split('\n')
        .at(-1) as string,
    );
    if (!/<title>keel/.test(out.page)) throw new Error(`page is not the viewer: ${String(out.page).slice(0, 200)}`);
    if (out.script !== 200) throw new Error(`/viewer.js answered ${out.script}`);
  });

  const failed = results.filter((r) => !r.ok);
  console.log(`\nconsumer test took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(`consumer: ${results.length - failed.length} passed, ${failed.length} failed`);
  if (failed.length > 0) process.exitCode = 1;
}

try {
  await main();
} catch (error) {
  console.log(`FAIL consumer test setup\n${String(error instanceof Error ? error.message : error)}`);
  process.exitCode = 1;
} finally {
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
