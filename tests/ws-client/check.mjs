// Drives the server's /graphql/ws with graphql-ws, the reference client of the
// graphql-transport-ws protocol, and prints what it saw as one JSON object.
// Environment: BASE_URL (http://host:port), TOKEN (an access token), CUSTOMER_ID.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const base = process.env.BASE_URL;
const token = process.env.TOKEN;
const customerId = process.env.CUSTOMER_ID;
const url = base.replace(/^http/, 'ws') + '/graphql/ws';

async function graphql(query, variables) {
  const response = await fetch(base + '/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}

function withTimeout(promise, ms, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)),
  ]);
}

// The close code a connection signed in with `connectionParams` ends with.
function closeCodeFor(connectionParams) {
  return new Promise((resolve) => {
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      connectionParams,
      lazy: false,
      onNonLazyError: () => {},
      retryAttempts: 0,
      on: { closed: (event) => resolve(event.code) },
    });
    client.subscribe({ query: 'subscription { notifications { cursor } }' }, {
      next() {},
      error() {},
      complete() {},
    });
  });
}

async function chat() {
  const client = createClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  const events = [];
  let wanted = 0;
  let reached = () => {};
  const subscription = client.iterate({
    query: `subscription($customerId: ID, $after: String) {
      chatMessages(customerId: $customerId, after: $after) { cursor message { id content senderType customerId } }
    }`,
    variables: { customerId, after: '0' },
  });
  const reading = (async () => {
    for await (const result of subscription) {
      if (result.errors) throw new Error(JSON.stringify(result.errors));
      events.push(result.data.chatMessages);
      if (events.length >= wanted) reached();
    }
  })();
  const waitFor = (count, what) => {
    wanted = count;
    return withTimeout(
      new Promise((resolve) => {
        reached = resolve;
        if (events.length >= count) resolve();
      }),
      10000,
      what,
    );
  };
  const history = await graphql(
    'query($c: ID!) { chatMessages(customerId: $c, pageSize: 100) { total items { id } } }',
    { c: customerId },
  );
  const stored = history.data.chatMessages.items.map((m) => m.id);
  await waitFor(stored.length, 'the replay of the stored conversation');
  const replayed = events.map((e) => e.message.id);
  const sent = await graphql(
    'mutation($c: ID!, $t: String!) { sendChatMessage(customerId: $c, content: $t) { id } }',
    { c: customerId, t: '来自 graphql-ws 客户端的测试消息' },
  );
  await waitFor(stored.length + 1, 'the live message');
  await subscription.return();
  await reading.catch(() => {});
  await client.dispose();
  return { stored, replayed, sentId: sent.data.sendChatMessage.id, live: events[stored.length] };
}

const result = {};
try {
  Object.assign(result, await chat());
  result.missingTokenClose = await withTimeout(closeCodeFor({}), 10000, 'a close without a token');
  result.badTokenClose = await withTimeout(closeCodeFor({ Authorization: 'Bearer not-a-token' }), 10000, 'a close with a bad token');
} catch (error) {
  result.error = String(error && error.stack ? error.stack : error);
}
console.log(JSON.stringify(result));
process.exit(0);
