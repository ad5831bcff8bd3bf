import Graph
import GraphTesting
import Linalg
import Runtime
import Testing

@testable import Passes

@Suite struct FactorizeKroneckerTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  /// Σ_k A_k ⊗ B_k for row-major A_k (p1 × q1) and B_k (p2 × q2).
  static func kroneckerSum(_ terms: [([Float], [Float])], p1: Int, q1: Int, p2: Int, q2: Int) -> [Float] {
    let q = q1 * q2
    var w = [Float](repeating: 0, count: p1 * p2 * q)
    for (a, b) in terms {
      for i1 in 0..<p1 {
        for j1 in 0..<q1 {
          for i2 in 0..<p2 {
            for j2 in 0..<q2 { w[(i1 * p2 + i2) * q + j1 * q2 + j2] += a[i1 * q1 + j1] * b[i2 * q2 + j2] }
          }
        }
      }
    }
    return w
  }

  func ops(_ model: Model) -> [String] {
    let g = model.graph
    return (g.topologicalOrder() ?? g.nodeIDs).map { id in
      let n = g[id]
      let shapes = n.inputs.compactMap { $0 }.compactMap { g.constant($0) }.filter { $0.dtype == .float }.map { "\($0.shape)" }
      return ([n.opType] + shapes).joined(separator: " ")
    }
  }

  func settings(minParams: Int = 0) -> ApproximationSettings {
    var s = ApproximationSettings()
    s.minParams = minParams
    return s
  }

  // MARK: The nearest Kronecker product (METHODS §3.2)

  @Test func workedExampleOfMethods() throws {
    // W = [[1,2],[3,4]] ⊗ [[1,2],[3,4]] with its last entry 17: σ(R) = [30.5416, 0.4584, 0, 0].
    let w = Matrix([[1, 2, 2, 4], [3, 4, 6, 8], [3, 6, 4, 8], [9, 12, 12, 17]])
    let split = KroneckerSplit(p1: 2, p2: 2, q1: 2, q2: 2)
    let svd = try split.rearranged(w).singularValueDecomposition()
    #expect(abs(svd.singularValues[0] - 30.5416) < 1e-3 && abs(svd.singularValues[1] - 0.4584) < 1e-3)
    let fit = KroneckerSum(nearestTo: svd, split: split, terms: 1)
    #expect(fit.a[0].maxAbsoluteDifference(Matrix([[0.9910, 1.9819], [2.9729, 4.0980]])) < 1e-3)
    var e = w
    let d = fit.dense()
    for i in e.elements.indices { e.elements[i] -= d.elements[i] }
    #expect(abs(e.frobeniusNorm - 0.4584) < 1e-3)
  }

  @Test func splitsLeaveOutPlainLowRankAndPreferFewParameters() {
    let splits = KroneckerSplit.candidates(p: 64, q: 64, limit: 3)
    #expect(splits.first == KroneckerSplit(p1: 8, p2: 8, q1: 8, q2: 8))
    #expect(!KroneckerSplit.candidates(p: 6, q: 4, limit: 100).contains { ($0.q1 == 1 && $0.p2 == 1) || ($0.p1 == 1 && $0.q2 == 1) })
    #expect(FactorizeKronecker.termLadder(upTo: 20) == [1, 2, 3, 4, 6, 8, 12, 16])
  }

  // MARK: Exact recovery

  @Test func aKroneckerProductIsRecoveredExactly() throws {
    let w = Self.kroneckerSum([(seededFloats(64, seed: 1), seededFloats(64, seed: 2))], p1: 8, q1: 8, p2: 8, q2: 8)
    let input = """
      \(header)
      g (float[2,3,64] x) => (float[2,3,64] y) <float[64,64] w = \(literal(w)), float[64] b = \(literal(seededFloats(64, seed: 5)))> {
        h = MatMul(x, w)
        y = Add(h, b)
      }
      """
    let outcome = try runFactorization(FactorizeKronecker.self, on: input, settings: settings())
    #expect(ops(outcome.model) == ["Reshape", "MatMul [8, 8]", "Transpose", "MatMul [8, 8]", "Transpose", "Reshape", "Add [64]"])
    try expectSameOutputs(try Model(parsing: input), outcome.model, tolerance: 1e-4)
    let change = try #require(outcome.report.changes.first { $0.pass == FactorizeKronecker.name })
    #expect(change.metrics["params_after"] == 128 && change.metrics["terms"] == 1)
    #expect((change.metrics["weight_error"] ?? 1) < 1e-5)
    #expect(change.description.contains("factorized by kronecker, (8×8)⊗(8×8), 1 term: 4096 → 128 parameters"))
  }

  /// A two-term sum in an unbalanced split, as a Gemm with transB, alpha and beta: the budget
  /// finds the split and both terms.
  @Test(arguments: [true, false]) func aTwoTermSumInAGemmIsRecoveredExactly(transB: Bool) throws {
    let terms = [(seededFloats(32, seed: 1), seededFloats(128, seed: 2)), (seededFloats(32, seed: 3), seededFloats(128, seed: 4))]
    let w = Matrix(rows: 64, columns: 64, elements: Self.kroneckerSum(terms, p1: 4, q1: 8, p2: 16, q2: 8))
    let stored = transB ? w.transposed : w  // a Gemm with transB stores Wᵀ
    let input = """
      \(header)
      g (float[3,64] x) => (float[3,64] y) <float[64,64] w = \(literal(stored.elements.map { $0 * 2 })), float[64] c = \(literal(seededFloats(64, seed: 9)))> {
        y = Gemm<alpha = 0.5, beta = 2.0, transB = \(transB ? 1 : 0)>(x, w, c)
      }
      """
    let outcome = try runFactorization(FactorizeKronecker.self, options: ["splits": "20"], on: input, settings: settings())
    let change = try #require(outcome.report.changes.first { $0.pass == FactorizeKronecker.name })
    #expect(change.metrics["terms"] == 2 && change.metrics["p1"] == 4 && change.metrics["q1"] == 8)
    #expect((change.metrics["weight_error"] ?? 1) < 1e-5)
    #expect(!ops(outcome.model).contains { $0.hasPrefix("Gemm") })
    try expectSameOutputs(try Model(parsing: input), outcome.model, tolerance: 1e-4)
  }

  // MARK: Doping, budgets, calibration

  @Test func dopingAddsBackTheLargestResidualEntries() throws {
    var w = Self.kroneckerSum([(seededFloats(64, seed: 1), seededFloats(64, seed: 2))], p1: 8, q1: 8, p2: 8, q2: 8)
    for (k, i) in [5, 700, 1900, 2222, 4000].enumerated() { w[i] += Float(3 + k) }
    let input = """
      \(header)
      g (float[2,64] x) => (float[2,64] y) <float[64,64] w = \(literal(w))> {
        y = MatMul(x, w)
      }
      """
    let plain = try runFactorization(FactorizeKronecker.self, options: ["terms": "1"], on: input, settings: settings())
    let doped = try runFactorization(FactorizeKronecker.self, options: ["terms": "1", "dope": "5"], on: input, settings: settings())
    let p = try #require(plain.report.changes.first), d = try #require(doped.report.changes.first)
    #expect(d.metrics["doped_entries"] == 5 && d.metrics["doped_rows"] == 5)
    #expect(d.metrics["params_after"] == 448)  // 128 + 5 rows × 64
    #expect(try #require(d.metrics["weight_error"]) < 0.5 * (try #require(p.metrics["weight_error"])))
    #expect(ops(doped.model).contains("Gather") && ops(doped.model).last == "Add")
    #expect(try outputError(try Model(parsing: input), doped.model) < outputError(try Model(parsing: input), plain.model))
  }

  @Test func errorFallsAsTheBudgetGrows() throws {
    let input = """
      \(header)
      g (float[2,64] x) => (float[2,64] y) <float[64,64] w = \(literal(seededFloats(4096, seed: 8)))> {
        y = MatMul(x, w)
      }
      """
    var errors: [Double] = []
    for r in [0.05, 0.15, 0.3, 0.45] {
      var s = settings()
      s.compression = r
      let outcome = try runFactorization(FactorizeKronecker.self, on: input, settings: s)
      let change = try #require(outcome.report.changes.first)
      #expect(try #require(change.metrics["params_after"]) <= r * 4096)
      errors.append(try #require(change.metrics["weight_error"]))
    }
    #expect(errors == errors.sorted(by: >), "\(errors)")
    #expect(errors.first! > errors.last!)
  }

  @Test func calibrationRefitLowersTheOutputError() throws {
    let input = """
      \(header)
      g (float[8,64] x) => (float[8,64] y) <float[64,64] w = \(literal(seededFloats(4096, seed: 8)))> {
        y = MatMul(x, w)
      }
      """
    var s = settings()
    s.calibration = calibration("x", shape: [8, 64], samples: 12, basis: 12)
    let outcome = try runFactorization(FactorizeKronecker.self, options: ["terms": "4"], on: input, settings: s)
    let change = try #require(outcome.report.changes.first)
    let before = try #require(change.metrics["fit_error_weight_fit"]), after = try #require(change.metrics["fit_error_als"])
    #expect(after < 0.8 * before, "ALS \(after) vs weight-only \(before)")
    // Both on the fitting rows; output_error is on the held-out rows.
    #expect(abs(try #require(change.metrics["fit_error"]) - after) < 1e-3)
    #expect(try #require(change.metrics["held_out_rows"]) > 0 && change.metrics["output_error"] != nil)
  }

  // MARK: Guards

  @Test func aWeightThatIsAGraphInputIsLeftAlone() throws {
    let w = Self.kroneckerSum([(seededFloats(64, seed: 1), seededFloats(64, seed: 2))], p1: 8, q1: 8, p2: 8, q2: 8)
    let input = """
      \(header)
      g (float[2,64] x, float[64,64] w) => (float[2,64] y) <float[64,64] w = \(literal(w))> {
        y = MatMul(x, w)
      }
      """
    let outcome = try runFactorization(FactorizeKronecker.self, on: input, settings: settings())
    #expect(outcome.report.changes.isEmpty)
  }

  @Test func aLayerItCannotShrinkIsLeftAlone() throws {
    // 3 × 5: prime sizes leave only degenerate splits.
    let input = """
      \(header)
      g (float[2,3] x) => (float[2,5] y) <float[3,5] w = \(literal(seededFloats(15, seed: 1)))> {
        y = MatMul(x, w)
      }
      """
    let outcome = try runFactorization(FactorizeKronecker.self, on: input, settings: settings())
    #expect(outcome.report.changes.isEmpty)
  }

  @Test func anInputOfUnknownRankIsLeftAlone() throws {
    let w = Self.kroneckerSum([(seededFloats(64, seed: 1), seededFloats(64, seed: 2))], p1: 8, q1: 8, p2: 8, q2: 8)
    let input = """
      \(header)
      g (float x) => (float y) <float[64,64] w = \(literal(w))> {
        y = MatMul(x, w)
      }
      """
    let outcome = try runFactorization(FactorizeKronecker.self, on: input, settings: settings())
    #expect(outcome.report.changes.isEmpty)
  }
}
