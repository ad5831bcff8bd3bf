import Graph

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// MARK: Vectorizable float functions

/// Float32 functions accurate to about an ulp, written branch-free so that loops over them
/// vectorize, with IEEE special values (NaN, ±infinity, zeros, subnormals) handled as libm does.
enum ElementMath {
  /// eˣ: `FastMath.exp`, with results below the normal range computed as (e^(x/2))² (subnormal,
  /// or 0), and +∞ above 88.72.
  @inline(__always)
  static func exp(_ x: Float) -> Float {
    let low = x < -87.33654
    let e = FastMath.exp(low ? 0.5 * x : x)
    let r = x > 88.72283 ? Float.infinity : (low ? e * e : e)
    return x.isNaN ? x : r
  }

  /// Natural logarithm: Cephes' polynomial for log(1 + f) on the mantissa in [√½, √2), plus
  /// the exponent times ln 2 (in two parts). NaN for negative inputs, −∞ for zeros.
  @inline(__always)
  static func log(_ x: Float) -> Float {
    let subnormal = x < Float.leastNormalMagnitude
    let bits = (subnormal ? x * 0x1p23 : x).bitPattern
    // x = m·2ᵉ with m in [0.5, 1).
    var e = Float(Int32(bitPattern: (bits >> 23) & 0xff) &- 126) - (subnormal ? 23 : 0)
    var m = Float(bitPattern: (bits & 0x7f_ffff) | 0x3f00_0000)
    let below = m < 0.707_106_77
    e = below ? e - 1 : e
    m = below ? m + m - 1 : m - 1
    let z = m * m
    var p: Float = 7.037_683_6e-2
    p = p * m - 1.151_461_0e-1
    p = p * m + 1.167_699_9e-1
    p = p * m - 1.242_014_1e-1
    p = p * m + 1.424_932_3e-1
    p = p * m - 1.666_805_8e-1
    p = p * m + 2.000_071_4e-1
    p = p * m - 2.499_999_4e-1
    p = p * m + 3.333_333_1e-1
    var y = p * m * z
    y += -2.121_944_4e-4 * e
    y += -0.5 * z
    var r = m + y + 0.693_359_375 * e
    r = x == .infinity ? x : r
    r = x == 0 ? -.infinity : r
    return x < 0 || x.isNaN ? .nan : r
  }

  /// The error function, faithfully rounded without fused multiply-adds (about an ulp): an odd
  /// polynomial for |x| ≤ 0.921875 and 1 − e^(−p(|x|)) beyond (the polynomials of Norbert
  /// Juffa's erff, which onnxruntime uses too); |x| is clamped to 3.925, where erf is 1 in float.
  @inline(__always)
  static func erf(_ x: Float) -> Float {
    let magnitude = abs(x)
    let a = magnitude > 3.925 ? 3.925 : magnitude
    let s = a * a
    var small: Float = -5.991_049_7e-4
    small = small * s + 4.993_395_9e-3
    small = small * s - 2.676_673_4e-2
    small = small * s + 1.128_180_3e-1
    small = small * s - 3.761_248_6e-1
    small = small * s + 1.283_791_5e-1
    small = small * a + a
    var big: Float = 1.729_489_3e-5
    big = big * a - 3.832_086_8e-4
    big = big * a + 3.883_934_4e-3
    big = big * a - 2.425_456_1e-2
    big = big * a + 1.067_778_5e-1
    big = big * a + 6.348_466_9e-1
    big = big * a + 1.287_175_1e-1
    big = big * a + a
    big = 1 - FastMath.exp(-big)
    let r = a > 0.921_875 ? big : small
    return Float(signOf: x, magnitudeOf: r)
  }
}

// MARK: Unary float maps

/// Exp.
struct ExpMap: UnaryFloatMap {
  init(_ builder: KernelBuilder) throws {}
  @inline(__always) func apply(_ x: Float) -> Float { ElementMath.exp(x) }
  /// double inputs (the expanded ReduceLogSumExp function computes in double): libm's exp.
  var doubleFunction: (@Sendable (Double) -> Double)? { { exp($0) } }
}

