import { invalidOptions } from '../../core/errors.js';
import { encodeValue } from '../../core/json.js';
import { describeValue, OptionReader } from '../../core/options.js';
import { cronSlots, everySlots, type MissedPolicy, parseCron, type Slots } from './slots.js';

/** Options of `rt.schedule(name, options)` (DESIGN.md, "Queue"). */
export interface ScheduleOptions {
  /** A 5-field cron expression (minute hour day-of-month month day-of-week) or a nickname (`@hourly`); seconds are not supported. */
  cron?: string;
  /** A fixed interval in ms; slots fall on multiples of it since the epoch. Give `cron` or `everyMs`, not both. */
  everyMs?: number;
  /** IANA time zone the cron is read in (`Europe/Berlin`); default UTC. Only with `cron`. */
  timezone?: string;
  /** The queue each slot's task goes to. */
  queue: string;
  /** The task's payload (plain JSON); default null. */
  payload?: unknown;
  /** Slots that passed while no process ran the schedule: `skip` (default), `latest` or `all` (at most 100). */
  missed?: MissedPolicy;
}

/** A checked definition: what the store keeps (as JSON) and compares on re-registration. */
export interface ScheduleDefinition {
  cron?: string;
  everyMs?: number;
  timezone?: string;
  queue: string;
  /** JSON text. */
  payload: string;
  missed: MissedPolicy;
}

const KNOWN = ['cron', 'everyMs', 'timezone', 'queue', 'payload', 'missed'];
const MISSED: readonly MissedPolicy[] = ['skip', 'latest', 'all'];

/** Throws `INVALID_OPTIONS` unless `name` can name a schedule (it becomes part of task keys). */
export function checkScheduleName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name === '') {
    throw invalidOptions('schedule', 'name', `must be a non-empty string, got ${describeValue(name)}`);
  }
}

/** Checks `options` of schedule `name`; every refusal is `INVALID_OPTIONS` naming the option and its value. */
export function resolveScheduleOptions(name: string, options: unknown): ScheduleDefinition {
  const owner = `schedule('${name}')`;
  const r = new OptionReader(owner, options, KNOWN, 'a schedule option');
  const v = r.values;
  if ((v.cron === undefined) === (v.everyMs === undefined)) {
    throw invalidOptions(
      owner,
      v.cron === undefined ? 'cron' : 'everyMs',
      v.cron === undefined
        ? 'or everyMs is required (give exactly one)'
        : 'cannot be given with cron (give exactly one)',
    );
  }
  const timezone = r.string('timezone', 'an IANA time zone name');
  if (timezone !== undefined) {
    if (v.cron === undefined) throw invalidOptions(owner, 'timezone', 'applies to cron only, not to everyMs');
    checkTimezone(owner, timezone);
  }
  const queue = r.string('queue', 'the name of a queue');
  if (queue === undefined) throw invalidOptions(owner, 'queue', 'is required: the queue each slot enqueues a task on');
  const missed = v.missed ?? 'skip';
  if (!MISSED.includes(missed as MissedPolicy)) {
    throw invalidOptions(owner, 'missed', `must be 'skip', 'latest' or 'all', got ${describeValue(missed)}`);
  }
  const payload = encodeValue(v.payload ?? null, `${owner}: payload`, 'payload');
  const base = { queue, payload, missed: missed as MissedPolicy };
  if (v.everyMs !== undefined) return { everyMs: r.int('everyMs', 0, 1), ...base };
  const cron = checkCron(owner, r.string('cron', 'a cron expression') as string, timezone);
  return { cron, ...(timezone !== undefined && { timezone }), ...base };
}

function checkTimezone(owner: string, timezone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw invalidOptions(owner, 'timezone', `'${timezone}' is not a known IANA time zone`);
  }
}

function checkCron(owner: string, cron: string, timezone: string | undefined): string {
  const expression = cron.trim();
  const fields = expression.split(/\s+/).length;
  if (!expression.startsWith('@') && fields !== 5) {
    const why =
      fields === 6 || fields === 7
        ? `has ${fields} fields; seconds${fields === 7 ? ' and years' : ''} are not supported: use 5 (minute hour day-of-month month day-of-week)`
        : `has ${fields} field${fields === 1 ? '' : 's'}; a cron has 5 (minute hour day-of-month month day-of-week)`;
    throw invalidOptions(owner, 'cron', `'${cron}' ${why}`);
  }
  let slots: Slots;
  try {
    slots = cronSlots(parseCron(expression, timezone));
  } catch (error) {
    throw invalidOptions(owner, 'cron', `'${cron}' is not a valid cron expression: ${(error as Error).message}`);
  }
  // A date that never comes (February 30th) would leave a schedule that never fires.
  if (slots.after(Date.UTC(2000, 0, 1)) === undefined) {
    throw invalidOptions(owner, 'cron', `'${cron}' never fires`);
  }
  return expression;
}

/** The slots of a checked definition. */
export function slotsOf(d: Pick<ScheduleDefinition, 'cron' | 'everyMs' | 'timezone'>): Slots {
  return d.everyMs !== undefined ? everySlots(d.everyMs) : cronSlots(parseCron(d.cron!, d.timezone));
}
