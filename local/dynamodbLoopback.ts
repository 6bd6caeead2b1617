import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const SOURCE = fileURLToPath(new URL('./LoopbackDynamoDBLocal.java', import.meta.url));
const CACHE = fileURLToPath(new URL('../node_modules/.cache/dynamodb-local-loopback/', import.meta.url));
const MAIN_CLASS = 'LoopbackDynamoDBLocal';

/**
 * The java arguments, after the JVM options, that start the DynamoDB Local release in `folder` on 127.0.0.1
 * only and with no CORS grant (see LoopbackDynamoDBLocal.java): `-cp <classpath> LoopbackDynamoDBLocal`,
 * to be followed by DynamoDB Local's own arguments.
 *
 * The launcher is compiled once per release (and per version of its source) into node_modules/.cache, by
 * the JDK's compiler module run through `java` itself: no javac is needed, and Debian's
 * openjdk-17-jre-headless holds that module. Throws the spawn error (code ENOENT: no java) or an Error
 * saying why it could not be compiled.
 */
export async function loopbackLauncher(folder: string): Promise<string[]> {
  const dynamodbClasspath = `${join(folder, 'DynamoDBLocal.jar')}:${join(folder, 'DynamoDBLocal_lib', '*')}`;
  const source = await readFile(SOURCE);
  const key = createHash('sha256').update(source).update(basename(folder)).digest('hex').slice(0, 16);
  const classes = join(CACHE, key);
  if (!existsSync(join(classes, `${MAIN_CLASS}.class`))) await compile(dynamodbClasspath, classes);
  return ['-cp', `${classes}:${dynamodbClasspath}`, MAIN_CLASS];
}

/** Compiles into a folder of its own, then renames it into place: concurrent starts never see half a class. */
const compile = async (classpath: string, classes: string): Promise<void> => {
  await mkdir(CACHE, { recursive: true });
  const scratch = await mkdtemp(join(CACHE, 'build-'));
  try {
    await promisify(execFile)(
      'java',
      ['-m', 'jdk.compiler/com.sun.tools.javac.Main', '--release', '17', '-nowarn', '-d', scratch, '-cp', classpath, SOURCE],
      { timeout: 60_000 },
    ).catch((error: NodeJS.ErrnoException & { stderr?: string }) => {
      if (error.code === 'ENOENT') throw error;
      throw new Error(
        /jdk\.compiler not found/.test(error.stderr ?? '')
          ? 'This Java runtime has no jdk.compiler module, which starts DynamoDB Local on 127.0.0.1 only: install a JDK ' +
              "(or Debian's openjdk-17-jre-headless, which has it), or set DYNAMODB_ENDPOINT to a DynamoDB you run yourself."
          : `Could not compile the DynamoDB Local launcher:\n${error.stderr ?? error.message}`,
      );
    });
    await rename(scratch, classes).catch((error: NodeJS.ErrnoException) => {
      // Another start compiled it first.
      if (!existsSync(join(classes, `${MAIN_CLASS}.class`))) throw error;
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
};
