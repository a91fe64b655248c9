/** `composer list [--json]`: the registered event types. */
import type { CommandSpec } from '../../lib/command-line.ts';
import { commandLine, flag, registryCommandHelp, withParts, type CliIo } from './shared.ts';

export const help: CommandSpec = registryCommandHelp('list [--json]', 'Lists registered event types: name, owner, priority, status, version, provisioning (tab-separated).', {
  json: { type: 'boolean', description: 'print a JSON array instead' },
});

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const line = commandLine(argv, help, 0, '');
  return withParts(line, io.env, async ({ registry }) => {
    const { summaryOf } = await import('../api.ts');
    const summaries = (await registry.listEventTypes()).map(summaryOf);
    if (flag(line, 'json')) io.out(JSON.stringify(summaries, null, 2));
    else for (const r of summaries) io.out(`${r.name}\t${r.owner}\t${r.priority}\t${r.status}\tv${r.version}\t${r.provisioning}`);
    return 0;
  });
}
