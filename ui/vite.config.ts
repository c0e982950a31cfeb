import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

/** The API, for `npm run dev` (the service serves the built UI itself, same origin). */
const API = process.env.TASKWIRE_API ?? 'http://127.0.0.1:8000';
const API_PATHS = ['/tasks', '/events', '/task-types', '/stats', '/whoami', '/healthz', '/docs', '/openapi.json'];

export default defineConfig({
  plugins: [react()],
  // Nothing is copied to the root of dist/: the service serves only index.html and /assets/*.
  publicDir: false,
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    // Every asset becomes a hashed file under assets/ (never a data: URL needing a CSP change).
    assetsInlineLimit: 0,
  },
  server: {
    proxy: Object.fromEntries(
      API_PATHS.map((path) => [
        path,
        {
          target: API,
          // SSE: keep the stream unbuffered and uncompressed through the proxy.
          configure: (proxy) => {
            proxy.on('proxyReq', (proxyReq) => proxyReq.setHeader('Accept-Encoding', 'identity'));
          },
        },
      ]),
    ),
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
