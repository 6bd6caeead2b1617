import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// Docker cannot run on our machines: the file is checked for what it must say, not started.
describe('docker-compose.yml', () => {
  it('runs the standalone app against DynamoDB Local with its data in a volume', async () => {
    const compose = parse(await readFile('docker-compose.yml', 'utf8'));

    expect(Object.keys(compose.services)).toEqual(['dynamodb', 'app']);
    expect(compose.services.dynamodb).toMatchObject({
      image: expect.stringMatching(/^amazon\/dynamodb-local:/),
      command: expect.arrayContaining(['-sharedDb', '-dbPath', '/home/dynamodblocal/data']),
      volumes: ['dynamodb-data:/home/dynamodblocal/data'],
    });
    expect(compose.services.app).toMatchObject({
      command: ['sh', '-c', 'npm ci && npm run start:standalone'],
      environment: {
        DYNAMODB_ENDPOINT: 'http://dynamodb:8000',
        HOST: '0.0.0.0',
        PORT: '3000',
        API_KEYS: '${API_KEYS:?set API_KEYS first (npm run key:new)}',
      },
      ports: ['3000:3000'],
      depends_on: ['dynamodb'],
    });
    expect(Object.keys(compose.volumes)).toContain('dynamodb-data');
  });

  it("publishes nothing but the API's port: DynamoDB Local has no authentication", async () => {
    const compose = parse(await readFile('docker-compose.yml', 'utf8'));

    const published = Object.entries(compose.services).flatMap(([name, service]) =>
      ((service as { ports?: string[] }).ports ?? []).map((port) => `${name} ${port}`),
    );
    expect(published).toEqual(['app 3000:3000']);
  });
});
