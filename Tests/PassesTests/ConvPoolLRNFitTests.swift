import Graph
import GraphTesting
@testable import Passes
import Runtime
import Testing

/// `conv-maxpool-lrn-fit`: an LRN after a MaxPool after a conv (+activations), GoogLeNet's
/// `pool1/norm1`, moved before the pool and fitted into the conv where the pool stays.
@Suite struct ConvPoolLRNFitTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  /// The stem's conv1, pool1 and norm1, small; `tail` reads the LRN's output `n`.
  func stem(alpha: String, pool: String = "kernel_shape = [3, 3], strides = [2, 2], pads = [0, 0, 1, 1]", tail: String = "y = Conv(n, w2)") -> String {
    """
    \(header)
    g (float[1,3,24,24] x) => (float[1,4,6,6] y) <float[6,3,5,5] w = \(floatLiteral(450, seed: 11, scale: 0.3)), float[6] b = {0.1, -0.1, 0.2, 0.0, 0.05, -0.05}, float[4,6,1,1] w2 = \(floatLiteral(24, seed: 12))> {
      c = Conv <kernel_shape = [5, 5], strides = [2, 2], pads = [2, 2, 2, 2]> (x, w, b)
      r = Relu(c)
      p = MaxPool <\(pool)> (r)
      n = LRN <size = 5, alpha = \(alpha), beta = 0.75, bias = 2.0> (p)
      \(tail)
    }
    """
  }

  /// Under a budget of 1e-4 both pool merges (same-size and composite kernel, about 0.3 each)
  /// are skipped, so the LRN after the pool is what stream-slim-fit takes. With α = 0 the LRN is a
  /// positive scaling: it commutes with the pool and the Relu, and the scaled conv is exact.
  @Test func lrnWithAlphaZeroThroughThePoolIsExact() throws {
    let outcome = try runFitted(StreamSlimFit.self, on: stem(alpha: "0.0"), samples: 12, maxError: 1e-4)
    let changes = outcome.changes(of: StreamSlimFit.self)
    #expect(changes.map(\.pattern) == [ConvPoolLRNFit.name], "\(outcome.report.skipped.map(\.description))")
    #expect(outcome.skipped(of: StreamSlimFit.self).map(\.pattern) == [ConvMaxPoolFit.name, ConvMaxPoolFit.name])
    #expect(outcome.ops == ["Conv", "Relu", "MaxPool", "Conv"])
    try outcome.expectExactMerge(of: StreamSlimFit.self)
    // The pool's output stands in for the LRN's and takes its name; the pre-pool values are new.
    let g = outcome.model.graph
    #expect(g.producer(of: g.value(named: "n"))?.opType == "MaxPool")
    #expect(g.producer(of: g.value(named: "r_merged"))?.opType == "Relu")
    #expect(g.producer(of: g.value(named: "c_merged"))?.opType == "Conv")
    #expect(g.value(named: "p") == nil && g.value(named: "r") == nil)
  }

  /// With α > 0 the commutation is approximate: the recorded error is the model's, measured
  /// independently, within the budget that kept it, and below that of the fit's initializer θ₀
  /// (the conv scaled by bias^−β, which is the same model with α = 0).
  @Test func lrnThroughThePoolIsFittedAndMeasured() throws {
    let outcome = try runFitted(StreamSlimFit.self, on: stem(alpha: "0.01"), samples: 16, maxError: 0.1)
    let changes = outcome.changes(of: StreamSlimFit.self)
    #expect(changes.map(\.pattern) == [ConvPoolLRNFit.name], "\(outcome.report.skipped.map(\.description))")
    #expect(!outcome.ops.contains("LRN"))
    let calibration = try #require(outcome.calibration)
    let measured = try calibration.outputError(of: outcome.model, against: outcome.original)
    let recorded = try #require(changes.first?.metrics["output_error"])
    #expect(abs(recorded - measured) <= 1e-6 * max(1e-3, measured))
    #expect(measured > 0 && measured <= 0.1)
    let priorError = try calibration.outputError(of: try Model(parsing: stem(alpha: "0.0")), against: outcome.original)
    #expect(measured < priorError, "fitted \(measured), scaled conv \(priorError)")
  }

  /// The LRN's output is the graph output: the pool's output takes its place and its name.
  @Test func lrnOutputThatIsAGraphOutputKeepsItsName() throws {
    let text = stem(alpha: "0.0", tail: "")
      .replacingOccurrences(of: "=> (float[1,4,6,6] y)", with: "=> (float[1,6,6,6] n)")
    let outcome = try runFitted(StreamSlimFit.self, on: text, samples: 12, maxError: 1e-4)
    #expect(outcome.changes(of: StreamSlimFit.self).map(\.pattern) == [ConvPoolLRNFit.name])
    #expect(outcome.ops == ["Conv", "Relu", "MaxPool"])
    let g = outcome.model.graph
    #expect(g.outputs.map { g[$0].name } == ["n"])
    try outcome.expectExactMerge(of: StreamSlimFit.self)
  }

  /// A pool or activation output that something else reads too keeps its LRN.
  @Test(arguments: [("p", "float[1,6,6,6]"), ("r", "float[1,6,12,12]")])
  func sharedIntermediateDeclines(value: String, type: String) throws {
    let text = stem(alpha: "0.0", tail: "y = Conv(n, w2)\n  z = Identity(\(value))")
      .replacingOccurrences(of: "=> (float[1,4,6,6] y)", with: "=> (float[1,4,6,6] y, \(type) z)")
    let outcome = try runFitted(StreamSlimFit.self, on: text, samples: 12, maxError: 1e-4)
    #expect(!outcome.changes(of: StreamSlimFit.self).contains { $0.pattern == ConvPoolLRNFit.name })
    #expect(outcome.ops.contains("LRN"))
  }
}
