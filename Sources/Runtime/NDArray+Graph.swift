import Graph

extension NDArray {
  /// The elements of a graph constant, without copying when the bytes can be used as they are
  /// (aligned for the element type). Bool bytes other than 0 and 1 are normalized (copied).
  /// Fails for strings and for dtypes narrower than a byte.
  public init(_ tensor: Tensor) throws(RuntimeError) {
    guard case .raw(let raw) = tensor.payload, let bits = tensor.dtype.bitWidth, bits >= 8 else {
      throw .graph("tensors of type \(tensor.dtype) are not supported by the runtime")
    }
    guard let count = checkedElementCount(tensor.shape), tensor.dtype.byteCount(elements: count) == raw.bytes.count
    else { throw .graph("tensor of shape \(describe(shape: tensor.shape)) holds \(raw.bytes.count) bytes") }
    let bytes = raw.bytes
    let aligned = bytes.baseAddress.map { Int(bitPattern: $0) % (bits / 8) == 0 } ?? false
    let badBool = tensor.dtype == .bool && bytes.contains { $0 > 1 }
    if aligned && !badBool && bytes.count > 0 {
      self.init(dtype: tensor.dtype, shape: tensor.shape, count: count, storage: ArrayStorage(wrapping: raw))
      return
    }
    self.init(uninitialized: tensor.dtype, shape: tensor.shape)
    if let source = bytes.baseAddress, bytes.count > 0 {
      storage.base.copyMemory(from: source, byteCount: bytes.count)
    }
    if badBool {
      let p = storage.base.assumingMemoryBound(to: UInt8.self)
      for i in 0..<count where p[i] > 1 { p[i] = 1 }
    }
  }

  /// A graph constant holding a copy of the elements (for constant folding).
  public func toTensor() -> Tensor {
    let copy = withUnsafeBytes { TensorStorage(copying: $0) }
    return Tensor(dtype: dtype, shape: shape, storage: copy)!
  }

  /// float16 arrays as float32; other arrays unchanged.
  ///
  /// The runtime computes in float32 and never holds float16 intermediates: float16 constants and
  /// inputs are upcast when they enter (`Session` does it), a Cast to float16 rounds through half
  /// precision and yields float32, and graph outputs declared float16 are converted back on return.
  public func upcastingFloat16() -> NDArray {
    guard dtype == .float16 else { return self }
    var out = NDArray(uninitialized: .float, shape: shape)
    withUnsafeBufferPointer(of: Half.self) { h in
      out.withUnsafeMutableBufferPointer(of: Float.self) { f in
        for i in 0..<h.count { f[i] = h[i].floatValue }
      }
    }
    return out
  }

  /// float32 arrays as float16 (round to nearest even); other arrays unchanged.
  public func downcastingToFloat16() -> NDArray {
    guard dtype == .float else { return self }
    var out = NDArray(uninitialized: .float16, shape: shape)
    withUnsafeBufferPointer(of: Float.self) { f in
      out.withUnsafeMutableBufferPointer(of: Half.self) { h in
        for i in 0..<f.count { h[i] = Half(f[i]) }
      }
    }
    return out
  }

  /// A graph constant as the runtime holds it: float16 upcast to float32.
  static func runtimeConstant(_ tensor: Tensor) throws(RuntimeError) -> NDArray {
    try NDArray(tensor).upcastingFloat16()
  }
}
