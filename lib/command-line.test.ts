import { describe, expect, it } from 'vitest';
import { AppError } from './errors.ts';
import { helpRequested, helpText, optionsAsEnv, parseCommandLine, readCommandLine, type CommandSpec } from './command-line.ts';

const spec: CommandSpec = {
  usage: 'npm run thing -- <file> [options]',
  summary: 'Does the thing.',
  maxPositionals: 1,
  options: {
    'pubsub-port': { type: 'string', value: '<port>', description: 'the port' },
    'data-dir': { type: 'string', value: '<folder>', description: 'the folder' },
    force: { type: 'boolean', short: 'f', description: 'do it anyway' },
  },
};

const usageProblem = (argv: string[]): string => {
  try {
    parseCommandLine(argv, spec);
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('USAGE_INVALID');
    return (err as AppError).message;
  }
  throw new Error(`no error for ${argv.join(' ')}`);
};

describe('parseCommandLine', () => {
  it('reads string options (both spellings), real boolean flags and positionals; maps options onto variables', () => {
    const line = parseCommandLine(['x.yaml', '--pubsub-port', '1', '--data-dir=/x', '-f'], spec);
    expect(line.positionals).toEqual(['x.yaml']);
    expect([...line.values]).toEqual([
      ['pubsub-port', '1'],
      ['data-dir', '/x'],
      ['force', true],
    ]);
    expect(optionsAsEnv(line)).toEqual({ PUBSUB_PORT: '1', DATA_DIR: '/x', FORCE: 'true' });
  });

  it('names unknown options, missing values, values given to flags and stray arguments', () => {
    expect(usageProblem(['--nope'])).toBe('unknown option --nope (known: --pubsub-port, --data-dir, --force, --help)');
    expect(usageProblem(['--nope=1'])).toBe('unknown option --nope (known: --pubsub-port, --data-dir, --force, --help)');
    expect(usageProblem(['--pubsub-port'])).toBe('option --pubsub-port needs a value');
    expect(usageProblem(['--pubsub-port='])).toBe('option --pubsub-port needs a value');
    expect(usageProblem(['--force=yes'])).toBe('option --force is a flag and takes no value');
    expect(usageProblem(['a', 'b'])).toBe("unexpected argument 'b' (at most 1)");
    expect(usageProblem(['--pubsub-port', '--force'])).toBe('option --pubsub-port needs a value');
  });
});

describe('help', () => {
  it('is asked for with --help or -h anywhere before --', () => {
    expect(helpRequested(['a', '--help'])).toBe(true);
    expect(helpRequested(['-h'])).toBe(true);
    expect(helpRequested(['--', '--help'])).toBe(false);
    expect(helpRequested(['--force'])).toBe(false);
  });

  it('lists every option with its value and description', () => {
    expect(helpText(spec)).toBe(
      [
        'usage: npm run thing -- <file> [options]',
        '',
        'Does the thing.',
        '',
        'options:',
        '      --pubsub-port <port>  the port',
        '      --data-dir <folder>   the folder',
        '  -f, --force               do it anyway',
        '  -h, --help                show this help',
      ].join('\n'),
    );
  });

  it('readCommandLine: help, the parsed options, or the problem with the usage line', () => {
    const parse = (argv: readonly string[]): number => parseCommandLine(argv, spec).positionals.length;
    expect(readCommandLine(['--help', '--nope'], spec, parse)).toEqual({ kind: 'help', text: helpText(spec), exitCode: 0 });
    expect(readCommandLine(['a'], spec, parse)).toEqual({ kind: 'run', options: 1 });
    expect(readCommandLine(['--nope'], spec, parse)).toEqual({
      kind: 'invalid',
      exitCode: 1,
      text: 'unknown option --nope (known: --pubsub-port, --data-dir, --force, --help)\nusage: npm run thing -- <file> [options]\n(--help lists every option)',
    });
  });
});
