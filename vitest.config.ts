import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    // Integration tests spawn ffmpeg and run real networks on 2 cores: give them room.
    testTimeout: 120_000,
    hookTimeout: 600_000,
    // Inference already uses both cores; running test files in parallel only thrashes.
    fileParallelism: false,
    // CI runs with CI=true, which makes Ink hold every frame until exit; the dashboard tests draw
    // to fake terminals and must see live frames, as a user's terminal does. (The CLI's own
    // dashboard-or-plain decision reads CI too and is tested with explicit environments.)
    env: { CI: 'false' },
  },
});
