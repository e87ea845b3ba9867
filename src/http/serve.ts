/**
 * The HTTP listener. Bun closes a connection that shows no traffic for `idleTimeout` seconds (10 by
 * default), and that includes a request whose handler is still running: the caller got a reset
 * while a long write (planning a mailing for a million clients, a client write waiting for that
 * planning, a large import) went on to commit. Writes therefore get `writeTimeoutSeconds` of
 * silence; reads and idle keep-alive connections keep the short default.
 *
 * A header block over 16 KiB is answered 431 with an empty body by Bun's HTTP parser itself
 * (Bun 1.4.5): neither `fetch` nor `error` below is called, so no problem document can be sent.
 * Only the `--max-http-header-size` flag moves that limit (tests/integration/host.test.ts).
 */
import { notePeer } from "./peer";

export type Handler = { handle(request: Request): Response | Promise<Response> };

/** Longest silence allowed on a request that changes data (Bun's maximum idle timeout). */
export const writeTimeoutSeconds = 255;

const reads = new Set(["GET", "HEAD", "OPTIONS"]);

export function serveApp(
  app: Handler,
  options: { port: number; hostname: string; idleTimeoutSeconds?: number; writeTimeoutSeconds?: number },
) {
  const writeTimeout = options.writeTimeoutSeconds ?? writeTimeoutSeconds;
  return Bun.serve({
    port: options.port,
    hostname: options.hostname,
    idleTimeout: options.idleTimeoutSeconds ?? 10,
    // JSON bodies are capped at 1 MiB by the app itself (with a problem document); CSV imports stream.
    maxRequestBodySize: 1024 * 1024 * 1024,
    fetch(request, server) {
      if (!reads.has(request.method)) server.timeout(request, writeTimeout);
      notePeer(request, server.requestIP(request)?.address);
      return app.handle(request);
    },
  });
}
