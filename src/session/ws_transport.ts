/**
 * The WebSocket side of a session, STT and TTS alike (issue 10 part 1: the ws-attach glue lives next
 * to the sessions, not in src/server/): the transports a session writes to ({@link sttSocketTransport},
 * {@link ttsSocketTransport}) and {@link bindSocket}, which wires a socket's frames, pings, close and
 * errors to its session.
 *
 * It is also the one place where WebSocket frames reach a session (issue 14 #8), so every dialect
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
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import type { SessionTransport } from './stt_session.js';
import type { TtsTransport } from './tts_session.js';

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

/**
 * An STT session's transport over `ws`: text frames while open, close (also while connecting), and
 * pause/resume of reading for backpressure.
 */
export function sttSocketTransport(ws: WebSocket): SessionTransport {
  return {
    sendText: (frame) => {
      if (ws.readyState === ws.OPEN) ws.send(frame);
    },
    close: (code, reason) => {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
    },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
  };
}

/**
 * A TTS session's transport over `ws`: text or binary frames with a completion callback (called at
 * once when the socket is no longer open), and close.
 */
export function ttsSocketTransport(ws: WebSocket): TtsTransport {
  return {
    send: (frame, done) => {
      if (ws.readyState !== ws.OPEN) {
        done();
        return;
      }
      ws.send(frame, { binary: typeof frame !== 'string' }, () => done());
    },
    close: (code, reason) => {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
    },
  };
}

/** What {@link bindSocket} needs of a session. */
export interface SocketSession extends FrameSink {
  readonly id: string;
  /** The socket closed or failed: end the session. */
  handleTransportClose(): void;
  /** A ping arrived (TTS sessions count it as activity). */
  handlePing?(): void;
}

/**
 * Wire `ws` to `session`: frames ({@link routeFrames}), pings when the session takes them, and the
 * socket's close or error ending the session (an error is logged at info with the session id).
 * @param hardLimit the server's `maxPayload`, bytes.
 */
export function bindSocket(ws: WebSocket, session: SocketSession, hardLimit: number, log: Logger): void {
  routeFrames(ws, session, hardLimit);
  if (session.handlePing) ws.on('ping', () => session.handlePing!());
  ws.on('close', () => session.handleTransportClose());
  ws.on('error', (err) => {
    log.info({ err: err.message, session_id: session.id }, 'websocket error');
    session.handleTransportClose();
  });
}
