/** `composer plan -f <file|dir> [--prune]`: what apply would change, changing nothing. */
import type { CommandSpec } from '../../lib/command-line.ts';
import { formatProblems, loadSpecs } from '../spec.ts';
import { commandLine, fileOption, flag, invalidSpecs, registryCommandHelp, requiredOption, unlisted, withParts, type CliIo } from './shared.ts';

export const help: CommandSpec = registryCommandHelp('plan -f <file|dir> [--prune]', 'Shows what apply would change, changing nothing; exit 1 if a spec would be refused.', {
  file: fileOption('file|dir'),
  force: { type: 'boolean', description: 'plan as apply --force would' },
  prune: { type: 'boolean', description: 'also show the deprecations of active types absent from the folder' },
});

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const line = commandLine(argv, help, 0, '');
  const file = requiredOption(line, 'file', 'plan needs -f <file|dir>');
  const { specs, problems } = await loadSpecs(file);
  if (problems.length > 0) throw invalidSpecs(formatProblems(problems));
  return withParts(line, io.env, async ({ composer }) => {
    const { mapConcurrent } = await import('../index.ts');
    const plans = await mapConcurrent(specs, 8, ({ spec }) => composer.plan(spec, { force: flag(line, 'force') }));
    let refused = 0;
    let changes = 0;
    for (const p of plans) {
      if (p.error !== undefined) {
        refused++;
        io.out(`${p.eventType}: REFUSED ${p.error.code}: ${p.error.message}`);
        continue;
      }
      if (p.registry.action === 'none' && p.resources.length === 0) continue;
      io.out(`${p.eventType}:`);
      for (const d of p.registry.details) io.out(`  registry: ${d}`);
      for (const c of p.resources) io.out(`  ${c.action} ${c.resource} ${c.name}: ${c.detail}`);
      changes += p.registry.details.length + p.resources.length;
    }
    if (flag(line, 'prune')) {
      for (const name of await unlisted(composer.registry, new Set(specs.map((s) => s.spec.name)))) {
        io.out(`${name}:\n  registry: status: active → deprecated (not in ${file}; --prune)`);
        changes++;
      }
    }
    io.out(changes === 0 && refused === 0 ? 'no changes' : `${changes} change(s)${refused > 0 ? `, ${refused} spec(s) refused` : ''}`);
    return refused > 0 ? 1 : 0;
  });
}
