// Lint: typescript-eslint's recommended rules, plus the import direction of
// CONVENTIONS.md: components import lib/, never each other; lib/ imports no component.
// emulators/ and test/ are the test floor: tests, benchmarks and bin/ may start an emulator or use a test
// helper; product code (components and lib/) never imports either.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const components = ['functions/event-service', 'functions/padlock', 'functions/status', 'etl', 'composer'];

/** Patterns forbidding imports of every component except `own`. */
function otherComponents(own) {
  return components
    .filter((c) => c !== own)
    .flatMap((c) => [`**/${c}/**`, `**/${c}`]);
}

const testFloor = ['**/emulators/**', '**/emulators', '**/test/**', '**/test'];

const restrict = (files, patterns, why) => ({
  files,
  rules: {
    'no-restricted-imports': ['error', { patterns: [{ group: patterns, message: why }] }],
  },
});

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', 'tmp/**', 'terraform/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', fetch: 'readonly', AbortSignal: 'readonly', AbortController: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly', performance: 'readonly', structuredClone: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': 'error',
    },
  },
  ...components.map((c) =>
    restrict([`${c}/**/*.ts`], [...otherComponents(c), ...testFloor], 'Components import lib/, never each other, emulators/ nor test/ (CONVENTIONS.md).'),
  ),
  // A component's own tests may start emulators.
  ...components.map((c) =>
    restrict([`${c}/**/*.test.ts`], otherComponents(c), 'Components import lib/, never each other (CONVENTIONS.md).'),
  ),
  restrict(['lib/**/*.ts'], [...components.flatMap((c) => [`**/${c}/**`, `**/${c}`]), ...testFloor], 'lib/ imports no component, no emulator and nothing from test/.'),
  // Unit tests beside lib/ code may use test helpers and fixtures, never emulators.
  restrict(['lib/**/*.test.ts'], [...components.flatMap((c) => [`**/${c}/**`, `**/${c}`]), '**/emulators/**', '**/emulators'], 'lib/ tests import no component and no emulator.'),
  restrict(['emulators/**/*.ts'], [...components.flatMap((c) => [`**/${c}/**`, `**/${c}`]), '**/test/**', '**/test'], 'Emulators import lib/, never a component nor test/.'),
  restrict(['emulators/**/*.test.ts'], components.flatMap((c) => [`**/${c}/**`, `**/${c}`]), 'Emulators import lib/, never a component.'),
  // CLIs print to the user; tests, benchmarks and scripts may use console.
  { files: ['**/cli.ts', '**/cli/**/*.ts', 'test/**', 'bench/**', 'bin/**', '**/*.test.ts'], rules: { 'no-console': 'off' } },
);
