import Graph

/// Cast (opsets 6–21): the input's elements converted to the type of `to`, for float, float16,
/// double, int64, int32, int16, int8, uint64, uint32, uint16, uint8 and bool (strings, bfloat16,
/// the float8 and 4-bit types are not supported). Conversions follow the operator's rules:
///
/// - floating point to floating point rounds to nearest even (out of range gives ±infinity);
/// - integer to floating point rounds to nearest even;
/// - integer to integer keeps the low bits (two's complement wrap: 200 as int8 is −56);
/// - anything to bool is `x != 0` (NaN is true); bool to numbers is 0 or 1;
/// - floating point to integer truncates toward zero. The operator leaves NaN and out-of-range
///   values undefined; rebirth does what onnxruntime does on x86-64, which converts with the
///   processor's instructions: to int32 (and through int32 to int16, int8, uint16, uint8, keeping
///   the low bits) and to int64 (and through int64 to uint32, keeping the low bits), where NaN,
///   ±infinity and values out of the intermediate's range give its minimum (so NaN is
///   `Int32.min` as int32, `Int64.min` as int64, 0 as int8), and to uint64 directly for values
///   in [2⁶³, 2⁶⁴), through int64 otherwise. In-range values, including negative values cast to
///   unsigned types (−3.7 as uint8 is 253), come out as onnxruntime's.
///
/// float16 is carried as float32 (see `NDArray.upcastingFloat16()`): a float16 input arrives as
/// float32 and casts like it, and a cast to float16 rounds each value to the nearest half (round
/// to nearest even, overflow to ±infinity) and yields it as float32, which a graph output
/// declared float16 returns as float16 exactly.
///
/// The `saturate` attribute (opset 19) only concerns float8 targets and is ignored.
struct Cast: Kernel {
  let target: DType

  init(_ builder: KernelBuilder) throws {
    let to = try builder.int("to")
    builder.ignore("saturate")
    guard let code = Int32(exactly: to), Cast.supports(DType(rawValue: code)) else {
      throw builder.attributeError(
        "to", "casting to \(DType(rawValue: Int32(truncatingIfNeeded: to))) is not supported")
    }
    target = DType(rawValue: code)
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    guard let y = Cast.convert(x, to: target, threads: context.threadCount) else {
      throw context.unsupportedType(x.dtype, input: 0)
    }
    return [y]
  }

  /// The element types `convert` produces.
  static func supports(_ dtype: DType) -> Bool {
    [.float, .float16, .double, .int64, .int32, .int16, .int8, .uint64, .uint32, .uint16, .uint8, .bool]
      .contains(dtype)
  }

  /// `x` converted to `target` by Cast's rules (float16 rounded and held as float32); `x` itself
  /// when it already has that type. Nil when either type is not supported.
  static func convert(_ x: NDArray, to target: DType, threads: Int = 1) -> NDArray? {
    switch x.dtype {
    case .float: return convert(x, from: Float.self, to: target, threads)
    case .double: return convert(x, from: Double.self, to: target, threads)
    case .int64: return convert(x, from: Int64.self, to: target, threads)
    case .int32: return convert(x, from: Int32.self, to: target, threads)
    case .int16: return convert(x, from: Int16.self, to: target, threads)
    case .int8: return convert(x, from: Int8.self, to: target, threads)
    case .uint64: return convert(x, from: UInt64.self, to: target, threads)
    case .uint32: return convert(x, from: UInt32.self, to: target, threads)
    case .uint16: return convert(x, from: UInt16.self, to: target, threads)
    case .uint8: return convert(x, from: UInt8.self, to: target, threads)
    case .bool: return convert(x, from: Bool.self, to: target, threads)
    default: return nil
    }
  }

