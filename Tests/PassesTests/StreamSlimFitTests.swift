import Graph
import GraphTesting
@testable import Passes
import Runtime
import Testing

/// What a fitted pass did, with the calibration it was given (to re-measure independently).
struct FittedOutcome {
  let original: Model
  let model: Model
  let report: PipelineReport
  let calibration: Calibration?

  func changes(of pass: any Pass.Type) -> [Change] { report.changes.filter { $0.pass == pass.name } }
  func skipped(of pass: any Pass.Type) -> [Change] { report.skipped.filter { $0.pass == pass.name } }
  var ops: [String] { model.graph.nodeIDs.map { model.graph[$0].opType } }
}

/// Runs `pass` on `text` (verifier after the pass) with `samples` seeded calibration samples
/// (none: no calibration) and the budget `maxError`.
func runFitted(
  _ pass: any Pass.Type, on text: String, samples: Int = 8, maxError: Double? = nil, options: [String: String] = [:]
) throws -> FittedOutcome {
  let original = try Model(parsing: text)
  var model = original
  var step = PipelineStep(pass)
  for (key, value) in options { try step.options.set(key, value) }
  var pipeline = Pipeline(steps: [step], verifyEach: true)
  var calibration: Calibration?
  if samples > 0 {
    let feeds = try (1...samples).map { try seededInputs(for: original, seed: UInt64($0)) }
    calibration = Calibration(samples: feeds, isRandom: true, source: "\(samples) seeded test samples")
  }
  pipeline.approximation.calibration = calibration
  pipeline.approximation.maxError = maxError
  let report = try pipeline.run(&model)
  return FittedOutcome(original: original, model: model, report: report, calibration: calibration)
}

