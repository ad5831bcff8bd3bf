import ArgumentParser
import Exporters
import Foundation
import Graph
import Linalg
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
        rebirth optimize model.onnx out.tmf                                 # the compact runtime format
        rebirth optimize model.onnx out.tmf --weights int8 --verify         # int8 weights, output error
        rebirth optimize model.onnx out.onnx --passes none                  # convert only
        rebirth optimize model.onnx out.onnx --allow-contrib-ops            # onnxruntime's FusedConv etc.
        rebirth optimize model.onnx out.onnx --disable fold-constants
        rebirth optimize model.onnx out.onnx --enable branch-slim --report changes.txt
        rebirth optimize model.onnx out.onnx --max-rewrites 10              # bisect a bad rewrite
        rebirth optimize big.onnx out.onnx --external-data                  # weights in out.onnx.data
      """)

  enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

  @Argument(help: "The model to read (.onnx or .tmf).")
  var input: String

  @Argument(help: "Where to write the result (.onnx, or .tmf: the compact runtime format, see docs/tmf.md).")
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

  @Flag(help: "ONNX output may use onnxruntime's com.microsoft contrib ops (FusedConv, FusedGemm) for fused layers; turns on the passes that pay only with them.")
  var allowContribOps = false

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

  @Option(help: "Calibration samples for the approximate passes: a .npz with one array per model input (one more leading axis: one sample per index).")
  var calibration: String?

  @Option(help: "Make N random calibration samples instead (a poor fit; for trying things out).")
  var calibrationRandom: Int?

  @Option(help: "Approximate passes: the largest relative output error the model may reach, measured on held-back calibration samples.")
  var maxError: Double?

  @Option(help: "Factorization: the fraction of the eligible layers' parameters to keep, e.g. 0.25.")
  var compression: Double?

  @Option(help: "Factorization: leave layers with fewer parameters than this alone.")
  var minParams: Int = 4096

  @Flag(help: "Run the input and the output model on the same inputs and report the output error.")
  var verify = false

  @Option(help: "Threads for calibration runs and BLAS (default: every core).")
  var threads: Int?

  @Option(help: ".tmf weights: fp32 (in place), fp16, int8 (per output channel) or codebook (k-means weight sharing); docs/tmf.md.")
  var weights: TMFWeightEncoding = .fp32

  @Option(help: "--weights codebook: centroids per tensor, 2–256 (16 or fewer: 4-bit indices).")
  var codebookSize: Int = 256

  func validate() throws {
    if let maxRewrites, maxRewrites < 0 { throw ValidationError("--max-rewrites must be at least 0") }
    if calibration != nil && calibrationRandom != nil {
      throw ValidationError("give either --calibration or --calibration-random, not both")
    }
    if let maxError, !(maxError > 0) { throw ValidationError("--max-error must be above 0") }
    if let compression, !(compression > 0 && compression <= 1) { throw ValidationError("--compression must be in (0, 1]") }
    if minParams < 0 { throw ValidationError("--min-params must be at least 0") }
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    if !(2...TMF.maxCodebookSize).contains(codebookSize) { throw ValidationError("--codebook-size must be 2 to 256") }
  }

  func run() throws {
    let target: OutputTarget = try ModelFormat(path: output) == .tmf ? .tmf : allowContribOps ? .onnxContribOps : .onnx
    if target == .tmf && allowContribOps {
      throw CLIError.usage("--allow-contrib-ops applies to .onnx output only (.tmf has its own fused layers)")
    }
    if target == .onnx && weights != .fp32 {
      throw CLIError.usage("--weights \(weights.rawValue) applies to .tmf output only (ONNX output keeps float32 weights)")
    }
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
    var pipeline = Pipeline(
      steps: steps, verifyEach: verifyEach || Pipeline.verifiesByDefault, maxRewrites: maxRewrites)
    let original = model
    pipeline.approximation = try approximationSettings(for: model)
    let run: PipelineReport
    do {
      run = try pipeline.run(&model) { pass, old, new in
        guard printChanges else { return }
        print("== \(pass)")
        print(unifiedDiff(old.text(options: diffTextOptions), new.text(options: diffTextOptions)), terminator: "")
      }
    } catch { throw CLIError.badModel("\(input): \(error.message)") }
    // With encoded weights, --verify measures the written file's decoded weights (read back
    // before the rename); otherwise the optimized model in memory, which the file holds exactly.
    let encoded = target == .tmf && weights != .fp32
    var outputError = verify && !encoded ? try measureOutputError(original: original, optimized: model, settings: pipeline.approximation) : nil
    let settings = pipeline.approximation
    let written = try saveModel(
      model, to: output, externalData: externalData, allowContribOps: allowContribOps, metadata: target == .tmf ? tmfMetadata(run) : [],
      weights: TMFWeightOptions(encoding: weights, codebookSize: codebookSize),
      readBack: encoded ? { (decoded: Model) throws(CLIError) in
        if verify { outputError = try measureOutputError(original: original, optimized: decoded, settings: settings) }
      } : nil)

    let result = OptimizeReport(
      input: input, output: output, preset: passes == nil ? chosenPreset.rawValue : nil,
      passes: steps.map { $0.pass.name }, maxRewrites: maxRewrites, before: before, after: model.statistics(), run: run,
      calibration: pipeline.approximation.calibration?.source, outputError: outputError,
      weights: encoded ? weights.rawValue : nil, encodedTensors: written?.encoded)
    if let report {
      let json = report.lowercased().hasSuffix(".json") || format == .json
      do {
        try (json ? result.json : result.fullText).write(toFile: report, atomically: true, encoding: .utf8)
      } catch { throw CLIError.usage("\(report): cannot write the report: \(error.localizedDescription)") }
    }
    print(format == .json ? result.json : result.summaryText, terminator: "")
  }
}

extension Optimize {
  /// The calibration samples and budgets the flags describe.
  func approximationSettings(for model: Model) throws(CLIError) -> ApproximationSettings {
    var settings = ApproximationSettings()
    if let calibration { settings.calibration = try CalibrationData.load(npz: calibration, for: model) }
    if let calibrationRandom { settings.calibration = try CalibrationData.random(calibrationRandom, for: model) }
    settings.maxError = maxError
    settings.compression = compression
    settings.minParams = minParams
    settings.threads = threads ?? BLAS.processorCount
    return settings
  }

  /// `--verify`: the output error of the optimized model against the original, on the held-back
  /// calibration samples, or on seeded random inputs when there are none.
  func measureOutputError(original: Model, optimized: Model, settings: ApproximationSettings) throws(CLIError) -> Double {
    let reference: Calibration
    if let given = settings.calibration { reference = given } else { reference = try CalibrationData.random(1, for: original) }
    do {
      return try reference.outputError(of: optimized, against: original, threads: settings.threads)
    } catch {
      throw .badModel("\(input): --verify could not run the models: \(error)")
    }
  }
}

extension Optimize {
  /// `.tmf` metadata: producer, the source model's SHA-256, the passes applied with their options,
  /// change counts and the errors the approximate passes reported (docs/tmf.md, section metadata).
  func tmfMetadata(_ run: PipelineReport) -> [MetadataEntry] {
    var entries = [
      MetadataEntry(key: "producer", value: "rebirth"),
      MetadataEntry(key: "producer_version", value: Rebirth.version),
      MetadataEntry(key: "source_file", value: (input as NSString).lastPathComponent),
    ]
    if let digest = SHA256.hexDigest(ofFile: input) { entries.append(MetadataEntry(key: "source_sha256", value: digest)) }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    if let json = try? encoder.encode(run.runs) { entries.append(MetadataEntry(key: "passes", value: String(decoding: json, as: UTF8.self))) }
    let measured = run.changes.filter { !$0.metrics.isEmpty } + run.skipped
    if !measured.isEmpty, let json = try? encoder.encode(measured) {
      entries.append(MetadataEntry(key: "measured_changes", value: String(decoding: json, as: UTF8.self)))
    }
    return entries
  }
}

/// Graph text for `--print-changes`: inferred types of intermediates are noise there.
let diffTextOptions = TextOptions(maxInlineElements: 16, includeValueInfo: false)

extension TMFWeightEncoding: ExpressibleByArgument {}
