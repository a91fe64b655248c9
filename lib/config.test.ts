import { describe, expect, it } from 'vitest';
import { parseEnv, portVar, urlVar, hostPortVar } from './config.ts';
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