  private static func convert<S: CastElement>(_ x: NDArray, from: S.Type, to target: DType, _ threads: Int) -> NDArray?
  {
    if target == x.dtype { return x }
    switch target {
    case .float: return map(x, S.self, Float.self, threads)
    case .float16:
      var y = map(x, S.self, Float.self, threads)
      y.withUnsafeMutableBufferPointer(of: Float.self) { p in
        for i in 0..<p.count { p[i] = roundedToHalf(p[i]) }
      }
      return y
    case .double: return map(x, S.self, Double.self, threads)
    case .int64: return map(x, S.self, Int64.self, threads)
    case .int32: return map(x, S.self, Int32.self, threads)
    case .int16: return map(x, S.self, Int16.self, threads)
    case .int8: return map(x, S.self, Int8.self, threads)
    case .uint64: return map(x, S.self, UInt64.self, threads)
    case .uint32: return map(x, S.self, UInt32.self, threads)
    case .uint16: return map(x, S.self, UInt16.self, threads)
    case .uint8: return map(x, S.self, UInt8.self, threads)
    case .bool: return map(x, S.self, Bool.self, threads)
    default: return nil
    }
  }

  /// `x` rounded to the nearest float16 value (to even on ties; ±infinity beyond 65504, NaN
  /// stays NaN), as a float: `Half(x).floatValue`, branch-free so that the loop vectorizes.
  @inline(__always)
  static func roundedToHalf(_ x: Float) -> Float {
    let a = abs(x)
    // Normal halves keep 10 mantissa bits: round the 13 dropped bits to nearest even.
    let bits = a.bitPattern
    let normal = Float(bitPattern: (bits &+ 0xfff &+ ((bits >> 13) & 1)) & ~0x1fff)
    // Subnormal halves are multiples of 2⁻²⁴, the spacing of floats just above ½.
    let subnormal = (a + 0.5) - 0.5
    var r = a < 0x1p-14 ? subnormal : normal
    r = r > 65504 ? .infinity : r
    r = a.isNaN ? a : r
    return Float(signOf: x, magnitudeOf: r)
  }

  private static func map<S: CastElement, D: CastElement>(
    _ x: NDArray, _ source: S.Type, _ destination: D.Type, _ threads: Int
  ) -> NDArray {
    var y = NDArray(uninitialized: D.dtype, shape: x.shape)
    guard x.count > 0 else { return y }
    x.withUnsafeBufferPointer(of: S.self) { xp in
      y.withUnsafeMutableBufferPointer(of: D.self) { yp in
        let (xs, ys) = (xp.baseAddress!, yp.baseAddress!)
        Parallel.forEach(count: xp.count, threads: threads, grain: 1 << 15) { r in
          for i in r { ys[i] = xs[i].cast(to: D.self) }
        }
      }
    }
    return y
  }
}

/// CastLike (opset 15): Cast (by the same rules) to the element type of the second input, whose
/// values are not read. A float16 target is carried as float32, so the kernel learns it from the
/// graph (the target's constant, or its declared type) and then rounds through half precision; a
/// float16 target the graph does not type casts as float32.
struct CastLike: Kernel {
  let targetIsFloat16: Bool

  init(_ builder: KernelBuilder) throws {
    builder.ignore("saturate")
    let id = builder.node.input(1)
    let declared = id.flatMap { builder.graph[$0].type?.tensorElementType }
    targetIsFloat16 = (builder.graph.constant(id)?.dtype ?? declared) == .float16
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let target = try context.input(1)
    let dtype = targetIsFloat16 ? DType.float16 : target.dtype
    guard Cast.supports(dtype) else { throw context.unsupportedType(target.dtype, input: 1) }
    guard let y = Cast.convert(x, to: dtype, threads: context.threadCount) else {
      throw context.unsupportedType(x.dtype, input: 0)
    }
    return [y]
  }
}

/// An element type of `Cast`. A conversion goes through the source's kind: a signed integer (as
/// Int64), an unsigned one (UInt64), a floating-point value (Double, which holds every float
/// exactly), or a bool; the destination builds itself from that kind.
protocol CastElement: TensorElement {
  /// The element converted to `D` by Cast's rules.
  func cast<D: CastElement>(to type: D.Type) -> D
  init(castingSigned value: Int64)
  init(castingUnsigned value: UInt64)
  init(castingFloating value: Double)
  init(castingBool value: Bool)
}

extension CastElement {
  /// `value` truncated toward zero as x86-64 converts to int32: NaN and values out of range give
  /// `Int32.min`.
  @inline(__always)
  static func truncatedInt32(_ value: Double) -> Int32 {
    value > -2_147_483_649 && value < 2_147_483_648 ? Int32(value) : .min
  }

