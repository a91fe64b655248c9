/** `composer export terraform --out <dir>` | `export registry --out <file>`. */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { usageError, type CommandSpec } from '../../lib/command-line.ts';
import { commandLine, registryCommandHelp, requiredOption, withParts, type CliIo } from './shared.ts';
import type { ComposerParts } from '../index.ts';

export const help: CommandSpec = registryCommandHelp(
  'export terraform --out <dir> | export registry --out <file>',
  'Writes the registry as Terraform inputs (one folder), or every record as {"eventTypes": [...]} JSON (one file).',
  { out: { type: 'string', value: '<dir|file>', description: 'where to write (required)' } },
  1,
);

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const line = commandLine(argv, help, 0, '');
  const what = line.positionals[0];
  if (what !== 'terraform' && what !== 'registry') throw usageError('export supports: export terraform --out <dir>, export registry --out <file>');
  const out = requiredOption(line, 'out', `export ${what} needs --out <${what === 'terraform' ? 'dir' : 'file'}>`);
  if (what === 'registry') return withParts(line, io.env, (parts) => exportRegistry(parts, out, io));
  // Dynamic: the Terraform export is its own module, loaded only for this command.
  const { exportFromComposer } = (await import('../terraform-export.ts')) as typeof import('../terraform-export.ts');
  return withParts(line, io.env, async ({ composer, pubsub }) => {
    const files = await exportFromComposer(composer, pubsub.projectId);
    await mkdir(out, { recursive: true });
    for (const f of files) {
      const target = path.join(out, f.path);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, f.content);
      io.out(`wrote ${target}`);
    }
    return 0;
  });
}

/** Every record as one JSON file, written whole or not at all. */
async function exportRegistry({ registry }: ComposerParts, out: string, io: CliIo): Promise<number> {
  const records = await registry.listEventTypes();
  await mkdir(path.dirname(path.resolve(out)), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify({ eventTypes: records }, null, 2) + '\n');
  await rename(tmp, out);
  io.out(`wrote ${records.length} event type(s) to ${out}`);
  return 0;
}
