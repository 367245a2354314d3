// The client kit against a real provider-desk server (BASE_URL; JWT_SECRET to make an expired
// token), through the `wx` stand-in. Run by tests/process/client_kit.rs on both backends, or by
// hand: BASE_URL=http://127.0.0.1:8080 JWT_SECRET=... node --test test/*.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kit from '../index.js';
import {
  BASE_URL,
  PASSWORD,
  createWx,
  deafenOpenSocket,
  expired,
  killOpenSocket,
  memoryStorage,
  until,
} from './wx-standin.mjs';

const { createClient } = kit;
const SESSION_KEY = 'provider-desk.session';
const CHAT = `subscription($customerId: ID, $after: String) {
  chatMessages(customerId: $customerId, after: $after) { cursor message { id content } }
}`;

async function signedIn(wx = createWx(), storage = memoryStorage()) {
  const client = createClient({ baseUrl: BASE_URL, storage, wx });
  await client.login('demo-a', PASSWORD);
  return { client, wx, storage };
}

function send(client, customerId, content) {
  return client.request({ method: 'POST', path: '/api/chat/send', data: { customerId, content }, idempotent: true });
}

function acknowledged(entry) {
  return entry.received.some((message) => message.type === 'connection_ack');
}

/** Sends until the subscription delivers one (a subscription is live only once the server has it). */
async function warmUp(client, customerId, seen) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const sent = await send(client, customerId, `预热 ${attempt}`);
    try {
      await until(() => seen.some((event) => event.message.id === sent.messageId), 'the warm-up message', 1);
      return;
    } catch {
      // Not subscribed yet: try again.
    }
  }
  throw new Error('the subscription never delivered');
}

test('ten concurrent requests with an expired access token cause exactly one refresh', async () => {
  const { wx, storage } = await signedIn();
  const session = storage.get(SESSION_KEY);
  // The app opens a day later: its stored access token has expired, its refresh token has not.
  storage.set(SESSION_KEY, { ...session, token: expired(session.token) });
  const client = createClient({ baseUrl: BASE_URL, storage, wx });
  const before = wx.requests.length;

  const pages = await Promise.all(
    Array.from({ length: 10 }, () => client.request({ path: '/api/customers', data: { pageSize: 1 } })),
  );

  const log = wx.requests.slice(before);
  assert.equal(log.filter((entry) => entry.path === '/api/auth/refresh').length, 1, 'one refresh');
  assert.equal(log.filter((entry) => entry.path === '/api/customers' && entry.status === 401).length, 10);
  assert.equal(log.filter((entry) => entry.path === '/api/customers' && entry.status === 200).length, 10);
  for (const page of pages) assert.ok(Array.isArray(page.customers), 'each caller gets its page');
  const rotated = storage.get(SESSION_KEY);
  assert.notEqual(rotated.refreshToken, session.refreshToken, 'the refresh token rotated once');
  // Still signed in: no reuse of the old refresh token revoked the family.
  assert.ok(await client.request({ path: '/api/customers', data: { pageSize: 1 } }));
});

test('a send whose answer is lost is retried with the same key and stores one message', async () => {
  const { client, wx } = await signedIn();
  const content = `应答丢失后重试的消息 ${Date.now()}`;
  wx.loseAnswerOf((entry) => entry.path === '/api/chat/send');

  const sent = await send(client, 'c002', content);

  const attempts = wx.requests.filter((entry) => entry.path === '/api/chat/send');
  assert.equal(attempts.length, 2, 'the lost one and its retry');
  assert.ok(attempts[0].lost && attempts[0].status === 200, 'the first attempt reached the server');
  const key = attempts[0].header['Idempotency-Key'];
  assert.ok(key, 'a key is sent');
  assert.equal(attempts[1].header['Idempotency-Key'], key, 'the retry sends the same key');
  const history = await client.request({ path: '/api/chat/messages', data: { customerId: 'c002', pageSize: 50 } });
  const stored = history.messages.filter((message) => message.content === content);
  assert.deepEqual(stored.map((message) => message.id), [sent.messageId], 'one message stored');
});

