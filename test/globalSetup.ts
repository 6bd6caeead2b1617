import type { TestProject } from 'vitest/node';
import { startDynamoDBLocal } from '../local/dynamodbLocal.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
  }
}

/** Starts one in-memory DynamoDB Local (the real one, from AWS) for the whole test run. */
export default async function setup(project: TestProject) {
  const dynamodb = await startDynamoDBLocal();
  project.provide('dynamodbEndpoint', dynamodb.endpoint);
  return () => dynamodb.stop();
}
