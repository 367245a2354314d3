// The playground's sign-in: one access token for every tab, sent as `Authorization: Bearer <token>`
// on POST /graphql and as the connection_init payload on /graphql/ws. Kept in localStorage, so a
// reload stays signed in and a second playground window (for a subscription in one and mutations
// in the other: GraphiQL stops a running subscription when it switches tabs) is signed in too.

const STORAGE_KEY = 'provider-desk.playground.auth';
const listeners = new Set();

function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || 'null');
    if (saved && typeof saved.token === 'string' && new Date(saved.expiresAt) > new Date()) return saved;
  } catch {
    // A broken entry is as good as none.
  }
  return null;
}

let current = load();

/** The signed-in session ({ token, expiresAt, username, name, id }) or null. */
export function getAuth() {
  return current;
}

export function setAuth(auth) {
  current = auth;
  if (auth) localStorage.setItem(STORAGE_KEY, JSON.stringify(auth));
  else localStorage.removeItem(STORAGE_KEY);
  for (const listener of listeners) listener();
}

// Signing in or out in another window of the playground applies here too.
window.addEventListener('storage', (event) => {
  if (event.key !== STORAGE_KEY) return;
  current = load();
  for (const listener of listeners) listener();
});

export function subscribeAuth(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Adopts the token of a `login` answer, from the panel or from an operation run in any tab. */
export function adoptLogin(login) {
  if (!login || typeof login.token !== 'string') return false;
  const user = login.userInfo || {};
  setAuth({ token: login.token, expiresAt: login.expiresAt, username: user.username, name: user.name, id: user.id });
  return true;
}
