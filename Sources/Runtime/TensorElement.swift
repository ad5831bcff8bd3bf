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
  public init(_ value: Float) { bitPattern = value.float16Bits }

  /// The exact float32 value.
  public var floatValue: Float { Float(float16Bits: bitPattern) }

}
