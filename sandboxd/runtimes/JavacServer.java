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
 * (com.sun.tools.javac.Main.compile) with the compile line's javac arguments, so
 * the diagnostics and the exit code are javac's. Its exit, as init reports
 * it, is the step's exit. One compile per JVM: no class, file manager cache or
 * annotation processor of a submission outlives it.
 *
 * The warm-up runs in the background: the server says ready once javac's
 * entry point is loaded (a JVM start, ~0.1 s of CPU with the class archive
 * of java.conf), then a thread of the lowest priority (SCHED_IDLE) compiles
 * the warm-up source, and the ready report says {"warming": true}: sandboxd
 * then gives the slot's cgroup the lowest CPU weight until a step arrives.
 * Its end (done or failed, before any step) is reported as {"warmed": true}:
 * sandboxd lets only run_slots servers warm up at once.
 * On an idle node the warm-up is done long before a submission comes and
 * the submission's compile is fast; on a busy one it gets only CPU no run
 * wants, and a step that arrives first stops it (at javac's next event) and
 * compiles in a JVM that is only partly warm — so a contest burst does not
 * pay a warm-up per submission on top of its compiles.
 *
 * fds at the start: 0 an empty memfd, 1 and 2 pipes nobody reads, 3 the
 * SOCK_SEQPACKET to sandboxd, 4 /dev/null. The socket, the rlimits and the
 * fds need system calls Java has no API for: libjavacserver.so
 * (javacserver.c), which also makes the process non-dumpable on load. */

import java.io.IOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
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

import com.sun.source.util.JavacTask;
import com.sun.source.util.TaskEvent;
import com.sun.source.util.TaskListener;

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
	private static native int idle(); /* this thread: SCHED_IDLE */

	private static final int HDR = 4 * 4 + 8 * 4 + 4; /* struct proto_run up to strings[] */
	private static final String JAVAC_MAIN = "com.sun.tools.javac.Main";

	/* What the warm-up compiles: what a contest program uses (Scanner,
	 * collections, generics, lambdas, streams, records, string
	 * concatenation), in several files so that a step stops it soon: javac
	 * reports an event per phase of each file and class. */
	private static final String[][] WARM = {
	    {"Main", "import java.util.*;\nimport java.io.*;\n"
			 + "public class Main {\n"
			 + "  public static void main(String[] args) throws IOException {\n"
			 + "    Scanner in = new Scanner(System.in);\n"
			 + "    long a = in.nextLong(), b = in.nextLong();\n"
			 + "    BufferedReader r = new BufferedReader(new InputStreamReader(System.in));\n"
			 + "    System.out.println(Calc.sum(a, b) + \" \" + Calc.f(10) + \" \" + Text.join(10));\n"
			 + "    System.out.printf(\"%d %s%n\", new P(1, 2L).a(), Arrays.toString(new int[] {1, 2}));\n"
			 + "  }\n}\n"},
	    {"Calc", "import java.util.*;\nimport java.util.stream.*;\n"
			 + "final class Calc {\n"
			 + "  static int f(int n) { return n < 2 ? n : f(n - 1) + f(n - 2); }\n"
			 + "  static long sum(long a, long b) {\n"
			 + "    List<Long> v = new ArrayList<>(List.of(a, b));\n"
			 + "    v.sort(Comparator.reverseOrder());\n"
			 + "    return v.stream().mapToLong(Long::longValue).sum();\n"
			 + "  }\n}\n"},
	    {"Text", "import java.util.*;\n"
			 + "final class Text {\n"
			 + "  static String join(int n) {\n"
			 + "    Map<String, Integer> m = new HashMap<>();\n"
			 + "    StringBuilder sb = new StringBuilder();\n"
			 + "    for (int i = 0; i < n; i++) { sb.append(i).append(' '); m.merge(\"k\" + i, i, Integer::sum); }\n"
			 + "    return sb.toString() + m.size();\n"
			 + "  }\n}\n"},
	    {"P", "record P(int a, long b) {}\n"},
	};

	/* Set when a step arrives: the warm-up stops at javac's next event. */
	private static volatile boolean stepArrived;
	/* orders the warm-up's end report before the step's reports */
	private static final Object REPORTS = new Object();

	private static final class WarmUpStopped extends RuntimeException {
		private static final long serialVersionUID = 1L;
	}

	private static void report(String json)
	{
		if (send(json.getBytes(StandardCharsets.UTF_8)) != 0)
			Runtime.getRuntime().halt(0); /* sandboxd is gone */
	}

	/* Compile WARM n times, keeping the class files in memory (nothing is
	 * written to the slot's directories); stop when a step arrives. */
	private static void warm(JavaCompiler javac, int n) throws Exception
	{
		TaskListener stop = new TaskListener() {
			@Override
			public void started(TaskEvent e)
			{
				if (stepArrived)
					throw new WarmUpStopped();
			}
		};
		for (int i = 0; i < n && !stepArrived; i++) {
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
			List<JavaFileObject> srcs = new ArrayList<>();
			for (String[] unit : WARM)
				srcs.add(new SimpleJavaFileObject(URI.create("mem:///" + unit[0] + ".java"),
								  JavaFileObject.Kind.SOURCE) {
					@Override
					public CharSequence getCharContent(boolean ignore)
					{
						return unit[1];
					}
				});
			java.io.StringWriter sink = new java.io.StringWriter();
			JavacTask task = (JavacTask)javac.getTask(sink, fm, null, List.of("-proc:none"), null, srcs);
			task.addTaskListener(stop);
			if (!task.call())
				throw new IllegalStateException("warm-up compile failed: " + sink);
			fm.close();
		}
	}

	private static void failed(int errno, String where)
	{
		report("{\"failed\": " + errno + ", \"where\": \"" + where + "\"}");
		Runtime.getRuntime().halt(127);
	}

	/* A compile line split: it is either the JVM running javac's entry
	 * point (`java <JVM flags> com.sun.tools.javac.Main <args>`) or javac's
	 * launcher (`javac -J<JVM flag>… <args>`: javac takes -J and ignores it,
	 * as the launcher has used it). */
	static final class CompileLine {
		final List<String> javacArgs;		     /* what javac gets */
		final List<String> jvmFlags = new ArrayList<>(); /* class path options aside */
		String classPath;			     /* the JVM's -cp (-classpath, --class-path), or null */

		CompileLine(List<String> line) {
			int main = line.indexOf(JAVAC_MAIN);
			javacArgs = new ArrayList<>(line.subList(main + 1, line.size()));
			for (int i = 0; i < (main >= 0 ? main : line.size()); i++) {
				String a = line.get(i);
				if (main < 0) {
					if (a.startsWith("-J"))
						jvmFlags.add(a.substring(2));
				} else if ((a.equals("-cp") || a.equals("-classpath") || a.equals("--class-path")) &&
					   i + 1 < main)
					classPath = line.get(++i);
				else if (a.startsWith("--class-path="))
					classPath = a.substring("--class-path=".length());
				else
					jvmFlags.add(a);
			}
		}

		/* The class path of the line's JVM, as the java launcher sets it:
		 * its -cp, else $CLASSPATH, else "." (the directory with the
		 * submission's other classes and sources) */
		String jvmClassPath(List<String> env) {
			String cp = classPath;
			for (String e : env)
				if (cp == null && e.startsWith("CLASSPATH=") && e.length() > "CLASSPATH=".length())
					cp = e.substring("CLASSPATH=".length());
			return cp != null ? cp : ".";
		}

		/* A JVM flag of the line that this JVM was not started with
		 * (java.conf's prestart line), or null. The compile is the line's
		 * only in a JVM with its flags: a -Duser.language=ja, say, changes
		 * javac's messages. /proc/self/cmdline: `java <flags> -cp <jar>
		 * JavacServer`. */
		String foreignJvmFlag() throws IOException {
			String[] own = new String(Files.readAllBytes(Paths.get("/proc/self/cmdline")),
						  StandardCharsets.UTF_8).split("\0");
			List<String> mine = new ArrayList<>();
			for (int i = 1; i < own.length && !own[i].equals(JavacServer.class.getName()); i++)
				mine.add(own[i]);
			for (String f : jvmFlags)
				if (!mine.contains(f))
					return f;
			return null;
		}
	}

	public static void main(String[] args) throws Exception
	{
		JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
		int n = Integer.getInteger("warmpool.warm", 1);
		report(n > 0 ? "{\"ready\": true, \"warming\": true}" : "{\"ready\": true}");
		if (n > 0) {
			Thread w = new Thread(() -> {
				idle();
				try {
					warm(javac, n);
				} catch (Throwable t) {
					/* stopped by a step (WarmUpStopped, wrapped by
					 * javac), or failed: the step compiles cold */
				}
				/* the warm-up is over: sandboxd may start another
				 * slot's (it runs a few at a time); once the step
				 * arrived, sandboxd knows */
				synchronized (REPORTS) {
					if (!stepArrived)
						report("{\"warmed\": true}");
				}
			}, "warm-up");
			w.setDaemon(true);
			w.start();
		}

		byte[] buf = new byte[65536];
		int[] fds = new int[16];
		int len = recv(buf, fds);
		synchronized (REPORTS) {
			stepArrived = true;
		}
		if (len <= 0)
			Runtime.getRuntime().halt(0); /* sandboxd closed the socket: the slot is going */
		ByteBuffer h = ByteBuffer.wrap(buf, 0, len).order(ByteOrder.LITTLE_ENDIAN);
		if (len < HDR || fds[3] < 0)
			failed(22, "malformed step");
		int argc = h.getInt(8), envc = h.getInt(12);
		long cpu = h.getLong(16), fsize = h.getLong(24), nofile = h.getLong(40);
		int slen = h.getInt(48);
		if (argc < 1 || envc < 0 || slen < 0 || slen > len - HDR)
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
		CompileLine line = new CompileLine(strs.subList(1, argc));
		/* javac's default class path (no -cp among its arguments) is its
		 * JVM's; this JVM's is its own jar */
		System.setProperty("java.class.path", line.jvmClassPath(strs.subList(argc, argc + envc)));
		String foreign = line.foreignJvmFlag();
		if (foreign != null) /* sandboxd runs the compile line instead */
			failed(22, "the compile line's JVM flag " + foreign.replace("\\", "\\\\").replace("\"", "\\\"") +
					   " is not the compile server's (add it to java.conf's prestart line)");

		int e = join(fds, cpu, fsize, nofile);
		if (e != 0)
			failed(e, "join the run group, set the limits");
		if ((e = takeFds(fds)) != 0)
			failed(e, "stdin, stdout, stderr");
		report("{\"started\": " + ProcessHandle.current().pid() + ", \"self\": true}");
		closeSocket(); /* no report can follow: the exit init sees is the step's */
		int rc = com.sun.tools.javac.Main.compile(line.javacArgs.toArray(new String[0]));
		/* javac's launcher exits with System.exit; javac has no shutdown
		 * hook, so halt ends the same, without the JVM's orderly shutdown */
		System.out.flush();
		System.err.flush();
		Runtime.getRuntime().halt(rc);
	}
}
