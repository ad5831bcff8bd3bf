import ArgumentParser
import Foundation
import Graph
import Passes

/// `rebirth optimize IN OUT`: read, rewrite, write.
struct Optimize: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Optimize a model and write it as ONNX (.onnx) or .tmf.",
    discussion: """
      The output format follows OUT's extension. The output is written to a temporary file and
      renamed into place, so a failure never leaves a partial file or clobbers an existing one.

      Examples:
        rebirth optimize model.onnx out.onnx
        rebirth optimize model.onnx out.onnx --passes none            # convert only
        rebirth optimize big.onnx out.onnx --external-data            # weights in out.onnx.data
      """)

  @Argument(help: "The model to read (.onnx).")
  var input: String

  @Argument(help: "Where to write the result (.onnx; .tmf is not supported yet).")
  var output: String

  @Option(help: "Comma-separated passes to run in that order, or 'none' for a plain conversion. Default: the default pipeline.")
  var passes: String?

  @Flag(help: "Store weights in an external-data file beside the output (OUT.data). Automatic past ONNX's 2 GiB limit.")
  var externalData = false

  func run() throws {
    let selected: [any Pass.Type]
    do { selected = try passes.map(PassRegistry.select) ?? PassRegistry.defaults } catch { throw CLIError.usage(error.message) }
    if try ModelFormat(path: output) == .tmf { throw CLIError.usage("\(output): writing .tmf is not supported yet") }
    var model = try loadModel(input)
    for pass in selected {
      var instance = pass.init()
      do { _ = try instance.run(&model) } catch { throw CLIError.badModel("\(input): pass \(pass.name) failed: \(error)") }
      do { try model.graph.verify() } catch {
        throw CLIError.badModel("\(input): pass \(pass.name) broke the graph: \(error.message)")
      }
    }
    try saveModel(model, to: output, externalData: externalData)
  }
}
