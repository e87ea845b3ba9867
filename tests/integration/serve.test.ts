/** The HTTP listener: a long write is answered, not cut off by the idle timeout (src/http/serve.ts). */
import { expect, setDefaultTimeout, test } from "bun:test";
import { serveApp } from "../../src/http/serve";

setDefaultTimeout(60_000);

test("a write whose handler runs longer than the idle timeout still gets its answer; a read of the same length is cut off", async () => {
  // Bun checks idle timeouts every few seconds: with idleTimeout 1 a silent request is closed after about 4 s.
  const slow = {
    async handle(request: Request) {
      await Bun.sleep(6000);
      return new Response(`done ${request.method}`);
    },
  };
  const server = serveApp(slow, { port: 0, hostname: "127.0.0.1", idleTimeoutSeconds: 1, writeTimeoutSeconds: 30 });
  try {
    const call = async (method: string) => {
      try {
        const response = await fetch(`http://127.0.0.1:${server.port}/api/v1/mailings`, { method });
        return `${response.status} ${await response.text()}`;
      } catch (error) {
        return `error ${(error as Error).message.split(":")[0]}`;
      }
    };
    const [write, read] = await Promise.all([call("POST"), call("GET")]);
    expect(write).toBe("200 done POST");
    expect(read).toStartWith("error");
  } finally {
    server.stop(true);
  }
});
