/// An ONNX tensor element type (`TensorProto.DataType`).
///
/// Kept as the raw ONNX code so that element types this version does not know still survive a
/// round trip unchanged.
public struct DType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public let rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }

  public static let undefined = DType(rawValue: 0)
  public static let float = DType(rawValue: 1)
  public static let uint8 = DType(rawValue: 2)
  public static let int8 = DType(rawValue: 3)
  public static let uint16 = DType(rawValue: 4)
  public static let int16 = DType(rawValue: 5)
  public static let int32 = DType(rawValue: 6)
  public static let int64 = DType(rawValue: 7)
  public static let string = DType(rawValue: 8)
  public static let bool = DType(rawValue: 9)
  public static let float16 = DType(rawValue: 10)
  public static let double = DType(rawValue: 11)
  public static let uint32 = DType(rawValue: 12)
  public static let uint64 = DType(rawValue: 13)
  public static let complex64 = DType(rawValue: 14)
  public static let complex128 = DType(rawValue: 15)
  public static let bfloat16 = DType(rawValue: 16)
  public static let float8e4m3fn = DType(rawValue: 17)
  public static let float8e4m3fnuz = DType(rawValue: 18)
  public static let float8e5m2 = DType(rawValue: 19)
  public static let float8e5m2fnuz = DType(rawValue: 20)
  public static let uint4 = DType(rawValue: 21)
  public static let int4 = DType(rawValue: 22)
  public static let float4e2m1 = DType(rawValue: 23)

  /// Names as ONNX's textual syntax spells them.
  static let names: [Int32: String] = [
    0: "undefined", 1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
    7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
    19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1",
  ]

  /// The ONNX textual name (`float`, `int64`, ...), or `dtype<N>` for a code this version does not know.
  public var description: String { DType.names[rawValue] ?? "dtype\(rawValue)" }

  /// The type with the given textual name, if known.
  public init?(name: String) {
    guard let code = DType.names.first(where: { $0.value == name })?.key else { return nil }
    self.init(rawValue: code)
  }

  /// Whether this version knows the type.
  public var isKnown: Bool { DType.names[rawValue] != nil }

  /// Bits one element takes in `raw_data`; nil for strings and unknown types.
  public var bitWidth: Int? {
    switch rawValue {
    case 9, 2, 3, 17, 18, 19, 20: return 8
    case 4, 5, 10, 16: return 16
    case 1, 6, 12: return 32
    case 7, 11, 13, 14: return 64
    case 15: return 128
    case 21, 22, 23: return 4
    default: return nil
    }
  }

  public var isFloatingPoint: Bool {
    [1, 10, 11, 16, 17, 18, 19, 20, 23].contains(rawValue)
  }

  /// Bytes that `count` elements take in `raw_data` (4-bit types pack two to a byte); nil on
  /// overflow or for types without a fixed width.
  public func byteCount(elements count: Int) -> Int? {
    guard let bits = bitWidth, count >= 0 else { return nil }
    if bits == 4 { return count / 2 + count % 2 }
    let (bytes, overflow) = count.multipliedReportingOverflow(by: bits / 8)
    return overflow ? nil : bytes
  }
}