/// Log: NaN for negative inputs, −∞ for zeros.
struct LogMap: UnaryFloatMap {
  init(_ builder: KernelBuilder) throws {}
  @inline(__always) func apply(_ x: Float) -> Float { ElementMath.log(x) }
}

/// Sqrt: NaN for negative inputs.
struct SqrtMap: UnaryFloatMap {
  init(_ builder: KernelBuilder) throws {}
  @inline(__always) func apply(_ x: Float) -> Float { x.squareRoot() }
}

/// Erf.
struct ErfMap: UnaryFloatMap {
  init(_ builder: KernelBuilder) throws {}
  @inline(__always) func apply(_ x: Float) -> Float { ElementMath.erf(x) }
}

/// HardSigmoid: `max(0, min(1, alpha·x + beta))`, alpha 0.2 and beta 0.5 by default (NaN stays NaN).
struct HardSigmoidMap: UnaryFloatMap {
  let alpha: Float
  let beta: Float
  init(_ builder: KernelBuilder) throws {
    alpha = try builder.float("alpha", default: 0.2)
    beta = try builder.float("beta", default: 0.5)
  }
  @inline(__always) func apply(_ x: Float) -> Float {
    let v = alpha * x + beta
    let low = v < 0 ? 0 : v
    return low > 1 ? 1 : low
  }
}

/// HardSwish (opset 14): `x · max(0, min(1, x/6 + 0.5))`, i.e. x times HardSigmoid(alpha = 1/6).
struct HardSwishMap: UnaryFloatMap {
  init(_ builder: KernelBuilder) throws {}
  @inline(__always) func apply(_ x: Float) -> Float {
    let v = Float(1.0 / 6.0) * x + 0.5
    let low = v < 0 ? 0 : v
    return x * (low > 1 ? 1 : low)
  }
}

/// Gelu (opset 20): `0.5·x·(1 + erf(x/√2))`, or with `approximate = "tanh"`
/// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
struct GeluMap: UnaryFloatMap {
  let usesTanh: Bool
  init(_ builder: KernelBuilder) throws {
    switch try builder.string("approximate", default: "none") {
    case "none": usesTanh = false
    case "tanh": usesTanh = true
    case let other: throw builder.unsupported("approximate", "'\(other)'")
    }
  }

  @inline(__always) func apply(_ x: Float) -> Float {
    if usesTanh { return Self.tanhForm(x) }
    return Self.erfForm(x)
  }

  @inline(__always) static func erfForm(_ x: Float) -> Float {
    0.5 * x * (1 + ElementMath.erf(x * 0.707_106_77))
  }

  @inline(__always) static func tanhForm(_ x: Float) -> Float {
    0.5 * x * (1 + FastMath.tanh(0.797_884_6 * (x + 0.044_715 * x * x * x)))
  }

  /// One loop per form, so that neither tests the attribute per element.
  func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    if usesTanh {
      for i in 0..<count { y[i] = Self.tanhForm(x[i]) }
    } else {
      for i in 0..<count { y[i] = Self.erfForm(x[i]) }
    }
  }
}

// MARK: Neg, Abs

/// Element types of Neg and Abs: integers wrap (−Int.min is Int.min, as in onnxruntime).
protocol SignedElement: TensorElement {
  static func negate(_ x: Self) -> Self
  static func magnitude(_ x: Self) -> Self
}

extension Float: SignedElement {
  @inline(__always) static func negate(_ x: Float) -> Float { -x }
  @inline(__always) static func magnitude(_ x: Float) -> Float { abs(x) }
}
extension Double: SignedElement {
  @inline(__always) static func negate(_ x: Double) -> Double { -x }
  @inline(__always) static func magnitude(_ x: Double) -> Double { abs(x) }
}

/// Wrapping negation and magnitude of signed integers.
protocol SignedIntegerElement: SignedElement, FixedWidthInteger, SignedInteger {}

extension SignedIntegerElement {
  @inline(__always) static func negate(_ x: Self) -> Self { 0 &- x }
  @inline(__always) static func magnitude(_ x: Self) -> Self { x < 0 ? 0 &- x : x }
}

extension Int64: SignedIntegerElement {}
extension Int32: SignedIntegerElement {}
extension Int16: SignedIntegerElement {}
extension Int8: SignedIntegerElement {}

