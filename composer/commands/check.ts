/** `composer check -f <file> [--force]`: validate a spec and check it against the registered type. */
import type { CommandSpec } from '../../lib/command-line.ts';
import { formatProblems, loadSpecFile } from '../spec.ts';
import { commandLine, fileOption, flag, formatReasons, invalidSpecs, registryCommandHelp, requiredOption, withParts, type CliIo } from './shared.ts';

export const help: CommandSpec = registryCommandHelp('check -f <file> [--force]', 'Validates a spec and checks its schema against the registered type; exit 1 if invalid or incompatible.', {
  file: fileOption('file'),
  force: { type: 'boolean', description: 'check as apply --force would' },
});

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const line = commandLine(argv, help, 0, '');
  const loaded = await loadSpecFile(requiredOption(line, 'file', 'check needs -f <file>'));
  if (!loaded.ok) throw invalidSpecs(formatProblems(loaded.problems));
  const { spec } = loaded;
  return withParts(line, io.env, async ({ composer }) => {
    if ((await composer.registry.getEventType(spec.name)) === undefined) {
      io.out(`${spec.name}: valid (not registered yet)`);
      return 0;
    }
    const result = await composer.checkCandidate(spec.name, spec.schema, { force: flag(line, 'force') });
    if (result.compatible) {
      io.out(`${spec.name}: valid and ${result.mode} compatible`);
      return 0;
    }
    io.out(`${spec.name}: incompatible (${result.mode})`);
    for (const text of formatReasons(result.reasons)) io.out(text);
    return 1;
  });
}
