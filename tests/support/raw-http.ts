/**
 * One HTTP/1.1 exchange over a plain TCP socket, for what `fetch` will not send as written: a
 * chosen `Host` header, an oversized header block. The request should carry `Connection: close`.
 */
export async function rawRequest(
  port: number,
  request: string,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const chunks: Uint8Array[] = [];
  await new Promise<void>((resolve, reject) => {
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(socket) {
          socket.write(request);
        },
        data(_socket, data) {
          chunks.push(new Uint8Array(data));
        },
        close() {
          resolve();
        },
        error(_socket, error) {
          reject(error);
        },
      },
    }).catch(reject);
  });
  const text = new TextDecoder().decode(Buffer.concat(chunks));
  const split = text.indexOf("\r\n\r\n");
  const head = split === -1 ? text : text.slice(0, split);
  let body = split === -1 ? "" : text.slice(split + 4);
  const [statusLine, ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  if (headers["transfer-encoding"] === "chunked") body = unchunk(body);
  return { status: Number(statusLine?.split(" ")[1] ?? 0), headers, body };
}

function unchunk(body: string): string {
  let out = "";
  let rest = body;
  for (;;) {
    const lineEnd = rest.indexOf("\r\n");
    if (lineEnd === -1) return out;
    const size = parseInt(rest.slice(0, lineEnd), 16);
    if (!size) return out;
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
}
