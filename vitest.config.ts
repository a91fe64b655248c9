import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['**/*.test.ts'],
          exclude: ['**/*.system.test.ts', 'node_modules/**'],
          environment: 'node',
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'system',
          include: ['**/*.system.test.ts'],
          exclude: ['node_modules/**'],
          environment: 'node',
          globalSetup: ['test/support/setup/emulators.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // 2 cores: a few files at a time keeps the emulators responsive.
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
