// Drives /playground in Debian's headless Chromium the way a developer would: loads the page
// signed out (no schema: the docs explorer shows the server's refusal), signs in as demo-a in the
// sign-in bar and sees the schema load in the docs explorer without a reload, runs the customer
// list from the examples, starts the live chat subscription, sends a chat message from a second
// playground window and waits for it in the first one's result pane. Fails on any failed request,
// any request to a host other than the server's, any Content-Security-Policy violation and any
// uncaught page error. Prints one JSON object with what it saw.
//
// Environment: BASE_URL (http://127.0.0.1:port), SCREENSHOT (where to save a PNG of the page),
// CHROMIUM (default /usr/bin/chromium).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

const base = process.env.BASE_URL;
const screenshot = process.env.SCREENSHOT;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const serverHost = new URL(base).host;
const DEADLINE_MS = 120_000;

const problems = [];
const requests = [];
const steps = [];

function step(name) {
  steps.push({ name, atMs: Date.now() - started });
}

/**
 * The text of GraphiQL's result pane without any whitespace: Monaco renders spaces as no-break
 * spaces and wraps long lines wherever it likes, Chinese text between any two characters.
 */
async function resultText(page) {
  const text = await page.locator('.graphiql-response').innerText();
  return squeeze(text);
}

function squeeze(text) {
  return text.replace(/[\s\u00a0]+/g, '');
}

async function waitForResult(page, predicate, what, timeout = 20_000) {
  const until = Date.now() + timeout;
  let text = '';
  while (Date.now() < until) {
    text = await resultText(page);
    if (predicate(text)) return text;
    await page.waitForTimeout(200);
  }
  throw new Error(`timed out waiting for ${what}; the result pane shows:\n${text}`);
}

/** Opens a saved example in a new tab and runs it. */
async function runExample(page, title) {
  await page.locator(`[data-example="${title}"]`).click();
  await page.locator('.graphiql-execute-button').click();
}

function allowed(url) {
  if (url.startsWith('data:') || url.startsWith('blob:')) return true;
  try {
    return new URL(url).host === serverHost;
  } catch {
    return false;
  }
}

const started = Date.now();
const timer = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: `no result within ${DEADLINE_MS} ms`, steps, problems }));
  process.exit(1);
}, DEADLINE_MS);