test('an unkeyed write whose answer is lost is not sent again', async () => {
  const { client, wx } = await signedIn();
  wx.loseAnswerOf((entry) => entry.path === '/api/chat/send');
  await assert.rejects(
    client.request({ method: 'POST', path: '/api/chat/send', data: { customerId: 'c002', content: '不重试' } }),
    (error) => error.name === 'ApiError' && error.code === 0,
  );
  assert.equal(wx.requests.filter((entry) => entry.path === '/api/chat/send').length, 1);
});

test('a server error becomes an ApiError with the code, the message and the request id', async () => {
  const { client } = await signedIn();
  await assert.rejects(client.request({ path: '/api/customers/no-such-customer' }), (error) => {
    assert.equal(error.name, 'ApiError');
    assert.equal(error.code, 404);
    assert.match(error.message, /[\u4e00-\u9fff]/, 'the server\'s Chinese message');
    assert.ok(error.requestId, 'the request id to quote');
    return true;
  });
});

test('a socket killed mid-stream resumes from its cursor with no gap and no duplicate', async () => {
  const { client, wx } = await signedIn();
  const seen = [];
  const errors = [];
  const unsubscribe = client.subscribe(CHAT, { customerId: 'c003' }, (event) => seen.push(event), {
    onError: (error) => errors.push(error),
  });
  await warmUp(client, 'c003', seen);
  const firstNew = seen.length;

  const sent = [];
  for (let i = 0; i < 12; i++) {
    if (i === 4) killOpenSocket(wx);
    sent.push((await send(client, 'c003', `第${i + 1}条`)).messageId);
  }
  await until(() => seen.some((event) => event.message.id === sent[sent.length - 1]), 'the last message');
  const last = await send(client, 'c003', '最后一条');
  await until(() => seen.some((event) => event.message.id === last.messageId), 'the sentinel');
  unsubscribe();

  assert.deepEqual(
    seen.slice(firstNew).map((event) => event.message.id),
    [...sent, last.messageId],
    'each message once, in order',
  );
  const cursors = seen.map((event) => BigInt(event.cursor));
  cursors.slice(1).forEach((cursor, i) => assert.ok(cursor > cursors[i], 'cursors only grow'));
  assert.ok(wx.sockets.length >= 2, 'the client reconnected');
  assert.equal(wx.sockets[0].closeCode, 1006, 'the first socket died without a close frame');
  const resumed = wx.sockets[1].sent.find((message) => message.type === 'subscribe');
  assert.ok(resumed.payload.variables.after, 'the new subscription passes the last cursor as after');
  assert.deepEqual(errors, []);
});

test('a socket refused for an expired token refreshes once, with the requests, and resubscribes', async () => {
  const { wx, storage } = await signedIn();
  const session = storage.get(SESSION_KEY);
  storage.set(SESSION_KEY, { ...session, token: expired(session.token) });
  const client = createClient({ baseUrl: BASE_URL, storage, wx });
  const before = wx.requests.length;
  const seen = [];
  let signedOut = null;
  const unsubscribe = client.subscribe(CHAT, { customerId: 'c006' }, (event) => seen.push(event), {
    onSignedOut: (error) => (signedOut = error),
  });

  // The socket signs in with the expired token (refused with 4403) while the sends find it expired too.
  await warmUp(client, 'c006', seen);
  unsubscribe();

  const refreshes = wx.requests.slice(before).filter((entry) => entry.path === '/api/auth/refresh');
  assert.equal(refreshes.length, 1, 'one refresh for the socket and the requests');
  assert.ok(wx.sockets.length >= 2, 'the refused socket was replaced');
  const { token } = storage.get(SESSION_KEY);
  const last = wx.sockets[wx.sockets.length - 1];
  const init = last.sent.find((message) => message.type === 'connection_init');
  assert.equal(init.payload.Authorization, `Bearer ${token}`, 'the new socket signs in with the new token');
  assert.equal(signedOut, null);
});

