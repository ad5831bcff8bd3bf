import Graph
import GraphTesting
@testable import Passes
import Runtime
import Testing

@Suite struct BranchSlimFitTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  /// An Inception block's pool branch next to a 1×1 branch; `pool` is the pooling op.
  func block(pool: String = "MaxPool <kernel_shape = [3, 3], pads = [1, 1, 1, 1]> (x)", outputs: String = "") -> String {
    """
    \(header)
    g (float[1,6,8,8] x) => (float[1,7,8,8] y\(outputs)) <float[3,6,1,1] w1 = \(floatLiteral(18, seed: 21)), float[4,6,1,1] wp = \(floatLiteral(24, seed: 22)), float[4] bp = {0.1, -0.1, 0.2, 0.0}> {
      c1 = Conv(x, w1)
      p = \(pool)
      cp = Conv(p, wp, bp)
      rp = Relu(cp)
      y = Concat <axis = 1> (c1, rp)
    }
    """
  }

  @Test func poolBranchBecomesAFittedConv() throws {
    let outcome = try runFitted(BranchSlimFit.self, on: block(), options: Self.force)
    let changes = outcome.changes(of: BranchSlimFit.self)
    #expect(changes.count == 1)
    #expect(!outcome.ops.contains("MaxPool"))
    let graph = outcome.model.graph
    let fitted = try #require(graph.nodeIDs.map { graph[$0] }.first { $0.opType == "Conv" && $0.inputs.count == 3 })
    #expect(fitted.attribute("kernel_shape")?.ints == [3, 3])
    #expect(fitted.attribute("pads")?.ints == [1, 1, 1, 1])
    #expect(fitted.input(0).map { graph[$0].name } == "x")
    let calibration = try #require(outcome.calibration)
    let measured = try calibration.outputError(of: outcome.model, against: outcome.original)
    #expect(abs(try #require(changes.first?.metrics["output_error"]) - measured) <= 1e-9 * max(1, measured))
    // A max pool is not linear: the fit is approximate, but it must beat doing nothing (error 1).
    #expect(measured < 0.9)
  }

  /// An AveragePool stand-in (count_include_pad = 1, so every window averages 9 values, zeros
  /// included) in front of a 1×1 conv is one 3×3 conv exactly; the fit must reproduce it. (The
  /// pass matches MaxPool; here it is driven through the pattern's fit directly.)
  @Test func averagePoolStandInIsFittedExactly() throws {
    let model = try Model(parsing: block(pool: "AveragePool <kernel_shape = [3, 3], pads = [1, 1, 1, 1], count_include_pad = 1> (x)"))
    let session = try Session(model: model, options: SessionOptions(threadCount: 1))
    let pairs = try (1...8).map { seed -> (NDArray, NDArray) in
      let feeds = try seededInputs(for: model, seed: UInt64(seed))
      return (try #require(feeds["x"]), try session.run(feeds, fetching: ["cp"])[0])
    }
    let window = Window2D(kernel: [3, 3], strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1], group: 1)
    let fit = LayerFit(window: window, channels: 6, outChannels: 4, throughRelu: false, prior: Array(repeating: 0, count: 55 * 4))
    let result = try fit.fit(fitting: Array(pairs.prefix(6)), heldOut: Array(pairs.suffix(2)))
    #expect(result.heldOutError < 1e-4)
  }

  /// The sites below add MACs (a 3×3 conv in place of a pool and a 1×1), so they are fitted only
  /// with `force`.
  static let force = ["force": "true"]

  @Test func costModelRefusesASiteThatAddsMACs() throws {
    let outcome = try runFitted(BranchSlimFit.self, on: block())
    #expect(outcome.changes(of: BranchSlimFit.self).isEmpty)
    let skipped = try #require(outcome.skipped(of: BranchSlimFit.self).first)
    #expect(skipped.description.contains("adds MACs"))
    #expect(outcome.ops.contains("MaxPool"))
  }

  @Test func withoutCalibrationTheSiteIsSkipped() throws {
    let outcome = try runFitted(BranchSlimFit.self, on: block(), samples: 0, options: Self.force)
    #expect(outcome.changes(of: BranchSlimFit.self).isEmpty)
    #expect(outcome.skipped(of: BranchSlimFit.self).count == 1)
    #expect(outcome.ops.contains("MaxPool"))
  }

  @Test func tightBudgetSkips() throws {
    let outcome = try runFitted(BranchSlimFit.self, on: block(), maxError: 1e-6, options: Self.force)
    #expect(outcome.changes(of: BranchSlimFit.self).isEmpty)
    #expect(outcome.skipped(of: BranchSlimFit.self).first?.description.contains("over the budget") == true)
    #expect(outcome.ops.contains("MaxPool"))
  }

  @Test(arguments: [
    "MaxPool <kernel_shape = [3, 3], pads = [1, 1, 1, 1], ceil_mode = 1> (x)",
    "MaxPool <kernel_shape = [3, 3], pads = [2, 2, 2, 2], dilations = [2, 2]> (x)",
  ])
  func declinesOtherPools(pool: String) throws {
    let outcome = try runFitted(BranchSlimFit.self, on: block(pool: pool), samples: 4, options: Self.force)
    #expect(outcome.changes(of: BranchSlimFit.self).isEmpty)
    #expect(outcome.skipped(of: BranchSlimFit.self).isEmpty)
  }

  @Test func poolOutputThatIsAGraphOutputDeclines() throws {
    let outcome = try runFitted(BranchSlimFit.self, on: block(outputs: ", float[1,6,8,8] p"), options: Self.force)
    #expect(outcome.changes(of: BranchSlimFit.self).isEmpty)
    #expect(outcome.skipped(of: BranchSlimFit.self).isEmpty)
  }
}
