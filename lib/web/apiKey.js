// The API key of this tab, shared by the dashboard and the API reference. When the service asks for a key
// (401, or 403 for one without the scope), the page shows its key form; the key entered is kept for this
// tab only (sessionStorage, never localStorage or a cookie) and sent as a Bearer token.

const STORAGE = 'order-dashboard.api-key';
let key = sessionStorage.getItem(STORAGE) ?? '';

const form = document.querySelector('#key-form');
const input = document.querySelector('#api-key');

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
