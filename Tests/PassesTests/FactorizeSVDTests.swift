import Graph
import GraphTesting
import Runtime
import Testing

@testable import Passes

@Suite struct FactorizeSVDTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  var matMul: String {
    """
    \(header)
    g (float[2,64] x) => (float[2,96] y) <float[64,96] w = \(literal(lowRankMatrix(64, 96, rank: 4))), float[96] b = \(literal(seededFloats(96, seed: 5)))> {
      h = MatMul(x, w)
      y = Add(h, b)
    }
    """
  }

  /// The ops of the rewritten main graph, in order, with their weights' shapes.
  func structure(_ model: Model) -> [String] {
    let g = model.graph
    return (g.topologicalOrder() ?? g.nodeIDs).map { id in
      let n = g[id]
      let shapes = n.inputs.compactMap { $0 }.compactMap { g.constant($0)?.shape }.map { "\($0)" }
      return ([n.opType] + shapes).joined(separator: " ")
    }
  }

  @Test func rankRMatMulIsRecoveredExactlyAtRankR() throws {
    let outcome = try runFactorization(FactorizeSVD.self, options: ["rank": "4"], on: matMul)
    #expect(structure(outcome.model) == ["MatMul [64, 4]", "MatMul [4, 96]", "Add [96]"])
    try expectSameOutputs(try Model(parsing: matMul), outcome.model, tolerance: 1e-4)
    let change = try #require(outcome.report.changes.first { $0.pass == FactorizeSVD.name })
    #expect(change.metrics["rank"] == 4)
    #expect(change.metrics["params_before"] == 6144 && change.metrics["params_after"] == 640)
    #expect((change.metrics["weight_error"] ?? 1) < 1e-5)
    #expect(change.description.hasPrefix("MatMul →h (64×96) factorized by svd, rank 4: 6144 → 640 parameters"))
  }

  @Test func theBudgetFindsTheExactRankInMultiplesOfEight() throws {
    let outcome = try runFactorization(FactorizeSVD.self, on: matMul)
    let change = try #require(outcome.report.changes.first { $0.pass == FactorizeSVD.name })
    #expect(change.metrics["rank"] == 8)
    try expectSameOutputs(try Model(parsing: matMul), outcome.model, tolerance: 1e-4)
  }

  @Test(arguments: [true, false]) func gemm(transB: Bool) throws {
    let w = lowRankMatrix(64, 80, rank: 3)
    let input = """
      \(header)
      g (float[3,\(transB ? 80 : 64)] x) => (float[3,\(transB ? 64 : 80)] y) <float[64,80] w = \(literal(w)), float[\(transB ? 64 : 80)] c = \(literal(seededFloats(transB ? 64 : 80, seed: 9)))> {
        y = Gemm<alpha = 0.5, beta = 2.0, transB = \(transB ? 1 : 0)>(x, w, c)
      }
      """
    let outcome = try runFactorization(FactorizeSVD.self, options: ["rank": "3"], on: input)
    let (din, dout) = transB ? (80, 64) : (64, 80)
    #expect(structure(outcome.model) == ["MatMul [\(din), 3]", "Gemm [3, \(dout)] [\(dout)]"])
    try expectSameOutputs(try Model(parsing: input), outcome.model, tolerance: 1e-4)
  }

  @Test func convChannelDecomposition() throws {
    // W [32, 16, 3, 3] of rank 4 as a 32 × 144 matrix.
    let input = """
      \(header)
      g (float[1,16,8,8] x) => (float[1,32,4,4] y) <float[32,16,3,3] w = \(literal(lowRankMatrix(32, 144, rank: 4))), float[32] b = \(literal(seededFloats(32, seed: 4)))> {
        y = Conv<pads = [1, 1, 1, 1], strides = [2, 2]>(x, w, b)
      }
      """
    let outcome = try runFactorization(FactorizeSVD.self, options: ["rank": "4"], on: input)
    #expect(structure(outcome.model) == ["Conv [4, 16, 3, 3]", "Conv [32, 4, 1, 1] [32]"])
    try expectSameOutputs(try Model(parsing: input), outcome.model, tolerance: 1e-4)
  }

  @Test func whitenedBeatsWeightOnlyOnCalibrationLikeData() throws {
    // A full-rank weight and inputs in an 8-dimensional subspace: the whitened fit at rank 8 is
    // nearly exact on such inputs, the weight-only one is not.
    let input = """
      \(header)
      g (float[16,64] x) => (float[16,96] y) <float[64,96] w = \(literal(seededFloats(64 * 96, seed: 21)))> { y = MatMul(x, w) }
      """
    var settings = ApproximationSettings()
    settings.calibration = calibration("x", shape: [16, 64], samples: 8, basis: 8)
    let whitened = try runFactorization(FactorizeSVD.self, options: ["rank": "8"], on: input, settings: settings)
    let plain = try runFactorization(FactorizeSVD.self, options: ["rank": "8", "fit": "weight"], on: input, settings: settings)
    let e1 = try #require(whitened.report.changes.first?.metrics["output_error"])
    let e2 = try #require(plain.report.changes.first?.metrics["output_error"])
    #expect(whitened.report.changes.first?.description.contains("whitened svd") == true)
    #expect(e1 < 0.05 && e1 < e2 / 5, "whitened \(e1), weight-only \(e2)")
    // Measured on held-out samples from the same distribution, too.
    let original = try Model(parsing: input), cal = settings.calibration!
    #expect(try cal.outputError(of: whitened.model, against: original) < cal.outputError(of: plain.model, against: original))
  }

  @Test func theReportedOutputErrorIsOnTheHeldOutRows() throws {
    // One layer, so its held-out output error is the model's relative Frobenius error on the
    // held-out samples, computed here independently; the fitting-row figure is fit_error.
    let input = """
      \(header)
      g (float[16,64] x) => (float[16,96] y) <float[64,96] w = \(literal(seededFloats(64 * 96, seed: 23)))> { y = MatMul(x, w) }
      """
    var settings = ApproximationSettings()
    settings.calibration = calibration("x", shape: [16, 64], samples: 8, basis: 12)
    let outcome = try runFactorization(FactorizeSVD.self, options: ["rank": "8"], on: input, settings: settings)
    let change = try #require(outcome.report.changes.first)
    let cal = try #require(settings.calibration)
    let sums = try heldOutSums(input, outcome.model, cal)
    let expected = (sums.difference / sums.energy).squareRoot()
    let reported = try #require(change.metrics["output_error"]), fit = try #require(change.metrics["fit_error"])
    #expect(abs(reported - expected) <= 1e-3 * expected, "reported \(reported), measured \(expected)")
    #expect(change.metrics["held_out_rows"] == Double(cal.heldOut.count * 16))
    #expect(abs(fit - reported) > 1e-6, "fitting rows and held-out rows are different data")
    #expect(change.description.contains("on held-out rows"), "\(change.description)")
  }

  /// Over output y on the held-out samples, both models run in-process (an independent measure of
  /// the reported errors): Σ(a − b)², Σa², and Σ(a − bias(i))² with `bias` of element i.
  private func heldOutSums(_ input: String, _ model: Model, _ cal: Calibration, bias: (Int) -> Double = { _ in 0 }) throws
    -> (difference: Double, energy: Double, biasFree: Double)
  {
    let original = try Session(model: try Model(parsing: input)), factorized = try Session(model: model)
    var sums = (difference: 0.0, energy: 0.0, biasFree: 0.0)
    for feeds in cal.heldOut {
      let a = try #require(try original.run(feeds)["y"]).scalars(as: Float.self)
      let b = try #require(try factorized.run(feeds)["y"]).scalars(as: Float.self)
      for (i, (p, q)) in zip(a, b).enumerated() {
        sums.difference += Double(p - q) * Double(p - q)
        sums.energy += Double(p) * Double(p)
        sums.biasFree += (Double(p) - bias(i)) * (Double(p) - bias(i))
      }
    }
    return sums
  }

  /// With a bias the reported error is the output tensor's as the model holds it, bias included in
  /// the scale (what `rebirth verify --tensor` measures), for a Gemm's C and a Conv's B alike.
  @Test(arguments: ["gemm", "conv"], ["factorize-svd", "prune"])
  func theReportedOutputErrorIncludesTheBias(_ kind: String, _ pass: String) throws {
    let bias = seededFloats(kind == "gemm" ? 96 : 24, seed: 4).map { $0 * 3 }
    let shape = kind == "gemm" ? [16, 64] : [1, 8, 9, 9]
    let body =
      kind == "gemm"
      ? "g (float[16,64] x) => (float[16,96] y) <float[64,96] w = \(literal(seededFloats(64 * 96, seed: 23))), float[96] c = \(literal(bias))> { y = Gemm(x, w, c) }"
      : "g (float[1,8,9,9] x) => (float[1,24,9,9] y) <float[24,8,3,3] w = \(literal(seededFloats(24 * 8 * 9, seed: 23))), float[24] c = \(literal(bias))> { y = Conv<pads = [1, 1, 1, 1]>(x, w, c) }"
    let input = "\(header)\n\(body)"
    var settings = ApproximationSettings()
    settings.minParams = 0
    settings.calibration = calibration("x", shape: shape, samples: 8, basis: 0)
    let outcome =
      pass == "prune"
      ? try runFactorization(Prune.self, options: ["sparsity": "0.6"], on: input, settings: settings)
      : try runFactorization(FactorizeSVD.self, options: ["rank": "4"], on: input, settings: settings)
    let change = try #require(outcome.report.changes.first, "\(kind) \(pass)")
    let cal = try #require(settings.calibration)
    let sums = try heldOutSums(input, outcome.model, cal) { Double(bias[kind == "gemm" ? $0 % 96 : $0 / 81]) }
    let expected = (sums.difference / sums.energy).squareRoot()
    let withoutBias = (sums.difference / sums.biasFree).squareRoot()
    let reported = try #require(change.metrics["output_error"])
    #expect(abs(reported - expected) <= 1e-3 * expected, "\(kind) \(pass): reported \(reported), measured \(expected)")
    #expect(abs(withoutBias - expected) > 0.05 * expected, "\(kind): the bias must matter in this case")
  }

  @Test func withOneSampleTheOutputErrorIsOnTheFittingRows() throws {
    let input = """
      \(header)
      g (float[16,64] x) => (float[16,96] y) <float[64,96] w = \(literal(seededFloats(64 * 96, seed: 23)))> { y = MatMul(x, w) }
      """
    var settings = ApproximationSettings()
    settings.calibration = calibration("x", shape: [16, 64], samples: 1)
    let outcome = try runFactorization(FactorizeSVD.self, options: ["rank": "8"], on: input, settings: settings)
    let change = try #require(outcome.report.changes.first)
    #expect(change.metrics["held_out_rows"] == 0 && change.metrics["output_error"] == change.metrics["fit_error"])
    #expect(change.description.contains("on the fitting rows (no held-out samples)"), "\(change.description)")
  }

  @Test func errorFallsAsTheBudgetGrows() throws {
    let input = """
      \(header)
      g (float[4,96] x) => (float[4,96] y) <float[96,96] w = \(literal(seededFloats(96 * 96, seed: 8)))> { y = MatMul(x, w) }
      """
    var errors: [Double] = []
    for r in [0.2, 0.35, 0.5, 0.7] {
      var settings = ApproximationSettings()
      settings.compression = r
      let outcome = try runFactorization(FactorizeSVD.self, on: input, settings: settings)
      errors.append(try outputError(try Model(parsing: input), outcome.model))
    }
    #expect(zip(errors, errors.dropFirst()).allSatisfy { $0 > $1 }, "\(errors)")
  }

  @Test func reportedParametersMatchTheWrittenModel() throws {
    let input = """
      \(header)
      g (float[2,64] x) => (float[2,64] y) <float[64,96] w1 = \(literal(seededFloats(64 * 96, seed: 1))), float[96,64] w2 = \(literal(seededFloats(96 * 64, seed: 2)))> {
        h = MatMul(x, w1)
        r = Relu(h)
        z = MatMul(r, w2)
        y = Add(z, x)
      }
      """
    var settings = ApproximationSettings()
    settings.compression = 0.25
    let outcome = try runFactorization(FactorizeSVD.self, on: input, settings: settings)
    let changes = outcome.report.changes.filter { $0.pass == FactorizeSVD.name }
    #expect(changes.count == 2)
    let saved = changes.reduce(0.0) { $0 + $1.metrics["params_before"]! - $1.metrics["params_after"]! }
    let before = try Model(parsing: input).statistics(), after = outcome.model.statistics()
    #expect(Double(before.parameterCount - after.parameterCount) == saved)
    #expect(changes.reduce(0.0) { $0 + $1.metrics["params_after"]! } <= 0.25 * Double(64 * 96 * 2))
    let macsSaved = changes.reduce(0.0) { $0 + $1.metrics["macs_before"]! - $1.metrics["macs_after"]! }
    #expect(Double(before.macs - after.macs) == macsSaved)
  }

  @Test(arguments: [
    ("weight a graph input", """
      g (float[2,64] x, float[64,96] w) => (float[2,96] y) { y = MatMul(x, w) }
      """),
    ("too small a layer", """
      g (float[2,32] x) => (float[2,32] y) <float[32,32] w = \(literal(seededFloats(1024, seed: 1)))> { y = MatMul(x, w) }
      """),
    ("a grouped conv", """
      g (float[1,64,4,4] x) => (float[1,64,4,4] y) <float[64,32,3,3] w = \(literal(seededFloats(64 * 32 * 9, seed: 1)))> {
        y = Conv<group = 2, pads = [1, 1, 1, 1]>(x, w)
      }
      """),
    ("Gemm with transA", """
      g (float[64,2] x) => (float[2,96] y) <float[64,96] w = \(literal(seededFloats(64 * 96, seed: 1)))> { y = Gemm<transA = 1>(x, w) }
      """),
  ])
  func guards(_ name: String, _ body: String) throws {
    try assertNoRewrite(FactorizeSVD.self, options: ["rank": "8"], "\(header)\n\(body)")
  }

  @Test func aRankThatSavesNothingIsNotApplied() throws {
    // Break-even for 64×96 is r = 38.
    try assertNoRewrite(FactorizeSVD.self, options: ["rank": "40"], matMul)
  }

  @Test func badOptionsAreRejected() {
    var options = PassOptions(for: FactorizeSVD.self)
    #expect(throws: PassOptionError.self) {
      try options.set("fit", "exact")
      _ = try FactorizeSVD(options: options)
    }
  }
}
