/** `composer deprecate <name>`: deprecate a type (drains, then removes its Pub/Sub resources). */
import type { CommandSpec } from '../../lib/command-line.ts';
import { registryCommandHelp, withNamedType, type CliIo } from './shared.ts';

export const help: CommandSpec = registryCommandHelp('deprecate <name>', 'Deprecates a type: its intake stops, its subscription drains, then its Pub/Sub resources are removed.', {}, 1);

export function run(argv: readonly string[], io: CliIo): Promise<number> {
  return withNamedType(argv, help, io, async ({ composer }, name) => {
    const r = await composer.deprecate(name);
    io.out(`${name}: ${r.record.status}; provisioning ${r.record.provisioning.state}`);
    for (const c of r.changes) io.out(`  ${c.action} ${c.resource} ${c.name}: ${c.detail}`);
    return 0;
  });
}
