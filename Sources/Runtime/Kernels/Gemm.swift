import Graph
import Linalg

/// Gemm (float32): `Y = alpha·A'·B' + beta·C`, A' and B' optionally transposed, C (optional from
/// opset 11) broadcast unidirectionally to [M, N].
struct Gemm: Kernel {
  let transA: Bool, transB: Bool
  let alpha: Float, beta: Float
  /// The activation of a fused (`ai.rebirth`) Gemm, applied right after the product.
  let activation: FusedActivation?

  init(_ builder: KernelBuilder) throws {
    activation = try FusedActivation.fused(builder)
    transA = try builder.int("transA", default: 0) != 0
    transB = try builder.int("transB", default: 0) != 0
    alpha = try builder.float("alpha", default: 1)
    beta = try builder.float("beta", default: 1)
    // Opsets before 7: C broadcasts only with broadcast=1; with 0 it must already be [M, N], which
    // the broadcasting below accepts too.
    _ = try builder.optionalInt("broadcast")
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let a = try context.input(0, .float)
    let b = try context.input(1, .float)
    guard a.rank == 2, b.rank == 2 else {
      throw context.error("A and B must be matrices; got \(describe(shape: a.shape)) and \(describe(shape: b.shape))")
    }
    let (m, k) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
    let (k2, n) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
    guard k == k2 else { throw context.error("cannot multiply A' [\(m), \(k)] by B' [\(k2), \(n)]") }
    guard max(m, n, k) <= BLAS.maxDimension else { throw context.error("too large for BLAS") }
    var y: NDArray
    var accumulate: Float = 0
    if let c = context.optionalInput(2), beta != 0 {
      guard c.dtype == .float else { throw context.unsupportedType(c.dtype, input: 2) }
      guard let broadcast = c.broadcast(to: [m, n]) else {
        throw context.error("C of shape \(describe(shape: c.shape)) does not broadcast to [\(m), \(n)]")
      }
      y = broadcast  // copied on write when it is C itself
      accumulate = beta
    } else {
      y = NDArray(uninitialized: .float, shape: [m, n])
    }
    a.withUnsafeBufferPointer(of: Float.self) { ap in
      b.withUnsafeBufferPointer(of: Float.self) { bp in
        y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
          BLAS.sgemm(
            transposeA: transA, transposeB: transB, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!,
            lda: max(1, a.shape[1]), b: bp.baseAddress!, ldb: max(1, b.shape[1]), beta: accumulate,
            c: yp.baseAddress!, ldc: max(1, n))
          activation?.apply(yp.baseAddress!, count: m * n, threads: context.threadCount)
        }
      }
    }
    return [y]
  }
}

/// MatMul (float32, and double through dgemm) with numpy semantics: 1-D operands are promoted (and
/// the added axis removed), batch axes broadcast. When B has no batch axes, the batch of A is folded
/// into one product.
struct MatMul: Kernel {
  /// The activation of a fused (`ai.rebirth`) MatMul, applied right after the products.
  let activation: FusedActivation?

  init(_ builder: KernelBuilder) throws { activation = try FusedActivation.fused(builder) }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let a = try context.input(0, .float, .double)
    let b = try context.input(1, a.dtype)
    if a.dtype == .double {
      guard activation == nil else { throw context.unsupportedType(.double, input: 0) }
      return [try multiply(Double.self, a, b, context)]
    }
    var y = try multiply(Float.self, a, b, context)
    if let activation, y.count > 0 {
      y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
        activation.apply(yp.baseAddress!, count: yp.count, threads: context.threadCount)
      }
    }
    return [y]
  }

  private func multiply<T: MatrixElement>(_ t: T.Type, _ a: NDArray, _ b: NDArray, _ context: KernelContext) throws
    -> NDArray
  {
    guard a.rank >= 1, b.rank >= 1 else { throw context.error("MatMul operands must have at least one axis") }
    let aShape = a.rank == 1 ? [1, a.shape[0]] : a.shape
    let bShape = b.rank == 1 ? [b.shape[0], 1] : b.shape
    let (m, k) = (aShape[aShape.count - 2], aShape[aShape.count - 1])
    let (k2, n) = (bShape[bShape.count - 2], bShape[bShape.count - 1])
    guard k == k2 else {
      throw context.error("cannot multiply \(describe(shape: a.shape)) by \(describe(shape: b.shape))")
    }
    let aBatch = Array(aShape.dropLast(2))
    let bBatch = Array(bShape.dropLast(2))
    guard let batch = BinaryBroadcast(aBatch, bBatch) else {
      throw context.error("batch axes of \(describe(shape: a.shape)) and \(describe(shape: b.shape)) do not broadcast")
    }
    var outShape = batch.outputShape
    if a.rank > 1 { outShape.append(m) }
    if b.rank > 1 { outShape.append(n) }
    guard max(m, n, k) <= BLAS.maxDimension else { throw context.error("too large for BLAS") }
    var y = NDArray(uninitialized: T.dtype, shape: outShape)
    guard y.count > 0 else { return y }
    a.withUnsafeBufferPointer(of: T.self) { ap in
      b.withUnsafeBufferPointer(of: T.self) { bp in
        y.withUnsafeMutableBufferPointer(of: T.self) { yp in
          let (ab, bb, yb) = (ap.baseAddress!, bp.baseAddress!, yp.baseAddress!)
          if ShapeArithmetic.product(bBatch) == 1 && batch.count * m <= BLAS.maxDimension {
            // [..., M, K] · [K, N]: one [batch·M, K] · [K, N] product.
            T.gemm(m: batch.count * m, n: n, k: k, a: ab, lda: max(1, k), b: bb, ldb: max(1, n), c: yb, ldc: max(1, n))
            return
          }
          // Element strides of one matrix: the batch plan counts in elements of the batch axes.
          let (aStep, bStep, yStep) = (m * k, k * n, m * n)
          batch.forEachRow(0..<batch.rowCount) { oa, ob, oy in
            let sa = batch.stridesA[batch.dims.count - 1]
            let sb = batch.stridesB[batch.dims.count - 1]
            for i in 0..<batch.rowLength {
              T.gemm(
                m: m, n: n, k: k, a: ab + (oa + i * sa) * aStep, lda: max(1, k), b: bb + (ob + i * sb) * bStep,
                ldb: max(1, n), c: yb + (oy + i) * yStep, ldc: max(1, n))
            }
          }
        }
      }
    }
    return y
  }
}

/// The element types MatMul multiplies, each with its BLAS product `C = A·B` (row-major, C not read).
protocol MatrixElement: TensorElement {
  static func gemm(
    m: Int, n: Int, k: Int, a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
    c: UnsafeMutablePointer<Self>, ldc: Int)
}

extension Float: MatrixElement {
  static func gemm(
    m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    BLAS.sgemm(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
  }
}

extension Double: MatrixElement {
  static func gemm(
    m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
    c: UnsafeMutablePointer<Double>, ldc: Int
  ) {
    BLAS.dgemm(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
  }
}

extension NDArray {
  /// A copy in fresh storage.
  func copied() -> NDArray {
    var out = NDArray(uninitialized: dtype, shape: shape)
    withUnsafeBytes { src in
      out.withUnsafeMutableBytes { dst in
        if let s = src.baseAddress, let d = dst.baseAddress { d.copyMemory(from: s, byteCount: src.count) }
      }
    }
    return out
  }
}
