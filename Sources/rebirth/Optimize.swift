import ArgumentParser
import Foundation
import Graph
import Passes

/// `rebirth optimize IN OUT`: read, rewrite, write, report.
struct Optimize: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Optimize a model and write it as ONNX (.onnx) or .tmf.",
    discussion: """
      Runs the default pipeline of exact passes (see 'rebirth passes'), prints what changed, and
      writes OUT. The output format follows OUT's extension. The output is written to a temporary
      file and renamed into place, so a failure never leaves a partial file or clobbers an
      existing one.

      Examples:
        rebirth optimize model.onnx out.onnx
        rebirth optimize model.onnx out.onnx --passes none                  # convert only
        rebirth optimize model.onnx out.onnx --disable fold-constants
        rebirth optimize model.onnx out.onnx --enable branch-slim --report changes.txt
        rebirth optimize model.onnx out.onnx --max-rewrites 10              # bisect a bad rewrite
        rebirth optimize big.onnx out.onnx --external-data                  # weights in out.onnx.data
      """)

  enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

  @Argument(help: "The model to read (.onnx).")
  var input: String

  @Argument(help: "Where to write the result (.onnx; .tmf is not supported yet).")
  var output: String

  @Option(help: "Comma-separated passes to run in exactly that order, or 'none' for a plain conversion.")
  var passes: String?

  @Option(help: "The pass set: exact (the default pipeline), slim (plus approximate slimming), thin (plus factorization).")
  var preset: String = "exact"

  @Option(name: .customLong("enable"), help: "Add a pass to the pipeline (repeatable; comma lists too).")
  var enabled: [String] = []

  @Option(name: .customLong("disable"), help: "Drop a pass from the pipeline (repeatable; comma lists too).")
  var disabled: [String] = []

  @Option(name: .customLong("pass-option"), help: "Set a pass option: PASS.KEY=VALUE (repeatable).")
  var passOptions: [String] = []

  @Option(help: "Stop after this many rewrites (the cleanup of dead nodes does not count), to bisect a bad rewrite.")
  var maxRewrites: Int?

  @Flag(help: "Run the graph verifier after every pass.")
  var verifyEach = false

  @Option(help: "Write the full report, every change with its provenance, to this file (JSON if it ends in .json).")
  var report: String?

  @Option(help: "Summary format on standard output: text or json (the full report).")
  var format: Format = .text

  @Flag(help: "Print the textual-form diff of each pass that changed something.")
  var printChanges = false

  @Flag(help: "Store weights in an external-data file beside the output (OUT.data). Automatic past ONNX's 2 GiB limit.")
  var externalData = false

  func validate() throws {
    if let maxRewrites, maxRewrites < 0 { throw ValidationError("--max-rewrites must be at least 0") }
  }

  func run() throws {
    let target: OutputTarget = try ModelFormat(path: output) == .tmf ? .tmf : .onnx
    if target == .tmf { throw CLIError.usage("\(output): writing .tmf is not supported yet") }
    guard let chosenPreset = Preset(rawValue: preset) else {
      throw CLIError.usage("unknown preset '\(preset)' (exact, slim or thin)")
    }
    let steps: [PipelineStep]
    do {
      steps = try PassRegistry.plan(
        passes: passes, preset: chosenPreset, enable: enabled, disable: disabled, options: passOptions, target: target)
    } catch { throw CLIError.usage(error.message) }

    var model = try loadModel(input)
    let before = model.statistics()
    let pipeline = Pipeline(
      steps: steps, verifyEach: verifyEach || Pipeline.verifiesByDefault, maxRewrites: maxRewrites)
    let run: PipelineReport
    do {
      run = try pipeline.run(&model) { pass, old, new in
        guard printChanges else { return }
        print("== \(pass)")
        print(unifiedDiff(old.text(options: diffTextOptions), new.text(options: diffTextOptions)), terminator: "")
      }
    } catch { throw CLIError.badModel("\(input): \(error.message)") }
    try saveModel(model, to: output, externalData: externalData)

    let result = OptimizeReport(
      input: input, output: output, preset: passes == nil ? chosenPreset.rawValue : nil,
      passes: steps.map { $0.pass.name }, maxRewrites: maxRewrites, before: before, after: model.statistics(), run: run)
    if let report {
      let json = report.lowercased().hasSuffix(".json") || format == .json
      do {
        try (json ? result.json : result.fullText).write(toFile: report, atomically: true, encoding: .utf8)
      } catch { throw CLIError.usage("\(report): cannot write the report: \(error.localizedDescription)") }
    }
    print(format == .json ? result.json : result.summaryText, terminator: "")
  }
}

/// Graph text for `--print-changes`: inferred types of intermediates are noise there.
let diffTextOptions = TextOptions(maxInlineElements: 16, includeValueInfo: false)
