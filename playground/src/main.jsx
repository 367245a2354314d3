// The playground page: a sign-in bar above GraphiQL, with the spec's flows as saved examples.
import './workers.js';
// GraphiQL's styles without the copy of Monaco's that graphiql/style.css carries for its CDN build
// (the bundle already holds Monaco's own, imported by its modules), and its fonts, inlined.
import '@graphiql/react/font/roboto.css';
import '@graphiql/react/font/fira-code.css';
import '@graphiql/react/style.css';
import '@graphiql/plugin-doc-explorer/style.css';
import '@graphiql/plugin-history/style.css';
import 'graphiql/graphiql.css';
import './playground.css';

import { StrictMode, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { useGraphiQL, useGraphiQLActions } from '@graphiql/react';
import { parse } from 'graphql';
import { getAuth, setAuth, subscribeAuth, adoptLogin } from './auth.js';
import { fetcher, postGraphQL, socketSummary, subscribeSockets } from './fetcher.js';
import { EXAMPLES, variablesText } from './examples.js';

const LOGIN = `mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) { token expiresAt userInfo { id username name } }
}`;

function useAuth() {
  return useSyncExternalStore(subscribeAuth, getAuth);
}

let socketSnapshot = socketSummary();
function useSockets() {
  return useSyncExternalStore(
    (listener) =>
      subscribeSockets(() => {
        socketSnapshot = socketSummary();
        listener();
      }),
    () => socketSnapshot,
  );
}

function formatTime(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return value;
  const two = (n) => String(n).padStart(2, '0');
  return `${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}`;
}

function LoginBar() {
  const auth = useAuth();
  const sockets = useSockets();
  const [username, setUsername] = useState('demo-a');
  const [password, setPassword] = useState('demo12345');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');

  async function login(event) {
    event.preventDefault();
    setBusy(true);
    setError('');
    try {
      const result = await postGraphQL({ query: LOGIN, variables: { username, password } });
      if (!adoptLogin(result.data && result.data.login)) {
        setError((result.errors && result.errors[0] && result.errors[0].message) || '登录失败');
      }
    } catch (e) {
      setError(`登录请求失败：${e.message}`);
    } finally {
      setBusy(false);
    }
  }

  async function logout() {
    setBusy(true);
    try {
      await postGraphQL({ query: 'mutation Logout { logout { success } }' });
    } catch {
      // Signing out locally is what matters here.
    } finally {
      setAuth(null);
      setBusy(false);
    }
  }

  const socketText =
    sockets.open > 0
      ? `WebSocket 已连接（${sockets.open} 个订阅）`
      : sockets.connecting > 0
        ? 'WebSocket 连接中…'
        : 'WebSocket 未连接';

  return (
    <header className="pd-bar">
      <span className="pd-title">provider-desk · GraphQL Playground</span>
      {auth ? (
        <div className="pd-auth" data-testid="auth-status" data-state="signed-in">
          <span className="pd-ok">
            已登录 <b data-testid="auth-username">{auth.username}</b>
            {auth.name ? `（${auth.name}）` : ''}
          </span>
          <span className="pd-muted" title="所有标签页的请求和订阅都携带这个令牌">
            令牌有效至 {formatTime(auth.expiresAt)}
          </span>
          <button type="button" onClick={logout} disabled={busy} data-testid="logout">
            退出 Log out
          </button>
        </div>
      ) : (
        <form className="pd-auth" onSubmit={login} data-testid="auth-status" data-state="signed-out">
          <input
            aria-label="用户名"
            placeholder="用户名"
            value={username}
            autoComplete="username"
            onChange={(e) => setUsername(e.target.value)}
            data-testid="username"
          />
          <input
            aria-label="密码"
            placeholder="密码"
            type="password"
            value={password}
            autoComplete="current-password"
            onChange={(e) => setPassword(e.target.value)}
            data-testid="password"
          />
          <button type="submit" disabled={busy} data-testid="login">
            登录 Log in
          </button>
          <span className="pd-muted">演示账号 demo-a / demo-b，密码 demo12345</span>
          {error ? (
            <span className="pd-error" data-testid="login-error">
              {error}
            </span>
          ) : null}
        </form>
      )}
      <span className="pd-socket" data-testid="socket-status" data-open={sockets.open}>
        {socketText}
      </span>
      <nav className="pd-links">
        <a href="/playground" target="_blank" rel="noopener" title="订阅在一个窗口运行，在另一个窗口发送">
          新窗口 New window
        </a>
        <a href="/api/docs">REST 文档 /api/docs</a>
      </nav>
    </header>
  );
}

/**
 * Fetches the schema again whenever the session changes. The server introspects only for signed-in
 * sessions (GRAPHQL_INTROSPECTION), and GraphiQL introspects once, when the page opens: without this
 * a visitor who signs in (through the bar, by running the login example, or in another window) would
 * get docs and completion only after a reload. Signing out asks again too, so GraphiQL shows that
 * the schema is no longer given (it keeps the one it had).
 */
function IntrospectOnSessionChange() {
  const token = useAuth()?.token ?? null;
  const { introspect } = useGraphiQLActions();
  // GraphiQL itself introspects when it mounts: only a later change of token asks again.
  const introspectedWith = useRef(token);
  useEffect(() => {
    if (introspectedWith.current === token) return;
    introspectedWith.current = token;
    introspect();
  }, [token, introspect]);
  return null;
}

function ExamplesPanel() {
  const queryEditor = useGraphiQL((state) => state.queryEditor);
  const variableEditor = useGraphiQL((state) => state.variableEditor);
  const { addTab, setOperationFacts, setOperationName, stop } = useGraphiQLActions();

  function open(example) {
    // As when switching tabs, a running operation (a subscription) stops: GraphiQL runs one at a
    // time. Keep a subscription running in one window and send from another.
    stop();
    addTab();
    queryEditor?.setValue(example.query);
    variableEditor?.setValue(variablesText(example));
    // GraphiQL parses the editor 100 ms after a change; a run before that would use the facts of
    // the tab that was open before. Set them now.
    const documentAST = parse(example.query);
    const operations = documentAST.definitions.filter((d) => d.kind === 'OperationDefinition');
    const operationName = operations[0].name.value;
    setOperationFacts({ documentAST, operationName, operations });
    setOperationName(operationName);
  }

  let lastFlow = null;
  return (
    <div className="pd-examples">
      <div className="graphiql-doc-explorer-title">示例 Examples</div>
      <p className="pd-muted">
        API 设计 5.2 节的每个流程。点击在新标签页中打开，再点运行。变量使用 demo-a 的演示数据（客户 c001–c030、工单
        t001–t036）。
      </p>
      <ul>
        {EXAMPLES.map((example) => {
          const heading =
            example.flow !== lastFlow ? (
              <li key={example.flow} className="pd-flow">
                {example.flow}
              </li>
            ) : null;
          lastFlow = example.flow;
          return [
            heading,
            <li key={example.title}>
              <button type="button" onClick={() => open(example)} data-example={example.title}>
                {example.title}
              </button>
            </li>,
          ];
        })}
      </ul>
    </div>
  );
}

function ExamplesIcon() {
  return (
    <svg viewBox="0 0 24 24" width="1em" height="1em" fill="none" stroke="currentColor" strokeWidth="1.5">
      <path d="M4 5h16M4 10h16M4 15h10M4 20h10" strokeLinecap="round" />
    </svg>
  );
}

const EXAMPLES_PLUGIN = { title: '示例 Examples', icon: ExamplesIcon, content: ExamplesPanel };

const DEFAULT_TABS = ['客户列表 Customers', '实时聊天 Live chat', '发送聊天 Send chat'].map((title) => {
  const example = EXAMPLES.find((e) => e.title === title);
  return { query: example.query, variables: variablesText(example) };
});

function App() {
  return (
    <div className="pd-page">
      <LoginBar />
      <div className="pd-graphiql">
        <GraphiQL
          fetcher={fetcher}
          plugins={[EXAMPLES_PLUGIN]}
          visiblePlugin={EXAMPLES_PLUGIN}
          defaultTabs={DEFAULT_TABS}
          defaultEditorToolsVisibility="variables"
        >
          <IntrospectOnSessionChange />
        </GraphiQL>
      </div>
    </div>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
