/**
 * One place where WebSocket frames reach a session (STT and TTS alike; issue 14 #8), so every dialect
 * gives its documented answer to frames the transport itself refuses:
 *
 * - a text frame that is not valid UTF-8: the `WebSocketServer` runs with `skipUTF8Validation` (see
 *   {@link WS_SERVER_OPTIONS}) and the frame is checked here, then handed to the session as an invalid
 *   frame (an `invalid_request` error in the dialect's way) instead of ws's bare close 1007;
 * - a frame over `maxPayload` (2 × `limits.maxFrameBytes`): ws stops reading it at its header and closes
 *   1009 with no reason; here the session first reports `payload_too_large` in its dialect (an error
 *   frame; 1009 `BIG-0000` on `/v1/listen` and `/v1/speak`) and closes 1009 with a reason.
 */
import { isUtf8 } from 'node:buffer';
import type { RawData, WebSocket } from 'ws';

/** What a session offers the frame router. */
export interface FrameSink {
  handleText(text: string): void;
  handleBinary(data: Buffer): void;
  /** A text frame that is not UTF-8. */
  handleInvalidText(): void;
  /** A frame over `hardLimit` bytes: answer and close 1009. */
  handleOversizedFrame(hardLimit: number): void;
}

/** Options every voxgate `WebSocketServer` takes (UTF-8 is validated by {@link routeFrames}). */
export const WS_SERVER_OPTIONS = { skipUTF8Validation: true, perMessageDeflate: false } as const;

/**
 * Route `ws`'s frames to `sink`.
 * @param hardLimit the server's `maxPayload`, bytes.
 */
export function routeFrames(ws: WebSocket, sink: FrameSink, hardLimit: number): void {
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) sink.handleBinary(buf);
    else if (!isUtf8(buf)) sink.handleInvalidText();
    else sink.handleText(buf.toString('utf8'));
  });
  // ws reports a frame over maxPayload by calling `close(1009)` (no reason) on the socket, then emitting
  // 'error' (ws/lib/websocket.js receiverOnError). Our own closes always carry a reason, so a 1009
  // without one is that case: let the session answer in its dialect, which closes with a reason.
  const close = ws.close.bind(ws);
  let answered = false;
  ws.close = ((code?: number, reason?: string | Buffer) => {
    if (code === 1009 && reason === undefined && !answered && ws.readyState === ws.OPEN) {
      answered = true;
      sink.handleOversizedFrame(hardLimit);
      if (ws.readyState === ws.OPEN) close(1009, 'payload_too_large');
      return;
    }
    close(code, reason);
  }) as WebSocket['close'];
}