@Suite struct StreamSlimFitTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  // MARK: Fits the merged conv represents exactly

  /// LRN with α = 0 is a scaling by bias^−β, which the conv absorbs: the fit must reproduce it
  /// (with the Relu before the LRN too: the ReLU-aware fit starts from the exact initializer).
  @Test(arguments: [false, true])
  func lrnWithAlphaZeroIsExact(relu: Bool) throws {
    let activation = relu ? "r = Relu(c)\n n = LRN <size = 3, alpha = 0.0, beta = 0.75, bias = 2.0> (r)"
      : "n = LRN <size = 3, alpha = 0.0, beta = 0.75, bias = 2.0> (c)"
    let text = """
      \(header)
      g (float[1,3,8,8] x) => (float[1,4,8,8] y) <float[4,3,3,3] w = \(floatLiteral(108, seed: 3)), float[4] b = {0.1, -0.2, 0.3, 0.0}> {
        c = Conv <kernel_shape = [3, 3], pads = [1, 1, 1, 1]> (x, w, b)
        \(activation)
        y = Sigmoid(n)
      }
      """
    let outcome = try runFitted(StreamSlimFit.self, on: text)
    #expect(outcome.changes(of: StreamSlimFit.self).count == 1)
    #expect(!outcome.ops.contains("LRN"))
    #expect(outcome.ops.contains("Relu") == relu)
    try expectSameOutputs(outcome.original, outcome.model, tolerance: 1e-4)
    let error = try #require(outcome.changes(of: StreamSlimFit.self).first?.metrics["output_error"])
    #expect(error < 1e-5)
  }

  /// MaxPool 1×1 stride 2 is a subsampling: the conv with stride 2 computes it exactly.
  @Test func maxPoolOneByOneIsExact() throws {
    let outcome = try runFitted(
      StreamSlimFit.self,
      on: """
        \(header)
        g (float[1,3,9,9] x) => (float[1,4,4,4] y) <float[4,3,3,3] w = \(floatLiteral(108, seed: 5)), float[4] b = {0.1, -0.2, 0.3, 0.0}> {
          c = Conv <kernel_shape = [3, 3]> (x, w, b)
          p = MaxPool <kernel_shape = [1, 1], strides = [2, 2]> (c)
          y = Sigmoid(p)
        }
        """)
    #expect(outcome.changes(of: StreamSlimFit.self).count == 1)
    #expect(outcome.ops == ["Conv", "Sigmoid"])
    let conv = try #require(outcome.model.graph.nodeIDs.map { outcome.model.graph[$0] }.first { $0.opType == "Conv" })
    #expect(conv.attribute("strides")?.ints == [2, 2])
    try expectSameOutputs(outcome.original, outcome.model, tolerance: 1e-4)
  }

  /// The least-squares machinery alone, with no help from the initializer (θ₀ = 0): a conv
  /// followed by an AveragePool is one strided conv, which the fit must find from data.
  @Test func fitFindsAnAveragePoolMergeFromData() throws {
    let text = """
      \(header)
      g (float[1,2,10,10] x) => (float[1,3,4,4] y) <float[3,2,3,3] w = \(floatLiteral(54, seed: 9)), float[3] b = {0.5, -0.25, 0.125}> {
        c = Conv <kernel_shape = [3, 3]> (x, w, b)
        y = AveragePool <kernel_shape = [2, 2], strides = [2, 2]> (c)
      }
      """
    let model = try Model(parsing: text)
    let session = try Session(model: model, options: SessionOptions(threadCount: 1))
    let pairs = try (1...12).map { seed -> (NDArray, NDArray) in
      let feeds = try seededInputs(for: model, seed: UInt64(seed))
      return (try #require(feeds["x"]), try session.run(feeds, fetching: ["y"])[0])
    }
    let window = Window2D(kernel: [4, 4], strides: [2, 2], dilations: [1, 1], pads: [0, 0, 0, 0], group: 1)
    let fit = LayerFit(
      window: window, channels: 2, outChannels: 3, throughRelu: false, prior: Array(repeating: 0, count: 33 * 3))
    let result = try fit.fit(fitting: Array(pairs.prefix(9)), heldOut: Array(pairs.suffix(3)))
    #expect(result.heldOutError < 1e-4)
    let w = try #require(model.graph.constant(model.graph.value(named: "w")))
    let expected = try #require(Kernel4(w)).boxed([2, 2], step: [1, 1], dilation: [1, 1])
    let (weight, bias) = fit.tensors(result)
    let got = try #require(weight.floats)
    #expect(zip(got, expected.values).allSatisfy { abs(Double($0) - $1) < 1e-4 })
    #expect(zip(try #require(bias.floats), [0.5, -0.25, 0.125]).allSatisfy { abs(Double($0) - $1) < 1e-4 })
  }

  // MARK: GoogLeNet's stem, step by step, and the budget

  var stem: String {
    """
    \(header)
    g (float[1,3,24,24] x) => (float[1,4,6,6] y) <float[6,3,5,5] w = \(floatLiteral(450, seed: 11, scale: 0.3)), float[6] b = {0.1, -0.1, 0.2, 0.0, 0.05, -0.05}, float[4,6,1,1] w2 = \(floatLiteral(24, seed: 12))> {
      c = Conv <kernel_shape = [5, 5], strides = [2, 2], pads = [2, 2, 2, 2]> (x, w, b)
      r = Relu(c)
      p = MaxPool <kernel_shape = [3, 3], strides = [2, 2], pads = [0, 0, 1, 1]> (r)
      n = LRN <size = 5, alpha = 0.0001, beta = 0.75, bias = 1.0> (p)
      y = Conv(n, w2)
    }
    """
  }

  @Test func stemMergesStepByStep() throws {
    let outcome = try runFitted(StreamSlimFit.self, on: stem)
    let changes = outcome.changes(of: StreamSlimFit.self)
    #expect(changes.map(\.pattern) == [ConvMaxPoolFit.name, ConvLRNFit.name])
    #expect(outcome.ops == ["Conv", "Relu", "Conv"])
    let conv = outcome.model.graph[outcome.model.graph.nodeIDs[0]]
    #expect(conv.attribute("kernel_shape")?.ints == [9, 9])
    #expect(conv.attribute("strides")?.ints == [4, 4])
    // The last change's recorded error is the model's error, measured independently.
    let calibration = try #require(outcome.calibration)
    let measured = try calibration.outputError(of: outcome.model, against: outcome.original)
    let recorded = try #require(changes.last?.metrics["output_error"])
    #expect(abs(recorded - measured) <= 1e-9 * max(1, measured))
    #expect(changes.allSatisfy { $0.metrics["fit_error"] != nil && $0.metrics["ridge_lambda"] != nil })
    #expect(changes[0].metrics["macs_after"]! < changes[0].metrics["macs_before"]!)
  }

  @Test func tightBudgetSkipsAndLooseBudgetApplies() throws {
    let tight = try runFitted(StreamSlimFit.self, on: stem, maxError: 1e-9)
    #expect(tight.changes(of: StreamSlimFit.self).isEmpty)
    let skipped = tight.skipped(of: StreamSlimFit.self)
    #expect(skipped.count == 1)
    #expect(skipped.first?.description.contains("over the budget") == true, "\(skipped.map(\.description))")
    let error = try #require(skipped.first?.metrics["output_error"])
    #expect(error > 1e-9)
    #expect(tight.ops == ["Conv", "Relu", "MaxPool", "LRN", "Conv"])

    let loose = try runFitted(StreamSlimFit.self, on: stem, maxError: 10)
    #expect(loose.changes(of: StreamSlimFit.self).count == 2)
    #expect(loose.skipped(of: StreamSlimFit.self).isEmpty)
    // The first rewrite's error, re-measured: the skipped one of the tight run is the same rewrite.
    let first = try #require(loose.changes(of: StreamSlimFit.self).first?.metrics["output_error"])
    #expect(abs(first - error) <= 1e-9 * max(1, error))

    // A budget between the two errors keeps the first rewrite and skips the second.
    let errors = loose.changes(of: StreamSlimFit.self).compactMap { $0.metrics["output_error"] }
    if errors.count == 2, errors[1] > errors[0] {
      let between = try runFitted(StreamSlimFit.self, on: stem, maxError: (errors[0] + errors[1]) / 2)
      #expect(between.changes(of: StreamSlimFit.self).count == 1)
      #expect(between.skipped(of: StreamSlimFit.self).count == 1)
    }
  }

  /// Caffe-style pooling (ceil_mode 1, GoogLeNet's pool2) becomes extra end pads of the merged conv.
  @Test func ceilModeMaxPoolMerges() throws {
    let outcome = try runFitted(
      StreamSlimFit.self,
      on: """
        \(header)
        g (float[1,3,16,16] x) => (float[1,4,8,8] y) <float[4,3,3,3] w = \(floatLiteral(108, seed: 13))> {
          c = Conv <kernel_shape = [3, 3], pads = [1, 1, 1, 1]> (x, w)
          r = Relu(c)
          y = MaxPool <kernel_shape = [3, 3], strides = [2, 2], ceil_mode = 1> (r)
        }
        """)
    #expect(outcome.changes(of: StreamSlimFit.self).count == 1)
    #expect(outcome.ops == ["Conv", "Relu"])
    let conv = outcome.model.graph[outcome.model.graph.nodeIDs[0]]
    #expect(conv.attribute("kernel_shape")?.ints == [5, 5])
    #expect(conv.attribute("pads")?.ints == [1, 1, 2, 2])
    let feeds = try seededInputs(for: outcome.model)
    let y = try Session(model: outcome.model, options: SessionOptions(threadCount: 1)).run(feeds)["y"]
    #expect(y?.shape == [1, 4, 8, 8])
  }

  // MARK: Guards

  @Test func withoutCalibrationEverySiteIsSkipped() throws {
    let outcome = try runFitted(StreamSlimFit.self, on: stem, samples: 0)
    #expect(outcome.changes(of: StreamSlimFit.self).isEmpty)
    let skipped = outcome.skipped(of: StreamSlimFit.self)
    #expect(skipped.count == 1)
    #expect(skipped.first?.description.contains("no calibration data") == true)
    #expect(outcome.ops == ["Conv", "Relu", "MaxPool", "LRN", "Conv"])
  }

  /// An intermediate with a second reader: the conv's output, or the Relu's.
  @Test(arguments: ["z = Sigmoid(c)", "z = Sigmoid(r)"])
  func intermediateWithSecondUseDeclines(extra: String) throws {
    let text = """
      \(header)
      g (float[1,3,24,24] x) => (float[1,6,12,12] n, float[1,6,12,12] z) <float[6,3,5,5] w = \(floatLiteral(450, seed: 11, scale: 0.3)), float[6] b = {0.1, -0.1, 0.2, 0.0, 0.05, -0.05}> {
        c = Conv <kernel_shape = [5, 5], strides = [2, 2], pads = [2, 2, 2, 2]> (x, w, b)
        r = Relu(c)
        n = LRN <size = 5, alpha = 0.0001, beta = 0.75, bias = 1.0> (r)
        \(extra)
      }
      """
    let outcome = try runFitted(StreamSlimFit.self, on: text)
    #expect(outcome.changes(of: StreamSlimFit.self).isEmpty)
    #expect(outcome.skipped(of: StreamSlimFit.self).isEmpty)
  }

  @Test func intermediateThatIsAGraphOutputDeclines() throws {
    let text = """
      \(header)
      g (float[1,3,24,24] x) => (float[1,6,12,12] n, float[1,6,12,12] r) <float[6,3,5,5] w = \(floatLiteral(450, seed: 11, scale: 0.3))> {
        c = Conv <kernel_shape = [5, 5], strides = [2, 2], pads = [2, 2, 2, 2]> (x, w)
        r = Relu(c)
        n = LRN <size = 5> (r)
      }
      """
    let outcome = try runFitted(StreamSlimFit.self, on: text)
    #expect(outcome.changes(of: StreamSlimFit.self).isEmpty)
    #expect(outcome.skipped(of: StreamSlimFit.self).isEmpty)
  }

  @Test func weightThatIsAGraphInputDeclines() throws {
    let text = """
      \(header)
      g (float[1,3,24,24] x, float[6,3,5,5] w) => (float[1,6,12,12] n) {
        c = Conv <kernel_shape = [5, 5], strides = [2, 2], pads = [2, 2, 2, 2]> (x, w)
        n = LRN <size = 5> (c)
      }
      """
    let outcome = try runFitted(StreamSlimFit.self, on: text)
    #expect(outcome.changes(of: StreamSlimFit.self).isEmpty)
    #expect(outcome.skipped(of: StreamSlimFit.self).isEmpty)
  }
}
