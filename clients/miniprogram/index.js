/**
 * provider-desk client kit for the WeChat mini-program: sign-in, the REST API and live chat.
 *
 * One CommonJS file, ES2017, no dependencies, so a mini-program can `require` it with no build step.
 * It gets the four things right that cost a provider a message or a session when done by hand:
 * one refresh for all callers that find the token expired (the server's refresh tokens work once,
 * and a second use signs the provider out); one `Idempotency-Key` for every attempt of one logical
 * write (a retry after a lost answer stores nothing twice); resuming a subscription from its last
 * `cursor` (nothing lost or repeated across a reconnect); and `graphql-transport-ws` spoken over
 * `wx.connectSocket`, which is not the browser's `WebSocket`.
 *
 * Design choice: the `wx` object and the storage are injected (defaulting to the global `wx`), so
 * the same code runs in the mini-program and, with a stand-in, under Node against a real server.
 * All realtime subscriptions of a client share one socket (a mini-program may hold only a few).
 */
'use strict';

var SESSION_KEY = 'provider-desk.session';
var SOCKET_PROTOCOL = 'graphql-transport-ws';
var CLOSE_UNAUTHORIZED = 4401;
var CLOSE_FORBIDDEN = 4403;
var NO_ANSWER = 0;

/** An answer other than success: `code` is the envelope's (the HTTP status; 0 when no answer came). */
class ApiError extends Error {
  constructor(code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    details = details || {};
    this.requestId = details.requestId || null;
    this.retryAfter = details.retryAfter === undefined ? null : details.retryAfter;
    this.data = details.data === undefined ? null : details.data;
    this.signedOut = Boolean(details.signedOut);
    if (details.graphqlCode) this.graphqlCode = details.graphqlCode;
    if (details.field) this.field = details.field;
    if (details.cause) this.cause = details.cause;
  }
}

