import { dynamodbEndpoint, runToEnd, startService, uniqueTable } from '../support.ts';
import { describeAuth } from './authContract.ts';

const base = () => ({ PORT: '0', DYNAMODB_ENDPOINT: dynamodbEndpoint(), TABLE_NAME: uniqueTable('auth') });

describeAuth(
  'start:standalone',
  (env) => startService('start:standalone', { ...base(), ...env }, { timeoutMs: 120_000 }),
  (env) => runToEnd(process.execPath, ['--import', 'tsx', 'local/standalone.ts'], { ...base(), ...env }),
);
