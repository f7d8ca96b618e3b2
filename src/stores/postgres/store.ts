import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { invalidOptions, KeelError } from '../../core/errors.js';
import { withDriverErrors } from '../driverErrors.js';
import type { SharedSagas } from '../sagaStore.js';
import type {
  BusBridge,
  CancelWatchable,
  DeadTaskRemoval,
  DurableBus,
  FleetBreakers,
  QueuePauses,
  Schedules,
  Store,
  Transactional,
  TransactionalDurableBus,
  Watchable,
  WatchedDurableBus,
} from '../store.js';
import { postgresBreakers } from './breakers.js';
import { type BusBridgeOptions, postgresBus } from './bus.js';
import { postgresDurableBus } from './durableBus.js';
import { Listener } from './listen.js';
import { postgresMigrations } from './migrations.js';
import { postgresOperator } from './operator.js';
import { postgresSagas } from './sagas.js';
import { postgresSchedules } from './schedules.js';
import { cancelChannelOf, postgresTasks, type Queryable } from './tasks.js';

/** Options of `postgresStore`. */
export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database`. */
  connectionString: string;
  /** The schema keel's tables live in (created when missing); apps sharing a database use one each. Default `keel`. */
  schema?: string;
  /** Connections in the pool; default 10. One more is opened for LISTEN when queues or the bus watch. */
  poolSize?: number;
  /** How long opening a connection may take before it fails; default 5000. */
  connectTimeoutMs?: number;
  /**
   * How long a runtime holds a saga without saving or renewing it; after that
   * another runtime on the same schema resumes it. Default 30,000.
   */
  sagaLeaseMs?: number;
  /**
   * Carry bus events between the runtimes on this schema: the topic patterns
   * to carry (`['order.>', 'user.*']`), or `true` for every topic. Default off:
   * in-process delivery stays as it was. Each carried publish costs a database
   * write (batched per tick), and `true` carries keel's own events too
   * (`task.*`, `breaker.*`, `saga.*`), so name the topics you need. Payloads
   * must be JSON; delivery to other runtimes is at-most-once, like the local bus.
   */
  bus?: boolean | readonly string[];
  /** Shown in `pg_stat_activity.application_name` for every connection of this store; default `keel`. */
  applicationName?: string;
  /** Failures no caller sees (the LISTEN connection dropped, an idle pooled connection broke). Default: ignored, since polling covers them. */
  onError?: (error: unknown, detail: string) => void;
}

const KNOWN = new Set([
  'connectionString',
  'schema',
  'poolSize',
  'connectTimeoutMs',
  'sagaLeaseMs',
  'bus',
  'onError',
  'applicationName',
]);
const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** The Postgres store: what the runtime uses, plus Postgres-only extras. */
// The bus bridge exists only with the `bus` option.
export interface PostgresStore
  extends Store,
    Watchable,
    CancelWatchable,
    Transactional,
    SharedSagas,
    FleetBreakers,
    Schedules,
    DurableBus,
    TransactionalDurableBus,
    WatchedDurableBus,
    DeadTaskRemoval,
    QueuePauses,
    Partial<BusBridge> {
  readonly kind: 'postgres';
  /** The schema this store's tables live in. */
  readonly schema: string;
}

/** The `pg` module's default export. */
type Pg = typeof pg;
let loadingPg: Promise<Pg> | undefined;

/**
 * `pg` is an optional peer dependency: apps on SQLite or memory never install
 * it, so it is loaded on the first `open()` instead of when keel is imported.
 */
function loadPg(): Promise<Pg> {
  loadingPg ??= import('pg').then(
    (m) => (m as { default?: Pg }).default ?? (m as unknown as Pg),
    (error: unknown) => {
      loadingPg = undefined;
      const code = (error as { code?: string } | null)?.code;
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
        throw new KeelError(
          'MISSING_DEPENDENCY',
          "postgresStore needs the package 'pg', which is not installed: run `npm i pg`",
          { cause: error },
        );
      }
      throw error;
    },
  );
  return loadingPg;
}

/** bigint (counts, epoch ms, ids) as a JS number: every value keel writes is below 2^53. */
function typeParsers(driver: Pg) {
  return {
    getTypeParser(oid: number, format?: 'text' | 'binary') {
      if (oid === 20 && format !== 'binary') return (v: string) => Number(v);
      return driver.types.getTypeParser(oid, format as 'text');
    },
  };
}

/**
 * A store on PostgreSQL (`pg`), shared by every runtime pointed at the same
 * database and schema: queues are claimed with `FOR UPDATE SKIP LOCKED`,
 * leases hand a dead process's tasks to another, `LISTEN/NOTIFY` wakes idle
 * workers (polling stays as the fallback), sagas are owned by one runtime at a
 * time, and the bus can carry events between processes (`bus` option).
 */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  const o = checkOptions(options);
  const quoted = `"${o.schema}"`;
  const tag = createHash('sha1').update(o.schema).digest('hex').slice(0, 12);
  const channel = `keel_${tag}`;
  const owner = randomUUID();
  const where = describeTarget(o.connectionString);
  let pool: pg.Pool | undefined;
  let listener: Listener | undefined;
  let opening: Promise<void> | undefined;

  const db = (): Queryable => {
    if (!pool) throw new KeelError('STORE_UNAVAILABLE', `postgresStore(${where}) is not open; call rt.start() first`);
    return pool as unknown as Queryable;
  };
  const report = (error: unknown, detail: string) => {
    try {
      o.onError?.(error, detail);
    } catch {
      // The reporter's own failure has nowhere to go.
    }
  };
  let driver: Pg | undefined;
  const clientConfig = (d: Pg): pg.ClientConfig => ({
    connectionString: o.connectionString,
    connectionTimeoutMillis: o.connectTimeoutMs,
    application_name: o.applicationName,
    types: typeParsers(d),
  });
  const listen = () => {
    if (!driver) throw new KeelError('STORE_UNAVAILABLE', `postgresStore(${where}) is not open; call rt.start() first`);
    const d = driver;
    listener ??= new Listener(
      () => new d.Client(clientConfig(d)),
      (e) => report(e, `postgresStore(${where}): LISTEN connection failed`),
    );
    return listener;
  };

  const tasks = postgresTasks(db, quoted, channel, tag);
  const sagas = postgresSagas(db, quoted, tag, owner, o.sagaLeaseMs, { listen, channel: `${channel}_sagas` });

  // Fleet breakers (issue #18): their own table, channel and file.
  const breakers = postgresBreakers({
    connect: () => {
      if (!pool) throw new KeelError('STORE_UNAVAILABLE', `postgresStore(${where}) is not open; call rt.start() first`);
      return pool.connect();
    },
    listen,
    schema: quoted,
    channel: `${channel}_breakers`,
  });

  // Durable bus subscriptions (issue #16.5): their events become tasks in the recording transaction.
  const durable = postgresDurableBus({
    db,
    connect: () => {
      if (!pool) throw new KeelError('STORE_UNAVAILABLE', `postgresStore(${where}) is not open; call rt.start() first`);
      return pool.connect();
    },
    schema: quoted,
    enqueueOn: tasks.enqueueOn,
    listen: () => (pool ? listen() : undefined),
    channel: `${channel}_durables`,
  });

  // Schedules (issue #15): the slot's compare-and-set and the enqueue share one transaction.
  const schedules = postgresSchedules({
    connect: () => {
      if (!pool) throw new KeelError('STORE_UNAVAILABLE', `postgresStore(${where}) is not open; call rt.start() first`);
      return pool.connect();
    },
    db,
    enqueueOn: tasks.enqueueOn,
    schema: quoted,
  });

  // Operator actions (issue #19): deleting dead tasks, the fleet-wide pause flag.
  const operator = postgresOperator({
    db,
    listen: () => (pool ? listen() : undefined),
    schema: quoted,
    channel: `${channel}_pauses`,
  });

  const store: PostgresStore = {
    ...tasks,
    ...sagas,
    ...breakers,
    ...schedules,
    ...durable,
    ...operator,
    kind: 'postgres',
    schema: o.schema,

    open() {
      if (pool) return Promise.resolve();
      opening ??= (async () => {
        driver ??= await loadPg();
        const p = new driver.Pool({ ...clientConfig(driver), max: o.poolSize });
        // A pooled connection that breaks while idle emits 'error'; unhandled, it would crash the process.
        p.on('error', (error) => report(error, `postgresStore(${where}): an idle connection failed`));
        try {
          await migrate(p, o.schema, quoted);
        } catch (error) {
          await p.end().catch(() => {});
          if (error instanceof KeelError) throw error;
          throw new KeelError(
            'STORE_UNAVAILABLE',
            `postgresStore(${where}): cannot open: ${(error as Error).message || String(error)}`,
            { cause: error },
          );
        }
        pool = p;
      })().finally(() => {
        opening = undefined;
      });
      return opening;
    },

    async close() {
      await opening?.catch(() => {});
      const p = pool;
      const l = listener;
      pool = undefined;
      listener = undefined;
      await l?.close();
      await p?.end();
    },

    /** Wakes `onWake` when another connection enqueues on `queue` (after its transaction commits). */
    watch(queue: string, onWake: () => void): () => void {
      // Closed: a LISTEN connection opened now would outlive the store and keep the process alive.
      if (!pool) return () => {};
      return listen().listen(channel, (payload) => {
        if (payload === undefined || payload === queue) onWake();
      });
    },

    /** Calls `onCancel(id)` when a task of `queue` is cancelled by any connection (`CancelWatchable`). */
    watchCancels(queue: string, onCancel: (id: string) => void): () => void {
      if (!pool) return () => {};
      return listen().listen(cancelChannelOf(channel), (payload) => {
        if (typeof payload !== 'string') return;
        const at = payload.indexOf(':');
        if (at > 0 && payload.slice(at + 1) === queue) onCancel(payload.slice(0, at));
      });
    },

    /** Enqueues inside the caller's open transaction on `tx` (a `pg` client): the tasks commit or roll back with it. */
    enqueueWith(tx: unknown, queue: string, list: Parameters<Store['enqueue']>[1], now: number) {
      return tasks.enqueueOn(tx as Queryable, queue, list, now);
    },
  };
  if (o.bus !== false) {
    const patterns = o.bus === true ? ['>'] : [...o.bus];
    const bridge: BusBridgeOptions = {
      db,
      listen,
      schema: quoted,
      channel: `${channel}_bus`,
      tag,
      owner,
    };
    store.bridgeBus = postgresBus(bridge, patterns);
  }
  // A dropped connection or a failing statement reaches callers as STORE_UNAVAILABLE, never a raw DatabaseError.
  return withDriverErrors(`postgresStore(${where})`, store);
}

function checkOptions(
  options: PostgresStoreOptions,
): Required<Omit<PostgresStoreOptions, 'onError'>> & Pick<PostgresStoreOptions, 'onError'> {
  const owner = 'postgresStore';
  if (typeof options !== 'object' || options === null) throw invalidOptions(owner, 'options', 'must be an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw invalidOptions(owner, key, `is not an option (known: ${[...KNOWN].join(', ')})`);
  }
  const { connectionString, schema = 'keel', poolSize = 10, connectTimeoutMs = 5000, sagaLeaseMs = 30_000 } = options;
  if (typeof connectionString !== 'string' || connectionString === '') {
    throw invalidOptions(owner, 'connectionString', 'must be a non-empty postgres:// URL');
  }
  if (typeof schema !== 'string' || !IDENT.test(schema)) {
    throw invalidOptions(
      owner,
      'schema',
      `must be a plain identifier (letters, digits, _; at most 63), got ${String(schema)}`,
    );
  }
  const int = (name: string, v: unknown, min: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw invalidOptions(owner, name, `must be an integer >= ${min}, got ${String(v)}`);
    }
    return v;
  };
  const bus = options.bus ?? false;
  if (typeof bus !== 'boolean') {
    if (!Array.isArray(bus) || bus.some((p) => typeof p !== 'string' || p === '')) {
      throw invalidOptions(owner, 'bus', 'must be true, false or an array of topic patterns');
    }
  }
  const applicationName = options.applicationName ?? 'keel';
  if (typeof applicationName !== 'string' || applicationName.length > 63) {
    throw invalidOptions(owner, 'applicationName', 'must be a string of at most 63 characters');
  }
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw invalidOptions(owner, 'onError', 'must be a function (error, detail) => void');
  }
  return {
    connectionString,
    schema,
    poolSize: int('poolSize', poolSize, 1),
    connectTimeoutMs: int('connectTimeoutMs', connectTimeoutMs, 1),
    sagaLeaseMs: int('sagaLeaseMs', sagaLeaseMs, 1),
    bus,
    applicationName,
    onError: options.onError,
  };
}

/** host:port/database for titles and messages, never the password. */
export function describeTarget(connectionString: string): string {
  try {
    const u = new URL(connectionString);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return 'the configured database';
  }
}

/**
 * Brings the schema to the latest version. Several processes may start at
 * once: a transaction-scoped advisory lock per schema lets one migrate while
 * the others wait, then find nothing left to do.
 */
async function migrate(pool: pg.Pool, schema: string, quoted: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`keel:${schema}`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${quoted}.migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const { rows } = await client.query(`SELECT coalesce(max(version), 0)::int AS v FROM ${quoted}.migrations`);
      const version = (rows[0] as { v: number }).v;
      if (version > postgresMigrations.length) {
        throw new KeelError(
          'STORE_UNAVAILABLE',
          `postgresStore: schema '${schema}' is at version ${version}, newer than this keel knows (${postgresMigrations.length})`,
        );
      }
      for (let v = version; v < postgresMigrations.length; v++) {
        await client.query(postgresMigrations[v]!(quoted));
        await client.query(`INSERT INTO ${quoted}.migrations (version) VALUES ($1)`, [v + 1]);
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  } finally {
    client.release();
  }
}
