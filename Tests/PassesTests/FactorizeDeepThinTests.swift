import Graph
import GraphTesting
import Linalg
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
    // Two thin MatMuls, x·A then ·B, as factorize-svd writes them: no weight rebuilt per run.
    #expect(ops(outcome.model) == ["MatMul", "MatMul"])
    let change = try #require(outcome.report.changes.first)
    #expect(change.metrics["params_after"] == Double(3 * (64 + 96)))
    #expect(change.metrics["macs_after"] == Double(2 * 3 * (64 + 96)))
    #expect(change.metrics["macs_after"]! < change.metrics["macs_before"]!)
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

  // MARK: Calibration-aware fit (alternating least squares)

  /// A 16-row-batch variant of `model` for calibration tests.
  func batchModel(_ w: [Float]) -> String {
    """
    \(header)
    g (float[16,64] x) => (float[16,96] y) <float[64,96] w = \(literal(w))> { y = MatMul(x, w) }
    """
  }

  @Test func theCalibrationAwareFitRecoversADeepThinProduct() throws {
    let layout = DeepThinLayout.candidates(rows: 64, columns: 96)[1]
    let w = Array(lowRankMatrix(layout.rows, layout.columns, rank: 2).prefix(6144))
    var settings = ApproximationSettings()
    settings.calibration = calibration("x", shape: [16, 64], samples: 8, basis: 16)
    let outcome = try runFactorization(
      FactorizeDeepThin.self, options: ["rank": "2", "layout": "square"], on: batchModel(w), settings: settings)
    let change = try #require(outcome.report.changes.first { $0.pass == FactorizeDeepThin.name })
    #expect(change.description.contains("\(layout.rows)×\(layout.columns) rank 2"), "\(change.description)")
    #expect(try #require(change.metrics["fit_error"]) < 1e-3, "\(change.metrics)")
    #expect(try #require(change.metrics["output_error"]) < 1e-3, "\(change.metrics)")
    #expect(try #require(change.metrics["held_out_rows"]) == 2 * 16)
    #expect(change.metrics["params_after"] == Double(2 * (layout.rows + layout.columns)))
    let expected = layout.padding > 0 ? ["MatMul", "Reshape", "Slice", "Reshape", "MatMul"] : ["MatMul", "Reshape", "MatMul"]
    #expect(ops(outcome.model) == expected)
    try expectSameOutputs(try Model(parsing: batchModel(w)), outcome.model, tolerance: 1e-3)
  }

  @Test func alternatingLeastSquaresBeatsTheWeightOnlyFitOnSkewedInputs() throws {
    // A random weight and inputs in a 12-dimensional subspace: the output error over the factors
    // is far below the weight-only (hard-impute) fit's, and never above it on the fitting rows.
    let w = seededFloats(6144, seed: 41)
    var settings = ApproximationSettings()
    settings.calibration = calibration("x", shape: [16, 64], samples: 8, basis: 12)
    let outcome = try runFactorization(
      FactorizeDeepThin.self, options: ["rank": "4", "layout": "square", "iterations": "6"], on: batchModel(w), settings: settings)
    let m = try #require(outcome.report.changes.first?.metrics)
    let start = try #require(m["fit_error_hard_impute"]), als = try #require(m["fit_error_als"])
    #expect(als < 0.7 * start, "ALS \(als) vs hard impute \(start)")
    let fit = try #require(m["fit_error"])
    #expect(m["als"] == 1 && abs(fit - als) < 1e-3, "\(m)")
    // Held-out rows of the same distribution agree.
    let heldALS = try #require(m["held_out_error_als"]), heldStart = try #require(m["held_out_error_hard_impute"])
    #expect(heldALS < heldStart)
  }

  /// Statistics of a layer with weight `w` (d_in × d_out) on seeded inputs in a `basis`-dimensional subspace.
  func statistics(_ w: Matrix, rows: Int, basis: Int) -> LayerStatistics {
    let z = seededFloats(rows * basis, seed: 77), mix = seededFloats(basis * w.rows, seed: 78)
    let x = Matrix(rows: rows, columns: basis, elements: z).multiplied(by: Matrix(rows: basis, columns: w.rows, elements: mix))
    return LayerStatistics(inputs: x, targets: x.multiplied(by: w))
  }

  @Test(arguments: [false, true])
  func eachRoundLowersTheFittingError(outputMajor: Bool) throws {
    // From a perturbed start, on an exact DeepThin product: every round's error is at most the
    // previous one's, and the fit gets close. `outputMajor` is a Conv's [M, C·k…] order, where a
    // block of P holds several entries of one output column (the Hessian's off-diagonal terms).
    let (dIn, dOut) = (48, 40)
    let layout = DeepThinLayout.candidates(rows: outputMajor ? dOut : dIn, columns: outputMajor ? dIn : dOut)[1]
    let xTrue = Matrix(rows: layout.rows, columns: 3, elements: seededFloats(layout.rows * 3, seed: 5))
    let wTrue = Matrix(rows: 3, columns: layout.columns, elements: seededFloats(3 * layout.columns, seed: 6))
    let flat = layout.rebuild(x: xTrue, w: wTrue)
    let weight = outputMajor
      ? Matrix(rows: dOut, columns: dIn, elements: flat).transposed : Matrix(rows: dIn, columns: dOut, elements: flat)
    let s = statistics(weight, rows: 200, basis: 30)
    let als = DeepThinALS(layout: layout, weight: weight, statistics: s, outputMajor: outputMajor)
    #expect(s.relativeOutputError(of: als.weight(x: xTrue, w: wTrue)) < 1e-5)
    var x = xTrue, w = wTrue
    for k in x.elements.indices { x.elements[k] += 0.3 * seededFloats(x.elements.count, seed: 9)[k] }
    for k in w.elements.indices { w.elements[k] += 0.3 * seededFloats(w.elements.count, seed: 10)[k] }
    var errors = [s.relativeOutputError(of: als.weight(x: x, w: w))]
    for _ in 0..<12 {
      let step = als.refit(x: x, w: w, iterations: 1) { s.relativeOutputError(of: $0) }
      (x, w) = (step.x, step.w)
      errors.append(step.error)
    }
    #expect(zip(errors, errors.dropFirst()).allSatisfy { $1 <= $0 + 1e-6 }, "\(errors)")
    #expect(errors.last! < 0.05 * errors.first!, "\(errors)")
  }

  @Test func iterationsMustNotBeNegative() {
    var options = PassOptions(for: FactorizeDeepThin.self)
    #expect(throws: PassOptionError.self) {
      try options.set("iterations", "-1")
      _ = try FactorizeDeepThin(options: options)
    }
  }

  @Test func aRankThatSavesNothingIsNotApplied() throws {
    try assertNoRewrite(FactorizeDeepThin.self, options: ["rank": "60", "layout": "plain"], model(seededFloats(6144, seed: 2)))
  }
}
