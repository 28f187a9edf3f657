import { parentPort, workerData } from 'node:worker_threads';
import { LogAppendError, LogAppender } from './log.js';

/**
 * The money log's writer thread (durability `full`): appends each record the
 * event loop sends and fdatasyncs it, then answers, so the event loop never
 * waits on an fsync and nothing is acknowledged before it is on disk.
 */
export type WriterReply = { seq: number; failure: { message: string; code: string | undefined; intact: boolean } | null };

const { dir, segment, durable } = workerData as { dir: string; segment: number; durable: BigInt64Array };
const appender = new LogAppender(dir, segment, true, undefined, durable);

parentPort!.on('message', (message: { seq: number; record: Uint8Array } | 'stop') => {
  if (message === 'stop') {
    appender.close();
    parentPort!.close();
    return;
  }
  let failure: WriterReply['failure'] = null;
  try {
    appender.append(Buffer.from(message.record.buffer, message.record.byteOffset, message.record.byteLength));
  } catch (error) {
    failure =
      error instanceof LogAppendError
        ? { message: error.message, code: error.code, intact: error.intact }
        : { message: String(error), code: undefined, intact: false };
  }
  parentPort!.postMessage({ seq: message.seq, failure } satisfies WriterReply);
});
