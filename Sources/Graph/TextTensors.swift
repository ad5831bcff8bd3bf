/// Tensor data in the textual form: elements as ONNX's syntax spells them, and the stand-ins made
/// for tensors printed by shape and digest.
///
/// Elements are spelled as `onnx.parser` reads them into a `TensorProto`: integers for the integer
/// types and `bool` (0 or 1); the bit pattern as an unsigned integer for `float16`, `bfloat16`, the
/// float8 types and `float4e2m1`; one value per element for the 4-bit integer types; float literals
/// for `float` and `double` (the shortest text that reads back to the same bits; `nan`, `-nan`,
/// `inf`, `-inf`); two floats (real, imaginary) per element for the complex types; string literals
/// for `string`.
enum TensorText {
  // MARK: Printing

  /// A float as the shortest literal that reads back to the same value. NaN payloads are not kept:
  /// every NaN prints as `nan` or `-nan`.
  static func format(_ f: Float) -> String {
    if f.isNaN { return f.sign == .minus ? "-nan" : "nan" }
    return f.description
  }

  static func format(_ d: Double) -> String {
    if d.isNaN { return d.sign == .minus ? "-nan" : "nan" }
    return d.description
  }

  /// A digest as 16 lowercase hexadecimal digits.
  static func hex(_ digest: UInt64) -> String {
    let digits = String(digest, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
  }

  /// The printed elements of `tensor`, or nil when its element type has no syntax.
  static func elements(of tensor: Tensor) -> [String]? {
    if case .strings(let strings) = tensor.payload { return strings.map(TextSpelling.quoted) }
    let bytes = tensor.rawBytes
    let n = tensor.elementCount
    func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
      T(littleEndian: bytes.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
    }
    func nibble(_ i: Int) -> UInt8 { i % 2 == 0 ? bytes[i / 2] & 0xF : bytes[i / 2] >> 4 }
    switch tensor.dtype.rawValue {
    case 1: return (0..<n).map { format(Float(bitPattern: load(UInt32.self, $0))) }
    case 11: return (0..<n).map { format(Double(bitPattern: load(UInt64.self, $0))) }
    case 14: return (0..<(2 * n)).map { format(Float(bitPattern: load(UInt32.self, $0))) }
    case 15: return (0..<(2 * n)).map { format(Double(bitPattern: load(UInt64.self, $0))) }
    case 2, 9, 17, 18, 19, 20: return (0..<n).map { String(load(UInt8.self, $0)) }
    case 3: return (0..<n).map { String(Int8(bitPattern: load(UInt8.self, $0))) }
    case 4, 10, 16: return (0..<n).map { String(load(UInt16.self, $0)) }
    case 5: return (0..<n).map { String(load(Int16.self, $0)) }
    case 6: return (0..<n).map { String(load(Int32.self, $0)) }
    case 12: return (0..<n).map { String(load(UInt32.self, $0)) }
    case 7: return (0..<n).map { String(load(Int64.self, $0)) }
    case 13: return (0..<n).map { String(load(UInt64.self, $0)) }
    case 21, 23: return (0..<n).map { String(nibble($0)) }
    case 22: return (0..<n).map { String(Int8(bitPattern: nibble($0) << 4) >> 4) }
    default: return nil
    }
  }

  // MARK: Parsing

  /// One element as written, with where it was written.
  struct Element {
    var literal: Literal
    var offset: Int
  }

  /// Why an element does not fit the tensor's type.
  struct ElementError: Error {
    var offset: Int
    var message: String
  }

  /// Builds a tensor of `dtype` and `shape` from its written elements.
  static func tensor(dtype: DType, shape: [Int], elements: [Element], at start: Int) throws(ElementError) -> Tensor {
    guard let count = checkedElementCount(shape) else {
      throw ElementError(offset: start, message: "shape \(shape) has no element count")
    }
    let complex = dtype.rawValue == 14 || dtype.rawValue == 15
    let expected = complex ? 2 * count : count
    guard elements.count == expected else {
      throw ElementError(
        offset: start, message: "\(TextSpelling.dtypeName(dtype))\(shape) needs \(expected) values, found \(elements.count)")
    }
    if dtype == .string {
      var strings: [[UInt8]] = []
      for e in elements {
        guard case .string(let s) = e.literal else { throw ElementError(offset: e.offset, message: "expected a string") }
        strings.append(s)
      }
      guard let tensor = Tensor(strings: strings, shape: shape) else { throw ElementError(offset: start, message: "bad shape") }
      return tensor
    }
    var bytes: [UInt8] = []
    var nibbles: [UInt8] = []
    for e in elements { try encode(e, as: dtype, into: &bytes, nibbles: &nibbles) }
    for i in stride(from: 0, to: nibbles.count, by: 2) {
      bytes.append(nibbles[i] | (i + 1 < nibbles.count ? nibbles[i + 1] << 4 : 0))
    }
    guard let tensor = Tensor(dtype: dtype, shape: shape, storage: .copying(bytes)) else {
      throw ElementError(offset: start, message: "values of type \(TextSpelling.dtypeName(dtype)) cannot be written")
    }
    return tensor
  }

  /// Appends one element's little-endian bytes, or for 4-bit types its nibble.
  static func encode(_ e: Element, as dtype: DType, into bytes: inout [UInt8], nibbles: inout [UInt8]) throws(ElementError) {
    func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    switch dtype.rawValue {
    case 1, 14: append(try float(e).bitPattern)
    case 11, 15: append(try double(e).bitPattern)
    case 9: append(UInt8(try integer(e, in: 0...1)))
    case 2, 17, 18, 19, 20: append(UInt8(try integer(e, in: 0...255)))
    case 3: append(Int8(try integer(e, in: -128...127)))
    case 4, 10, 16: append(UInt16(try integer(e, in: 0...65535)))
    case 5: append(Int16(try integer(e, in: -32768...32767)))
    case 6: append(Int32(try integer(e, in: Int64(Int32.min)...Int64(Int32.max))))
    case 12: append(UInt32(try integer(e, in: 0...Int64(UInt32.max))))
    case 7: append(try integer(e, in: Int64.min...Int64.max))
    case 13: append(try unsigned(e))
    case 21, 23: nibbles.append(UInt8(try integer(e, in: 0...15)))
    case 22: nibbles.append(UInt8(bitPattern: Int8(try integer(e, in: -8...7))) & 0xF)
    default:
      throw ElementError(offset: e.offset, message: "values of type \(TextSpelling.dtypeName(dtype)) cannot be written")
    }
  }

  static func integer(_ e: Element, in range: ClosedRange<Int64>) throws(ElementError) -> Int64 {
    guard case .integer(let text) = e.literal else { throw ElementError(offset: e.offset, message: "expected an integer") }
    guard let v = Int64(text), range.contains(v) else {
      throw ElementError(offset: e.offset, message: "\(text) is out of range \(range.lowerBound)...\(range.upperBound)")
    }
    return v
  }

  static func unsigned(_ e: Element) throws(ElementError) -> UInt64 {
    guard case .integer(let text) = e.literal else { throw ElementError(offset: e.offset, message: "expected an integer") }
    guard let v = UInt64(text) else { throw ElementError(offset: e.offset, message: "\(text) is out of range for uint64") }
    return v
  }

  static func float(_ e: Element) throws(ElementError) -> Float {
    guard let v = e.literal.float else { throw numberError(e, "float") }
    return v
  }

  static func double(_ e: Element) throws(ElementError) -> Double {
    guard let v = e.literal.double else { throw numberError(e, "double") }
    return v
  }

  private static func numberError(_ e: Element, _ type: String) -> ElementError {
    switch e.literal {
    case .integer(let text), .float(let text): return ElementError(offset: e.offset, message: "\(text) is out of range for \(type)")
    case .string: return ElementError(offset: e.offset, message: "expected a number")
    }
  }

  // MARK: Stand-ins for tensors printed by shape and digest

  /// Above this many bytes the parser refuses to make a stand-in.
  static let maxPlaceholderBytes = 1 << 30

  /// A stand-in for a tensor printed by shape and digest: deterministic pseudo-random data seeded
  /// by the digest (floats are multiples of 1/128 in [-1, 1), integers in 0..<8, `bool` 0 or 1,
  /// strings short hex words), so equal digests give equal tensors and different digests give
  /// different ones. Nil when the type has no fixed width or the data would be too large.
  static func placeholder(dtype: DType, shape: [Int], digest: UInt64) -> Tensor? {
    guard let count = checkedElementCount(shape) else { return nil }
    var random = SplitMix64(seed: digest)
    if dtype == .string {
      guard count <= maxPlaceholderBytes / 8 else { return nil }
      let strings = (0..<count).map { _ in Array(String(random.next() % 0x10000, radix: 16).utf8) }
      var t = Tensor(strings: strings, shape: shape)
      t?.placeholderDigest = digest
      return t
    }
    guard let byteCount = dtype.byteCount(elements: count), byteCount <= maxPlaceholderBytes else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(byteCount)
    func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    func unit() -> Float { Float(Int(random.next() % 256) - 128) / 128 }
    let small = { UInt8(random.next() % 8) }
    switch dtype.rawValue {
    case 1, 14: for _ in 0..<(dtype.rawValue == 14 ? 2 * count : count) { append(unit().bitPattern) }
    case 11, 15: for _ in 0..<(dtype.rawValue == 15 ? 2 * count : count) { append(Double(unit()).bitPattern) }
    case 10: for _ in 0..<count { append(unit().float16Bits) }
    case 16: for _ in 0..<count { append(UInt16(unit().bitPattern >> 16)) }
    case 17, 18, 19, 20:
      // Clearing the top exponent bit keeps every float8 format finite; 0x80 is NaN in the fnuz ones.
      for _ in 0..<count {
        let b = UInt8(random.next() & 0xBF)
        bytes.append(b == 0x80 ? 0 : b)
      }
    case 9: for _ in 0..<count { bytes.append(UInt8(random.next() % 2)) }
    case 2, 3: for _ in 0..<count { bytes.append(small()) }
    case 4, 5: for _ in 0..<count { append(UInt16(small())) }
    case 6, 12: for _ in 0..<count { append(UInt32(small())) }
    case 7, 13: for _ in 0..<count { append(UInt64(small())) }
    case 21, 22, 23:
      for i in stride(from: 0, to: count, by: 2) { bytes.append(small() | (i + 1 < count ? small() << 4 : 0)) }
    default: return nil
    }
    var t = Tensor(dtype: dtype, shape: shape, storage: .copying(bytes))
    t?.placeholderDigest = digest
    return t
  }
}

/// SplitMix64: a small, fast, well-mixed generator, the same sequence everywhere (deterministic
/// stand-in data here; seeded inputs and tests elsewhere).
public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