/// Neg or Abs. `evaluate` holds the loops in a default implementation, specialized per
/// operation (see `ArithmeticOperation`).
protocol SignedUnaryOperation {
  static func apply<T: SignedElement>(_ x: T) -> T
  /// Whether unsigned inputs are allowed (and returned unchanged).
  static var keepsUnsigned: Bool { get }
  static func evaluate(_ x: NDArray, _ context: KernelContext) throws -> NDArray
}

extension SignedUnaryOperation {
  static func evaluate(_ x: NDArray, _ context: KernelContext) throws -> NDArray {
    switch x.dtype {
    case .float: return map(Float.self, x, context)
    case .double: return map(Double.self, x, context)
    case .int64: return map(Int64.self, x, context)
    case .int32: return map(Int32.self, x, context)
    case .int16: return map(Int16.self, x, context)
    case .int8: return map(Int8.self, x, context)
    case .uint8, .uint16, .uint32, .uint64:
      guard keepsUnsigned else { throw context.unsupportedType(x.dtype, input: 0) }
      return x
    default: throw context.unsupportedType(x.dtype, input: 0)
    }
  }

  private static func map<T: SignedElement>(_ t: T.Type, _ x: NDArray, _ context: KernelContext) -> NDArray {
    var y = NDArray(uninitialized: x.dtype, shape: x.shape)
    guard x.count > 0 else { return y }
    x.withUnsafeBufferPointer(of: T.self) { xp in
      y.withUnsafeMutableBufferPointer(of: T.self) { yp in
        let (xs, ys) = (xp.baseAddress!, yp.baseAddress!)
        Parallel.forEach(count: xp.count, threads: context.threadCount, grain: 1 << 15) { r in
          for i in r { ys[i] = apply(xs[i]) }
        }
      }
    }
    return y
  }
}

enum NegOperation: SignedUnaryOperation {
  @inline(__always) static func apply<T: SignedElement>(_ x: T) -> T { T.negate(x) }
  static var keepsUnsigned: Bool { false }
}

enum AbsOperation: SignedUnaryOperation {
  @inline(__always) static func apply<T: SignedElement>(_ x: T) -> T { T.magnitude(x) }
  static var keepsUnsigned: Bool { true }
}

/// Neg (float, double, int64, int32, int16, int8) and Abs (those and the unsigned integers).
struct SignedUnary<Op: SignedUnaryOperation>: Kernel {
  init(_ builder: KernelBuilder) throws {}
  func run(_ context: KernelContext) throws -> [NDArray] { [try Op.evaluate(try context.input(0), context)] }
}

// MARK: PRelu

/// PRelu: `x` for x ≥ 0, `slope·x` otherwise, the slope broadcast unidirectionally to X's
/// shape. Float, double, int64 and int32.
struct PRelu: Kernel {
  init(_ builder: KernelBuilder) throws {}

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let slope = try context.input(1)
    guard slope.dtype == x.dtype else {
      throw context.error("slope is \(slope.dtype), the input is \(x.dtype)")
    }
    guard let plan = BinaryBroadcast(x.shape, slope.shape), plan.outputShape == x.shape else {
      throw context.error(
        "slope of shape \(describe(shape: slope.shape)) does not broadcast to the input's \(describe(shape: x.shape))")
    }
    switch x.dtype {
    case .float: return [apply(Float.self, x, slope, plan, context)]
    case .double: return [apply(Double.self, x, slope, plan, context)]
    case .int64: return [apply(Int64.self, x, slope, plan, context)]
    case .int32: return [apply(Int32.self, x, slope, plan, context)]
    default: throw context.unsupportedType(x.dtype, input: 0)
    }
  }

  private func apply<T: ArithmeticElement>(
    _ t: T.Type, _ x: NDArray, _ slope: NDArray, _ plan: BinaryBroadcast, _ context: KernelContext
  ) -> NDArray {
    var y = NDArray(uninitialized: T.dtype, shape: plan.outputShape)
    guard plan.count > 0 else { return y }
    x.withUnsafeBufferPointer(of: T.self) { xp in
      slope.withUnsafeBufferPointer(of: T.self) { sp in
        y.withUnsafeMutableBufferPointer(of: T.self) { yp in
          plan.apply(
            PReluFunction<T>.self, xp.baseAddress!, sp.baseAddress!, yp.baseAddress!, threads: context.threadCount)
        }
      }
    }
    return y
  }
}

