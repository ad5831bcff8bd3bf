/// A float32 function applied element by element, configured from the node's attributes.
///
/// `apply(_:_:)` maps a whole contiguous chunk; its default calls `apply(_:)` per element in a loop
/// the compiler specializes and vectorizes. Override it when a chunk can be done better.
protocol UnaryFloatMap: Sendable {
  init(_ builder: KernelBuilder) throws
  func apply(_ x: Float) -> Float
  func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int)
  /// The function on double inputs, for the maps that take them (nil: double is unsupported).
  var doubleFunction: (@Sendable (Double) -> Double)? { get }
}

extension UnaryFloatMap {
  var doubleFunction: (@Sendable (Double) -> Double)? { nil }

  @inline(__always)
  func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = apply(x[i]) }
  }
}

/// A kernel applying `Map` to a float32 input of any shape.
struct UnaryFloat<Map: UnaryFloatMap>: Kernel {
  let map: Map

  init(_ builder: KernelBuilder) throws { map = try Map(builder) }

  func run(_ context: KernelContext) throws -> [NDArray] {
    if let f = map.doubleFunction, let x = context.optionalInput(0), x.dtype == .double {
      var y = NDArray(uninitialized: .double, shape: x.shape)
      x.withUnsafeBufferPointer(of: Double.self) { xp in
        y.withUnsafeMutableBufferPointer(of: Double.self) { yp in
          for i in 0..<xp.count { yp[i] = f(xp[i]) }
        }
      }
      return [y]
    }
    let x = try context.input(0, .float)
    var y = NDArray(uninitialized: .float, shape: x.shape)
    let map = self.map
    x.withUnsafeBufferPointer(of: Float.self) { xp in
      y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
        let (xs, ys) = (xp.baseAddress!, yp.baseAddress!)
        Parallel.forEach(count: xp.count, threads: context.threadCount, grain: 1 << 15) { r in
          map.apply(xs + r.lowerBound, ys + r.lowerBound, count: r.count)
        }
      }
    }
    return [y]
  }
}

/// Relu: `max(0, x)`.
struct ReluMap: UnaryFloatMap {
  init(_ builder: KernelBuilder) throws {}
  @inline(__always) func apply(_ x: Float) -> Float { x > 0 ? x : 0 }
}

/// LeakyRelu: `x` for x ≥ 0, `alpha·x` otherwise (alpha defaults to 0.01).
struct LeakyReluMap: UnaryFloatMap {
  let alpha: Float
  init(_ builder: KernelBuilder) throws { alpha = try builder.float("alpha", default: 0.01) }
  @inline(__always) func apply(_ x: Float) -> Float { x >= 0 ? x : alpha * x }
}

/// Sigmoid: `1 / (1 + e⁻ˣ)`.
struct SigmoidMap: UnaryFloatMap {
  init(_ builder: KernelBuilder) throws {}
  @inline(__always) func apply(_ x: Float) -> Float { FastMath.sigmoid(x) }
}

/// Tanh.
struct TanhMap: UnaryFloatMap {
  init(_ builder: KernelBuilder) throws {}
  @inline(__always) func apply(_ x: Float) -> Float { FastMath.tanh(x) }
}

/// Clip: `min(max(x, min), max)`. Bounds are attributes before opset 11 and optional scalar inputs
/// from opset 11 on (absent bounds do not clip). Float32, and int64/int32 from opset 12.
struct Clip: Kernel {
  /// Bounds from attributes (opset < 11).
  let attributeBounds: (Float, Float)?

  init(_ builder: KernelBuilder) throws {
    if builder.opset < 11 {
      attributeBounds = (
        try builder.float("min", default: -.greatestFiniteMagnitude),
        try builder.float("max", default: .greatestFiniteMagnitude)
      )
    } else {
      attributeBounds = nil
    }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    switch x.dtype {
    case .float:
      let (lo, hi) =
        try attributeBounds ?? (bound(1, Float.self, -.infinity, context), bound(2, Float.self, .infinity, context))
      return [clip(x, lo, hi, context)]
    case .int64:
      return [clip(x, try bound(1, Int64.self, .min, context), try bound(2, Int64.self, .max, context), context)]
    case .int32:
      return [clip(x, try bound(1, Int32.self, .min, context), try bound(2, Int32.self, .max, context), context)]
    case .int16:
      return [clip(x, try bound(1, Int16.self, .min, context), try bound(2, Int16.self, .max, context), context)]
    case .int8:
      return [clip(x, try bound(1, Int8.self, .min, context), try bound(2, Int8.self, .max, context), context)]
    case .uint64:
      return [clip(x, try bound(1, UInt64.self, .min, context), try bound(2, UInt64.self, .max, context), context)]
    case .uint32:
      return [clip(x, try bound(1, UInt32.self, .min, context), try bound(2, UInt32.self, .max, context), context)]
    case .uint16:
      return [clip(x, try bound(1, UInt16.self, .min, context), try bound(2, UInt16.self, .max, context), context)]
    case .uint8:
      return [clip(x, try bound(1, UInt8.self, .min, context), try bound(2, UInt8.self, .max, context), context)]
    default: throw context.unsupportedType(x.dtype, input: 0)
    }
  }

  private func bound<T: TensorElement>(_ i: Int, _ t: T.Type, _ absent: T, _ context: KernelContext) throws -> T {
    guard let b = context.optionalInput(i) else { return absent }
    guard b.dtype == T.dtype else { throw context.error("input \(i) is \(b.dtype), the input is \(T.dtype)") }
    guard b.count == 1 else {
      throw context.error("input \(i) must be a scalar, got shape \(describe(shape: b.shape))")
    }
    return b.scalars(as: T.self)[0]
  }

  private func clip<T: TensorElement & Comparable>(_ x: NDArray, _ lo: T, _ hi: T, _ context: KernelContext) -> NDArray
  {
    var y = NDArray(uninitialized: x.dtype, shape: x.shape)
    x.withUnsafeBufferPointer(of: T.self) { xp in
      y.withUnsafeMutableBufferPointer(of: T.self) { yp in
        let (xs, ys) = (xp.baseAddress!, yp.baseAddress!)
        Parallel.forEach(count: xp.count, threads: context.threadCount, grain: 1 << 15) { r in
          for i in r {
            let v = xs[i] < lo ? lo : xs[i]
            ys[i] = v > hi ? hi : v
          }
        }
      }
    }
    return y
  }
}
