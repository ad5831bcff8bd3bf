#if canImport(Accelerate)
  import Accelerate
  import Foundation
#else
  import COpenBLAS
#endif

/// Level-3 BLAS (and sgemv for one-row products) on row-major float32 matrices, and the BLAS thread setting.
///
/// OpenBLAS (Linux) or Accelerate (Apple platforms) does the work. Every matrix is row-major with a
/// leading dimension (`lda`): the distance in elements between the starts of two rows.
public enum BLAS {
  /// The largest dimension or leading dimension BLAS and LAPACK take (their integers are 32-bit).
  public static let maxDimension = Int(Int32.max)

  /// The number of threads BLAS uses. Process-wide: it affects every caller.
  ///
  /// OpenBLAS honours it exactly; Accelerate chooses its own threading and only records the value.
  public static var threadCount: Int {
    get {
      #if canImport(Accelerate)
        return acceleratedThreadCount.value
      #else
        return Int(openblas_get_num_threads())
      #endif
    }
    set {
      let count = max(1, min(newValue, 1024))
      #if canImport(Accelerate)
        acceleratedThreadCount.value = count
      #else
        openblas_set_num_threads(Int32(count))
      #endif
    }
  }

  /// The number of processors BLAS sees.
  public static var processorCount: Int {
    #if canImport(Accelerate)
      return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    #else
      return Int(openblas_get_num_procs())
    #endif
  }

  /// `C ← alpha·op(A)·op(B) + beta·C`, row-major, where op(X) is X or Xᵀ.
  ///
  /// op(A) is m×k, op(B) is k×n, C is m×n. With `beta == 0`, C is not read (it may hold NaN).
  /// Empty products are handled here: with k == 0, C becomes beta·C.
  public static func sgemm(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative dimension")
    precondition(max(m, n, k, lda, ldb, ldc) <= maxDimension, "sgemm: dimension exceeds 32-bit BLAS")
    precondition(ldc >= max(1, n), "sgemm: ldc \(ldc) < n \(n)")
    precondition(lda >= max(1, transposeA ? m : k), "sgemm: lda \(lda) too small")
    precondition(ldb >= max(1, transposeB ? k : n), "sgemm: ldb \(ldb) too small")
    if m == 0 || n == 0 { return }
    if k == 0 || alpha == 0 {
      scale(c, rows: m, columns: n, ld: ldc, by: beta)
      return
    }
    // A one-row (or one-column) product is a matrix-vector product: sgemm would pack the whole
    // matrix operand on every call (OpenBLAS's `sgemm_incopy`), which costs as much as the product
    // itself; sgemv streams it once. Recurrent cells at batch 1 and Gemm/MatMul on one row land here.
    if m == 1 || n == 1 {
      if beta == 0 {
        // sgemv scales y by beta, which would keep a NaN already there.
        if m == 1 {
          c.update(repeating: 0, count: n)
        } else {
          for i in 0..<m { c[i * ldc] = 0 }
        }
      }
      if m == 1 {
        // c[0, :] = alpha·op(B)ᵀ·a + beta·c, where a's k elements are a row (or, transposed, a
        // column of stride lda).
        cblas_sgemv(
          CblasRowMajor, transposeB ? CblasNoTrans : CblasTrans, Int32(transposeB ? n : k),
          Int32(transposeB ? k : n), alpha, b, Int32(ldb), a, Int32(transposeA ? lda : 1), beta, c, 1)
      } else {
        // c[:, 0] = alpha·op(A)·b + beta·c, where b's k elements are a column of stride ldb (or,
        // transposed, a row).
        cblas_sgemv(
          CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, Int32(transposeA ? k : m),
          Int32(transposeA ? m : k), alpha, a, Int32(lda), b, Int32(transposeB ? 1 : ldb), beta, c, Int32(ldc))
      }
      return
    }
    cblas_sgemm(
      CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
      Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
  }

  /// `C ← A·B` in double precision, row-major, A m×k, B k×n, C m×n (C is not read).
  public static func dgemm(
    m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
    c: UnsafeMutablePointer<Double>, ldc: Int
  ) {
    precondition(m >= 0 && n >= 0 && k >= 0, "dgemm: negative dimension")
    precondition(max(m, n, k, lda, ldb, ldc) <= maxDimension, "dgemm: dimension exceeds 32-bit BLAS")
    precondition(ldc >= max(1, n) && lda >= max(1, k) && ldb >= max(1, n), "dgemm: leading dimension too small")
    if m == 0 || n == 0 { return }
    if k == 0 {
      for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
      return
    }
    cblas_dgemm(
      CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, c,
      Int32(ldc))
  }

  /// `C ← alpha·op(A)·op(A)ᵀ + beta·C` on the lower triangle of the n×n row-major C (the strict upper
  /// triangle is left as it was), where op(A) is A (n×k) or, with `transpose`, Aᵀ for a k×n A.
  public static func ssyrk(
    transpose: Bool = false, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    precondition(n >= 0 && k >= 0, "ssyrk: negative dimension")
    precondition(max(n, k, lda, ldc) <= maxDimension, "ssyrk: dimension exceeds 32-bit BLAS")
    precondition(ldc >= max(1, n) && lda >= max(1, transpose ? n : k), "ssyrk: leading dimension too small")
    if n == 0 { return }
    if k == 0 || alpha == 0 {
      for i in 0..<n { scale(c + i * ldc, rows: 1, columns: i + 1, ld: ldc, by: beta) }
      return
    }
    cblas_ssyrk(
      CblasRowMajor, CblasLower, transpose ? CblasTrans : CblasNoTrans, Int32(n), Int32(k), alpha, a,
      Int32(lda), beta, c, Int32(ldc))
  }

  private static func scale(_ c: UnsafeMutablePointer<Float>, rows: Int, columns: Int, ld: Int, by beta: Float) {
    for i in 0..<rows {
      let row = c + i * ld
      if beta == 0 {
        row.update(repeating: 0, count: columns)
      } else if beta != 1 {
        for j in 0..<columns { row[j] *= beta }
      }
    }
  }
}

#if canImport(Accelerate)
  /// Accelerate has no portable thread setting; the value is kept for `BLAS.threadCount`'s getter.
  private final class ThreadCountBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = 1
    var value: Int {
      get {
        lock.lock()
        defer { lock.unlock() }
        return stored
      }
      set {
        lock.lock()
        defer { lock.unlock() }
        stored = newValue
      }
    }
  }
  private let acceleratedThreadCount = ThreadCountBox()
#endif
