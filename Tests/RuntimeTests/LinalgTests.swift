import Linalg
import Testing

/// Pins BLAS to one thread before any test of this file runs a routine.
private let pinned: Void = { BLAS.threadCount = 1 }()

private func gemm(
  transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1, a: [Float],
  lda: Int, b: [Float], ldb: Int, beta: Float = 0, c: [Float], ldc: Int
) -> [Float] {
  _ = pinned
  var c = c
  BLAS.sgemm(
    transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
    beta: beta, c: &c, ldc: ldc)
  return c
}

private func expectClose(
  _ a: Matrix, _ b: Matrix, _ tolerance: Float = 1e-5, sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(a.rows == b.rows && a.columns == b.columns, sourceLocation: sourceLocation)
  #expect(a.maxAbsoluteDifference(b) <= tolerance, "\(a)\nvs\n\(b)", sourceLocation: sourceLocation)
}

@Suite struct SgemmTests {
  let a: [Float] = [1, 2, 3, 4, 5, 6]  // 2×3
  let b: [Float] = [7, 8, 9, 10, 11, 12]  // 3×2
  let product: [Float] = [58, 64, 139, 154]

  @Test func plainProduct() {
    #expect(gemm(m: 2, n: 2, k: 3, a: a, lda: 3, b: b, ldb: 2, c: [0, 0, 0, 0], ldc: 2) == product)
  }

  @Test func transposedOperands() {
    let at: [Float] = [1, 4, 2, 5, 3, 6]  // Aᵀ, 3×2
    let bt: [Float] = [7, 9, 11, 8, 10, 12]  // Bᵀ, 2×3
    #expect(gemm(transposeA: true, m: 2, n: 2, k: 3, a: at, lda: 2, b: b, ldb: 2, c: [0, 0, 0, 0], ldc: 2) == product)
    #expect(gemm(transposeB: true, m: 2, n: 2, k: 3, a: a, lda: 3, b: bt, ldb: 3, c: [0, 0, 0, 0], ldc: 2) == product)
    #expect(
      gemm(transposeA: true, transposeB: true, m: 2, n: 2, k: 3, a: at, lda: 2, b: bt, ldb: 3, c: [0, 0, 0, 0], ldc: 2)
        == product)
  }

  @Test func alphaBetaAccumulate() {
    let c = gemm(m: 2, n: 2, k: 3, alpha: 2, a: a, lda: 3, b: b, ldb: 2, beta: 0.5, c: [1, 1, 1, 1], ldc: 2)
    #expect(c == [116.5, 128.5, 278.5, 308.5])
  }

  @Test func betaZeroIgnoresNaN() {
    let c = gemm(m: 2, n: 2, k: 3, a: a, lda: 3, b: b, ldb: 2, beta: 0, c: [.nan, .nan, .nan, .nan], ldc: 2)
    #expect(c == product)
  }

  @Test func leadingDimensionsLargerThanRows() {
    // A in a 2×4 buffer (last column padding), C in a 2×3 buffer.
    let padded: [Float] = [1, 2, 3, -1, 4, 5, 6, -1]
    let c = gemm(m: 2, n: 2, k: 3, a: padded, lda: 4, b: b, ldb: 2, c: [0, 0, 9, 0, 0, 9], ldc: 3)
    #expect(c == [58, 64, 9, 139, 154, 9])
  }

  @Test func emptyInnerDimensionScalesC() {
    let c = gemm(m: 2, n: 2, k: 0, a: [0], lda: 1, b: [0], ldb: 2, beta: 3, c: [1, 2, 3, 4], ldc: 2)
    #expect(c == [3, 6, 9, 12])
  }

  @Test func threadCountIsPinnedToOne() {
    BLAS.threadCount = 1
    #expect(BLAS.threadCount == 1)
    #expect(BLAS.processorCount >= 1)
  }

  @Test func matrixProductMatchesSgemm() {
    _ = pinned
    let m = Matrix([[1, 2, 3], [4, 5, 6]]) * Matrix([[7, 8], [9, 10], [11, 12]])
    #expect(m == Matrix([[58, 64], [139, 154]]))
    #expect(Matrix([[1, 2], [3, 4]]).transposed == Matrix([[1, 3], [2, 4]]))
  }
}

@Suite struct SVDTests {
  @Test func diagonalSingularValuesAreSortedMagnitudes() throws {
    _ = pinned
    let svd = try Matrix([[3, 0], [0, -4]]).singularValueDecomposition()
    #expect(abs(svd.singularValues[0] - 4) < 1e-5 && abs(svd.singularValues[1] - 3) < 1e-5)
    expectClose(svd.reconstructed(), Matrix([[3, 0], [0, -4]]))
  }

