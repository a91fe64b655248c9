// Lint: typescript-eslint's recommended rules, plus the import direction of
// CONVENTIONS.md: components import lib/, never each other; lib/ imports no component.
// emulators/ is test floor: tests, benchmarks and bin/ may start an emulator, product code and lib/ never.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const components = ['functions/event-service', 'functions/padlock', 'functions/status', 'etl', 'composer'];

/** Patterns forbidding imports of every component except `own`. */
function otherComponents(own) {
  return components
    .filter((c) => c !== own)
    .flatMap((c) => [`**/${c}/**`, `**/${c}`]);
}

const emulators = ['**/emulators/**', '**/emulators'];

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
    restrict([`${c}/**/*.ts`], [...otherComponents(c), ...emulators], 'Components import lib/, never each other nor emulators/ (CONVENTIONS.md).'),
  ),
  // A component's own tests may start emulators.
  ...components.map((c) =>
    restrict([`${c}/**/*.test.ts`], otherComponents(c), 'Components import lib/, never each other (CONVENTIONS.md).'),
  ),
  restrict(['lib/**/*.ts'], [...components.flatMap((c) => [`**/${c}/**`, `**/${c}`]), ...emulators], 'lib/ imports no component and no emulator.'),
  restrict(['emulators/**/*.ts'], components.flatMap((c) => [`**/${c}/**`, `**/${c}`]), 'Emulators import lib/, never a component.'),
  // CLIs print to the user; tests, benchmarks and scripts may use console.
  { files: ['**/cli.ts', '**/cli/**/*.ts', 'test/**', 'bench/**', 'bin/**', '**/*.test.ts'], rules: { 'no-console': 'off' } },
);