  /// `value` truncated toward zero as x86-64 converts to int64: NaN and values out of range give
  /// `Int64.min`.
  @inline(__always)
  static func truncatedInt64(_ value: Double) -> Int64 {
    value >= -0x1p63 && value < 0x1p63 ? Int64(value) : .min
  }
}

extension Float: CastElement {
  @inline(__always) func cast<D: CastElement>(to type: D.Type) -> D { D(castingFloating: Double(self)) }
  @inline(__always) init(castingSigned value: Int64) { self.init(value) }
  @inline(__always) init(castingUnsigned value: UInt64) { self.init(value) }
  @inline(__always) init(castingFloating value: Double) { self.init(value) }
  @inline(__always) init(castingBool value: Bool) { self = value ? 1 : 0 }
}

extension Double: CastElement {
  @inline(__always) func cast<D: CastElement>(to type: D.Type) -> D { D(castingFloating: self) }
  @inline(__always) init(castingSigned value: Int64) { self.init(value) }
  @inline(__always) init(castingUnsigned value: UInt64) { self.init(value) }
  @inline(__always) init(castingFloating value: Double) { self = value }
  @inline(__always) init(castingBool value: Bool) { self = value ? 1 : 0 }
}

extension Bool: CastElement {
  @inline(__always) func cast<D: CastElement>(to type: D.Type) -> D { D(castingBool: self) }
  @inline(__always) init(castingSigned value: Int64) { self = value != 0 }
  @inline(__always) init(castingUnsigned value: UInt64) { self = value != 0 }
  @inline(__always) init(castingFloating value: Double) { self = value != 0 }
  @inline(__always) init(castingBool value: Bool) { self = value }
}

/// Signed integers: the source kind is Int64, other integers keep their low bits.
protocol SignedCastElement: CastElement, FixedWidthInteger, SignedInteger {}

extension SignedCastElement {
  @inline(__always) func cast<D: CastElement>(to type: D.Type) -> D { D(castingSigned: Int64(self)) }
  @inline(__always) init(castingSigned value: Int64) { self.init(truncatingIfNeeded: value) }
  @inline(__always) init(castingUnsigned value: UInt64) { self.init(truncatingIfNeeded: value) }
  @inline(__always) init(castingBool value: Bool) { self = value ? 1 : 0 }
}

/// Unsigned integers: the source kind is UInt64.
protocol UnsignedCastElement: CastElement, FixedWidthInteger, UnsignedInteger {}

extension UnsignedCastElement {
  @inline(__always) func cast<D: CastElement>(to type: D.Type) -> D { D(castingUnsigned: UInt64(self)) }
  @inline(__always) init(castingSigned value: Int64) { self.init(truncatingIfNeeded: value) }
  @inline(__always) init(castingUnsigned value: UInt64) { self.init(truncatingIfNeeded: value) }
  @inline(__always) init(castingBool value: Bool) { self = value ? 1 : 0 }
}

extension Int64: SignedCastElement {
  @inline(__always) init(castingFloating value: Double) { self = Self.truncatedInt64(value) }
}
extension Int32: SignedCastElement {
  @inline(__always) init(castingFloating value: Double) { self = Self.truncatedInt32(value) }
}
extension Int16: SignedCastElement {
  @inline(__always) init(castingFloating value: Double) { self.init(truncatingIfNeeded: Self.truncatedInt32(value)) }
}
extension Int8: SignedCastElement {
  @inline(__always) init(castingFloating value: Double) { self.init(truncatingIfNeeded: Self.truncatedInt32(value)) }
}
extension UInt64: UnsignedCastElement {
  @inline(__always) init(castingFloating value: Double) {
    self = value >= 0x1p63 && value < 0x1p64 ? UInt64(value) : UInt64(bitPattern: Self.truncatedInt64(value))
  }
}
extension UInt32: UnsignedCastElement {
  @inline(__always) init(castingFloating value: Double) { self.init(truncatingIfNeeded: Self.truncatedInt64(value)) }
}
extension UInt16: UnsignedCastElement {
  @inline(__always) init(castingFloating value: Double) { self.init(truncatingIfNeeded: Self.truncatedInt32(value)) }
}
extension UInt8: UnsignedCastElement {
  @inline(__always) init(castingFloating value: Double) { self.init(truncatingIfNeeded: Self.truncatedInt32(value)) }
}
