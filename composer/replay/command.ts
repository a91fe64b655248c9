/**
 * `npm run composer -- replay <type> …`: replay a type's dead letters
 * (`--dead-letters`, composer/replay/dead-letters.ts) or re-close an hour that
 * never closed from its staged files (`--hour`, composer/replay/hour.ts).
 * Options are parsed with node:util `parseArgs`; every problem is named.
 *
 * Exit codes as the composer CLI's: 0 ok, 1 refused (unknown type, hour
 * already closed), 2 usage error, 3 Pub/Sub, storage or the registry failed.
 */
import { parseArgs } from 'node:util';
import type { Env } from '../../lib/config.ts';
import { AppError, isAppError } from '../../lib/errors.ts';
import { createPubSub } from '../../lib/gcp/clients.ts';
import { eventTypeNamePattern, resourceNames } from '../../lib/names.ts';
import { openRegistryStore } from '../../lib/registry/open.ts';
import { loadConfig } from '../config.ts';
import { replayDeadLetters, type ReplayResult } from './dead-letters.ts';

export const REPLAY_USAGE = `usage: npm run composer -- replay <type> --dead-letters [--since <time>] [--dry-run] [--limit <n>]
       npm run composer -- replay <type> --hour <YYYY-MM-DDTHH>

Re-publishes the type's dead letters (from its dead-letter subscription) to its topic, once
the cause is fixed (e.g. a missing schema version registered). Each dead letter is
acknowledged only after its re-publish is confirmed; the ETL deduplicates by event id, so an
event already delivered is not delivered twice (its hour closed: it goes to the late location,
minus ids the partition holds).

--hour closes the type's partition of that hour (UTC; its day for a daily type) from its
staged files now, with the ETL's closer: complete if every accepted event is staged, else
as at its deadline. Only if it never closed: a partition with _SUCCESS is refused. Reads the
ETL's variables (STAGING_BUCKET, DATA_BUCKET, GCS_ENDPOINT, REGISTRY_*, PADLOCK_* for a type
with personal fields; etl/config.ts).

options:
  --dead-letters         replay dead letters
  --hour <YYYY-MM-DDTHH> re-close that hour if it never closed
  --since <time>         only those dead-lettered at or after <time> (ISO 8601, e.g. 2026-11-30T14:00Z)
  --dry-run              count and classify them; publish and acknowledge nothing
  --limit <n>            handle at most <n> dead letters this run (default 100000)
  --registry-dir <dir>   registry folder (env REGISTRY_DIR, default .data/registry)
  env PUBSUB_EMULATOR_HOST, GCP_PROJECT select the Pub/Sub endpoint and project

exit codes: 0 ok, 1 refused, 2 usage error, 3 Pub/Sub or registry failure`;

const DEFAULT_LIMIT = 100_000;
const MAX_LIMIT = 1_000_000;

export interface ReplayIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

export type ReplayRequest = { eventType: string; registryDir: string | undefined } & (
  | { kind: 'dead-letters'; sinceMs: number | undefined; dryRun: boolean; limit: number }
  | { kind: 'hour'; hour: string }
);

class UsageError extends Error {}

/** Validates the arguments after `replay`; throws UsageError naming the problem. */
export function parseReplayArgs(argv: readonly string[]): ReplayRequest | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        'dead-letters': { type: 'boolean' },
        since: { type: 'string' },
        'dry-run': { type: 'boolean' },
        limit: { type: 'string' },
        'registry-dir': { type: 'string' },
        hour: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  if (values.help === true) return 'help';
  const [eventType, ...extra] = positionals;
  if (eventType === undefined) throw new UsageError('replay needs an event-type name');
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
  if (!eventTypeNamePattern.test(eventType)) throw new UsageError(`${eventType} is not an event-type name (${eventTypeNamePattern.source})`);
  if (values.hour !== undefined) {
    if (values['dead-letters'] === true) throw new UsageError('give either --dead-letters or --hour, not both');
    for (const only of ['since', 'dry-run', 'limit'] as const) if (values[only] !== undefined) throw new UsageError(`--${only} goes with --dead-letters, not --hour`);
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}$/.test(values.hour)) throw new UsageError(`--hour ${values.hour}: expected YYYY-MM-DDTHH (UTC), e.g. 2026-11-30T14`);
    return { kind: 'hour', eventType, registryDir: values['registry-dir'], hour: values.hour };
  }
  if (values['dead-letters'] !== true) throw new UsageError('replay needs --dead-letters or --hour');
  let sinceMs: number | undefined;
  if (values.since !== undefined) {
    // An ISO 8601 date-time with an explicit zone: a bare local time would mean different hours on different machines.
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(values.since) || !Number.isFinite(Date.parse(values.since))) {
      throw new UsageError(`--since ${values.since}: expected an ISO 8601 time with a zone, e.g. 2026-11-30T14:00Z`);
    }
    sinceMs = Date.parse(values.since);
  }
  let limit = DEFAULT_LIMIT;
  if (values.limit !== undefined) {
    if (!/^\d{1,7}$/.test(values.limit) || Number(values.limit) < 1 || Number(values.limit) > MAX_LIMIT) throw new UsageError(`--limit ${values.limit}: expected a whole number from 1 to ${MAX_LIMIT}`);
    limit = Number(values.limit);
  }
  return { kind: 'dead-letters', eventType, registryDir: values['registry-dir'], sinceMs, dryRun: values['dry-run'] === true, limit };
}

