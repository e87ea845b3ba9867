/**
 * Where the CSV of an import comes from (SPEC §8 `POST /clients/import`): the request body itself
 * (`Content-Type: text/csv`, as curl's `--data-binary` sends it) or the one file of a
 * `multipart/form-data` upload (a browser form, curl's `-F file=@clients.csv`). Either way the bytes
 * are streamed: the multipart parser hands the file part on chunk by chunk, with backpressure, so a
 * large upload is never held in memory. Any other Content-Type is a 415.
 */
import { PassThrough, Readable } from "node:stream";
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

const malformed = (error: Error) =>
  new Problem(400, `the multipart body is malformed: ${error.message}`, [{ field: "body", message: "malformed multipart" }]);

/**
 * Resolves with the first file part as a stream; a form with no file part is a 422 naming `file`.
 * The part is handed on through a PassThrough so that a body cut off mid-file (busboy emits an
 * error on the part, which nothing else listens to: it crashed the process) reaches the reader
 * as a 400 problem.
 */
function filePart(stream: ReadableStream<Uint8Array>, contentType: string): Promise<Readable> {
  return new Promise((resolve, reject) => {
    let file: PassThrough | null = null;
    let parser: ReturnType<typeof Busboy>;
    try {
      // One file: further file parts are skipped by the parser without being buffered.
      parser = Busboy({ headers: { "content-type": contentType }, limits: { files: 1 } });
    } catch (error) {
      reject(malformed(error as Error));
      return;
    }
    const fail = (error: Error) => {
      if (file) file.destroy(malformed(error));
      else reject(malformed(error));
    };
    parser.on("file", (_field, part) => {
      file = new PassThrough();
      // Kept on the stream (`errored`) for the reader's pipeline, which may attach a moment later.
      file.on("error", () => {});
      part.on("error", fail);
      part.pipe(file);
      resolve(file);
    });
    parser.on("error", fail);
    parser.on("finish", () => {
      if (!file) reject(new Problem(422, "file: the form has no file part; send the CSV as a file field", [{ field: "file", message: "is required" }]));
    });
    const body = Readable.fromWeb(stream as unknown as NodeWebStream<Uint8Array>);
    body.on("error", fail);
    body.pipe(parser);
  });
}
