import { postgresFleetView } from '../stores/postgres/fleetView.js';
import { postgresStore } from '../stores/postgres/store.js';
import { checkAdminToken } from '../viewer/attach.js';
import { fleetOps } from '../viewer/fleetOps.js';
import { ViewerHub } from '../viewer/hub.js';
import { serveViewer } from '../viewer/server.js';
import { parseCommand, portOf, UsageError } from './args.js';
import type { Io } from './io.js';

/** The console's default port (the viewer's is 4400). */
export const CONSOLE_PORT = 4401;

export const consoleHelp = `usage: keel console --postgres <url> [--schema <s>] [--port <n>] [--host <h>] [--admin-token <t>]

Serves the console of a fleet on http://127.0.0.1:<port>/: every queue (counts,
dead tasks, paused or not), unfinished saga and fleet breaker recorded in the
Postgres schema by every process that uses it, updated live. No application
code is needed: it reads the schema.

With an admin token, operators can also act on what is data in the schema:
redrive or delete dead tasks, pause or resume a queue for the whole fleet,
send a saga a signal or cancel it (the runtime running it compensates). Each
action needs the token and must come from the console's own page. Without a
token the console is read-only. The token can also come from the environment
variable KEEL_ADMIN_TOKEN (which, unlike an argument, other users cannot read
with ps).

options:
  --postgres <url>     postgres://user:password@host:port/database
  --schema <s>         the schema the fleet uses (postgresStore({ schema })); default keel
  --port <n>           port (default ${CONSOLE_PORT}; 0 picks a free one)
  --host <h>           interface to bind (default 127.0.0.1)
  --admin-token <t>    turns the actions on (at least 16 characters)
  -h, --help           this help
`;

/** `keel console`: the fleet console of a Postgres schema, until SIGINT or SIGTERM. */
export async function consoleCommand(argv: string[], io: Io, signals: NodeJS.EventEmitter = process): Promise<number> {
  const args = parseCommand('keel console', argv, { options: ['postgres', 'schema', 'port', 'host', 'admin-token'] });
  if (args.help) {
    io.out(consoleHelp);
    return 0;
  }
  const url = args.values.postgres;
  if (typeof url !== 'string' || url === '') throw new UsageError('keel console: --postgres <url> is required');
  const schema = typeof args.values.schema === 'string' ? args.values.schema : 'keel';
  const port = portOf('keel console', args.values.port, CONSOLE_PORT);
  const host = typeof args.values.host === 'string' ? args.values.host : undefined;
  const token = (args.values['admin-token'] as string | undefined) ?? process.env.KEEL_ADMIN_TOKEN;
  try {
    checkAdminToken('keel console', '--admin-token', token);
  } catch (error) {
    throw new UsageError(`keel console: ${(error as Error).message.replace(/^.*?: /, '')}`);
  }
  // The store performs the actions (and brings the schema to this keel's version); the view only reads.
  const store = postgresStore({ connectionString: url, schema, poolSize: 2, applicationName: 'keel console' });
  const view = postgresFleetView({ connectionString: url, schema });
  try {
    await store.open();
  } catch (error) {
    io.err(`keel console: ${(error as Error).message}\n`);
    await view.close();
    return 1;
  }
  const hub = new ViewerHub();
  let server: Awaited<ReturnType<typeof serveViewer>>;
  try {
    server = await serveViewer(hub, {
      port,
      ...(host !== undefined && { host }),
      ops: fleetOps(view, store),
      ...(token !== undefined && { adminToken: token }),
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    io.err(
      code === 'EADDRINUSE'
        ? `keel console: port ${port} is in use; choose another with --port\n`
        : `keel console: cannot serve: ${(error as Error).message}\n`,
    );
    await Promise.allSettled([store.close(), view.close()]);
    return 1;
  }
  io.out(`keel console: ${server.url} (${view.where}; actions ${token === undefined ? 'off: read-only' : 'on'})\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      signals.off('SIGINT', stop);
      signals.off('SIGTERM', stop);
      resolve();
    };
    signals.on('SIGINT', stop);
    signals.on('SIGTERM', stop);
  });
  await server.close();
  hub.close();
  await Promise.allSettled([store.close(), view.close()]);
  io.out('keel console: stopped\n');
  return 0;
}
