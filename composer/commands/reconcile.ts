/** `composer reconcile [<name>]`: re-run provisioning (e.g. to finish draining). */
import type { CommandSpec } from '../../lib/command-line.ts';
import { commandLine, registryCommandHelp, withParts, type CliIo } from './shared.ts';

export const help: CommandSpec = registryCommandHelp('reconcile [<name>]', "Re-runs provisioning of one type, or of every type (e.g. to finish a deprecated type's draining).", {}, 1);

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const line = commandLine(argv, help, 0, '');
  const name = line.positionals[0];
  return withParts(line, io.env, async ({ composer }) => {
    const changes = name === undefined ? await composer.reconcileAll() : (await composer.reconcile(name)).changes;
    for (const c of changes) io.out(`${c.eventType}: ${c.action} ${c.resource} ${c.name}: ${c.detail}`);
    io.out(changes.length === 0 ? 'no changes' : `${changes.length} change(s)`);
    return 0;
  });
}
