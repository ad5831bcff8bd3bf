import Graph

/// Memory holding an array's elements: 64-byte aligned memory the storage owns, or the bytes of a
/// graph constant it keeps alive and never writes.
final class ArrayStorage: @unchecked Sendable {
  let base: UnsafeMutableRawPointer
  let byteCount: Int
  /// The graph constant's storage when wrapping one; nil when this storage owns its memory.
  private let constant: TensorStorage?

  /// Uninitialized memory of `byteCount` bytes, recycled through `RuntimeMemory`.
  init(byteCount: Int) {
    base = RuntimeMemory.allocate(byteCount)
    self.byteCount = byteCount
    constant = nil
  }

  /// The bytes of a graph constant, which must be non-empty.
  init(wrapping storage: TensorStorage) {
    base = UnsafeMutableRawPointer(mutating: storage.bytes.baseAddress!)
    byteCount = storage.bytes.count
    constant = storage
  }

  var isWritable: Bool { constant == nil }

  deinit { if constant == nil { RuntimeMemory.deallocate(base, bytes: byteCount) } }
}

/// A tensor the runtime computes with: a dtype, a shape and contiguous row-major elements.
///
/// Arrays are values: copies share storage, and writing (through `withUnsafeMutableBufferPointer`)
/// first copies storage that is shared or borrowed from a graph constant. Reshaping and wrapping a
/// graph constant's bytes do not copy.
public struct NDArray: @unchecked Sendable, CustomStringConvertible {
  public let dtype: DType
  public let shape: [Int]
  /// The number of elements.
  public let count: Int
  var storage: ArrayStorage
  /// Where the elements start in `storage`.
  let byteOffset: Int

  /// Bytes per element (dtypes narrower than a byte are not supported by the runtime).
  public var elementSize: Int { dtype.bitWidth.map { $0 / 8 } ?? 0 }
  public var rank: Int { shape.count }
  public var byteCount: Int { count * elementSize }

  init(dtype: DType, shape: [Int], count: Int, storage: ArrayStorage, byteOffset: Int = 0) {
    self.dtype = dtype
    self.shape = shape
    self.count = count
    self.storage = storage
    self.byteOffset = byteOffset
  }

  /// An array whose elements are not initialized: the caller writes every one before reading.
  /// Kernels use it for outputs. `shape` must be valid (non-negative, product representable).
  public init(uninitialized dtype: DType, shape: [Int]) {
    guard let count = checkedElementCount(shape), let bits = dtype.bitWidth, bits >= 8,
      let bytes = dtype.byteCount(elements: count)
    else { preconditionFailure("cannot allocate \(dtype) \(describe(shape: shape))") }
    self.init(dtype: dtype, shape: shape, count: count, storage: ArrayStorage(byteCount: bytes))
  }

  /// An array of zeros (false for bool).
  public init(zeros dtype: DType, shape: [Int]) {
    self.init(uninitialized: dtype, shape: shape)
    storage.base.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
  }

  /// An array holding `values`, whose count must equal the product of `shape`.
  public init<T: TensorElement>(_ values: [T], shape: [Int]) {
    precondition(
      checkedElementCount(shape) == values.count, "shape \(describe(shape: shape)) does not hold \(values.count) values"
    )
    self.init(uninitialized: T.dtype, shape: shape)
    values.withUnsafeBytes { storage.base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
  }

  /// A rank-0 array.
  public init<T: TensorElement>(scalar: T) { self.init([scalar], shape: []) }

  /// Whether an array of `dtype` and `shape` can be allocated: no negative dimension, a
  /// representable byte count, and elements at least a byte wide.
  public static func canAllocate(_ dtype: DType, shape: [Int]) -> Bool {
    guard let count = checkedElementCount(shape), let bits = dtype.bitWidth, bits >= 8 else { return false }
    return dtype.byteCount(elements: count) != nil
  }

  // MARK: Element access

  /// The elements as a buffer of `T`, which must be the array's element type.
  public func withUnsafeBufferPointer<T: TensorElement, R, E: Error>(
    of type: T.Type, _ body: (UnsafeBufferPointer<T>) throws(E) -> R
  ) throws(E) -> R {
    precondition(T.dtype == dtype, "reading a \(dtype) array as \(T.dtype)")
    let start = (storage.base + byteOffset).assumingMemoryBound(to: T.self)
    return try withExtendedLifetime(storage) { () throws(E) -> R in
      try body(UnsafeBufferPointer(start: start, count: count))
    }
  }

  /// The elements as a mutable buffer of `T`; the storage is first made unique and writable.
  public mutating func withUnsafeMutableBufferPointer<T: TensorElement, R, E: Error>(
    of type: T.Type, _ body: (UnsafeMutableBufferPointer<T>) throws(E) -> R
  ) throws(E) -> R {
    precondition(T.dtype == dtype, "writing a \(dtype) array as \(T.dtype)")
    makeUniqueAndWritable()
    let start = (storage.base + byteOffset).assumingMemoryBound(to: T.self)
    return try withExtendedLifetime(storage) { () throws(E) -> R in
      try body(UnsafeMutableBufferPointer(start: start, count: count))
    }
  }

  /// The element bytes.
  public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    let bytes = UnsafeRawBufferPointer(start: storage.base + byteOffset, count: byteCount)
    return try withExtendedLifetime(storage) { () throws(E) -> R in try body(bytes) }
  }

