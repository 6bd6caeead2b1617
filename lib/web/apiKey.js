// The API key of this tab, shared by the dashboard and the API reference. When the service asks for a key
// (401, or 403 for one without the scope), the page shows its key form; the key entered is kept for this
// tab only (sessionStorage, never localStorage or a cookie) and sent as a Bearer token.

const STORAGE = 'order-dashboard.api-key';
let key = sessionStorage.getItem(STORAGE) ?? '';

const form = document.querySelector('#key-form');
const input = document.querySelector('#api-key');

/** Writes the page's status line. */
export const showStatus = (state, text) => {
  const status = document.querySelector('#live');
  status.dataset.state = state;
  status.textContent = text;
};

/** A GET of the API, with the key when there is one. */
export const api = (path) => fetch(path, { cache: 'no-store', headers: key ? { authorization: `Bearer ${key}` } : {} });

/**
 * For an answer that refuses the key (401/403): shows the key form and returns the problem's detail, to be
 * shown as text. For any other answer: hides the form and returns undefined.
 */
export const refusal = async (response) => {
  const refused = response.status === 401 || response.status === 403;
  form.hidden = !refused;
  if (!refused) return undefined;
  const problem = await response.json().catch(() => ({}));
  return problem.detail ?? `HTTP ${response.status}`;
};

/** Calls `retry` each time a key is entered. */
export const onKey = (retry) =>
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    key = input.value.trim();
    sessionStorage.setItem(STORAGE, key);
    input.value = '';
    void retry();
  });

// The OpenAPI document needs the key too, which a plain link cannot send: links to it fetch it with the
// key and save what they read as openapi.json (or, refused, ask for a key like the page does).
document.addEventListener('click', async (event) => {
  const link = event.target instanceof Element ? event.target.closest('a[href="/openapi.json"]') : null;
  if (!link) return;
  event.preventDefault();
  try {
    const response = await api('/openapi.json');
    if (await refusal(response)) return input.focus();
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const url = URL.createObjectURL(await response.blob());
    Object.assign(document.createElement('a'), { href: url, download: 'openapi.json' }).click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    showStatus('error', `cannot read /openapi.json (${error.message})`);
  }
});
