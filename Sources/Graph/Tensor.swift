#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Immutable bytes that a constant tensor owns: little-endian element data as in `raw_data`.
///
/// The storage may adopt a buffer allocated elsewhere (the ONNX importer hands over the buffers
/// protobuf-c unpacked, or views into the mapped model file, so the weights of a large model are
/// never copied) or copy bytes it is given. A view into a file can sit at any address: `bytes`
/// is always aligned for its elements (a misaligned buffer is copied to an aligned one the first
/// time `bytes` is read), while `storedBytes` is the buffer as given, for code that only moves
/// or hashes bytes (the exporters, digests), which then never copies it.
public final class TensorStorage: @unchecked Sendable {
  /// The bytes as given: possibly not aligned.
  public let storedBytes: UnsafeRawBufferPointer
  private let release: (@Sendable (UnsafeRawBufferPointer) -> Void)?
  /// Set when `storedBytes` is misaligned: guards `alignedCopy`.
  private let lock: UnsafeMutablePointer<pthread_mutex_t>?
  private var alignedCopy: UnsafeMutableRawBufferPointer?

  /// The alignment `bytes` guarantees (what malloc gives; enough for every element type).
  public static let alignment = 16

  /// Adopts `bytes`; `release` is called once when the storage dies.
  public init(adopting bytes: UnsafeRawBufferPointer, release: (@Sendable (UnsafeRawBufferPointer) -> Void)?) {
    self.storedBytes = bytes
    self.release = release
    if let base = bytes.baseAddress, Int(bitPattern: base) % Self.alignment != 0 {
      let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
      pthread_mutex_init(mutex, nil)
      lock = mutex
    } else {
      lock = nil
    }
  }

  /// Copies `source` into a new buffer.
  public convenience init(copying source: UnsafeRawBufferPointer) {
    let memory = Self.alignedCopy(of: source)
    self.init(adopting: UnsafeRawBufferPointer(memory)) { UnsafeRawBufferPointer(start: $0.baseAddress, count: 1).deallocate() }
  }

  /// The bytes, aligned to ``alignment``.
  public var bytes: UnsafeRawBufferPointer {
    guard let lock else { return storedBytes }
    pthread_mutex_lock(lock)
    defer { pthread_mutex_unlock(lock) }
    if alignedCopy == nil { alignedCopy = Self.alignedCopy(of: storedBytes) }
    return UnsafeRawBufferPointer(alignedCopy!)
  }

  /// The number of bytes.
  public var count: Int { storedBytes.count }

  private static func alignedCopy(of source: UnsafeRawBufferPointer) -> UnsafeMutableRawBufferPointer {
    let count = source.count
    let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 64)
    if count > 0, let base = source.baseAddress {
      memory.baseAddress!.copyMemory(from: base, byteCount: count)
    }
    return UnsafeMutableRawBufferPointer(rebasing: memory[0..<count])
  }

  deinit {
    if let lock {
      if let copy = alignedCopy { UnsafeRawBufferPointer(start: copy.baseAddress, count: 1).deallocate() }
      pthread_mutex_destroy(lock)
      lock.deallocate()
    }
    release?(storedBytes)
  }
}

extension TensorStorage {
  /// Copies the bytes of `array`.
  public static func copying<T>(_ array: [T]) -> TensorStorage {
    array.withUnsafeBytes { TensorStorage(copying: $0) }
  }
}

/// The number of elements of `shape`, or nil if a dimension is negative or the product overflows.
public func checkedElementCount(_ shape: [Int]) -> Int? {
  var count = 1
  for dim in shape {
    guard dim >= 0 else { return nil }
    let (product, overflow) = count.multipliedReportingOverflow(by: dim)
    guard !overflow else { return nil }
    count = product
  }
  return count
}

/// An immutable constant tensor: an initializer, a `Constant`'s value or a tensor attribute.
public struct Tensor: Sendable {
  public enum Payload: Sendable {
    /// Element data, little-endian, packed as `raw_data` packs it.
    case raw(TensorStorage)
    /// The elements of a `string` tensor.
    case strings([[UInt8]])
  }

  public let dtype: DType
  public let shape: [Int]
  public let payload: Payload
  /// The tensor's `doc_string`, kept for fidelity.
  public var docString: String = ""
  /// Set only on a stand-in the text parser made for a tensor printed by shape and digest: the
  /// digest that was printed, which the printer shows again (the stand-in's data is pseudo-random,
  /// seeded by it). Nil for every other tensor. See `TextPrinter.swift`.
  public internal(set) var placeholderDigest: UInt64? = nil