function createClient(options) {
  options = options || {};
  var wx = options.wx || globalWx();
  if (!wx) throw new Error('provider-desk: no `wx` (pass createClient({ wx }) outside a mini-program)');
  var baseUrl = String(options.baseUrl || '').replace(/\/+$/, '');
  if (!baseUrl) throw new Error('provider-desk: `baseUrl` is required');
  var storage = options.storage || wxStorage(wx);
  var retry = Object.assign({ attempts: 4, baseDelayMs: 300, maxDelayMs: 8000 }, options.retry || {});
  var socketOptions = Object.assign(
    { baseDelayMs: 500, maxDelayMs: 15000, keepAliveMs: 15000, path: '/graphql/ws' },
    options.socket || {}
  );
  var timeoutMs = options.timeoutMs || 15000;
  var signedOutListeners = [];
  if (options.onSignedOut) signedOutListeners.push(options.onSignedOut);

  var session = null;
  var loaded = null;
  var refreshing = null;

  function load() {
    if (!loaded) {
      loaded = Promise.resolve(storage.get(SESSION_KEY)).then(function (stored) {
        if (session === null && stored && stored.token) session = stored;
      });
    }
    return loaded;
  }

  async function save(next) {
    session = next;
    if (next) await storage.set(SESSION_KEY, next);
    else await storage.remove(SESSION_KEY);
  }

  function backoff(attempt, base, max) {
    var ceiling = Math.min(max, base * Math.pow(2, attempt));
    // "Equal jitter": at least half the step, so retries never bunch up at zero.
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  function send(method, url, data, header) {
    return new Promise(function (resolve, reject) {
      var call = { url: url, method: method, header: header, timeout: timeoutMs, dataType: 'json' };
      if (data !== undefined) call.data = data;
      call.success = resolve;
      call.fail = reject;
      wx.request(call);
    });
  }

  /** One HTTP exchange, no retries: resolves `{status, body, header}` or rejects when no answer came. */
  async function exchange(method, path, data, token, idempotencyKey) {
    var header = { 'content-type': 'application/json' };
    if (token) header.authorization = 'Bearer ' + token;
    if (idempotencyKey) header['Idempotency-Key'] = idempotencyKey;
    return answerOf(await send(method, baseUrl + path, data, header));
  }

  /** What `wx.request` or `wx.uploadFile` answered, as `{status, body, header}` (the body parsed). */
  function answerOf(raw) {
    var body = raw.data;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch (notJson) {
        body = null;
      }
    }
    return { status: raw.statusCode, body: body, header: raw.header || {} };
  }

  function errorOf(answer) {
    var body = answer.body && typeof answer.body === 'object' ? answer.body : {};
    var retryAfter = headerValue(answer.header, 'retry-after');
    return new ApiError(body.code || answer.status, body.message || '请求失败（' + answer.status + '）', {
      requestId: body.requestId || headerValue(answer.header, 'x-request-id') || null,
      retryAfter: retryAfter === null ? null : Number(retryAfter),
      data: body.data
    });
  }

  function noAnswer(cause) {
    return new ApiError(NO_ANSWER, '网络不给力，请稍后重试', { cause: cause });
  }

  async function signOut(error) {
    await save(null);
    realtime.signedOut(error);
    signedOutListeners.forEach(function (listener) {
      listener(error);
    });
  }

  /**
   * The token to use after `failedToken` was refused: another caller's newer token if there is
   * one, else the answer of the one refresh in flight (started here if none is).
   */
  async function tokenAfter(failedToken) {
    await load();
    if (!session) throw new ApiError(401, '请先登录', { signedOut: true });
    if (session.token !== failedToken) return session.token;
    if (!refreshing) {
      refreshing = refresh(session.refreshToken).then(
        function (token) {
          refreshing = null;
          return token;
        },
        function (error) {
          refreshing = null;
          throw error;
        }
      );
    }
    return refreshing;
  }

  async function refresh(refreshToken) {
    for (var attempt = 0; ; attempt++) {
      var answer;
      try {
        // A lost answer is retried with the same refresh token: the server answers such a retry,
        // from the same address within its grace window, with the same pair.
        answer = await exchange('POST', '/api/auth/refresh', { refreshToken: refreshToken });
      } catch (cause) {
        if (attempt + 1 < retry.attempts) {
          await sleep(backoff(attempt, retry.baseDelayMs, retry.maxDelayMs));
          continue;
        }
        throw noAnswer(cause);
      }
      if (isSuccess(answer)) {
        var data = answer.body.data;
        await save(Object.assign({}, session, { token: data.token, refreshToken: data.refreshToken }));
        realtime.tokenChanged(data.token);
        return data.token;
      }
      if (answer.status === 401 || answer.status === 403) {
        var error = errorOf(answer);
        error.signedOut = true;
        await signOut(error);
        throw error;
      }
      if (transient(answer.status) && attempt + 1 < retry.attempts) {
        await sleep(waitFor(answer, attempt));
        continue;
      }
      throw errorOf(answer);
    }
  }

  function waitFor(answer, attempt) {
    var step = backoff(attempt, retry.baseDelayMs, retry.maxDelayMs);
    var retryAfter = Number(headerValue(answer.header, 'retry-after'));
    return retryAfter > 0 ? Math.max(step, retryAfter * 1000) : step;
  }

  async function request(call) {
    call = call || {};
    var method = String(call.method || 'GET').toUpperCase();
    var retriable = call.idempotent === undefined ? method === 'GET' : Boolean(call.idempotent);
    var key = retriable && method !== 'GET' ? call.idempotencyKey || newIdempotencyKey() : call.idempotencyKey;
    var path = call.path || '/';
    var data = call.data;
    if (method === 'GET' && data !== undefined) {
      path = withQuery(path, data);
      data = undefined;
    }
    var send = function (token) {
      return exchange(method, path, data, token, key);
    };
    return answered(send, call.auth !== false, retriable);
  }

  // The data of what `send(token)` answers, sent with the session's token (`useToken`): a 401
  // refreshes the token once and sends again; no answer, or a transient status, is retried with
  // backoff only when `retriable`.
  async function answered(send, useToken, retriable) {
    await load();
    var refreshed = false;
    for (var attempt = 0; ; ) {
      var token = useToken && session ? session.token : undefined;
      var answer;
      try {
        answer = await send(token);
      } catch (cause) {
        if (retriable && attempt + 1 < retry.attempts) {
          await sleep(backoff(attempt++, retry.baseDelayMs, retry.maxDelayMs));
          continue;
        }
        throw noAnswer(cause);
      }
      if (isSuccess(answer)) return answer.body.data;
      // A 401 is refused before anything runs, so even an unkeyed write may be sent again.
      if (answer.status === 401 && token && !refreshed) {
        refreshed = true;
        await tokenAfter(token);
        continue;
      }
      if (retriable && transient(answer.status) && attempt + 1 < retry.attempts) {
        await sleep(waitFor(answer, attempt++));
        continue;
      }
      throw errorOf(answer);
    }
  }

  function sendFile(filePath, header) {
    return new Promise(function (resolve, reject) {
      wx.uploadFile({
        url: baseUrl + '/api/uploads',
        filePath: filePath,
        name: 'file',
        header: header,
        timeout: timeoutMs,
        success: resolve,
        fail: reject
      });
    });
  }

  /**
   * Uploads a file the mini-program holds (`wx.chooseMedia`'s `tempFilePath`) to `POST /api/uploads`
   * and resolves `{attachmentId, fileName, contentType, size, width?, height?}`, whose
   * `attachmentId` goes into `attachmentIds` of a chat message, ticket or reply. Not retried when
   * no answer came (an upload is not idempotent: a second one stores a second attachment, which the
   * server deletes unused a day later); a 401 refreshes the token once, like any request.
   */
  async function upload(filePath) {
    var send = async function (token) {
      return answerOf(await sendFile(filePath, token ? { authorization: 'Bearer ' + token } : {}));
    };
    return answered(send, true, false);
  }

  async function login(username, password) {
    var data = await request({
      method: 'POST',
      path: '/api/auth/login',
      data: { username: username, password: password },
      auth: false
    });
    await save({ token: data.token, refreshToken: data.refreshToken, userInfo: data.userInfo });
    realtime.tokenChanged(data.token);
    return data.userInfo;
  }

  async function logout() {
    await load();
    if (!session) return;
    try {
      await request({ method: 'POST', path: '/api/auth/logout', data: {} });
    } catch (ignored) {
      // Signed out here either way; the server's tokens expire on their own.
    } finally {
      realtime.closeAll();
      await save(null);
    }
  }

  var realtime = createRealtime({
    wx: wx,
    url: socketUrl(baseUrl) + socketOptions.path,
    options: socketOptions,
    backoff: backoff,
    currentToken: async function () {
      await load();
      return session ? session.token : null;
    },
    tokenAfter: tokenAfter
  });

  return {
    login: login,
    logout: logout,
    request: request,
    subscribe: realtime.subscribe,
    /** Calls `listener(error)` whenever the session ends (refresh refused, logout elsewhere). */
    onSignedOut: function (listener) {
      signedOutListeners.push(listener);
      return function () {
        signedOutListeners = signedOutListeners.filter(function (l) {
          return l !== listener;
        });
      };
    },
    isSignedIn: async function () {
      await load();
      return Boolean(session);
    },
    userInfo: async function () {
      await load();
      return session ? session.userInfo || null : null;
    },
    upload: upload
  };
}

