import Graph

/// A Swift type whose values are the elements of an `NDArray` of one dtype, laid out as ONNX's
/// `raw_data` lays them out (little-endian; bool as one byte 0 or 1).
public protocol TensorElement: Sendable {
  static var dtype: DType { get }
}

extension Float: TensorElement { public static var dtype: DType { .float } }
extension Double: TensorElement { public static var dtype: DType { .double } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension Int16: TensorElement { public static var dtype: DType { .int16 } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension UInt64: TensorElement { public static var dtype: DType { .uint64 } }
extension UInt32: TensorElement { public static var dtype: DType { .uint32 } }
extension UInt16: TensorElement { public static var dtype: DType { .uint16 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }

/// An IEEE 754 half-precision value kept as its bits (Swift's `Float16` is not available on every
/// platform rebirth builds for). The runtime computes in float32: see `NDArray.upcastingFloat16()`.
public struct Half: TensorElement, Hashable {
  public static var dtype: DType { .float16 }
  public var bitPattern: UInt16
  public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

  /// The half nearest to `value` (round to nearest even; overflow gives infinity; NaN stays NaN).
  public init(_ value: Float) {
    let bits = value.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    let exponent = Int((bits >> 23) & 0xff)
    let mantissa = bits & 0x7f_ffff
    if exponent == 0xff {  // infinity or NaN
      bitPattern = sign | 0x7c00 | (mantissa != 0 ? 0x200 | UInt16(mantissa >> 13) : 0)
      return
    }
    let e = exponent - 127 + 15
    if e >= 0x1f {
      bitPattern = sign | 0x7c00
    } else if e <= 0 {
      // Subnormal half (or zero): shift the implicit-one mantissa right, rounding to nearest even.
      if e < -10 {
        bitPattern = sign
        return
      }
      let m = mantissa | 0x80_0000
      let shift = UInt32(14 - e)
      var half = m >> shift
      let remainder = m & ((1 << shift) - 1)
      let halfway = UInt32(1) << (shift - 1)
      if remainder > halfway || (remainder == halfway && (half & 1) != 0) { half += 1 }
      bitPattern = sign | UInt16(half)
    } else {
      var half = UInt32(e) << 10 | (mantissa >> 13)
      let remainder = mantissa & 0x1fff
      // Rounding up may carry into the exponent, which is right (up to infinity).
      if remainder > 0x1000 || (remainder == 0x1000 && (half & 1) != 0) { half += 1 }
      bitPattern = sign | UInt16(half)
    }
  }

  /// The exact float32 value.
  public var floatValue: Float {
    let sign = UInt32(bitPattern & 0x8000) << 16
    let exponent = UInt32((bitPattern >> 10) & 0x1f)
    let mantissa = UInt32(bitPattern & 0x3ff)
    if exponent == 0 {
      if mantissa == 0 { return Float(bitPattern: sign) }
      // Subnormal: mantissa · 2⁻²⁴.
      let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
      return sign == 0 ? magnitude : -magnitude
    }
    if exponent == 0x1f { return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
  }
}
