/** `composer deprecate <name>`: deprecate a type (drains, then removes its Pub/Sub resources). */
import type { CommandSpec } from '../../lib/command-line.ts';
import { commandLine, ENVIRONMENT, registryDirOption, withParts, type CliIo } from './shared.ts';

export const help: CommandSpec = {
  usage: 'npm run composer -- deprecate <name>',
  summary: 'Deprecates a type: its intake stops, its subscription drains, then its Pub/Sub resources are removed.',
  maxPositionals: 1,
  options: { 'registry-dir': registryDirOption },
  epilog: ENVIRONMENT,
};

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const line = commandLine(argv, help, 1, 'an event-type name');
  const name = line.positionals[0]!;
  return withParts(line, io.env, async ({ composer }) => {
    const r = await composer.deprecate(name);
    io.out(`${name}: ${r.record.status}; provisioning ${r.record.provisioning.state}`);
    for (const c of r.changes) io.out(`  ${c.action} ${c.resource} ${c.name}: ${c.detail}`);
    return 0;
  });
}
