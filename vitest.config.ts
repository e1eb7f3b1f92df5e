import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    // Integration tests spawn ffmpeg and run real networks on 2 cores: give them room.
    testTimeout: 120_000,
    hookTimeout: 600_000,
    // Inference already uses both cores; running test files in parallel only thrashes.
    fileParallelism: false,
  },
});
