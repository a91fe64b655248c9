import { describe, expect, it } from 'vitest';
import { flagsToEnv, parseEnv, portVar, urlVar, hostPortVar } from './config.ts';
import { AppError } from './errors.ts';

describe('parseEnv', () => {
  const shape = { PORT: portVar.default(8080), ENDPOINT: urlVar.optional(), HOST: hostPortVar.optional() };

  it('applies defaults and converts values', () => {
    expect(parseEnv(shape, {})).toEqual({ PORT: 8080 });
    expect(parseEnv(shape, { PORT: '9000', ENDPOINT: 'http://127.0.0.1:1' })).toEqual({
      PORT: 9000,
      ENDPOINT: 'http://127.0.0.1:1',
    });
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ ENDPOINT: 'not a url' }, 'ENDPOINT'],
    [{ HOST: 'localhost' }, 'HOST'],
  ])('names the bad variable in %j', (env, variable) => {
    let caught: unknown;
    try {
      parseEnv(shape, env);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('CONFIG_INVALID');
    expect((caught as AppError).message).toContain(`${variable}:`);
  });
});

describe('flagsToEnv', () => {
  it('maps --kebab-case flags onto SCREAMING_CASE variables, flags winning', () => {
    expect(flagsToEnv(['--pubsub-port', '1', '--data-dir=/x'], { PUBSUB_PORT: '2', OTHER: 'y' })).toEqual({
      PUBSUB_PORT: '1',
      DATA_DIR: '/x',
      OTHER: 'y',
    });
  });

  it('rejects stray arguments and flags without values', () => {
    expect(() => flagsToEnv(['stray'], {})).toThrow(/unexpected argument 'stray'/);
    expect(() => flagsToEnv(['--port'], {})).toThrow(/--port needs a value/);
  });
});
