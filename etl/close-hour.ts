/**
 * `node --import tsx etl/close-hour.ts <type> <YYYY-MM-DDTHH>`: closes one
 * period of a type from its staged files now, with the worker's own closer
 * (`PartitionCloser.closePartition`, forced: complete if the audit matches,
 * else as at its deadline), but only if it never closed. What
 * `npm run composer -- replay <type> --hour H` runs (composer/replay/hour.ts),
 * in a process of its own because the composer may not import the ETL.
 * Configuration: etl/config.ts `loadConfig` (the ETL's variables).
 *
 * Prints one JSON line: `{"period", "closedBy", "recordCount", "accepted"}`.
 * Exit codes: 0 closed, 1 refused (already closed, not over yet, being closed
 * by a worker, nothing staged or accepted, unknown type), 2 bad arguments or
 * configuration (personal fields without PADLOCK_URL included), 3 storage or
 * the registry failed.
 */
import { AppError, isAppError } from '../lib/errors.ts';
import { createStorage } from '../lib/gcp/clients.ts';
import { createLogger } from '../lib/logger.ts';
import { googleIdTokens } from '../lib/padlock-client/google-id-token.ts';
import { createPadlockClient } from '../lib/padlock-client/index.ts';
import { periodOf, successObjectName, type Period } from '../lib/partitions.ts';
import { openRegistryStore } from '../lib/registry/open.ts';
import { auditTypePrefix, hourOfAuditName } from './audit.ts';
import { PartitionCloser } from './closer.ts';
import type { TypeContext } from './context.ts';
import { loadConfig, type EtlMainConfig } from './config.ts';
import { createEncryptionTransform } from './encryption-transform.ts';
import { LateWriter } from './late.ts';
import { stagingPeriodPrefix } from './layout.ts';
import { newMetrics } from './metrics.ts';
import { refusalError } from './personal-guard.ts';
import { SchemaResolver } from './schemas.ts';
import { exists, listObjects } from './storage-io.ts';
import { identityTransform, type RecordTransform } from './transform.ts';

const HOUR_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}$/;

/** The hour argument as epoch ms, or a BAD_REQUEST naming it. */
export function parseHour(hour: string): number {
  const ms = Date.parse(`${hour}:00:00.000Z`);
  if (!HOUR_PATTERN.test(hour) || !Number.isFinite(ms) || new Date(ms).toISOString().slice(0, 13) !== hour) {
    throw new AppError('BAD_REQUEST', { message: `hour ${hour}: expected YYYY-MM-DDTHH (UTC), e.g. 2026-11-30T14` });
  }
  return ms;
}

function transformOf(config: EtlMainConfig, logger: ReturnType<typeof createLogger>): RecordTransform {
  if (config.padlock === undefined) return identityTransform;
  const { urls, idToken, service, secret, keyContext } = config.padlock;
  const keys = createPadlockClient({ url: urls, service, secret, context: keyContext, ...(idToken ? { idToken: googleIdTokens() } : {}) });
  return createEncryptionTransform({ keys, keyContext, logger });
}

/** Closes `eventType`'s period holding `hour` if it never closed; returns what it wrote. */
export async function closeHour(config: EtlMainConfig, eventType: string, hour: string, now: () => number = Date.now) {
  const hourMs = parseHour(hour);
  const logger = createLogger({ component: 'etl', level: 'WARNING', labels: { instanceId: config.instanceId }, sink: (line) => process.stderr.write(line + '\n') });
  const registry = openRegistryStore(config.registry, config.projectId);
  const record = await registry.getEventType(eventType);
  if (record === undefined || record.versions.length === 0) throw new AppError('EVENT_TYPE_NOT_FOUND', { message: `event type ${eventType} is not registered` });
  const period: Period = periodOf(hourMs, record.settings.partitioning);
  if (now() < period.endMs) throw new AppError('CONFLICT', { message: `${eventType} ${period.key} is not over yet (ends ${new Date(period.endMs).toISOString()})` });
  const storage = createStorage({ projectId: config.projectId, apiEndpoint: config.storageEndpoint });
  const data = storage.bucket(config.dataBucket);
  const staging = storage.bucket(config.stagingBucket);
  if (await exists(data, successObjectName(eventType, period))) {
    throw new AppError('CONFLICT', { message: `${eventType} ${period.key} already closed (gs://${config.dataBucket}/${successObjectName(eventType, period)}); a closed partition is never re-closed` });
  }
  const staged = await listObjects(staging, stagingPeriodPrefix(eventType, period));
  const accepted = (await listObjects(staging, auditTypePrefix(eventType))).some((o) => {
    const h = hourOfAuditName(eventType, o.name);
    return h !== undefined && periodOf(Date.parse(`${h}:00:00.000Z`), period.granularity).key === period.key;
  });
  if (staged.length === 0 && !accepted) throw new AppError('NOT_FOUND', { message: `${eventType} ${period.key}: nothing staged and nothing accepted` });
  const transform = transformOf(config, logger);
  const schemas = new SchemaResolver(eventType, registry, transform, config.tuning.schemaRefreshMinMs, now);
  const refused = schemas.load(record);
  if (refused.length > 0) throw refusalError(eventType, refused);
  const ctx: TypeContext = {
    eventType,
    granularity: record.settings.partitioning,
    priority: record.settings.priority,
    retentionDays: record.settings.retentionDays,
    staging,
    data,
    schemas,
    tuning: config.tuning,
    now,
    logger: logger.child({ eventType }),
    instanceId: config.instanceId,
    metrics: newMetrics(),
  };
  const closer = new PartitionCloser(ctx, new LateWriter(ctx));
  const manifest = await closer.closePartition(period, { force: true });
  // undefined: another closer holds the period's lease right now (a worker is closing it).
  if (manifest === undefined) throw new AppError('CONFLICT', { message: `${eventType} ${period.key} is being closed by a worker (its lease is held); try again in a few minutes` });
  return { period: period.key, closedBy: manifest.closedBy, recordCount: manifest.recordCount, accepted: manifest.audit.accepted };
}

async function main(): Promise<void> {
  const [eventType, hour, ...rest] = process.argv.slice(2).filter((a) => a !== '--');
  if (eventType === undefined || hour === undefined || rest.length > 0) {
    process.stderr.write('usage: node --import tsx etl/close-hour.ts <type> <YYYY-MM-DDTHH>\n');
    process.exit(2);
  }
  try {
    const config = loadConfig(process.env);
    process.stdout.write(JSON.stringify(await closeHour(config, eventType, hour)) + '\n');
    process.exit(0);
  } catch (err) {
    const e = isAppError(err) ? err : undefined;
    process.stderr.write(`${e?.code ?? 'INTERNAL'}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(e === undefined || e.retryable ? 3 : e.code === 'CONFIG_INVALID' || e.code === 'BAD_REQUEST' ? 2 : 1);
  }
}

if (process.argv[1] !== undefined && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) await main();