const browser = await chromium.launch({
  executablePath,
  headless: true,
  // As the machine notes say: without the background-networking flags Chromium tries to reach
  // Google's hosts at start, which this closed network refuses. Playwright gives the browser a
  // fresh, empty profile directory of its own.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

let outcome;
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
  context.on('request', (request) => {
    requests.push(request.url().slice(0, 120));
    if (!allowed(request.url())) problems.push(`request to another host: ${request.url()}`);
  });
  context.on('requestfailed', (request) => {
    problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`);
  });
  context.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url()}`);
  });
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
    });
  });

  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('websocket', (socket) => {
    requests.push(socket.url());
    if (!allowed(socket.url().replace(/^ws/, 'http'))) problems.push(`WebSocket to another host: ${socket.url()}`);
  });

  await page.goto(`${base}/playground`, { waitUntil: 'load' });
  await page.locator('.graphiql-container').waitFor();
  await page.locator('[data-example="客户列表 Customers"]').waitFor();
  const docsLink = await page.locator('a[href="/api/docs"]').count();
  step('page loaded');

  // Opened signed out (a fresh context has no saved token), the page gets no schema: the server
  // introspects only for signed-in sessions. Signing in through the bar loads it, without a reload.
  await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
  const docs = page.locator('.graphiql-doc-explorer');
  const customerType = docs.locator('.graphiql-doc-explorer-type-name', { hasText: /^Customer$/ });
  await docs.locator('.graphiql-doc-explorer-error').waitFor({ timeout: 20_000 });
  const schemaBeforeSignIn = (await customerType.count()) > 0;
  step('no schema while signed out');

  await page.getByTestId('username').fill('demo-a');
  await page.getByTestId('password').fill('demo12345');
  await page.getByTestId('login').click();
  await page.getByTestId('auth-username').waitFor();
  const signedInAs = await page.getByTestId('auth-username').innerText();
  step('signed in');

  await customerType.first().waitFor({ timeout: 20_000 });
  const schemaAfterSignIn = (await customerType.count()) > 0;
  step('schema loaded after signing in');
  await page.getByRole('button', { name: 'Show 示例 Examples' }).click();

  await runExample(page, '客户列表 Customers');
  const customers = await waitForResult(
    page,
    (text) => text.includes('"total":30') && /"id":"c0(0[1-9]|[12]\d|30)"/.test(text),
    "demo-a's customers",
  );
  const customerIds = [...customers.matchAll(/"id":"(c\d+)"/g)].map((m) => m[1]);
  step('customer list shown');

  await runExample(page, '实时聊天 Live chat');
  await page.locator('[data-testid="socket-status"][data-open="1"]').waitFor({ timeout: 20_000 });
  step('subscription connected');

  // A second window of the playground, signed in by the first (the token is shared through
  // localStorage), sends chat messages with the Send chat example. The subscription starts live (no
  // `after`), so a message sent before the server has set it up would not be shown: send again, a
  // new message each time, until one arrives.
  const sender = await context.newPage();
  sender.on('pageerror', (error) => problems.push(`page error (second window): ${error.message}`));
  await sender.goto(`${base}/playground`, { waitUntil: 'load' });
  await sender.getByTestId('auth-username').waitFor();
  const secondWindowSignedInAs = await sender.getByTestId('auth-username').innerText();
  step('second window signed in');
  const sent = [];
  let arrived = null;
  let sentText = '';
  for (let attempt = 1; attempt <= 5 && !arrived; attempt++) {
    await runExample(sender, '发送聊天 Send chat');
    sentText = await waitForResult(sender, (text) => /"sendChatMessage":\{"id":"[^"]+"/.test(text), 'the sent message');
    sent.push(sentText.match(/"sendChatMessage":\{"id":"([^"]+)"/)[1]);
    await page.bringToFront();
    try {
      const seen = (text) => sent.find((id) => text.includes(`"id":"${id}"`));
      arrived = seen(await waitForResult(page, seen, 'the chat message', 5_000));
    } catch {
      // Not there yet: the next attempt sends another.
    }
  }
  if (!arrived) throw new Error(`none of the chat messages arrived: ${sent.join(', ')}; sender: ${sentText}`);
  step('chat message arrived');

  if (screenshot) {
    mkdirSync(dirname(screenshot), { recursive: true });
    // Clicking the last examples scrolled their list: show it from the top.
    await page.locator('.pd-examples').evaluate((element) => {
      for (let node = element; node; node = node.parentElement) node.scrollTop = 0;
    });
    await page.screenshot({ path: screenshot });
  }
  const cspViolations = await page.evaluate(() => window.__cspViolations);
  for (const violation of cspViolations) problems.push(`CSP violation: ${violation}`);

  outcome = {
    ok:
      problems.length === 0 &&
      signedInAs === 'demo-a' &&
      secondWindowSignedInAs === 'demo-a' &&
      docsLink === 1 &&
      !schemaBeforeSignIn &&
      schemaAfterSignIn,
    signedInAs,
    schemaBeforeSignIn,
    schemaAfterSignIn,
    secondWindowSignedInAs,
    docsLink,
    customerIds,
    sent,
    arrived,
    attempts: sent.length,
    screenshot: screenshot || null,
    requests: requests.length,
    hosts: [...new Set(requests.filter((url) => /^(http|ws)s?:/.test(url)).map((url) => url.split('/')[2]))],
    steps,
    problems,
  };
} catch (error) {
  outcome = { ok: false, error: String(error && error.stack ? error.stack : error), steps, problems };
  if (screenshot) {
    try {
      const [page] = browser.contexts()[0]?.pages() ?? [];
      if (page) await page.screenshot({ path: screenshot });
    } catch {
      // The error above is what matters.
    }
  }
} finally {
  await browser.close();
  clearTimeout(timer);
}

console.log(JSON.stringify(outcome));
process.exit(outcome.ok ? 0 : 1);
