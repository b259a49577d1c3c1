import { defineConfig } from 'vitest/config';

// Under CI, each project also writes a JSON report that `.ci/run` sums into one closing line.
const project =
  ['integration', 'reliability'].find((name) => process.argv.includes(name)) ?? 'unit';
const reporters = process.env.CI
  ? { reporters: ['default', 'json'], outputFile: { json: `.reports/${project}.json` } }
  : {};

export default defineConfig({
  test: {
    ...reporters,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Integration files share one Redis and one RabbitMQ: run them one at a time.
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'reliability',
          include: ['test/reliability/**/*.test.ts'],
          // Kills, broker restarts and floods: one file at a time, each bounded in time.
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
