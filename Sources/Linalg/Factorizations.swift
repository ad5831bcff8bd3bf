/// Why a factorization or solve failed.
public enum LinalgError: Error, Equatable, Sendable, CustomStringConvertible {
  /// The matrix is not (numerically) symmetric positive definite: the leading minor of this order is not positive.
  case notPositiveDefinite(order: Int)
  /// The SVD iteration did not converge.
  case didNotConverge
  /// Operand shapes do not fit together.
  case shapeMismatch(String)
  /// A dimension is too large for 32-bit LAPACK.
  case tooLarge(Int)
  /// LAPACK rejected an argument (a bug in this module); the number is LAPACK's `info`.
  case invalidArgument(Int)

  public var description: String {
    switch self {
    case .notPositiveDefinite(let order): return "matrix is not positive definite (leading minor of order \(order))"
    case .didNotConverge: return "singular value decomposition did not converge"
    case .shapeMismatch(let what): return "shape mismatch: \(what)"
    case .tooLarge(let n): return "dimension \(n) is too large for LAPACK"
    case .invalidArgument(let info): return "LAPACK rejected argument \(-info)"
    }
  }
}

/// A thin singular value decomposition `A = U·diag(S)·Vt`.
public struct SingularValueDecomposition: Sendable {
  /// m×k, orthonormal columns.
  public var u: Matrix
  /// k values, non-negative and non-increasing.
  public var singularValues: [Float]
  /// k×n, orthonormal rows.
  public var vt: Matrix

  /// The rank-`rank` truncation: the leading `rank` singular triplets (all of them if fewer).
  public func truncated(rank: Int) -> SingularValueDecomposition {
    let r = max(0, min(rank, singularValues.count))
    return SingularValueDecomposition(
      u: u.submatrix(rows: 0..<u.rows, columns: 0..<r), singularValues: Array(singularValues[0..<r]),
      vt: vt.submatrix(rows: 0..<r, columns: 0..<vt.columns))
  }

  /// `U·diag(S)·Vt`.
  public func reconstructed() -> Matrix {
    var us = u
    for i in 0..<us.rows {
      for j in 0..<us.columns { us[i, j] *= singularValues[j] }
    }
    return us.multiplied(by: vt)
  }
}

extension Matrix {
  /// The thin SVD through LAPACK's divide-and-conquer `sgesdd`: for an m×n matrix, U is m×k,
  /// S has k values, Vt is k×n, with k = min(m, n).
  public func singularValueDecomposition() throws(LinalgError) -> SingularValueDecomposition {
    let (m, n) = (rows, columns)
    let k = min(m, n)
    if k == 0 {
      return SingularValueDecomposition(
        u: Matrix(rows: m, columns: 0), singularValues: [], vt: Matrix(rows: 0, columns: n))
    }
    try checkLAPACKSize(m, n)
    // The row-major m×n A is the column-major n×m Aᵀ. LAPACK factors Aᵀ = U'·S·V'ᵀ, so A = V'·S·U'ᵀ:
    // LAPACK's column-major V'ᵀ (k×m) read row-major is A's U (m×k), and its U' (n×k) is A's Vt (k×n).
    var a = elements
    var s = [Float](repeating: 0, count: k)
    var uOut = [Float](repeating: 0, count: m * k)
    var vtOut = [Float](repeating: 0, count: k * n)
    let info = a.withUnsafeMutableBufferPointer { ap in
      s.withUnsafeMutableBufferPointer { sp in
        vtOut.withUnsafeMutableBufferPointer { lapackU in
          uOut.withUnsafeMutableBufferPointer { lapackVt in
            LAPACK.sgesdd(
              m: n, n: m, a: ap.baseAddress!, lda: n, s: sp.baseAddress!, u: lapackU.baseAddress!, ldu: n,
              vt: lapackVt.baseAddress!, ldvt: k)
          }
        }
      }
    }
    if info > 0 { throw .didNotConverge }
    if info < 0 { throw .invalidArgument(info) }
    return SingularValueDecomposition(
      u: Matrix(rows: m, columns: k, elements: uOut), singularValues: s,
      vt: Matrix(rows: k, columns: n, elements: vtOut))
  }