test('a logout elsewhere ends the subscription with the signed-out callback', async () => {
  const { client, wx, storage } = await signedIn();
  const { token } = storage.get(SESSION_KEY);
  let signedOut = null;
  client.subscribe(CHAT, { customerId: 'c004' }, () => {}, { onSignedOut: (error) => (signedOut = error) });
  await until(() => wx.sockets.length === 1 && acknowledged(wx.sockets[0]), 'the connection');

  // The same session signed out from somewhere else (another page, the web console).
  const answer = await fetch(`${BASE_URL}/api/auth/logout`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: '{}',
  });
  assert.equal(answer.status, 200);

  await until(() => signedOut !== null, 'the signed-out callback');
  assert.equal(wx.sockets[0].closeCode, 4403, 'the server closed the socket');
  assert.equal(signedOut.signedOut, true);
  const refresh = wx.requests.filter((entry) => entry.path === '/api/auth/refresh');
  assert.deepEqual(refresh.map((entry) => entry.status), [401], 'one refresh tried, refused');
  assert.equal(storage.get(SESSION_KEY), null, 'the session is forgotten');
  assert.equal(wx.sockets.length, 1, 'no reconnection');
  assert.equal(await client.isSignedIn(), false);
});

test('the kit pings the server and a socket that answers stays up', async () => {
  const wx = createWx();
  const client = createClient({ baseUrl: BASE_URL, storage: memoryStorage(), wx, socket: { keepAliveMs: 100 } });
  await client.login('demo-a', PASSWORD);
  const unsubscribe = client.subscribe(CHAT, { customerId: 'c007' }, () => {});
  await until(
    () => wx.sockets[0] && wx.sockets[0].received.filter((message) => message.type === 'pong').length >= 3,
    'three pongs',
  );
  unsubscribe();
  assert.equal(wx.sockets.length, 1, 'no reconnection');
  assert.ok(wx.sockets[0].sent.filter((message) => message.type === 'ping').length >= 3);
});

test('a socket that goes silent is found dead by its pings and resumes from its cursor', async () => {
  const wx = createWx();
  const client = createClient({ baseUrl: BASE_URL, storage: memoryStorage(), wx, socket: { keepAliveMs: 200 } });
  await client.login('demo-a', PASSWORD);
  const seen = [];
  const unsubscribe = client.subscribe(CHAT, { customerId: 'c008' }, (event) => seen.push(event));
  await warmUp(client, 'c008', seen);
  const firstNew = seen.length;

  deafenOpenSocket(wx);
  const sent = [];
  for (let i = 0; i < 3; i++) sent.push((await send(client, 'c008', `隧道里第${i + 1}条`)).messageId);
  await until(() => seen.some((event) => event.message.id === sent[sent.length - 1]), 'the messages after the silence');
  unsubscribe();

  assert.deepEqual(seen.slice(firstNew).map((event) => event.message.id), sent, 'each message once, in order');
  assert.ok(wx.sockets.length >= 2, 'the client replaced the silent socket');
});

test('a file uploaded with wx.uploadFile is sent in a chat message by its attachmentId', async () => {
  const { client, wx } = await signedIn();
  const dir = await mkdtemp(join(tmpdir(), 'kit-'));
  const file = join(dir, '库存.csv');
  await writeFile(file, '商品,库存\n打印纸,12\n');
  const uploaded = await client.upload(file);
  assert.equal(uploaded.fileName, '库存.csv');
  assert.match(uploaded.contentType, /^text\/csv/);
  assert.equal(uploaded.size, Buffer.byteLength('商品,库存\n打印纸,12\n'));
  const upload = wx.requests.find((entry) => entry.path === '/api/uploads');
  assert.match(upload.header.authorization, /^Bearer /, 'the token goes in the header');

  const sent = await client.request({
    method: 'POST',
    path: '/api/chat/send',
    data: { customerId: 'c001', content: '导出的库存', attachmentIds: [uploaded.attachmentId] },
    idempotent: true,
  });
  const history = await client.request({
    method: 'POST',
    path: '/graphql',
    data: {
      query: 'query($c: ID!) { chatMessages(customerId: $c, page: 1, pageSize: 100) { items { id attachments { id } } } }',
      variables: { c: 'c001' },
    },
  });
  const message = history.chatMessages.items.find((item) => item.id === sent.messageId);
  assert.deepEqual(message.attachments.map((a) => a.id), [uploaded.attachmentId]);
});

test('an upload the server refuses rejects with its code and message', async () => {
  const { client } = await signedIn();
  const dir = await mkdtemp(join(tmpdir(), 'kit-'));
  const file = join(dir, 'logo.png');
  await writeFile(file, '<svg xmlns="http://www.w3.org/2000/svg"></svg>');
  await assert.rejects(client.upload(file), (error) => error.name === 'ApiError' && error.code === 415);
});