/**
 * The subscriptions of one client over one socket: signs in with `connection_init`, answers
 * pings, notices a dead socket by its own pings, reconnects with backoff and resubscribes each
 * subscription from the last cursor it delivered.
 */
function createRealtime(deps) {
  var wx = deps.wx;
  var options = deps.options;
  var subscriptions = new Map();
  var nextId = 0;
  var socket = null; // { task, token, acknowledged, generation }
  var generation = 0;
  var reconnectTimer = null;
  var keepAliveTimer = null;
  var awaitingPong = false;
  var failures = 0;
  var refusedInARow = 0;

  function subscribe(query, variables, onEvent, handlers) {
    var id = String(++nextId);
    variables = Object.assign({}, variables || {});
    var subscription = {
      id: id,
      query: query,
      variables: variables,
      cursor: variables.after ? String(variables.after) : null,
      onEvent: onEvent,
      handlers: handlers || {}
    };
    subscriptions.set(id, subscription);
    if (socket && socket.acknowledged) start(subscription);
    else if (!socket && !reconnectTimer) connect();
    return function unsubscribe() {
      if (!subscriptions.delete(id)) return;
      if (socket && socket.acknowledged) transmit({ id: id, type: 'complete' });
      if (subscriptions.size === 0) disconnect();
    };
  }

  function start(subscription) {
    var variables = Object.assign({}, subscription.variables);
    if (subscription.cursor) variables.after = subscription.cursor;
    else delete variables.after;
    transmit({ id: subscription.id, type: 'subscribe', payload: { query: subscription.query, variables: variables } });
  }

  function transmit(message) {
    if (socket) socket.task.send({ data: JSON.stringify(message) });
  }

  async function connect() {
    reconnectTimer = null;
    if (subscriptions.size === 0 || socket) return;
    var token = await deps.currentToken();
    if (subscriptions.size === 0 || socket) return;
    if (!token) {
      signedOut(new ApiError(401, '请先登录', { signedOut: true }));
      return;
    }
    var mine = ++generation;
    var task = wx.connectSocket({ url: deps.url, protocols: [SOCKET_PROTOCOL] });
    socket = { task: task, token: token, acknowledged: false, generation: mine };
    var current = function () {
      return socket && socket.generation === mine;
    };
    task.onOpen(function () {
      if (current()) transmit({ type: 'connection_init', payload: { Authorization: 'Bearer ' + token } });
    });
    task.onMessage(function (event) {
      if (current()) received(event.data);
    });
    task.onClose(function (event) {
      if (current()) closed(event && event.code, token);
    });
    task.onError(function () {
      // A socket that fails may report no close: treat it as an abnormal close (1006).
      if (current()) closed(1006, token);
    });
  }

  function received(text) {
    var message;
    try {
      message = JSON.parse(text);
    } catch (notJson) {
      return;
    }
    awaitingPong = false;
    var subscription = message.id === undefined ? null : subscriptions.get(message.id);
    switch (message.type) {
      case 'connection_ack':
        socket.acknowledged = true;
        failures = 0;
        refusedInARow = 0;
        subscriptions.forEach(start);
        keepAlive();
        break;
      case 'ping':
        transmit({ type: 'pong' });
        break;
      case 'next':
        if (subscription) deliver(subscription, message.payload || {});
        break;
      case 'error':
        if (subscription) failed(subscription, message.payload);
        break;
      case 'complete':
        if (subscription) {
          subscriptions.delete(subscription.id);
          if (subscription.handlers.onComplete) subscription.handlers.onComplete();
        }
        break;
      default:
        break;
    }
  }

  function deliver(subscription, payload) {
    if (!payload.data) {
      failed(subscription, payload.errors || []);
      return;
    }
    var field = Object.keys(payload.data)[0];
    var event = payload.data[field];
    var cursor = event && event.cursor !== undefined && event.cursor !== null ? String(event.cursor) : null;
    if (cursor !== null) {
      if (subscription.cursor !== null && !isAfter(cursor, subscription.cursor)) return;
      subscription.cursor = cursor;
    }
    subscription.onEvent(event, payload);
  }

  function failed(subscription, errors) {
    var first = (Array.isArray(errors) ? errors[0] : errors) || {};
    var extensions = first.extensions || {};
    var error = new ApiError(400, first.message || '订阅失败', {
      graphqlCode: extensions.code,
      field: extensions.field,
      requestId: extensions.requestId
    });
    if (extensions.field === 'after' && subscription.cursor !== null) {
      // The cursor is older than the server replays: reload lists over HTTP (onError says so)
      // and go on live from now.
      subscription.cursor = null;
      error.resync = true;
      if (subscription.handlers.onError) subscription.handlers.onError(error);
      start(subscription);
      return;
    }
    subscriptions.delete(subscription.id);
    if (subscription.handlers.onError) subscription.handlers.onError(error);
  }

  function keepAlive() {
    clearInterval(keepAliveTimer);
    awaitingPong = false;
    if (!options.keepAliveMs) return;
    keepAliveTimer = setInterval(function () {
      if (!socket) return;
      if (awaitingPong) {
        // Nothing came back for a whole interval: the socket is dead (a tunnel), whatever it says.
        var dead = socket;
        closed(1006, dead.token);
        dead.task.close({ code: 1000, reason: 'no pong' });
        return;
      }
      awaitingPong = true;
      transmit({ type: 'ping' });
    }, options.keepAliveMs);
  }

  function drop() {
    clearInterval(keepAliveTimer);
    keepAliveTimer = null;
    socket = null;
  }

  function closed(code, token) {
    drop();
    if (subscriptions.size === 0) return;
    if (code === CLOSE_UNAUTHORIZED || code === CLOSE_FORBIDDEN) {
      // 4403 also means "your access token expired": refresh once, and only a refused refresh is
      // a sign-out (which `tokenAfter` reports to every subscription). A token fresh from the
      // refresh refused again and again is one too.
      deps.tokenAfter(token).then(
        function () {
          if (++refusedInARow > 2) signedOut(new ApiError(401, '登录已失效，请重新登录', { signedOut: true }));
          else later(0);
        },
        function (error) {
          if (error.signedOut) signedOut(error);
          else later(failures++);
        }
      );
      return;
    }
    later(failures++);
  }

  function later(attempt) {
    if (reconnectTimer || subscriptions.size === 0) return;
    var delay = attempt === 0 ? 0 : deps.backoff(attempt - 1, options.baseDelayMs, options.maxDelayMs);
    reconnectTimer = setTimeout(connect, delay);
  }

  function disconnect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (!socket) return;
    var task = socket.task;
    drop();
    task.close({ code: 1000, reason: 'done' });
  }

  /** A new access token: a socket signed in with another one reconnects with it, from its cursors. */
  function tokenChanged(token) {
    if (socket && socket.token !== token) {
      disconnect();
      later(0);
    }
  }

  function signedOut(error) {
    var ended = Array.from(subscriptions.values());
    subscriptions.clear();
    disconnect();
    ended.forEach(function (subscription) {
      if (subscription.handlers.onSignedOut) subscription.handlers.onSignedOut(error);
    });
  }

  function closeAll() {
    subscriptions.clear();
    disconnect();
  }

  return { subscribe: subscribe, tokenChanged: tokenChanged, signedOut: signedOut, closeAll: closeAll };
}

