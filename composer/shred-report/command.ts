/**
 * `npm run composer -- shred-report <userId> …`: prints the shred report of a
 * user (report.ts) as text, or JSON with `--json`. Options are validated once
 * here (node:util parseArgs + zod); the padlock secret is read from the
 * environment variable named by `--secret-env`, never from the command line.
 *
 * Exit codes: 0 the report was made (whatever its verdict), 2 usage error,
 * 3 storage or padlock failed.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { Env } from '../../lib/config.ts';
import { urlListVar, urlVar } from '../../lib/config.ts';
import { isAppError } from '../../lib/errors.ts';
import { createStorage } from '../../lib/gcp/clients.ts';
import { createPadlockClient } from '../../lib/padlock-client/index.ts';
import { userIdProblem } from '../../lib/user-id.ts';
import { shredReport, type ShredReport } from './report.ts';
import { formatShredReport } from './format.ts';

export const shredReportUsage = `usage: npm run composer -- shred-report <userId> --padlock <url[,url…]> --service <name> --secret-env <VAR> [options]

Lists every closed partition, event type and field that holds encrypted values
of <userId> (found through each partition's subject index) with counts, and
whether each value still decrypts. Run it before deleting the user (values
decrypt) and after (none does: padlock answers that the keys are deleted).

options:
  --padlock <url[,url…]>     padlock's URL (one per deployment group, primary first)
  --service <name>           padlock service to ask for the user's keys; must be entitled
                             to the key context of the values (e.g. events)
  --secret-env <VAR>         environment variable holding that service's secret
  --data-bucket <name>       the data bucket (default local-data)
  --storage-endpoint <url>   Cloud Storage endpoint (the GCS emulator locally)
  --project <id>             GCP project (default local-project)
  --type <name>              look in this event type only (repeatable; default: every type folder)
  --json                     print the report as JSON
  --help                     print this help

exit codes: 0 report made (see its verdict), 2 usage error, 3 storage or padlock failure`;

export interface ShredReportCommandOptions {
  userId: string;
  padlockUrls: string[];
  service: string;
  secret: string;
  dataBucket: string;
  storageEndpoint: string | undefined;
  projectId: string;
  eventTypes: string[] | undefined;
  json: boolean;
}

/** A usage error (exit 2), with a message naming what is wrong. */
export class ShredReportUsageError extends Error {}

const flags = z.object({
  padlock: urlListVar,
  service: z.string().trim().min(1, 'expected the padlock service name'),
  'secret-env': z.string().trim().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected the name of an environment variable'),
  'data-bucket': z.string().trim().min(1).default('local-data'),
  'storage-endpoint': urlVar.optional(),
  project: z.string().trim().min(1).default('local-project'),
  type: z.array(z.string().trim().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'expected an event type name')).optional(),
});

/** Parses the command's argv (after `shred-report`); `help` if `--help` was given. */
export function parseShredReportArgs(argv: readonly string[], env: Env): ShredReportCommandOptions | 'help' {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ShredReportUsageError(err instanceof Error ? err.message : String(err));
  }
  if (parsed.values.help === true) return 'help';
  if (parsed.positionals.length !== 1) throw new ShredReportUsageError(`shred-report needs exactly one <userId> (got ${parsed.positionals.length})`);
  const userId = parsed.positionals[0]!;
  const problem = userIdProblem(userId);
  if (problem !== undefined) throw new ShredReportUsageError(`<userId> is not a user id: ${problem}`);
  const r = flags.safeParse(parsed.values);
  if (!r.success) {
    throw new ShredReportUsageError(r.error.issues.map((i) => `--${i.path[0] === undefined ? '' : String(i.path[0])}: ${i.message}`).join('; '));
  }
  const secret = env[r.data['secret-env']];
  if (secret === undefined || secret === '') throw new ShredReportUsageError(`${r.data['secret-env']} (from --secret-env) is not set`);
  return {
    userId,
    padlockUrls: r.data.padlock,
    service: r.data.service,
    secret,
    dataBucket: r.data['data-bucket'],
    storageEndpoint: r.data['storage-endpoint'],
    projectId: r.data.project,
    eventTypes: r.data.type,
    json: parsed.values.json === true,
  };
}

const OPTIONS = {
  padlock: { type: 'string' },
  service: { type: 'string' },
  'secret-env': { type: 'string' },
  'data-bucket': { type: 'string' },
  'storage-endpoint': { type: 'string' },
  project: { type: 'string' },
  type: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

/** Runs `shred-report`; returns the exit code. */
export async function shredReportCommand(argv: readonly string[], env: Env, io: { out: (line: string) => void; err: (line: string) => void }): Promise<number> {
  let options: ShredReportCommandOptions | 'help';
  try {
    options = parseShredReportArgs(argv, env);
  } catch (err) {
    if (!(err instanceof ShredReportUsageError)) throw err;
    io.err(`error: ${err.message}\n\n${shredReportUsage}`);
    return 2;
  }
  if (options === 'help') {
    io.out(shredReportUsage);
    return 0;
  }
  let report: ShredReport;
  try {
    report = await shredReport({
      storage: createStorage({ projectId: options.projectId, apiEndpoint: options.storageEndpoint }),
      dataBucket: options.dataBucket,
      keys: createPadlockClient({ url: options.padlockUrls, service: options.service, secret: options.secret }),
      userId: options.userId,
      ...(options.eventTypes === undefined ? {} : { eventTypes: options.eventTypes }),
    });
  } catch (err) {
    io.err(isAppError(err) ? `${err.code}: ${err.message}` : `error: ${err instanceof Error ? err.message : String(err)}`);
    return 3;
  }
  if (options.json) io.out(JSON.stringify(report, null, 2));
  else for (const line of formatShredReport(report)) io.out(line);
  return 0;
}