struct PReluFunction<T: ArithmeticElement>: BinaryElementFunction {
  @inline(__always) static func apply(_ x: T, _ slope: T) -> T { x < T.zero ? T.multiply(x, slope) : x }
}

// MARK: Pow

/// Pow: `x^y` with multidirectional broadcasting.
///
/// - float32 and double bases take an exponent of any number type (converted to the base's
///   type); the result is C's `pow`. A single float32 exponent of 2, 3, 1, 0.5, 0 or −1 is
///   computed without `pow` (exactly as `pow` would round).
/// - int64 and int32 bases with integer exponents multiply exactly; as in onnxruntime (which
///   goes through double), a negative exponent gives 1/xⁿ truncated (0 unless x is ±1; 0⁻ⁿ
///   gives the type's minimum), and a result out of the type's range gives its minimum.
/// - int64 and int32 bases with floating-point exponents compute in double and convert back as
///   Cast does (truncating).
struct Pow: Kernel {
  init(_ builder: KernelBuilder) throws {}

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let e = try context.input(1)
    guard let plan = BinaryBroadcast(x.shape, e.shape) else {
      throw context.error("cannot broadcast \(describe(shape: x.shape)) with \(describe(shape: e.shape))")
    }
    let integerExponent = [DType.int64, .int32, .int16, .int8, .uint64, .uint32, .uint16, .uint8].contains(e.dtype)
    guard integerExponent || e.dtype == .float || e.dtype == .double else {
      throw context.unsupportedType(e.dtype, input: 1)
    }
    switch x.dtype {
    case .float:
      let exponent = Cast.convert(e, to: .float)!
      if exponent.count == 1 && plan.outputShape == x.shape,
        let y = Self.scalarPower(x, exponent.scalars(as: Float.self)[0], context)
      {
        return [y]
      }
      return [Self.apply(FloatPower.self, x, exponent, plan, context)]
    case .double:
      return [Self.apply(DoublePower.self, x, Cast.convert(e, to: .double)!, plan, context)]
    case .int64, .int32:
      if integerExponent {
        let y = Self.apply(
          IntegerPower.self, Cast.convert(x, to: .int64)!, Cast.convert(e, to: .int64)!, plan, context)
        guard x.dtype == .int32 else { return [y] }
        var narrowed = NDArray(uninitialized: .int32, shape: y.shape)
        y.withUnsafeBufferPointer(of: Int64.self) { yp in
          narrowed.withUnsafeMutableBufferPointer(of: Int32.self) { np in
            for i in 0..<yp.count { np[i] = Int32(exactly: yp[i]) ?? .min }
          }
        }
        return [narrowed]
      }
      let y = Self.apply(
        DoublePower.self, Cast.convert(x, to: .double)!, Cast.convert(e, to: .double)!, plan, context)
      return [Cast.convert(y, to: x.dtype, threads: context.threadCount)!]
    default: throw context.unsupportedType(x.dtype, input: 0)
    }
  }

  private static func apply<F: BinaryElementFunction>(
    _ f: F.Type, _ a: NDArray, _ b: NDArray, _ plan: BinaryBroadcast, _ context: KernelContext
  ) -> NDArray {
    var y = NDArray(uninitialized: F.Output.dtype, shape: plan.outputShape)
    guard plan.count > 0 else { return y }
    a.withUnsafeBufferPointer(of: F.Input.self) { ap in
      b.withUnsafeBufferPointer(of: F.Input.self) { bp in
        y.withUnsafeMutableBufferPointer(of: F.Output.self) { yp in
          plan.apply(f, ap.baseAddress!, bp.baseAddress!, yp.baseAddress!, threads: context.threadCount)
        }
      }
    }
    return y
  }

  /// `x^p` for the exponents with a loop cheaper than `powf`; nil for others.
  private static func scalarPower(_ x: NDArray, _ p: Float, _ context: KernelContext) -> NDArray? {
    guard [2, 3, 1, 0, 0.5, -1].contains(p) else { return nil }
    if p == 1 { return x }
    var y = NDArray(uninitialized: .float, shape: x.shape)
    guard x.count > 0 else { return y }
    x.withUnsafeBufferPointer(of: Float.self) { xp in
      y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
        let (xs, ys) = (xp.baseAddress!, yp.baseAddress!)
        Parallel.forEach(count: xp.count, threads: context.threadCount, grain: 1 << 15) { r in
          switch p {
          case 2: for i in r { ys[i] = xs[i] * xs[i] }
          case 3: for i in r { ys[i] = xs[i] * xs[i] * xs[i] }
          case 0: for i in r { ys[i] = 1 }
          // pow(−0, ½) is +0 and pow(−∞, ½) is +∞, where the square root gives −0 and NaN.
          case 0.5: for i in r { ys[i] = xs[i] == -.infinity ? .infinity : (xs[i] + 0).squareRoot() }
          default: for i in r { ys[i] = 1 / xs[i] }
          }
        }
      }
    }
    return y
  }
}

