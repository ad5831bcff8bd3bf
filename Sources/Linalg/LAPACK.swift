#if canImport(Accelerate)
  import Accelerate
#else
  import COpenBLAS
#endif

/// Column-major LAPACK calls, one per routine the factorizations use, over LAPACKE (Linux) or
/// Accelerate's CLAPACK interface (Apple platforms). Each returns LAPACK's `info`.
///
/// Callers pass dimensions already checked against `BLAS.maxDimension`.
enum LAPACK {
  /// Thin SVD (`jobz = 'S'`) of the m×n column-major `a`, which is overwritten.
  static func sgesdd(
    m: Int, n: Int, a: UnsafeMutablePointer<Float>, lda: Int, s: UnsafeMutablePointer<Float>,
    u: UnsafeMutablePointer<Float>, ldu: Int, vt: UnsafeMutablePointer<Float>, ldvt: Int
  ) -> Int {
    #if canImport(Accelerate)
      var jobz = CChar(UInt8(ascii: "S"))
      var (m32, n32, lda32, ldu32, ldvt32) = (Int32(m), Int32(n), Int32(lda), Int32(ldu), Int32(ldvt))
      var info: Int32 = 0
      var lwork: Int32 = -1
      var query: Float = 0
      var iwork = [Int32](repeating: 0, count: 8 * max(1, min(m, n)))
      sgesdd_(&jobz, &m32, &n32, a, &lda32, s, u, &ldu32, vt, &ldvt32, &query, &lwork, &iwork, &info)
      guard info == 0 else { return Int(info) }
      lwork = Int32(query)
      var work = [Float](repeating: 0, count: max(1, Int(lwork)))
      sgesdd_(&jobz, &m32, &n32, a, &lda32, s, u, &ldu32, vt, &ldvt32, &work, &lwork, &iwork, &info)
      return Int(info)
    #else
      return Int(
        LAPACKE_sgesdd(
          LAPACK_COL_MAJOR, CChar(UInt8(ascii: "S")), Int32(m), Int32(n), a, Int32(lda), s, u, Int32(ldu), vt,
          Int32(ldvt)))
    #endif
  }

  /// Cholesky factorization of the n×n column-major `a`, in the triangle `upper` selects.
  static func spotrf(upper: Bool, n: Int, a: UnsafeMutablePointer<Float>, lda: Int) -> Int {
    let uplo = CChar(UInt8(ascii: upper ? "U" : "L"))
    #if canImport(Accelerate)
      var (u, n32, lda32, info) = (uplo, Int32(n), Int32(lda), Int32(0))
      spotrf_(&u, &n32, a, &lda32, &info)
      return Int(info)
    #else
      return Int(LAPACKE_spotrf(LAPACK_COL_MAJOR, uplo, Int32(n), a, Int32(lda)))
    #endif
  }

  /// Solves A·X = B in float64 for a symmetric positive definite column-major n×n `a` (LAPACK
  /// `dposv`: Cholesky, then two triangular solves); `a` is overwritten by the factor, `b` by X.
  static func dposv(n: Int, nrhs: Int, a: UnsafeMutablePointer<Double>, b: UnsafeMutablePointer<Double>) -> Int {
    let uplo = CChar(UInt8(ascii: "U"))
    #if canImport(Accelerate)
      var (u, n32, nrhs32, lda32, ldb32, info) = (uplo, Int32(n), Int32(nrhs), Int32(n), Int32(n), Int32(0))
      dposv_(&u, &n32, &nrhs32, a, &lda32, b, &ldb32, &info)
      return Int(info)
    #else
      return Int(LAPACKE_dposv(LAPACK_COL_MAJOR, uplo, Int32(n), Int32(nrhs), a, Int32(n), b, Int32(n)))
    #endif
  }

  /// Solves A·X = B for the column-major n×nrhs `b`, given `spotrf`'s factor of A.
  static func spotrs(
    upper: Bool, n: Int, nrhs: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafeMutablePointer<Float>, ldb: Int
  ) -> Int {
    let uplo = CChar(UInt8(ascii: upper ? "U" : "L"))
    #if canImport(Accelerate)
      var (u, n32, nrhs32, lda32, ldb32, info) = (uplo, Int32(n), Int32(nrhs), Int32(lda), Int32(ldb), Int32(0))
      spotrs_(&u, &n32, &nrhs32, UnsafeMutablePointer(mutating: a), &lda32, b, &ldb32, &info)
      return Int(info)
    #else
      return Int(LAPACKE_spotrs(LAPACK_COL_MAJOR, uplo, Int32(n), Int32(nrhs), a, Int32(lda), b, Int32(ldb)))
    #endif
  }

  /// Minimum-norm least squares through the SVD: `a` (m×n) and `b` (ldb×nrhs, ldb ≥ max(m, n)) are
  /// overwritten; the solution is the first n rows of `b`. `rank` receives the effective rank.
  static func sgelsd(
    m: Int, n: Int, nrhs: Int, a: UnsafeMutablePointer<Float>, lda: Int, b: UnsafeMutablePointer<Float>,
    ldb: Int, s: UnsafeMutablePointer<Float>, rcond: Float, rank: inout Int
  ) -> Int {
    var rank32: Int32 = 0
    defer { rank = Int(rank32) }
    #if canImport(Accelerate)
      var (m32, n32, nrhs32, lda32, ldb32) = (Int32(m), Int32(n), Int32(nrhs), Int32(lda), Int32(ldb))
      var (rc, info, lwork, query, iquery) = (rcond, Int32(0), Int32(-1), Float(0), Int32(0))
      sgelsd_(&m32, &n32, &nrhs32, a, &lda32, b, &ldb32, s, &rc, &rank32, &query, &lwork, &iquery, &info)
      guard info == 0 else { return Int(info) }
      lwork = Int32(query)
      var work = [Float](repeating: 0, count: max(1, Int(lwork)))
      var iwork = [Int32](repeating: 0, count: max(1, Int(iquery)))
      sgelsd_(&m32, &n32, &nrhs32, a, &lda32, b, &ldb32, s, &rc, &rank32, &work, &lwork, &iwork, &info)
      return Int(info)
    #else
      return Int(
        LAPACKE_sgelsd(
          LAPACK_COL_MAJOR, Int32(m), Int32(n), Int32(nrhs), a, Int32(lda), b, Int32(ldb), s, rcond, &rank32))
    #endif
  }
}