/** The lines printed for a dead-letter replay. */
export function formatReplay(eventType: string, r: ReplayResult, dryRun: boolean): string[] {
  const left = r.beforeSince + r.unreplayable;
  const lines = [
    dryRun
      ? `${eventType}: ${r.pulled} dead letter(s) pulled; ${r.eligible} would be replayed to ${resourceNames.topic(eventType)} (dry run: nothing published or acknowledged)`
      : `${eventType}: ${r.pulled} dead letter(s) pulled; ${r.replayed} replayed to ${resourceNames.topic(eventType)}`,
  ];
  for (const [code, n] of Object.entries(r.byCode).sort()) lines.push(`  ${code}: ${n}`);
  if (left > 0) lines.push(`  left in ${resourceNames.deadLetterSubscription(eventType)}: ${r.beforeSince} dead-lettered before --since, ${r.unreplayable} without eventId, receiveTime or schemaFingerprint`);
  if (r.limited) lines.push(`  stopped at --limit ${r.pulled}: run again for the rest`);
  return lines;
}

/** Runs `replay`; returns the exit code. */
export async function runReplay(argv: readonly string[], env: Env, io: ReplayIo): Promise<number> {
  let request;
  try {
    request = parseReplayArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`error: ${err.message}\n\n${REPLAY_USAGE}`);
    return 2;
  }
  if (request === 'help') {
    io.out(REPLAY_USAGE);
    return 0;
  }
  if (request.kind === 'hour') {
    const { closeHour, formatClose } = await import('./hour.ts');
    const env2: Env = { ...env, REGISTRY_STORE: env.REGISTRY_STORE ?? 'file', ...(request.registryDir === undefined ? {} : { REGISTRY_DIR: request.registryDir }) };
    const outcome = await closeHour(request.eventType, request.hour, env2);
    if (outcome.code === 0) io.out(formatClose(request.eventType, outcome.stdout));
    else for (const line of outcome.stderr.trim().split('\n').filter((l) => !l.startsWith('{'))) io.err(line);
    return outcome.code;
  }
  try {
    const config = loadConfig({ ...env, REGISTRY_STORE: env.REGISTRY_STORE ?? 'file', ...(request.registryDir === undefined ? {} : { REGISTRY_DIR: request.registryDir }) });
    const registry = openRegistryStore(config.registry, config.projectId);
    try {
      if ((await registry.getEventType(request.eventType)) === undefined) {
        throw new AppError('EVENT_TYPE_NOT_FOUND', { message: `event type ${request.eventType} is not registered` });
      }
    } finally {
      await registry.close?.();
    }
    const pubsub = createPubSub({ projectId: config.projectId, emulatorHost: config.pubsubEmulatorHost });
    try {
      const result = await replayDeadLetters(pubsub, { eventType: request.eventType, sinceMs: request.sinceMs, dryRun: request.dryRun, limit: request.limit });
      for (const line of formatReplay(request.eventType, result, request.dryRun)) io.out(line);
      return 0;
    } finally {
      await pubsub.close().catch(() => undefined);
    }
  } catch (err) {
    if (isAppError(err)) {
      io.err(`${err.code}: ${err.message}`);
      if (err.code === 'CONFIG_INVALID') return 2;
      return err.retryable || err.code === 'INTERNAL' ? 3 : 1;
    }
    io.err(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 3;
  }
}