  /// A tensor over `storage`; fails if the byte count disagrees with the shape.
  public init?(dtype: DType, shape: [Int], storage: TensorStorage) {
    guard let count = checkedElementCount(shape), let bytes = dtype.byteCount(elements: count),
      bytes == storage.count
    else { return nil }
    self.dtype = dtype
    self.shape = shape
    self.payload = .raw(storage)
  }

  /// A string tensor; fails if the element count disagrees with the shape.
  public init?(strings: [[UInt8]], shape: [Int]) {
    guard checkedElementCount(shape) == strings.count else { return nil }
    self.dtype = .string
    self.shape = shape
    self.payload = .strings(strings)
  }

  /// A float32 tensor holding `values`.
  public init(floats values: [Float], shape: [Int]) {
    precondition(checkedElementCount(shape) == values.count, "shape \(shape) does not hold \(values.count) floats")
    self.dtype = .float
    self.shape = shape
    self.payload = .raw(.copying(values))
  }

  /// An int64 tensor holding `values`.
  public init(int64s values: [Int64], shape: [Int]) {
    precondition(checkedElementCount(shape) == values.count, "shape \(shape) does not hold \(values.count) int64s")
    self.dtype = .int64
    self.shape = shape
    self.payload = .raw(.copying(values))
  }

  public var elementCount: Int { checkedElementCount(shape) ?? 0 }

  /// The raw element bytes, aligned for the element type (empty for string tensors).
  public var rawBytes: UnsafeRawBufferPointer {
    if case .raw(let storage) = payload { return storage.bytes }
    return UnsafeRawBufferPointer(start: nil, count: 0)
  }

  /// The raw element bytes as stored, possibly not aligned (see ``TensorStorage``): for code that
  /// only moves or hashes bytes (empty for string tensors).
  public var storedBytes: UnsafeRawBufferPointer {
    if case .raw(let storage) = payload { return storage.storedBytes }
    return UnsafeRawBufferPointer(start: nil, count: 0)
  }

  /// Bytes the data occupies (for string tensors, the sum of the strings' lengths).
  public var byteCount: Int {
    switch payload {
    case .raw(let storage): return storage.count
    case .strings(let strings): return strings.reduce(0) { $0 + $1.count }
    }
  }

  /// The elements as float32, for float32 tensors.
  public var floats: [Float]? {
    guard dtype == .float else { return nil }
    return Array(rawBytes.bindMemory(to: Float.self))
  }

  /// The elements as Int64, for int64 and int32 tensors.
  public var int64s: [Int64]? {
    switch dtype {
    case .int64: return rawBytes.loadArray(of: Int64.self)
    case .int32: return rawBytes.loadArray(of: Int32.self).map(Int64.init)
    default: return nil
    }
  }

  /// A 64-bit FNV-1a digest of the dtype, shape and data: equal tensors have equal digests.
  public var digest: UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    func mix(_ byte: UInt8) {
      hash ^= UInt64(byte)
      hash = hash &* 0x0000_0100_0000_01b3
    }
    withUnsafeBytes(of: dtype.rawValue.littleEndian) { $0.forEach(mix) }
    for dim in shape { withUnsafeBytes(of: Int64(dim).littleEndian) { $0.forEach(mix) } }
    switch payload {
    case .raw(let storage): storage.storedBytes.forEach(mix)
    case .strings(let strings):
      for s in strings {
        withUnsafeBytes(of: Int64(s.count).littleEndian) { $0.forEach(mix) }
        s.forEach(mix)
      }
    }
    return hash
  }

  /// Whether two tensors have the same dtype, shape and bytes.
  public func hasSameContent(as other: Tensor) -> Bool {
    guard dtype == other.dtype, shape == other.shape else { return false }
    switch (payload, other.payload) {
    case (.raw(let a), .raw(let b)):
      return a === b || (a.count == b.count && a.storedBytes.elementsEqual(b.storedBytes))
    case (.strings(let a), .strings(let b)): return a == b
    default: return false
    }
  }
}

