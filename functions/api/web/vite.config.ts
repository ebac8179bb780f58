import { defineConfig } from 'vitest/config';

// No React plugin: esbuild compiles the JSX (automatic runtime); fast refresh
// is not worth a dependency for a console this size.
export default defineConfig({
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Hashed names under assets/: the API serves them immutable.
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npm run dev` against `make up`'s API.
    // Every path the API serves but the console's own files; /live is the
    // WebSocket stream.
    proxy: {
      ...Object.fromEntries(
        ['/vehicles', '/signals', '/alerts', '/fleet', '/stations', '/openapi.json', '/docs', '/config.json', '/health'].map(
          (p) => [p, 'http://127.0.0.1:8080'],
        ),
      ),
      '/live': { target: 'ws://127.0.0.1:8080', ws: true },
    },
  },
  test: {
    // Pure helpers run in node; a component test names jsdom in its first line.
    environment: 'node',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test/setup.ts'],
  },
});