enum FloatPower: BinaryElementFunction {
  @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { powf(a, b) }
}

enum DoublePower: BinaryElementFunction {
  @inline(__always) static func apply(_ a: Double, _ b: Double) -> Double { pow(a, b) }
}

/// Exact integer powers; out-of-range results (and 0 to a negative power) give `Int64.min`.
enum IntegerPower: BinaryElementFunction {
  static func apply(_ base: Int64, _ exponent: Int64) -> Int64 {
    if exponent < 0 {
      switch base {
      case 1: return 1
      case -1: return exponent & 1 == 0 ? 1 : -1
      case 0: return .min
      default: return 0
      }
    }
    var result: Int64 = 1
    var b = base
    var e = exponent
    while e > 0 {
      if e & 1 != 0 {
        let (r, overflow) = result.multipliedReportingOverflow(by: b)
        if overflow { return .min }
        result = r
      }
      e >>= 1
      if e == 0 { break }
      let (square, overflow) = b.multipliedReportingOverflow(by: b)
      if overflow { return .min }
      b = square
    }
    return result
  }
}

// MARK: Min, Max, Sum, Mean

/// Min: NaN if either operand is NaN (as onnxruntime and numpy).
enum MinOperation: ArithmeticOperation {
  @inline(__always) static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T { a < b || a != a ? a : b }
}

/// Max: NaN if either operand is NaN (as onnxruntime and numpy).
enum MaxOperation: ArithmeticOperation {
  @inline(__always) static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T { a > b || a != a ? a : b }
}

/// Min, Max, Sum: the operation folded over one or more inputs, with multidirectional
/// broadcasting, for float, double and the 8- to 64-bit integers (integer sums wrap).
struct Variadic<Op: ArithmeticOperation>: Kernel {
  init(_ builder: KernelBuilder) throws {}

  func run(_ context: KernelContext) throws -> [NDArray] {
    [try Variadic.fold(context)]
  }

  static func fold(_ context: KernelContext) throws -> NDArray {
    guard !context.inputs.isEmpty else { throw context.error("needs at least one input") }
    var result = try context.input(0)
    guard [DType.float, .double, .int64, .int32, .int16, .int8, .uint64, .uint32, .uint16, .uint8].contains(result.dtype)
    else {
      throw context.unsupportedType(result.dtype, input: 0)
    }
    for i in 1..<context.inputs.count {
      result = try Op.evaluate(result, try context.input(i), context)
    }
    return result
  }
}

/// Mean: the sum of one or more inputs, broadcast, divided by their count (float and double).
struct Mean: Kernel {
  init(_ builder: KernelBuilder) throws {}

  func run(_ context: KernelContext) throws -> [NDArray] {
    let first = try context.input(0)
    guard first.dtype == .float || first.dtype == .double else { throw context.unsupportedType(first.dtype, input: 0) }
    let sum = try Variadic<AddOperation>.fold(context)
    let n = context.inputs.count
    guard n > 1 else { return [sum] }
    let count = first.dtype == .float ? NDArray(scalar: Float(n)) : NDArray(scalar: Double(n))
    return [try DivOperation.evaluate(sum, count, context)]
  }
}
