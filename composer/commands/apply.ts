/** `composer apply -f <file|dir> [--force] [--prune]`: register or update specs and provision their resources. */
import type { CommandSpec } from '../../lib/command-line.ts';
import { commandLine, fileOption, flag, registryCommandHelp, requiredOption, unlisted, withParts, type CliIo } from './shared.ts';

export const help: CommandSpec = registryCommandHelp('apply -f <file|dir> [--force] [--prune]', 'Registers or updates the specs and provisions their resources.', {
  file: fileOption('file|dir'),
  force: { type: 'boolean', description: 'accept an incompatible schema change' },
  prune: { type: 'boolean', description: 'deprecate active types absent from the folder' },
});

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const line = commandLine(argv, help, 0, '');
  const file = requiredOption(line, 'file', 'apply needs -f <file|dir>');
  return withParts(line, io.env, async ({ composer }) => {
    const { applySpecs } = await import('../index.ts');
    const results = await applySpecs(composer, file, { force: flag(line, 'force') });
    if (flag(line, 'prune')) {
      for (const name of await unlisted(composer.registry, new Set(results.map((r) => r.eventType)))) {
        results.push(await composer.deprecate(name));
      }
    }
    for (const r of results) {
      const what = r.action === 'none' ? 'unchanged' : r.action === 'create' ? 'created' : 'updated';
      io.out(`${r.eventType}: ${what}${r.newVersion === undefined ? '' : ` (schema version ${r.newVersion})`}; provisioning ${r.record.provisioning.state}`);
      for (const d of r.details) io.out(`  registry: ${d}`);
      for (const c of r.changes) io.out(`  ${c.action} ${c.resource} ${c.name}: ${c.detail}`);
    }
    return 0;
  });
}
