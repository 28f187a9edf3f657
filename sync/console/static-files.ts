import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OutgoingResponse, Route } from '../../src/core/http/server.js';

/**
 * The operator console's files, built by `make build` into dist/console/ (console/ in the source tree) and
 * served from there. The directory is flat on purpose: a file is named by one path segment that must match
 * FILE_NAME (no `/`, no `..`, no `%`), so no request can name anything outside it.
 */
export const CONSOLE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'console');

const FILE_NAME = /^[a-z0-9][a-z0-9-]*\.(html|js|css|svg)$/;
const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};
/**
 * Revalidate every time: the files change with each build and are not fingerprinted, and the console is used
 * from the operators' network, where the bytes cost nothing next to a page running yesterday's script.
 */
const CACHE_CONTROL = 'no-cache';
/**
 * Never inside another site's frame: a page elsewhere could frame the console over its own buttons, and the
 * operator's click would be the console's own same-origin request (a sync, a credit), which cross-site refusal
 * (admin/access.ts) lets through. The header for browsers that predate frame-ancestors too.
 */
const NOT_FRAMED = { 'X-Frame-Options': 'DENY', 'Content-Security-Policy': "frame-ancestors 'none'" };

const notFound = (name: string): OutgoingResponse => ({
  status: 404,
  contentType: 'text/plain; charset=utf-8',
  body: `no console file ${name}\n`,
});

async function serve(directory: string, name: string): Promise<OutgoingResponse> {
  const match = FILE_NAME.exec(name);
  if (match === null) return notFound(name.slice(0, 100));
  try {
    const body = await readFile(join(directory, name));
    return {
      status: 200,
      body,
      contentType: CONTENT_TYPES[match[1]],
      headers: { 'Cache-Control': CACHE_CONTROL, 'X-Content-Type-Options': 'nosniff', ...NOT_FRAMED },
    };
  } catch {
    return notFound(name);
  }
}

export function consoleFileRoutes(directory: string = CONSOLE_DIR): Route[] {
  const index = (): Promise<OutgoingResponse> => serve(directory, 'index.html');
  return [
    { method: 'GET', path: '/console', maxBodyBytes: 0, handler: index },
    { method: 'GET', path: '/console/', maxBodyBytes: 0, handler: index },
    { method: 'GET', path: '/console/{file}', maxBodyBytes: 0, handler: (request) => serve(directory, request.params.file) },
  ];
}