  /// The leading `rank` singular triplets (a thin SVD, then truncated).
  public func truncatedSVD(rank: Int) throws(LinalgError) -> SingularValueDecomposition {
    try singularValueDecomposition().truncated(rank: rank)
  }

  /// The lower-triangular L with `self = L·Lᵀ` (LAPACK `spotrf`), for a symmetric positive
  /// definite matrix; only its lower triangle is read.
  public func choleskyFactor() throws(LinalgError) -> Matrix {
    guard rows == columns else { throw .shapeMismatch("Cholesky of a \(rows)×\(columns) matrix") }
    let n = rows
    if n == 0 { return self }
    try checkLAPACKSize(n, n)
    // The row-major lower triangle is the column-major upper one: factor it as Uᵀ·U with U = Lᵀ.
    var a = elements
    let info = a.withUnsafeMutableBufferPointer { LAPACK.spotrf(upper: true, n: n, a: $0.baseAddress!, lda: n) }
    if info > 0 { throw .notPositiveDefinite(order: info) }
    if info < 0 { throw .invalidArgument(info) }
    for i in 0..<n {
      for j in (i + 1)..<n { a[i * n + j] = 0 }
    }
    return Matrix(rows: n, columns: n, elements: a)
  }

  /// Solves `A·X = B` given `factor`, the L of `A = L·Lᵀ` from `choleskyFactor()` (LAPACK `spotrs`).
  public static func choleskySolve(factor: Matrix, _ b: Matrix) throws(LinalgError) -> Matrix {
    let n = factor.rows
    guard factor.columns == n, b.rows == n else {
      throw .shapeMismatch("factor \(factor.rows)×\(factor.columns), right-hand side \(b.rows)×\(b.columns)")
    }
    if n == 0 || b.columns == 0 { return Matrix(rows: n, columns: b.columns) }
    try checkLAPACKSize(n, b.columns)
    var x = b.transposed.elements  // column-major n×r
    let info = factor.elements.withUnsafeBufferPointer { l in
      x.withUnsafeMutableBufferPointer { xp in
        LAPACK.spotrs(upper: true, n: n, nrhs: b.columns, a: l.baseAddress!, lda: n, b: xp.baseAddress!, ldb: n)
      }
    }
    if info != 0 { throw .invalidArgument(info) }
    return Matrix(rows: b.columns, columns: n, elements: x).transposed
  }

  /// Solves `A·X = B` in float64 for a symmetric positive definite row-major n×n `a` and row-major
  /// n×r `b` (LAPACK `dposv`), for normal equations float32 cannot factor.
  public static func solvePositiveDefinite(_ a: [Double], _ b: [Double], n: Int, r: Int) throws(LinalgError) -> [Double] {
    guard a.count == n * n, b.count == n * r else { throw .shapeMismatch("A of \(a.count) values for n \(n), B of \(b.count) for r \(r)") }
    if n == 0 || r == 0 { return b }
    try checkLAPACKSize(n, r)
    var factor = a  // symmetric: row-major and column-major agree
    var x = [Double](repeating: 0, count: n * r)  // column-major n×r
    for i in 0..<n { for j in 0..<r { x[j * n + i] = b[i * r + j] } }
    let info = factor.withUnsafeMutableBufferPointer { ap in
      x.withUnsafeMutableBufferPointer { xp in LAPACK.dposv(n: n, nrhs: r, a: ap.baseAddress!, b: xp.baseAddress!) }
    }
    if info > 0 { throw .notPositiveDefinite(order: info) }
    if info < 0 { throw .invalidArgument(info) }
    var result = [Double](repeating: 0, count: n * r)
    for i in 0..<n { for j in 0..<r { result[i * r + j] = x[j * n + i] } }
    return result
  }

