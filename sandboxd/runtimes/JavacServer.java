/* JavacServer.java — the pre-started helper of Java slots (sandboxd/prestart.c,
 * `prestart_for = compile` in config/languages/java.conf): a JVM started with
 * the slot that loads javac and warms it up (a few compiles held in memory)
 * before a submission arrives, then does exactly one compile itself and exits.
 *
 * A JVM cannot fork, so the step is not a child as in pyfork.py: the server
 * process becomes the step ("self" in its report). Per step sandboxd sends
 * init's PROTO_RUN message with fds: stdin, stdout, stderr, then the
 * cgroup.procs fds of the run group. The server moves itself (every thread)
 * into that group, takes the step's rlimits (RLIMIT_CPU on top of the CPU it
 * already used), reports {"started": pid, "self": true}, closes its socket,
 * puts the fds on 0-2 and runs javac's own entry point
 * (com.sun.tools.javac.Main.compile) with the compile line's arguments, so
 * the diagnostics and the exit code are javac's. Its exit, as init reports
 * it, is the step's exit. One compile per JVM: no class, file manager cache or
 * annotation processor of a submission outlives it.
 *
 * fds at the start: 0 an empty memfd, 1 and 2 pipes nobody reads, 3 the
 * SOCK_SEQPACKET to sandboxd, 4 /dev/null. The socket, the rlimits and the
 * fds need system calls Java has no API for: libjavacserver.so
 * (javacserver.c), which also makes the process non-dumpable on load. */

import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import javax.tools.FileObject;
import javax.tools.ForwardingJavaFileManager;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileManager;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;

public final class JavacServer {
	static {
		System.load(System.getProperty("warmpool.jni", "/opt/warmpool/libjavacserver.so"));
	}

	/* javacserver.c */
	private static native int recv(byte[] buf, int[] fds);
	private static native int send(byte[] msg);
	private static native int join(int[] fds, long cpuS, long fsize, long nofile);
	private static native int takeFds(int[] fds);
	private static native void closeSocket();

	private static final int HDR = 4 * 4 + 8 * 4 + 4; /* struct proto_run up to strings[] */

	/* What the warm-up compiles: what a contest program uses (Scanner,
	 * collections, generics, lambdas, streams, string concatenation). */
	private static final String WARM = "import java.util.*;\nimport java.util.stream.*;\nimport java.io.*;\n"
	    + "public class Main {\n"
	    + "  static int f(int n) { return n < 2 ? n : f(n - 1) + f(n - 2); }\n"
	    + "  record P(int a, long b) {}\n"
	    + "  public static void main(String[] args) throws IOException {\n"
	    + "    Scanner in = new Scanner(System.in);\n"
	    + "    long a = in.nextLong(), b = in.nextLong();\n"
	    + "    List<Long> v = new ArrayList<>(List.of(a, b));\n"
	    + "    Map<String, Integer> m = new HashMap<>();\n"
	    + "    v.sort(Comparator.reverseOrder());\n"
	    + "    BufferedReader r = new BufferedReader(new InputStreamReader(System.in));\n"
	    + "    StringBuilder sb = new StringBuilder();\n"
	    + "    for (int i = 0; i < 10; i++) { sb.append(i).append(' '); m.merge(\"k\" + i, i, Integer::sum); }\n"
	    + "    System.out.println(v.stream().mapToLong(Long::longValue).sum() + \" \" + sb + f(10));\n"
	    + "    System.out.printf(\"%d %s%n\", new P(1, 2L).a(), Arrays.toString(new int[] {1, 2}));\n"
	    + "  }\n}\n";

	private static void report(String json)
	{
		if (send(json.getBytes(StandardCharsets.UTF_8)) != 0)
			Runtime.getRuntime().halt(0); /* sandboxd is gone */
	}

	/* Compile WARM n times, keeping the class files in memory (nothing is
	 * written to the slot's directories). */
	private static void warm(int n) throws Exception
	{
		JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
		for (int i = 0; i < n; i++) {
			StandardJavaFileManager std = javac.getStandardFileManager(null, null, StandardCharsets.UTF_8);
			JavaFileManager fm = new ForwardingJavaFileManager<JavaFileManager>(std) {
				@Override
				public JavaFileObject getJavaFileForOutput(Location l, String name, JavaFileObject.Kind k,
									   FileObject sibling)
				{
					return new SimpleJavaFileObject(URI.create("mem:///" + name + k.extension), k) {
						@Override
						public java.io.OutputStream openOutputStream()
						{
							return java.io.OutputStream.nullOutputStream();
						}
					};
				}
			};
			JavaFileObject src = new SimpleJavaFileObject(URI.create("mem:///Main.java"),
								      JavaFileObject.Kind.SOURCE) {
				@Override
				public CharSequence getCharContent(boolean ignore)
				{
					return WARM;
				}
			};
			java.io.StringWriter sink = new java.io.StringWriter();
			if (!javac.getTask(sink, fm, null, List.of("-proc:none"), null, List.of(src)).call())
				throw new IllegalStateException("warm-up compile failed: " + sink);
			fm.close();
		}
	}

	private static void failed(int errno, String where)
	{
		report("{\"failed\": " + errno + ", \"where\": \"" + where + "\"}");
		Runtime.getRuntime().halt(127);
	}

	public static void main(String[] args) throws Exception
	{
		warm(Integer.getInteger("warmpool.warm", 2));
		report("{\"ready\": true}");

		byte[] buf = new byte[65536];
		int[] fds = new int[16];
		int n = recv(buf, fds);
		if (n <= 0)
			Runtime.getRuntime().halt(0); /* sandboxd closed the socket: the slot is going */
		ByteBuffer h = ByteBuffer.wrap(buf, 0, n).order(ByteOrder.LITTLE_ENDIAN);
		if (n < HDR || fds[3] < 0)
			failed(22, "malformed step");
		int argc = h.getInt(8), envc = h.getInt(12);
		long cpu = h.getLong(16), fsize = h.getLong(24), nofile = h.getLong(40);
		int slen = h.getInt(48);
		if (argc < 1 || envc < 0 || slen < 0 || slen > n - HDR)
			failed(22, "malformed step");
		List<String> strs = new ArrayList<>();
		for (int i = HDR, start = HDR; i < HDR + slen; i++)
			if (buf[i] == 0) {
				strs.add(new String(buf, start, i - start, StandardCharsets.UTF_8));
				start = i + 1;
			}
		if (strs.size() != argc + envc + 1)
			failed(22, "malformed step");
		/* javac resolves the compile line's relative paths against the
		 * directory the JVM started in */
		if (!strs.get(argc + envc).equals(System.getProperty("user.dir")))
			failed(22, "the step's directory is not the server's");
		List<String> javacArgs = new ArrayList<>();
		for (int i = 1; i < argc; i++)
			if (!strs.get(i).startsWith("-J")) /* the JVM's flags: the server was started with them */
				javacArgs.add(strs.get(i));

		int e = join(fds, cpu, fsize, nofile);
		if (e != 0)
			failed(e, "join the run group, set the limits");
		if ((e = takeFds(fds)) != 0)
			failed(e, "stdin, stdout, stderr");
		report("{\"started\": " + ProcessHandle.current().pid() + ", \"self\": true}");
		closeSocket(); /* no report can follow: the exit init sees is the step's */
		int rc = com.sun.tools.javac.Main.compile(javacArgs.toArray(new String[0]));
		/* javac's launcher exits with System.exit; javac has no shutdown
		 * hook, so halt ends the same, without the JVM's orderly shutdown */
		System.out.flush();
		System.err.flush();
		Runtime.getRuntime().halt(rc);
	}
}