  /// A = [[3, 2, 2], [2, 3, −2]] has singular values 5 and 3; its best rank-1 approximation is
  /// 5·u₁v₁ᵀ with u₁ = (1, 1)/√2 and v₁ = (1, 1, 0)/√2.
  @Test func wideMatrixKnownAnswer() throws {
    _ = pinned
    let a = Matrix([[3, 2, 2], [2, 3, -2]])
    let svd = try a.singularValueDecomposition()
    #expect(svd.u.rows == 2 && svd.u.columns == 2 && svd.vt.rows == 2 && svd.vt.columns == 3)
    #expect(abs(svd.singularValues[0] - 5) < 1e-5 && abs(svd.singularValues[1] - 3) < 1e-5)
    expectClose(svd.reconstructed(), a)
    expectClose(svd.u.multiplied(by: svd.u, transposingSelf: true), .identity(2))
    expectClose(svd.vt.multiplied(by: svd.vt, transposingOther: true), .identity(2))
    let rank1 = svd.truncated(rank: 1)
    #expect(rank1.singularValues.count == 1 && rank1.u.columns == 1 && rank1.vt.rows == 1)
    expectClose(rank1.reconstructed(), Matrix([[2.5, 2.5, 0], [2.5, 2.5, 0]]))
  }

  @Test func tallMatrixIsTheTransposeCase() throws {
    _ = pinned
    let a = Matrix([[3, 2], [2, 3], [2, -2]])
    let svd = try a.truncatedSVD(rank: 5)
    #expect(svd.u.rows == 3 && svd.u.columns == 2 && svd.vt.rows == 2 && svd.vt.columns == 2)
    #expect(abs(svd.singularValues[0] - 5) < 1e-5 && abs(svd.singularValues[1] - 3) < 1e-5)
    expectClose(svd.reconstructed(), a)
  }

  @Test func emptyMatrix() throws {
    let svd = try Matrix(rows: 0, columns: 3).singularValueDecomposition()
    #expect(svd.singularValues.isEmpty && svd.u.rows == 0 && svd.vt.columns == 3)
  }
}

@Suite struct CholeskyAndLeastSquaresTests {
  @Test func choleskyKnownFactor() throws {
    _ = pinned
    let l = try Matrix([[25, 15, -5], [15, 18, 0], [-5, 0, 11]]).choleskyFactor()
    expectClose(l, Matrix([[5, 0, 0], [3, 3, 0], [-1, 1, 3]]))
    let l2 = try Matrix([[4, 2], [2, 3]]).choleskyFactor()
    expectClose(l2, Matrix([[2, 0], [1, Float(2).squareRoot()]]))
  }

  @Test func choleskySolve() throws {
    _ = pinned
    // [[4, 2], [2, 3]]·x = [8, 7] has x = [1.25, 1.5]; a second right-hand side [4, 2] gives [1, 0].
    let x = try Matrix([[4, 2], [2, 3]]).solvePositiveDefinite(Matrix([[8, 4], [7, 2]]))
    expectClose(x, Matrix([[1.25, 1], [1.5, 0]]))
  }

  @Test func notPositiveDefiniteIsAnError() {
    _ = pinned
    #expect(throws: LinalgError.notPositiveDefinite(order: 2)) { try Matrix([[1, 2], [2, 1]]).choleskyFactor() }
    #expect(throws: LinalgError.self) { try Matrix([[1, 2, 3]]).choleskyFactor() }
  }

  @Test func leastSquaresExactAndOverdetermined() throws {
    _ = pinned
    // y = 1 + 2t through (0, 1), (1, 3), (2, 5), (3, 7).
    let a = Matrix([[1, 0], [1, 1], [1, 2], [1, 3]])
    expectClose(try Matrix.leastSquares(a, Matrix([[1], [3], [5], [7]])), Matrix([[1], [2]]))
    // Points (0, 1), (1, 2), (2, 2): normal equations give a = 7/6, b = 1/2.
    let fit = try Matrix.leastSquares(Matrix([[1, 0], [1, 1], [1, 2]]), Matrix([[1], [2], [2]]))
    expectClose(fit, Matrix([[7.0 / 6.0], [0.5]]))
  }

  @Test func leastSquaresRankDeficientGivesMinimumNorm() throws {
    _ = pinned
    let x = try Matrix.leastSquares(Matrix([[1, 1], [1, 1]]), Matrix([[2], [2]]))
    expectClose(x, Matrix([[1], [1]]))
  }

  @Test func ridgeThroughNormalEquations() throws {
    _ = pinned
    // (IᵀI + I)·x = B  →  x = B / 2.
    expectClose(try Matrix.ridgeLeastSquares(.identity(2), Matrix([[1], [2]]), lambda: 1), Matrix([[0.5], [1]]))
    // λ → 0 recovers the least-squares line.
    let a = Matrix([[1, 0], [1, 1], [1, 2]])
    expectClose(
      try Matrix.ridgeLeastSquares(a, Matrix([[1], [2], [2]]), lambda: 0), Matrix([[7.0 / 6.0], [0.5]]), 1e-4)
  }

  @Test func shapeMismatchIsAnError() {
    #expect(throws: LinalgError.self) {
      try Matrix.leastSquares(Matrix(rows: 3, columns: 2), Matrix(rows: 2, columns: 1))
    }
  }
}
