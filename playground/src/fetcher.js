// The GraphiQL fetcher: queries and mutations over POST /graphql, subscriptions over the
// graphql-transport-ws protocol at ws(s)://<this host>/graphql/ws with the graphql-ws client.
// Both carry the playground's token unless the tab's own headers set an Authorization.

import { createClient } from 'graphql-ws';
import { getOperationAST, parse } from 'graphql';
import { adoptLogin, getAuth } from './auth.js';

export const HTTP_URL = new URL('/graphql', location.href).href;
export const WS_URL = new URL('/graphql/ws', location.href).href.replace(/^http/, 'ws');

// What the socket of each running subscription is doing, for the status line.
const sockets = new Map();
const socketListeners = new Set();
let nextSocket = 1;

export function socketSummary() {
  const states = [...sockets.values()];
  return {
    open: states.filter((s) => s.state === 'connected').length,
    connecting: states.filter((s) => s.state === 'connecting').length,
  };
}

export function subscribeSockets(listener) {
  socketListeners.add(listener);
  return () => socketListeners.delete(listener);
}

function setSocket(id, state) {
  if (state === null) sockets.delete(id);
  else sockets.set(id, { state });
  for (const listener of socketListeners) listener();
}

function headerValue(headers, name) {
  if (!headers) return undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

function authorization(headers) {
  const own = headerValue(headers, 'authorization');
  if (own) return own;
  const auth = getAuth();
  return auth ? `Bearer ${auth.token}` : undefined;
}

/**
 * The operation to run, read from the query itself rather than from GraphiQL's state: GraphiQL
 * updates its parsed document and operation name 100 ms after an edit, so a run right after
 * opening an example or switching tabs may carry the previous tab's. With one operation in the
 * document, that one runs.
 */
function operationOf(params) {
  try {
    const document = parse(params.query);
    const operations = document.definitions.filter((d) => d.kind === 'OperationDefinition');
    const named = operations.length === 1 ? operations[0].name?.value : params.operationName || undefined;
    const operation = getOperationAST(document, named);
    return { operationName: named, subscription: operation?.operation === 'subscription' };
  } catch {
    // Let the server report the syntax error.
    return { operationName: params.operationName || undefined, subscription: false };
  }
}

/** POSTs one operation to /graphql and answers the parsed body. */
export async function postGraphQL(params, headers = {}) {
  const token = authorization(headers);
  const own = Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'authorization'));
  const response = await fetch(HTTP_URL, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...own,
      ...(token ? { authorization: token } : {}),
    },
    body: JSON.stringify(params),
  });
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return { errors: [{ message: `HTTP ${response.status}: ${text.slice(0, 500)}` }] };
  }
}

const CLOSE_REASONS = {
  4401: '缺少访问令牌：请先在页面上方登录',
  4403: '访问令牌无效、已过期或已退出：请重新登录',
  4408: '连接初始化超时',
};

function closeMessage(event) {
  if (event instanceof Error) return event.message;
  if (event && typeof event.code === 'number') {
    const reason = CLOSE_REASONS[event.code] || event.reason || '连接已关闭';
    return `WebSocket 关闭（${event.code}）：${reason}`;
  }
  if (Array.isArray(event)) return event.map((e) => e.message).join('\n');
  return 'WebSocket 连接失败';
}

/** A subscription as an Observable (which GraphiQL can stop), one connection per subscription. */
function subscribe(params, headers) {
  return {
    subscribe(observer) {
      const token = authorization(headers);
      // Failures show in the result pane as GraphQL errors (GraphiQL would print an Error's stack).
      const fail = (message) => {
        observer.next({ errors: [{ message }] });
        observer.complete();
      };
      if (!token) {
        // After returning: GraphiQL records the subscription once subscribe() has returned, and
        // would take one that completed before that for one still running.
        queueMicrotask(() => fail('订阅需要登录：请先在页面上方登录（connection_init 携带 Authorization）'));
        return { unsubscribe() {} };
      }
      const id = nextSocket++;
      setSocket(id, 'connecting');
      const client = createClient({
        url: WS_URL,
        connectionParams: { Authorization: token },
        lazy: true,
        retryAttempts: 0,
        on: {
          connected: () => setSocket(id, 'connected'),
          closed: () => setSocket(id, null),
        },
      });
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        client.dispose();
        setSocket(id, null);
      };
      const stop = client.subscribe(
        { query: params.query, variables: params.variables, operationName: params.operationName },
        {
          next: (result) => observer.next(result),
          error: (error) => {
            finish();
            fail(closeMessage(error));
          },
          complete: () => {
            finish();
            observer.complete();
          },
        },
      );
      return {
        unsubscribe() {
          stop();
          finish();
        },
      };
    },
  };
}

// The results of the latest operations, for the browser test and for debugging in the console.
const recent = [];
globalThis.__playground = { recent, HTTP_URL, WS_URL };

export function fetcher(graphiqlParams, options = {}) {
  const headers = options.headers || {};
  const { operationName, subscription } = operationOf(graphiqlParams);
  const params = { ...graphiqlParams, operationName };
  if (subscription) return subscribe(params, headers);
  return postGraphQL(params, headers).then((result) => {
    recent.push({ operationName: operationName || null, result });
    if (recent.length > 20) recent.shift();
    // A login run from any tab signs the whole playground in, as the panel does.
    if (result && result.data && result.data.login) adoptLogin(result.data.login);
    return result;
  });
}
