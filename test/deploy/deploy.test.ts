import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);

it('refuses to deploy without AWS credentials, saying what to set', async () => {
  const home = await mkdtemp(join(tmpdir(), 'no-aws-'));
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, AWS_EC2_METADATA_DISABLED: 'true' };
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_WEB_IDENTITY_TOKEN_FILE']) {
    delete env[name];
  }
  try {
    const failure = await run('npm', ['run', '--silent', 'deploy:staging'], { env, timeout: 60_000 }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );

    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain('No AWS credentials found, so stage "staging" cannot be deployed.');
    expect(failure?.stderr).toContain('npm run package:staging');
    expect(failure?.stderr).not.toMatch(/\n\s+at /);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
