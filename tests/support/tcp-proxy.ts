/**
 * A TCP proxy on 127.0.0.1 in front of PostgreSQL that a test can turn into a black hole: from
 * `blackhole()` on, bytes in either direction are dropped and new connections are accepted but never
 * forwarded, as when the database's host stops answering (statements neither fail nor finish).
 */
import { type Server, type Socket, connect, createServer } from "node:net";

export type TcpProxy = {
  port: number;
  /** bytes from clients dropped since `blackhole()` */
  readonly dropped: number;
  blackhole(): void;
  close(): Promise<void>;
};

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let blackholed = false;
  let dropped = 0;
  const sockets = new Set<Socket>();
  const drop = (chunk: Buffer) => {
    dropped += chunk.length;
  };
  const pairs: Array<[Socket, Socket]> = [];

  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => {});
    if (blackholed) {
      client.on("data", drop);
      return;
    }
    const upstream = connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on("close", () => {
      sockets.delete(upstream);
      if (!blackholed) client.destroy();
    });
    upstream.on("error", () => {});
    client.on("close", () => {
      if (!blackholed) upstream.destroy();
    });
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");

  return {
    port: address.port,
    get dropped() {
      return dropped;
    },
    blackhole() {
      blackholed = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.on("data", drop);
        upstream.on("data", () => {});
        // Unpiping pauses a stream; read on so that what the worker sends is seen (and dropped).
        client.resume();
        upstream.resume();
      }
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
