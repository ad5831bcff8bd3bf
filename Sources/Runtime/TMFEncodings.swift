import Graph

/// The quantization fields of an encoded tensor record (fp16, int8, codebook: docs/tmf.md,
/// "Encodings"), and their decoding. The runtime computes in float32, so an encoded constant is
/// decoded once, when the file is opened, into a new float32 tensor; raw float32 constants are
/// used in place instead.
struct TMFQuantization {
  let encoding: TMF.Encoding
  let axis: Int
  let count: Int
  let scaleStart: UInt32
  let zeroPointStart: UInt32

  /// Checks the axis and the parameter count against the tensor's shape.
  func checkParameters(_ what: String, shape: [Int]) throws(TMFProblem) {
    switch encoding {
    case .fp16:
      guard axis == -1, count == 0 else {
        throw TMFProblem("\(what): field quant_count: fp16 tensors have no quantization parameters (axis -1, count 0)")
      }
    case .int8:
      guard axis >= 0, axis < shape.count else {
        throw TMFProblem("\(what): field quant_axis: \(axis) is not an axis of shape \(shape)")
      }
      guard count == shape[axis] else {
        throw TMFProblem("\(what): field quant_count: \(count) scales, but axis \(axis) of shape \(shape) has \(shape[axis])")
      }
    case .codebook:
      guard axis == -1 else { throw TMFProblem("\(what): field quant_axis: a codebook has no axis (-1), not \(axis)") }
      guard count >= 1, count <= TMF.maxCodebookSize else {
        throw TMFProblem("\(what): field quant_count: a codebook has 1 to \(TMF.maxCodebookSize) centroids, not \(count)")
      }
    case .raw, .csr:
      throw TMFProblem("\(what): field encoding: \(encoding.name) has no quantization parameters")
    }
    if encoding != .int8, zeroPointStart != TMF.absent {
      throw TMFProblem("\(what): field zero_point_start: only int8 tensors have zero points")
    }
  }

  /// The float32 tensor `source` encodes. `parameters` are the scales or centroids (checked to be
  /// in the f32 pool), `zeroPoints` the int8 zero points (nil: all 0).
  func decode(
    _ source: UnsafeRawBufferPointer, shape: [Int], parameters: [Float], zeroPoints: [Int64]?, _ what: String
  ) throws(TMFProblem) -> Tensor {
    let elements = checkedElementCount(shape) ?? 0
    if let bad = parameters.firstIndex(where: { !$0.isFinite }) {
      let name = encoding == .codebook ? "centroid" : "scale"
      throw TMFProblem("\(what): field scale_start: \(name) \(bad) is \(parameters[bad]), not a finite number")
    }
    if let zeroPoints, let bad = zeroPoints.firstIndex(where: { $0 < -128 || $0 > 127 }) {
      throw TMFProblem("\(what): field zero_point_start: zero point \(bad) is \(zeroPoints[bad]), outside the int8 range")
    }
    let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(elements * 4, 1), alignment: 64)
    let out = memory.bindMemory(to: Float.self)
    var failure: TMFProblem? = nil
    switch encoding {
    case .fp16:
      for i in 0..<elements {
        out[i] = Float(float16Bits: UInt16(source[2 * i]) | UInt16(source[2 * i + 1]) << 8)
      }
    case .int8:
      let channels = shape[axis]
      let inner = shape[(axis + 1)...].reduce(1, *)
      for i in 0..<elements {
        let c = (i / inner) % channels
        let q = Float(Int8(bitPattern: source[i])) - Float(zeroPoints?[c] ?? 0)
        out[i] = parameters[c] * q
      }
    case .codebook:
      let fourBits = TMF.codebookIndexBits(count) == 4
      for i in 0..<elements {
        let index = fourBits ? Int((source[i / 2] >> (i % 2 == 0 ? 0 : 4)) & 0x0F) : Int(source[i])
        guard index < count else {
          failure = TMFProblem("\(what): data: index \(index) of element \(i) is not below the \(count) centroids")
          break
        }
        out[i] = parameters[index]
      }
    case .raw, .csr:
      failure = TMFProblem("\(what): field encoding: \(encoding.name) is not decoded here")
    }
    if let failure {
      memory.deallocate()
      throw failure
    }
    let address = UInt(bitPattern: memory.baseAddress)
    let storage = TensorStorage(adopting: UnsafeRawBufferPointer(rebasing: memory[0..<(elements * 4)])) { _ in
      UnsafeMutableRawPointer(bitPattern: address)?.deallocate()
    }
    guard let tensor = Tensor(dtype: .float, shape: shape, storage: storage) else {
      throw TMFProblem("\(what): field dims: does not match the decoded data")
    }
    return tensor
  }
}
