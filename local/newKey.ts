import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { hashKey, SCOPES } from '../lib/auth.ts';

/**
 * `npm run key:new -- --name shop1 --scopes orders:write,orders:read`: prints a fresh random key once,
 * and the API_KEYS entry that configures it (the service only ever keeps the key's SHA-256).
 */
const { values } = parseArgs({ options: { name: { type: 'string' }, scopes: { type: 'string' } } });
const name = values.name ?? '';
const scopes = (values.scopes ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const unknown = scopes.filter((scope) => !(SCOPES as readonly string[]).includes(scope));
if (!/^[\w.-]{1,64}$/.test(name) || scopes.length === 0 || unknown.length > 0) {
  process.stderr.write(
    `Usage: npm run key:new -- --name <name> --scopes <scope,...>\n` +
      `  name: 1-64 of A-Z a-z 0-9 _ . -; scopes: ${SCOPES.join(', ')}${unknown.length ? `\n  unknown scopes: ${unknown.join(', ')}` : ''}\n`,
  );
  process.exit(2);
}
const key = `op_${randomBytes(32).toString('base64url')}`;
process.stdout.write(
  `API key for ${name} (shown once; store it now):\n\n  ${key}\n\n` +
    `Add this entry to API_KEYS (comma-separated entries), or to the SSM parameter in the cloud:\n\n` +
    `  ${name}:${scopes.join('+')}:${hashKey(key).toString('hex')}\n`,
);
