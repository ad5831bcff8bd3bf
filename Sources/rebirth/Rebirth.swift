import ArgumentParser
import Foundation
import Linalg

/// The `rebirth` command line.
@main
struct Rebirth: ParsableCommand {
  static let version = "0.1.0"

  static let configuration = CommandConfiguration(
    commandName: "rebirth",
    abstract: "Optimize neural-network graphs for CPUs and convert them to ONNX or .tmf.",
    discussion: """
      rebirth reads a trained model as ONNX, rewrites its graph so that it is smaller and faster,
      and writes it as ONNX or as .tmf, the compact format its own runtime maps and runs.

      Examples:
        rebirth inspect model.onnx                      # inputs, outputs, ops, parameters, MACs
        rebirth optimize model.onnx out.onnx            # default exact pipeline
        rebirth optimize model.onnx out.onnx --passes none   # plain conversion, nothing rewritten
        rebirth optimize model.onnx out.tmf             # for rebirth's runtime
        rebirth passes                                  # the pass catalogue
        rebirth diff model.onnx out.onnx                # what changed

      Exit status: 0 on success, 1 when a model is bad or cannot be written, 2 on a usage error.
      """,
    version: version,
    subcommands: [Optimize.self, ListPasses.self, Inspect.self, Diff.self, Run.self, Verify.self, Bench.self]
  )

  /// Runs the command and maps every failure to a one-line message and an exit status: 2 for
  /// usage errors, 1 for bad models.
  static func main() {
    // OpenBLAS starts a pool of busy-waiting threads when it loads; until a command asks for
    // threads (run, verify and bench set them per session), keep BLAS to the calling thread, so
    // the pool's spinning does not steal a core from the work (it doubled optimize's wall time).
    BLAS.threadCount = 1
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch let error as CLIError {
      FileHandle.standardError.write(Data("rebirth: \(error.message)\n".utf8))
      Foundation.exit(error.status)
    } catch {
      let code = exitCode(for: error)
      if code == .success {
        print(fullMessage(for: error))
        Foundation.exit(0)
      }
      // One line, whatever the parser's message looked like.
      let message = message(for: error).split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        .filter { !$0.isEmpty }.joined(separator: " ")
      FileHandle.standardError.write(Data("rebirth: \(message) (see 'rebirth --help')\n".utf8))
      Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
    }
  }
}

/// A failure the CLI reports on one line, with its exit status.
struct CLIError: Error {
  let message: String
  let status: Int32

  /// A model that cannot be read or written.
  static func badModel(_ message: String) -> CLIError { CLIError(message: message, status: 1) }
  /// Flags or arguments that do not make sense.
  static func usage(_ message: String) -> CLIError { CLIError(message: message, status: 2) }
}
