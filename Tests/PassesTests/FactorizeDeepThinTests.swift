import Graph
import GraphTesting
import Runtime
import Testing

@testable import Passes

@Suite struct FactorizeDeepThinTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  func model(_ w: [Float]) -> String {
    """
    \(header)
    g (float[2,64] x) => (float[2,96] y) <float[64,96] w = \(literal(w))> { y = MatMul(x, w) }
    """
  }

  func ops(_ model: Model) -> [String] {
    let g = model.graph
    return (g.topologicalOrder() ?? g.nodeIDs).map { g[$0].opType }
  }

  @Test func aDeepThinShapedProductIsRecovered() throws {
    // W is the first 64·96 entries of a rank-2 matrix in the near-square layout.
    let layout = DeepThinLayout.candidates(rows: 64, columns: 96)[1]
    #expect(layout.rows * layout.columns >= 6144 && layout.columns != 96)
    let w = Array(lowRankMatrix(layout.rows, layout.columns, rank: 2).prefix(6144))
    let outcome = try runFactorization(FactorizeDeepThin.self, options: ["rank": "2", "layout": "square"], on: model(w))
    let change = try #require(outcome.report.changes.first { $0.pass == FactorizeDeepThin.name })
    #expect((change.metrics["weight_error"] ?? 1) < 1e-3, "\(change.metrics)")
    #expect(change.metrics["params_after"] == Double(2 * (layout.rows + layout.columns)))
    let expected = layout.padding > 0 ? ["MatMul", "Reshape", "Slice", "Reshape", "MatMul"] : ["MatMul", "Reshape", "MatMul"]
    #expect(ops(outcome.model) == expected)
    try expectSameOutputs(try Model(parsing: model(w)), outcome.model, tolerance: 1e-3)
    // Plain SVD cannot do this at the same parameters: the rebuilt W has full rank.
    let svd = try runFactorization(FactorizeSVD.self, options: ["rank": "1"], on: model(w))
    #expect((svd.report.changes.first?.metrics["weight_error"] ?? 0) > 0.1)
  }

  @Test func thePlainLayoutIsPlainLowRank() throws {
    let w = lowRankMatrix(64, 96, rank: 3)
    let outcome = try runFactorization(FactorizeDeepThin.self, options: ["rank": "3", "layout": "plain"], on: model(w))
    #expect(ops(outcome.model) == ["MatMul", "Reshape", "MatMul"])
    try expectSameOutputs(try Model(parsing: model(w)), outcome.model, tolerance: 1e-4)
  }

  @Test func neverWorseThanSVDAtItsChoice() throws {
    // A random weight: whatever layout the budget picks, its error is at most plain SVD's at
    // no more parameters.
    let w = seededFloats(6144, seed: 31)
    var settings = ApproximationSettings()
    settings.compression = 0.3
    let thin = try runFactorization(FactorizeDeepThin.self, on: model(w), settings: settings)
    let svd = try runFactorization(FactorizeSVD.self, on: model(w), settings: settings)
    let t = try #require(thin.report.changes.first?.metrics), s = try #require(svd.report.changes.first?.metrics)
    #expect(t["params_after"]! <= 0.3 * 6144 && s["params_after"]! <= 0.3 * 6144)
    #expect(t["weight_error"]! <= s["weight_error"]! + 1e-3, "deepthin \(t), svd \(s)")
  }

  @Test func reportedParametersMatchTheWrittenModel() throws {
    let w = seededFloats(6144, seed: 5)
    var settings = ApproximationSettings()
    settings.compression = 0.25
    let outcome = try runFactorization(FactorizeDeepThin.self, options: ["layout": "square"], on: model(w), settings: settings)
    let change = try #require(outcome.report.changes.first)
    let before = try Model(parsing: model(w)).statistics(), after = outcome.model.statistics()
    // The rebuilt weight's shape and slice bounds are int64 constants: 1 to 3 small tensors more.
    let shapes = outcome.model.graph.initializers.filter { outcome.model.graph.constant($0)?.dtype == .int64 }
      .reduce(0) { $0 + (outcome.model.graph.constant($1)?.elementCount ?? 0) }
    #expect(Double(after.parameterCount - shapes) == change.metrics["params_after"]!)
    #expect(Double(before.parameterCount) == change.metrics["params_before"]!)
  }

  @Test(arguments: [
    ("weight a graph input", "g (float[2,64] x, float[64,96] w) => (float[2,96] y) { y = MatMul(x, w) }"),
    ("too small a layer", "g (float[2,32] x) => (float[2,32] y) <float[32,32] w = \(literal(seededFloats(1024, seed: 1)))> { y = MatMul(x, w) }"),
  ])
  func guards(_ name: String, _ body: String) throws {
    try assertNoRewrite(FactorizeDeepThin.self, options: ["rank": "2"], "\(header)\n\(body)")
  }

  @Test func aRankThatSavesNothingIsNotApplied() throws {
    try assertNoRewrite(FactorizeDeepThin.self, options: ["rank": "60", "layout": "plain"], model(seededFloats(6144, seed: 2)))
  }
}
