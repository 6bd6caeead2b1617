import com.almworks.sqlite4java.SQLiteConnection;
import com.almworks.sqlite4java.SQLiteStatement;
import java.io.File;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.CommandLineInput;
import software.amazon.dynamodb.services.local.shared.access.sqlite.SQLiteLibraryLoader;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;
import software.amazon.dynamodb.services.local.server.LocalDynamoDBRequestHandler;
import software.amazon.dynamodb.services.local.server.LocalDynamoDBServerHandler;

/**
 * Starts DynamoDB Local as its own ServerRunner does, from the same classes and the same arguments (-port,
 * -inMemory or -dbPath, -sharedDb), with three differences its command line cannot express:
 * - it listens on 127.0.0.1 only: ServerRunner's Jetty server has no host, so it binds every interface;
 * - a database file is in SQLite's write-ahead-log journal mode (see writeAheadLog);
 * - no origin gets a CORS grant: the allow-list is empty whatever -cors says (DynamoDB Local grants an
 *   origin only when it is in the list, and its help promises "*" by default).
 * It sends no telemetry (ServerRunner's telemetry is never set up here).
 */
public class LoopbackDynamoDBLocal {
  public static void main(String[] args) throws Exception {
    // -port 0: the OS picks a free port as Jetty binds it (the line printed below says which). CommandLineInput
    // only takes 1-65535, so that option is kept from it.
    java.util.List<String> rest = new java.util.ArrayList<>(java.util.Arrays.asList(args));
    int at = rest.indexOf("-port");
    boolean anyPort = at >= 0 && at + 1 < rest.size() && rest.get(at + 1).equals("0");
    if (anyPort) rest.subList(at, at + 2).clear();
    CommandLineInput input = new CommandLineInput(rest.toArray(new String[0]));
    if (!input.init()) System.exit(2);
    // Only the shared file is set (every caller here passes -sharedDb); files per credentials keep the default.
    String journal = input.isInMemory() ? "memory" : !input.getSharedDb() ? "default" : writeAheadLog(new File(input.getDbPath() == null ? "." : input.getDbPath(), "shared-local-instance.db"));
    LocalDynamoDBServerHandler handler = new LocalDynamoDBServerHandler(
        new LocalDynamoDBRequestHandler(0, input.isInMemory(), input.getDbPath(), input.getSharedDb(), input.shouldDelayTransientStatuses()),
        null);

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(anyPort ? 0 : input.getPort());
    server.addConnector(connector);
    // DynamoDBProxyServer's handler chain, on our server: its own Jetty server (every interface) is never started.
    server.setHandler(new DynamoDBProxyServer(input.getPort(), handler).setUpHandler(handler));
    server.start();
    System.out.println("DynamoDB Local listening on " + connector.getHost() + ":" + connector.getLocalPort() + ", CORS granted to no origin, journal " + journal);
    server.join();
  }

  /**
   * Puts the database file in SQLite's write-ahead-log mode (a setting the file keeps) and says which mode it
   * is in. DynamoDB Local leaves SQLite in its rollback-journal mode, where each commit creates, syncs and
   * deletes a journal file: four fsyncs, about 9 ms on this project's machines, while every transaction waits
   * its turn (DynamoDB Local runs them one at a time). In WAL mode a commit appends to the log and syncs it
   * once, about 2 ms. Durability is the same: SQLite's synchronous setting stays FULL, so a committed
   * transaction survives a kill -9 and a power loss alike, and the log is replayed when the file is opened.
   */
  static String writeAheadLog(File file) throws Exception {
    java.util.logging.Logger.getLogger("com.almworks.sqlite4java").setLevel(java.util.logging.Level.WARNING);
    // SQLite's native library as DynamoDB Local loads it (its own copy, extracted from its jar), before sqlite4java
    // can load the one on java.library.path: with both loaded, DynamoDB Local's first commit crashed the JVM
    // (SIGSEGV in sqlite3_exec) in about one start in five.
    SQLiteLibraryLoader.initialize();
    SQLiteConnection connection = new SQLiteConnection(file);
    try {
      connection.open(true);
      SQLiteStatement statement = connection.prepare("PRAGMA journal_mode=WAL");
      statement.step();
      return statement.columnString(0);
    } finally {
      connection.dispose();
    }
  }
}