/** The mini-program's global `wx`, if there is one. */
function globalWx() {
  return typeof wx === 'undefined' ? undefined : wx; // eslint-disable-line no-undef
}

function isSuccess(answer) {
  return answer.status >= 200 && answer.status < 300 && answer.body && typeof answer.body === 'object';
}

function transient(status) {
  return status === 429 || status === 502 || status === 503 || status === 504;
}

/** Cursors are decimal strings counting up per provider. */
function isAfter(cursor, last) {
  if (!/^\d+$/.test(cursor) || !/^\d+$/.test(last)) return cursor !== last;
  if (cursor.length !== last.length) return cursor.length > last.length;
  return cursor > last;
}

function headerValue(header, name) {
  if (!header) return null;
  var keys = Object.keys(header);
  for (var i = 0; i < keys.length; i++) {
    if (keys[i].toLowerCase() === name) return header[keys[i]];
  }
  return null;
}

function withQuery(path, data) {
  var parts = Object.keys(data)
    .filter(function (key) {
      return data[key] !== undefined && data[key] !== null;
    })
    .map(function (key) {
      return encodeURIComponent(key) + '=' + encodeURIComponent(data[key]);
    });
  if (parts.length === 0) return path;
  return path + (path.indexOf('?') === -1 ? '?' : '&') + parts.join('&');
}

function socketUrl(baseUrl) {
  return baseUrl.replace(/^http(s?):\/\//, function (match, secure) {
    return secure ? 'wss://' : 'ws://';
  });
}

/** 1–64 of `A-Z a-z 0-9 _ -`, as the server takes; unique enough per provider. */
function newIdempotencyKey() {
  var alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  var key = 'mp-' + Date.now().toString(36) + '-';
  for (var i = 0; i < 20; i++) key += alphabet.charAt(Math.floor(Math.random() * alphabet.length));
  return key;
}

function sleep(ms) {
  return new Promise(function (resolve) {
    setTimeout(resolve, ms);
  });
}

/** The mini-program's own storage, for when none is passed. */
function wxStorage(wx) {
  return {
    get: function (key) {
      return wx.getStorageSync(key) || null;
    },
    set: function (key, value) {
      wx.setStorageSync(key, value);
    },
    remove: function (key) {
      wx.removeStorageSync(key);
    }
  };
}

module.exports = { createClient: createClient, ApiError: ApiError, newIdempotencyKey: newIdempotencyKey };
