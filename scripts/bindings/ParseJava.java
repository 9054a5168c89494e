import com.sun.source.util.JavacTask;
import java.io.File;
import java.util.ArrayList;
import java.util.List;
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;

/**
 * Parses the Java sources that jsii-pacmak generated (scripts/pacmak.sh) and fails on any syntax
 * error. A full compile needs the jsii runtime and the cdk8s, cdk8s-plus-27 and constructs jars
 * from Maven Central; parsing needs only the JDK and catches what the generator can get wrong
 * (an unescaped Java keyword as a name, a broken Javadoc comment that ends early).
 *
 * Usage: java scripts/bindings/ParseJava.java File.java...
 */
public class ParseJava {
  public static void main(String[] args) throws Exception {
    if (args.length == 0) {
      System.err.println("ParseJava: no .java files given");
      System.exit(2);
    }
    JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
    DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
    StandardJavaFileManager files = compiler.getStandardFileManager(diagnostics, null, null);
    List<File> sources = new ArrayList<>();
    for (String arg : args) sources.add(new File(arg));
    JavacTask task = (JavacTask) compiler.getTask(null, files, diagnostics, List.of("-proc:none"), null,
        files.getJavaFileObjectsFromFiles(sources));
    task.parse();
    int errors = 0;
    for (Diagnostic<? extends JavaFileObject> d : diagnostics.getDiagnostics()) {
      if (d.getKind() != Diagnostic.Kind.ERROR) continue;
      errors++;
      System.err.println(d.getSource().getName() + ":" + d.getLineNumber() + ": " + d.getMessage(null));
    }
    if (errors > 0) {
      System.err.println("ParseJava: " + errors + " syntax error(s) in the generated Java");
      System.exit(1);
    }
    System.out.println("ParseJava: " + sources.size() + " files parse");
  }
}
