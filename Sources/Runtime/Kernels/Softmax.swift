#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Normalizes `inner` interleaved rows of `length` elements (element l of row i at `l·inner + i`),
/// so that the loops run contiguously across rows whatever the axis.
protocol RowNormalization: Sendable {
  /// `scratch` holds `2·inner` floats.
  static func normalize(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, length: Int, inner: Int,
    scratch: UnsafeMutablePointer<Float>)
}

/// Softmax and LogSoftmax (float32).
///
/// Before opset 13 the input is flattened to 2-D at `axis` (default 1) and each row of the
/// flattened matrix is normalized; from opset 13 only `axis` (default −1) is normalized.
struct Softmax<Rows: RowNormalization>: Kernel {
  let axis: Int
  let flattens: Bool

  init(_ builder: KernelBuilder) throws {
    flattens = builder.opset < 13
    axis = try builder.int("axis", default: flattens ? 1 : -1)
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0, .float)
    let shape = x.rank == 0 ? [1] : x.shape
    guard let a = ShapeArithmetic.normalize(axis: axis, rank: shape.count) else {
      throw context.label.attributeError("axis", "\(axis) is out of range for rank \(x.rank)")
    }
    let outer = ShapeArithmetic.product(shape[..<a])
    let (length, inner) =
      flattens
      ? (ShapeArithmetic.product(shape[a...]), 1) : (shape[a], ShapeArithmetic.product(shape[(a + 1)...]))
    var y = NDArray(uninitialized: .float, shape: x.shape)
    guard x.count > 0 else { return [y] }
    x.withUnsafeBufferPointer(of: Float.self) { xp in
      y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
        let (xs, ys) = (xp.baseAddress!, yp.baseAddress!)
        let block = length * inner
        Parallel.forEach(count: outer, threads: context.threadCount, grain: max(1, 16384 / max(block, 1))) { r in
          let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * inner)
          defer { scratch.deallocate() }
          for o in r { Rows.normalize(xs + o * block, ys + o * block, length: length, inner: inner, scratch: scratch) }
        }
      }
    }
    return [y]
  }
}

extension RowNormalization {
  /// Max along the axis for each of `inner` interleaved rows, into `m`.
  @inline(__always)
  static func rowMax(_ x: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>, length: Int, inner: Int) {
    m.update(from: x, count: inner)
    for l in 1..<max(length, 1) {
      let row = x + l * inner
      for i in 0..<inner where row[i] > m[i] { m[i] = row[i] }
    }
  }
}

/// Softmax: `exp(x − max) / Σ exp(x − max)` along each row.
enum SoftmaxNormalization: RowNormalization {
  static func normalize(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, length: Int, inner: Int,
    scratch: UnsafeMutablePointer<Float>
  ) {
    if inner == 1 {
      // One contiguous row.
      let m = FastMath.maximum(x, count: length)
      for l in 0..<length { y[l] = FastMath.exp(x[l] - m) }
      let scale = 1 / FastMath.sum(y, count: length)
      for l in 0..<length { y[l] *= scale }
      return
    }
    let (m, s) = (scratch, scratch + inner)
    rowMax(x, m, length: length, inner: inner)
    s.update(repeating: 0, count: inner)
    for l in 0..<length {
      let (xr, yr) = (x + l * inner, y + l * inner)
      for i in 0..<inner {
        let e = FastMath.exp(xr[i] - m[i])
        yr[i] = e
        s[i] += e
      }
    }
    for i in 0..<inner { s[i] = 1 / s[i] }
    for l in 0..<length {
      let yr = y + l * inner
      for i in 0..<inner { yr[i] *= s[i] }
    }
  }
}

/// LogSoftmax: `x − max − log Σ exp(x − max)` along each row.
enum LogSoftmaxNormalization: RowNormalization {
  static func normalize(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, length: Int, inner: Int,
    scratch: UnsafeMutablePointer<Float>
  ) {
    if inner == 1 {
      let m = FastMath.maximum(x, count: length)
      for l in 0..<length { y[l] = FastMath.exp(x[l] - m) }
      let shift = m + logf(FastMath.sum(y, count: length))
      for l in 0..<length { y[l] = x[l] - shift }
      return
    }
    let (m, s) = (scratch, scratch + inner)
    rowMax(x, m, length: length, inner: inner)
    s.update(repeating: 0, count: inner)
    for l in 0..<length {
      let xr = x + l * inner
      for i in 0..<inner { s[i] += FastMath.exp(xr[i] - m[i]) }
    }
    for i in 0..<inner { s[i] = m[i] + logf(s[i]) }
    for l in 0..<length {
      let (xr, yr) = (x + l * inner, y + l * inner)
      for i in 0..<inner { yr[i] = xr[i] - s[i] }
    }
  }
}
