import Graph
import GraphTesting
import Linalg
import Runtime
import Testing

@testable import Passes

@Suite struct PruneTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  func settings() -> ApproximationSettings {
    var s = ApproximationSettings()
    s.minParams = 0
    return s
  }

  func matMul(_ w: [Float], rows: Int = 32, columns: Int = 24, batch: Int = 4) -> String {
    """
    \(header)
    g (float[\(batch),\(rows)] x) => (float[\(batch),\(columns)] y) <float[\(rows),\(columns)] w = \(literal(w)), float[\(columns)] b = \(literal(seededFloats(columns, seed: 5)))> {
      h = MatMul(x, w)
      y = Add(h, b)
    }
    """
  }

  /// A weight whose every other entry is exactly zero.
  var halfZero: [Float] { seededFloats(32 * 24, seed: 3).enumerated().map { $0.offset % 2 == 0 ? 0 : $0.element } }

  @Test func sparsityZeroChangesNothing() throws {
    let input = matMul(seededFloats(32 * 24, seed: 3))
    let outcome = try runFactorization(Prune.self, options: ["sparsity": "0"], on: input, settings: settings())
    #expect(outcome.report.changes.isEmpty)
    #expect(outcome.model.text(options: goldenTextOptions) == (try Model(parsing: input)).text(options: goldenTextOptions))
  }

  @Test(arguments: ["layer", "global"]) func pruningExactZerosIsExact(scope: String) throws {
    let input = matMul(halfZero)
    let outcome = try runFactorization(Prune.self, options: ["sparsity": "0.5", "scope": scope], on: input, settings: settings())
    let change = try #require(outcome.report.changes.first { $0.pass == Prune.name })
    #expect(change.metrics["sparsity"] == 0.5 && change.metrics["weight_error"] == 0)
    try expectSameOutputs(try Model(parsing: input), outcome.model, tolerance: 1e-6)
    #expect(change.description == "MatMul →h (32×24) pruned: 384 of 768 weights zero (50.0%), weight error 0.0")
  }

  @Test func theSmallestWeightsGo() throws {
    let w = seededFloats(32 * 24, seed: 3)
    let outcome = try runFactorization(Prune.self, options: ["sparsity": "0.25"], on: matMul(w), settings: settings())
    let g = outcome.model.graph
    let node = try #require(g.nodeIDs.map { g[$0] }.first { $0.opType == OpType.matMul })
    let pruned = try #require(g.constant(node.input(1))?.floats)
    let threshold = w.map(abs).sorted()[191]
    #expect(pruned.filter { $0 == 0 }.count == 192)
    #expect(zip(w, pruned).allSatisfy { abs($0) <= threshold ? $1 == 0 : $1 == $0 })
  }

  @Test func errorGrowsWithSparsity() throws {
    let input = matMul(seededFloats(32 * 24, seed: 3))
    let errors = try [0.2, 0.4, 0.6, 0.8].map { s in
      try #require(try runFactorization(Prune.self, options: ["sparsity": "\(s)"], on: input, settings: settings())
        .report.changes.first?.metrics["weight_error"])
    }
    #expect(errors == errors.sorted() && errors.first! < errors.last!, "\(errors)")
  }

  @Test func globalScopePrunesTheSmallerLayerMore() throws {
    let input = """
      \(header)
      g (float[4,32] x) => (float[4,32] y) <float[32,32] w1 = \(literal(seededFloats(1024, seed: 1).map { $0 * 0.1 })), float[32,32] w2 = \(literal(seededFloats(1024, seed: 2)))> {
        h = MatMul(x, w1)
        y = MatMul(h, w2)
      }
      """
    let outcome = try runFactorization(Prune.self, options: ["sparsity": "0.5", "scope": "global"], on: input, settings: settings())
    let sparsity = outcome.report.changes.compactMap { $0.metrics["sparsity"] }
    #expect(sparsity.count == 2 && sparsity[0] > 0.85 && sparsity[1] < 0.15, "\(sparsity)")
    #expect(abs((sparsity[0] + sparsity[1]) / 2 - 0.5) < 1e-9)
  }

  @Test func calibrationScoresAndRefitLowerTheOutputError() throws {
    let input = matMul(seededFloats(32 * 24, seed: 3), batch: 8)
    var s = settings()
    s.calibration = calibration("x", shape: [8, 32], samples: 12, basis: 10)
    let aware = try runFactorization(Prune.self, options: ["sparsity": "0.5"], on: input, settings: s)
    let change = try #require(aware.report.changes.first)
    let unrefitted = try #require(change.metrics["fit_error_unrefitted"]), refitted = try #require(change.metrics["fit_error"])
    #expect(refitted < 0.5 * unrefitted, "\(refitted) vs \(unrefitted)")
    // The reported output error is on the 3 held-out samples' rows.
    #expect(change.metrics["held_out_rows"] == 3 * 8 && change.metrics["output_error"] != nil)
    #expect(change.description.contains("on held-out rows"), "\(change.description)")
    #expect(change.metrics["sparsity"] == 0.5)
  }

  @Test func aConvIsPrunedInItsOwnLayout() throws {
    let input = """
      \(header)
      g (float[1,4,6,6] x) => (float[1,8,6,6] y) <float[8,4,3,3] w = \(literal(seededFloats(288, seed: 3).enumerated().map { $0.offset % 3 == 0 ? $0.element : 0 }))> {
        y = Conv<pads = [1, 1, 1, 1]>(x, w)
      }
      """
    let outcome = try runFactorization(Prune.self, options: ["sparsity": "0.6"], on: input, settings: settings())
    let change = try #require(outcome.report.changes.first)
    #expect(change.metrics["weight_error"] == 0 && (change.metrics["nonzeros"] ?? 0) <= 96)
    try expectSameOutputs(try Model(parsing: input), outcome.model, tolerance: 1e-6)
  }

  @Test func aWeightThatIsAGraphInputIsLeftAlone() throws {
    let input = """
      \(header)
      g (float[4,32] x, float[32,24] w) => (float[4,24] y) <float[32,24] w = \(literal(halfZero))> {
        y = MatMul(x, w)
      }
      """
    #expect(try runFactorization(Prune.self, on: input, settings: settings()).report.changes.isEmpty)
  }
}