  /// Solves `self·X = B` for a symmetric positive definite `self` by Cholesky.
  public func solvePositiveDefinite(_ b: Matrix) throws(LinalgError) -> Matrix {
    try Matrix.choleskySolve(factor: choleskyFactor(), b)
  }

  /// The X minimizing ‖A·X − B‖ (Frobenius), of minimum norm when A is rank-deficient, through
  /// LAPACK's SVD-based `sgelsd`. Singular values below `rcond`·σ₁ count as zero (negative: machine
  /// precision). A is m×n and B is m×r; X is n×r.
  public static func leastSquares(_ a: Matrix, _ b: Matrix, rcond: Float = -1) throws(LinalgError) -> Matrix {
    let (m, n, r) = (a.rows, a.columns, b.columns)
    guard b.rows == m else { throw .shapeMismatch("A is \(m)×\(n) but B has \(b.rows) rows") }
    if n == 0 || r == 0 { return Matrix(rows: n, columns: r) }
    if m == 0 { return Matrix(rows: n, columns: r) }
    try checkLAPACKSize(m, n, r)
    let ldb = max(m, n)
    var colA = a.transposed.elements  // column-major m×n
    var colB = [Float](repeating: 0, count: ldb * r)
    for i in 0..<m {
      for j in 0..<r { colB[j * ldb + i] = b.elements[i * r + j] }
    }
    var s = [Float](repeating: 0, count: min(m, n))
    var rank = 0
    let info = colA.withUnsafeMutableBufferPointer { ap in
      colB.withUnsafeMutableBufferPointer { bp in
        s.withUnsafeMutableBufferPointer { sp in
          LAPACK.sgelsd(
            m: m, n: n, nrhs: r, a: ap.baseAddress!, lda: m, b: bp.baseAddress!, ldb: ldb, s: sp.baseAddress!,
            rcond: rcond, rank: &rank)
        }
      }
    }
    if info > 0 { throw .didNotConverge }
    if info < 0 { throw .invalidArgument(info) }
    var x = Matrix(rows: n, columns: r)
    for i in 0..<n {
      for j in 0..<r { x.elements[i * r + j] = colB[j * ldb + i] }
    }
    return x
  }

  /// The X minimizing ‖A·X − B‖² + λ‖X‖², through the normal equations `(AᵀA + λI)·X = AᵀB` solved
  /// by Cholesky. Much cheaper than `leastSquares` when A has far more rows than columns (a
  /// calibration set); λ > 0 keeps a rank-deficient A solvable.
  public static func ridgeLeastSquares(_ a: Matrix, _ b: Matrix, lambda: Float) throws(LinalgError) -> Matrix {
    let (m, n, r) = (a.rows, a.columns, b.columns)
    guard b.rows == m else { throw .shapeMismatch("A is \(m)×\(n) but B has \(b.rows) rows") }
    if n == 0 || r == 0 { return Matrix(rows: n, columns: r) }
    try checkLAPACKSize(m, n, r)
    var gram = Matrix(rows: n, columns: n)
    if m > 0 {
      a.elements.withUnsafeBufferPointer { ap in
        gram.elements.withUnsafeMutableBufferPointer { g in
          BLAS.ssyrk(transpose: true, n: n, k: m, a: ap.baseAddress!, lda: n, c: g.baseAddress!, ldc: n)
        }
      }
    }
    for i in 0..<n { gram[i, i] += lambda }
    let rhs = a.multiplied(by: b, transposingSelf: true)
    return try gram.solvePositiveDefinite(rhs)
  }
}

private func checkLAPACKSize(_ dims: Int...) throws(LinalgError) {
  for d in dims where d > BLAS.maxDimension { throw .tooLarge(d) }
  // Work arrays and leading-dimension products must also fit.
  let product = dims.reduce(1) { $0.multipliedReportingOverflow(by: max($1, 1)).partialValue }
  if product < 0 { throw .tooLarge(product) }
}
