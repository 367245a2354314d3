// A stand-in for the mini-program's `wx` under Node: `wx.request` over `fetch`, `wx.connectSocket`
// over the `ws` package, and an in-memory storage. It keeps a log of every request and socket, and
// can lose an answer (the request reaches the server; its answer never comes back), kill a socket
// (the TCP connection torn down, no close frame) or deafen one (open, but nothing arrives), which is
// what a phone in a tunnel sees.
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import WebSocket from 'ws';

export const BASE_URL = process.env.BASE_URL || 'http://127.0.0.1:8080';
export const JWT_SECRET = process.env.JWT_SECRET;
export const PASSWORD = process.env.DEMO_PASSWORD || 'demo12345';

export function memoryStorage() {
  const values = new Map();
  return {
    get: (key) => (values.has(key) ? structuredClone(values.get(key)) : null),
    set: (key, value) => void values.set(key, structuredClone(value)),
    remove: (key) => void values.delete(key),
  };
}

export function createWx() {
  const requests = [];
  const sockets = [];
  const answersToLose = [];

  const wx = {
    requests,
    sockets,
    /** The next request `matches` accepts reaches the server, and its answer is lost. */
    loseAnswerOf(matches) {
      answersToLose.push(matches);
    },

    request({ url, method = 'GET', data, header = {}, timeout = 15000, success, fail }) {
      const entry = { url, path: new URL(url).pathname, method, header: { ...header }, data };
      requests.push(entry);
      const lose = answersToLose.findIndex((matches) => matches(entry));
      if (lose !== -1) answersToLose.splice(lose, 1);
      const body = data === undefined || method === 'GET' ? undefined : JSON.stringify(data);
      fetch(url, { method, headers: header, body, signal: AbortSignal.timeout(timeout) })
        .then(async (response) => {
          const text = await response.text();
          entry.status = response.status;
          if (lose !== -1) {
            entry.lost = true;
            fail({ errMsg: 'request:fail timeout' });
            return;
          }
          let parsed = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // wx hands back the text when it is not JSON.
          }
          success({ statusCode: response.status, data: parsed, header: Object.fromEntries(response.headers) });
        })
        .catch((error) => fail({ errMsg: `request:fail ${error.message}` }));
    },

    /** `wx.uploadFile`: the file at `filePath` as the multipart part `name`, over `fetch`. */
    uploadFile({ url, filePath, name, header = {}, timeout = 60000, success, fail }) {
      const entry = { url, path: new URL(url).pathname, method: 'POST', header: { ...header }, filePath };
      requests.push(entry);
      readFile(filePath)
        .then((bytes) => {
          const form = new FormData();
          form.append(name, new Blob([bytes]), basename(filePath));
          return fetch(url, { method: 'POST', headers: header, body: form, signal: AbortSignal.timeout(timeout) });
        })
        .then(async (response) => {
          entry.status = response.status;
          // wx.uploadFile hands back the body as text, never parsed.
          success({ statusCode: response.status, data: await response.text(), header: Object.fromEntries(response.headers) });
        })
        .catch((error) => fail({ errMsg: `uploadFile:fail ${error.message}` }));
    },

    connectSocket({ url, protocols }) {
      const socket = new WebSocket(url, protocols);
      const entry = { url, closeCode: null, socket, sent: [], received: [] };
      sockets.push(entry);
      socket.on('message', (data) => entry.received.push(JSON.parse(data.toString())));
      const on = (event, wrap) => (callback) => socket.on(event, (...args) => callback(wrap(...args)));
      socket.on('close', (code) => {
        entry.closeCode = code;
      });
      return {
        onOpen: on('open', () => ({})),
        onMessage: (callback) =>
          socket.on('message', (data) => {
            if (!entry.deaf) callback({ data: data.toString() });
          }),
        onClose: on('close', (code, reason) => ({ code, reason: reason.toString() })),
        onError: on('error', (error) => ({ errMsg: error.message })),
        send({ data }) {
          entry.sent.push(JSON.parse(data));
          if (socket.readyState === WebSocket.OPEN) socket.send(data);
        },
        close({ code = 1000, reason = '' } = {}) {
          if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
          else socket.close(code, reason);
        },
      };
    },
  };
  return wx;
}

/** Kills the socket the client has open: no close frame, as when a phone loses its network. */
export function killOpenSocket(wx) {
  const open = wx.sockets.filter((entry) => entry.socket.readyState === WebSocket.OPEN);
  if (open.length !== 1) throw new Error(`expected one open socket, found ${open.length}`);
  open[0].socket.terminate();
}

/** From now on nothing the server sends reaches the client, though the connection stays open (a tunnel). */
export function deafenOpenSocket(wx) {
  const open = wx.sockets.filter((entry) => entry.socket.readyState === WebSocket.OPEN);
  if (open.length !== 1) throw new Error(`expected one open socket, found ${open.length}`);
  open[0].deaf = true;
}

/** The same access token, re-signed as expired an hour ago (past the server's minute of leeway). */
export function expired(token) {
  if (!JWT_SECRET) throw new Error('JWT_SECRET (the server\'s) is needed to make an expired token');
  const [header, payload] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  const now = Math.floor(Date.now() / 1000);
  Object.assign(claims, { iat: now - 7200, nbf: now - 7200, exp: now - 3600 });
  const body = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${body}.${createHmac('sha256', JWT_SECRET).update(body).digest('base64url')}`;
}

/** Resolves when `condition()` holds; fails after `seconds`. */
export async function until(condition, what, seconds = 20) {
  const deadline = Date.now() + seconds * 1000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
