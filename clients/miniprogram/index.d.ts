// Types of the provider-desk client kit for the WeChat mini-program (index.js).

/** Where the session (`{token, refreshToken, userInfo}`) is kept; sync or async. */
export interface Storage {
  get(key: string): unknown | Promise<unknown>;
  set(key: string, value: unknown): void | Promise<void>;
  remove(key: string): void | Promise<void>;
}

/** The part of the mini-program's `wx` the kit uses (a stand-in under Node provides the same). */
export interface WxLike {
  request(options: {
    url: string;
    method: string;
    data?: unknown;
    header?: Record<string, string>;
    timeout?: number;
    dataType?: string;
    success(result: { statusCode: number; data: unknown; header?: Record<string, string> }): void;
    fail(error: { errMsg: string }): void;
  }): unknown;
  connectSocket(options: { url: string; protocols?: string[]; header?: Record<string, string> }): SocketTaskLike;
  getStorageSync?(key: string): unknown;
  setStorageSync?(key: string, value: unknown): void;
  removeStorageSync?(key: string): void;
}

export interface SocketTaskLike {
  onOpen(callback: (result: unknown) => void): void;
  onMessage(callback: (result: { data: string | ArrayBuffer }) => void): void;
  onClose(callback: (result: { code: number; reason: string }) => void): void;
  onError(callback: (result: { errMsg: string }) => void): void;
  send(options: { data: string }): void;
  close(options?: { code?: number; reason?: string }): void;
}

export interface ClientOptions {
  /** The server, e.g. `https://desk.example.com` (no `/api`). */
  baseUrl: string;
  /** Defaults to `wx.getStorageSync` and friends. */
  storage?: Storage;
  /** Defaults to the global `wx`. */
  wx?: WxLike;
  /** Retries of idempotent and keyed calls: attempts in all (default 4), backoff from `baseDelayMs` (300) to `maxDelayMs` (8000). */
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  /** Reconnection backoff (500 ms to 15 s), the kit's own ping interval (`keepAliveMs`, 15 s; 0 turns it off), the path (`/graphql/ws`). */
  socket?: { baseDelayMs?: number; maxDelayMs?: number; keepAliveMs?: number; path?: string };
  /** Per request, in ms (default 15000). */
  timeoutMs?: number;
  /** Called whenever the session ends without `logout()` (refresh refused, logout elsewhere). */
  onSignedOut?: (error: ApiError) => void;
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** From the server's root, e.g. `/api/tickets`. */
  path: string;
  /** The JSON body; for GET, the query string. */
  data?: Record<string, unknown>;
  /**
   * Whether the call may be sent again after a lost answer, a 429 or a 503. Default: GET only.
   * `true` on a write sends one `Idempotency-Key` for all its attempts, so the server does it once.
   */
  idempotent?: boolean;
  /** Your own key (1–64 of `A-Z a-z 0-9 _ -`) instead of a generated one. */
  idempotencyKey?: string;
  /** `false` sends no token (sign-in). */
  auth?: boolean;
}

export interface SubscriptionHandlers {
  /** The session ended (4401/4403 and a refused refresh): the subscription is over; sign in again. */
  onSignedOut?: (error: ApiError) => void;
  /**
   * The server refused the subscription (it is over), or, with `error.resync`, the cursor was
   * too old to resume from: reload from HTTP; the subscription goes on live.
   */
  onError?: (error: ApiError) => void;
  /** The server completed the subscription. */
  onComplete?: () => void;
}

export interface UserInfo {
  id: string;
  name: string;
  contactPerson?: string;
  phone?: string;
  email?: string;
  region?: string;
}

export interface Client {
  /** Signs in and keeps the session in the storage; resolves the provider's `userInfo`. */
  login(username: string, password: string): Promise<UserInfo>;
  /** Signs out on the server (best effort) and here; ends the subscriptions (no onSignedOut). */
  logout(): Promise<void>;
  /** One logical call: resolves the envelope's `data` or rejects with an `ApiError`. */
  request<T = any>(options: RequestOptions): Promise<T>;
  /**
   * A `graphql-transport-ws` subscription over the client's one socket. Declare `$after: String`
   * and select `cursor`: the kit passes the last cursor seen as `after` when it resubscribes.
   * `onEvent` gets the root field's value (e.g. `{cursor, message}`). Returns `unsubscribe`.
   */
  subscribe<T = any>(
    query: string,
    variables: Record<string, unknown> | null,
    onEvent: (event: T, payload: { data: Record<string, T> }) => void,
    handlers?: SubscriptionHandlers,
  ): () => void;
  /** Adds a sign-out listener; returns its remover. */
  onSignedOut(listener: (error: ApiError) => void): () => void;
  isSignedIn(): Promise<boolean>;
  userInfo(): Promise<UserInfo | null>;
  /**
   * Uploads a local file (`wx.chooseMedia`'s `tempFilePath`) with `wx.uploadFile` to
   * `POST /api/uploads`; its `attachmentId` goes into `attachmentIds` when sending. Not retried
   * without an answer; a 401 refreshes the token once.
   */
  upload(filePath: string): Promise<UploadedAttachment>;
}

/** What `POST /api/uploads` answers. */
export interface UploadedAttachment {
  attachmentId: string;
  fileName: string;
  contentType: string;
  size: number;
  width?: number;
  height?: number;
}

export class ApiError extends Error {
  name: 'ApiError';
  /** The envelope's `code` (the HTTP status); 0 when no answer came (network, timeout). */
  code: number;
  /** The id to quote to support (`requestId`, or the `x-request-id` header). */
  requestId: string | null;
  /** Seconds to wait, on 429 (and 503 when the server says). */
  retryAfter: number | null;
  data: unknown;
  /** The session is over: sign in again. */
  signedOut: boolean;
  /** For a subscription's error: the GraphQL `extensions.code` and `extensions.field`. */
  graphqlCode?: string;
  field?: string;
  /** The cursor was too old to resume from: reload lists over HTTP. */
  resync?: boolean;
  cause?: unknown;
}

export function createClient(options: ClientOptions): Client;
/** A fresh `Idempotency-Key`, for callers that keep one across app restarts. */
export function newIdempotencyKey(): string;