  /// The element bytes, writable; the storage is first made unique and writable.
  public mutating func withUnsafeMutableBytes<R, E: Error>(
    _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
  ) throws(E) -> R {
    makeUniqueAndWritable()
    let bytes = UnsafeMutableRawBufferPointer(start: storage.base + byteOffset, count: byteCount)
    return try withExtendedLifetime(storage) { () throws(E) -> R in try body(bytes) }
  }

  /// The elements as a Swift array.
  public func scalars<T: TensorElement>(as type: T.Type) -> [T] {
    withUnsafeBufferPointer(of: T.self) { Array($0) }
  }

  /// `body` with a pointer to the elements of `array`, or nil when there is no array.
  static func withOptionalPointer<T: TensorElement, R, E: Error>(
    _ array: NDArray?, of type: T.Type, _ body: (UnsafePointer<T>?) throws(E) -> R
  ) throws(E) -> R {
    guard let array else { return try body(nil) }
    return try array.withUnsafeBufferPointer(of: T.self) { (p) throws(E) -> R in try body(p.baseAddress!) }
  }

  private mutating func makeUniqueAndWritable() {
    if isKnownUniquelyReferenced(&storage), storage.isWritable { return }
    let copy = ArrayStorage(byteCount: byteCount)
    copy.base.copyMemory(from: storage.base + byteOffset, byteCount: byteCount)
    self = NDArray(dtype: dtype, shape: shape, count: count, storage: copy)
  }

  // MARK: Views

  /// The same elements under another shape of the same element count; no copy.
  public func reshaped(_ newShape: [Int]) -> NDArray {
    precondition(
      checkedElementCount(newShape) == count, "cannot reshape \(describe(shape: shape)) to \(describe(shape: newShape))"
    )
    return NDArray(dtype: dtype, shape: newShape, count: count, storage: storage, byteOffset: byteOffset)
  }

  /// Elements `range` of the flattened array as an array of `shape`; no copy.
  public func slice(elements range: Range<Int>, shape newShape: [Int]) -> NDArray {
    precondition(
      range.lowerBound >= 0 && range.upperBound <= count && checkedElementCount(newShape) == range.count,
      "bad slice \(range) of \(count) elements as \(describe(shape: newShape))")
    return NDArray(
      dtype: dtype, shape: newShape, count: range.count, storage: storage,
      byteOffset: byteOffset + range.lowerBound * elementSize)
  }

  public var description: String {
    let preview: String
    switch dtype {
    case .float: preview = scalars(as: Float.self).prefix(8).map { "\($0)" }.joined(separator: ", ")
    case .int64: preview = scalars(as: Int64.self).prefix(8).map { "\($0)" }.joined(separator: ", ")
    case .int32: preview = scalars(as: Int32.self).prefix(8).map { "\($0)" }.joined(separator: ", ")
    case .bool: preview = scalars(as: Bool.self).prefix(8).map { "\($0)" }.joined(separator: ", ")
    default: preview = "…"
    }
    return "\(dtype)\(describe(shape: shape)) {\(preview)\(count > 8 ? ", …" : "")}"
  }
}
