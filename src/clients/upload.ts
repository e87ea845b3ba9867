/**
 * Where the CSV of an import comes from (SPEC §8 `POST /clients/import`): the request body itself
 * (`Content-Type: text/csv`, as curl's `--data-binary` sends it) or the one file of a
 * `multipart/form-data` upload (a browser form, curl's `-F file=@clients.csv`). Either way the bytes
 * are streamed: the multipart parser hands the file part on chunk by chunk, with backpressure, so a
 * large upload is never held in memory. Any other Content-Type is a 415.
 */
import { Readable } from "node:stream";
import type { ReadableStream as NodeWebStream } from "node:stream/web";
import Busboy from "@fastify/busboy";
import { Problem } from "../problems";

/** Content types read as CSV text. Browsers label .csv files variously (Windows: vnd.ms-excel). */
const csvTypes = new Set([
  "text/csv",
  "text/plain",
  "application/csv",
  "text/x-csv",
  "application/vnd.ms-excel",
  "application/octet-stream",
]);

export const acceptedTypes = [...csvTypes, "multipart/form-data"];

/** The CSV bytes of an import request; throws a 415 for another Content-Type, a 422 for a form without a file. */
export async function csvSource(
  body: ReadableStream<Uint8Array> | null,
  contentTypeHeader: string | null,
): Promise<Readable> {
  const stream = body ?? new Blob([]).stream();
  // No Content-Type at all: read as CSV (a bare `fetch(url, { body: stream })` sends none).
  const type = (contentTypeHeader ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "" || csvTypes.has(type)) return Readable.fromWeb(stream as unknown as NodeWebStream<Uint8Array>);
  if (type === "multipart/form-data") return filePart(stream, contentTypeHeader!);
  throw new Problem(
    415,
    `Content-Type ${type} is not accepted: send the CSV as text/csv, or as the file of a multipart/form-data upload`,
    [{ field: "content-type", message: `must be text/csv or multipart/form-data, not ${type}` }],
  );
}

/** Resolves with the first file part as a stream; a form with no file part is a 422 naming `file`. */
function filePart(stream: ReadableStream<Uint8Array>, contentType: string): Promise<Readable> {
  return new Promise((resolve, reject) => {
    let file: Readable | null = null;
    let parser: ReturnType<typeof Busboy>;
    try {
      // One file: further file parts are skipped by the parser without being buffered.
      parser = Busboy({ headers: { "content-type": contentType }, limits: { files: 1 } });
    } catch (error) {
      reject(new Problem(400, `the multipart body cannot be read: ${(error as Error).message}`, [{ field: "body", message: "malformed multipart" }]));
      return;
    }
    parser.on("file", (_field, part) => {
      file = part;
      resolve(part);
    });
    parser.on("error", (error: Error) => {
      const problem = new Problem(400, `the multipart body is malformed: ${error.message}`, [{ field: "body", message: "malformed multipart" }]);
      if (file) file.destroy(problem);
      else reject(problem);
    });
    parser.on("finish", () => {
      if (!file) reject(new Problem(422, "file: the form has no file part; send the CSV as a file field", [{ field: "file", message: "is required" }]));
    });
    Readable.fromWeb(stream as unknown as NodeWebStream<Uint8Array>).pipe(parser);
  });
}