extension UnsafeRawBufferPointer {
  /// Loads consecutive values of `type` whatever the buffer's alignment.
  func loadArray<T: FixedWidthInteger>(of type: T.Type) -> [T] {
    let n = count / MemoryLayout<T>.size
    return (0..<n).map { T(littleEndian: loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
  }
}

extension Tensor {
  /// The elements as Double, for the numeric dtypes (float32/64/16, bfloat16, signed and
  /// unsigned integers, bool); nil for strings and complex types.
  public var doubles: [Double]? {
    let b = rawBytes
    switch dtype {
    case .float: return b.loadArray(of: UInt32.self).map { Double(Float(bitPattern: $0)) }
    case .double: return b.loadArray(of: UInt64.self).map { Double(bitPattern: $0) }
    case .float16: return b.loadArray(of: UInt16.self).map { Double(Float(float16Bits: $0)) }
    case .bfloat16: return b.loadArray(of: UInt16.self).map { Double(Float(bitPattern: UInt32($0) << 16)) }
    case .int8: return b.loadArray(of: Int8.self).map(Double.init)
    case .uint8, .bool: return b.loadArray(of: UInt8.self).map(Double.init)
    case .int16: return b.loadArray(of: Int16.self).map(Double.init)
    case .uint16: return b.loadArray(of: UInt16.self).map(Double.init)
    case .int32: return b.loadArray(of: Int32.self).map(Double.init)
    case .uint32: return b.loadArray(of: UInt32.self).map(Double.init)
    case .int64: return b.loadArray(of: Int64.self).map(Double.init)
    case .uint64: return b.loadArray(of: UInt64.self).map(Double.init)
    default: return nil
    }
  }
}

extension Float {
  /// The IEEE half-precision bits nearest to this value (round to nearest even; overflow gives
  /// infinity; NaN stays NaN), without relying on the platform's Float16.
  public var float16Bits: UInt16 {
    let bits = bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    let exponent = Int((bits >> 23) & 0xff)
    let mantissa = bits & 0x7f_ffff
    if exponent == 0xff { return sign | 0x7c00 | (mantissa != 0 ? 0x200 | UInt16(mantissa >> 13) : 0) }
    let e = exponent - 127 + 15
    if e >= 0x1f { return sign | 0x7c00 }
    if e <= 0 {
      // Subnormal half (or zero): shift the implicit-one mantissa right, rounding to nearest even.
      if e < -10 { return sign }
      let m = mantissa | 0x80_0000
      let shift = UInt32(14 - e)
      var half = m >> shift
      let remainder = m & ((1 << shift) - 1)
      let halfway = UInt32(1) << (shift - 1)
      if remainder > halfway || (remainder == halfway && (half & 1) != 0) { half += 1 }
      return sign | UInt16(half)
    }
    var half = UInt32(e) << 10 | (mantissa >> 13)
    let remainder = mantissa & 0x1fff
    // Rounding up may carry into the exponent, which is right (up to infinity).
    if remainder > 0x1000 || (remainder == 0x1000 && (half & 1) != 0) { half += 1 }
    return sign | UInt16(half)
  }

  /// The value of IEEE half-precision bits, without relying on the platform's Float16.
  public init(float16Bits h: UInt16) {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int((h >> 10) & 0x1f)
    let mantissa = UInt32(h & 0x3ff)
    if exponent == 0 {
      let magnitude = Float(mantissa) * 0x1p-24
      self = sign != 0 ? -magnitude : magnitude
    } else if exponent == 31 {
      self = Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13))
    } else {
      self = Float(bitPattern: sign | (UInt32(exponent + 112) << 23) | (mantissa << 13))
    }
  }
}

extension Tensor {
  /// A fast 64-bit hash of the dtype, shape and data, read eight bytes at a time: for bucketing
  /// tensors by content (equal tensors hash equal; confirm with `hasSameContent`). Not `digest`,
  /// whose values the textual form prints and must not change.
  public var contentHash: UInt64 {
    var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bitPattern: Int64(dtype.rawValue))
    func mix(_ word: UInt64) {
      hash = (hash ^ word) &* 0xff51_afd7_ed55_8ccd
      hash ^= hash >> 33
    }
    for dim in shape { mix(UInt64(bitPattern: Int64(dim))) }
    switch payload {
    case .raw(let storage):
      let bytes = storage.storedBytes
      let words = bytes.count / 8
      for i in 0..<words { mix(bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
      var tail: UInt64 = 0
      for i in words * 8..<bytes.count { tail = tail << 8 | UInt64(bytes[i]) }
      mix(tail ^ UInt64(bytes.count))
    case .strings(let strings):
      for s in strings {
        mix(UInt64(s.count))
        for b in s { mix(UInt64(b)) }
      }
    }
    return hash
  }
}
