import Graph

/// How `.tmf` stores float32 weights (docs/tmf.md, "Weight encodings"). The runtime computes in
/// float32 either way: raw fp32 weights are used in place, encoded ones are decoded once at open.
public enum TMFWeightEncoding: String, Sendable, CaseIterable, Codable {
  /// Raw float32 (the default): no error, used in place.
  case fp32
  /// IEEE binary16: every float32 constant of at least `minElements` elements that is not a bias.
  case fp16
  /// int8, symmetric, one scale per output channel: the weights of Conv, ConvTranspose, Gemm, MatMul.
  case int8
  /// Deep Compression's weight sharing (1-D k-means, linear init): the same layer weights.
  case codebook
}

/// What the writer encodes, and how.
public struct TMFWeightOptions: Sendable, Equatable {
  public var encoding: TMFWeightEncoding
  /// Centroids per codebook tensor, 2–256; 16 or fewer give 4-bit indices, more 8-bit ones.
  public var codebookSize: Int
  /// Tensors with fewer elements stay float32 (their scales or codebook would not pay off).
  public var minElements: Int
  public init(encoding: TMFWeightEncoding = .fp32, codebookSize: Int = 256, minElements: Int = 1024) {
    self.encoding = encoding
    self.codebookSize = codebookSize
    self.minElements = minElements
  }
}

/// One tensor the writer encoded, and how far its decoded values are from the original.
public struct TMFEncodedTensor: Sendable, Equatable, Codable {
  public var name: String
  public var encoding: String
  public var shape: [Int]
  /// Bytes in the data section plus the scales or centroids in the f32 pool.
  public var bytes: Int
  /// The float32 tensor's bytes.
  public var originalBytes: Int
  /// ‖W − Ŵ‖ / ‖W‖ (0 for an all-zero tensor decoded exactly).
  public var relativeError: Double
}

/// A weight in its encoded form.
struct EncodedWeight {
  let encoding: TMF.Encoding
  /// The data section bytes (halves, int8 values or packed indices).
  let data: [UInt8]
  /// The int8 quant axis; -1 otherwise.
  let axis: Int
  /// int8: one scale per index of `axis`; codebook: the centroids.
  let parameters: [Float]
  /// The values a reader decodes (to measure the error).
  let decoded: [Float]
}

enum WeightEncoder {
  /// The constants `options` encodes, with their quantization axis (the output-channel axis:
  /// 0 for Conv and for Gemm with transB = 1, 1 for ConvTranspose and Gemm with transB = 0, the
  /// last for MatMul). A constant is a layer weight when every use is input 1 of one of those
  /// layers (fused layers too) with the same axis. fp16 takes every float32 constant that is not
  /// a bias (input 2 of Conv, ConvTranspose or Gemm). Smaller than `minElements`: left alone.
  static func plan(_ graph: Graph, _ options: TMFWeightOptions) -> [ValueID: Int] {
    guard options.encoding != .fp32 else { return [:] }
    var plan: [ValueID: Int] = [:]
    for value in graph.initializers {
      guard let tensor = graph.constant(value), tensor.dtype == .float, tensor.elementCount >= options.minElements
      else { continue }
      let axes = graph.uses(of: value).map { use -> Int? in
        guard case .input(let id, let slot) = use else { return nil }
        return weightAxis(graph[id], slot: slot, rank: tensor.shape.count)
      }
      if options.encoding == .fp16 {
        let isBias = graph.uses(of: value).contains { use in
          guard case .input(let id, 2) = use else { return false }
          return [OpType.conv, OpType.convTranspose, OpType.gemm].contains(graph[id].opType)
        }
        if !isBias { plan[value] = -1 }
      } else if let first = axes.first, let axis = first, axes.allSatisfy({ $0 == axis }) {
        plan[value] = axis
      }
    }
    return plan
  }

  /// The output-channel axis of a weight read by `node` at input `slot`, if it is a layer weight.
  private static func weightAxis(_ node: Node, slot: Int, rank: Int) -> Int? {
    guard slot == 1, node.domain.isEmpty || node.domain == "ai.onnx" || node.domain == FusedActivation.domain
    else { return nil }
    switch node.opType {
    case OpType.conv: return rank >= 1 ? 0 : nil
    case OpType.convTranspose: return rank >= 2 ? 1 : nil
    case OpType.gemm:
      guard rank == 2 else { return nil }
      return (node.attribute("transB")?.int ?? 0) != 0 ? 0 : 1
    case OpType.matMul: return rank >= 2 ? rank - 1 : nil
    default: return nil
    }
  }

  static func encode(_ values: [Float], shape: [Int], axis: Int, _ options: TMFWeightOptions) -> EncodedWeight? {
    if options.encoding != .fp16, values.contains(where: { !$0.isFinite }) { return nil }  // stays float32
    switch options.encoding {
    case .fp32: return nil
    case .fp16: return fp16(values)
    case .int8: return int8(values, shape: shape, axis: axis)
    case .codebook: return codebook(values, size: options.codebookSize)
    }
  }

  // MARK: fp16

  static func fp16(_ values: [Float]) -> EncodedWeight {
    var data = [UInt8](repeating: 0, count: values.count * 2)
    var decoded = [Float](repeating: 0, count: values.count)
    for (i, v) in values.enumerated() {
      let h = v.float16Bits
      data[2 * i] = UInt8(truncatingIfNeeded: h)
      data[2 * i + 1] = UInt8(truncatingIfNeeded: h >> 8)
      decoded[i] = Float(float16Bits: h)
    }
    return EncodedWeight(encoding: .fp16, data: data, axis: -1, parameters: [], decoded: decoded)
  }

  // MARK: int8

  /// Symmetric per-channel: `scale[c] = max|W[c]| / 127`, `q = round(W / scale[c])` in [-127, 127].
  static func int8(_ values: [Float], shape: [Int], axis: Int) -> EncodedWeight {
    let channels = shape[axis]
    let inner = shape[(axis + 1)...].reduce(1, *)
    var maxima = [Float](repeating: 0, count: channels)
    for (i, v) in values.enumerated() where v.isFinite {
      let c = (i / inner) % channels
      maxima[c] = max(maxima[c], abs(v))
    }
    let scales = maxima.map { $0 > 0 ? $0 / 127 : 1 }
    var data = [UInt8](repeating: 0, count: values.count)
    var decoded = [Float](repeating: 0, count: values.count)
    for (i, v) in values.enumerated() {
      let scale = scales[(i / inner) % channels]
      let q = v.isFinite ? Int8(max(-127, min(127, (v / scale).rounded()))) : 0
      data[i] = UInt8(bitPattern: q)
      decoded[i] = scale * Float(q)
    }
    return EncodedWeight(encoding: .int8, data: data, axis: axis, parameters: scales, decoded: decoded)
  }

  // MARK: Codebook

  /// Deep Compression's weight sharing in one dimension: centroids start evenly spaced between the
  /// minimum and maximum (the paper's linear initialization), then Lloyd iterations. In 1-D the
  /// clusters are runs of the sorted values split at the midpoints between centroids, so after one
  /// sort each iteration is `size` binary searches over prefix sums.
  static func codebook(_ values: [Float], size: Int) -> EncodedWeight {
    let finite = values.map { $0.isFinite ? $0 : 0 }
    let sorted = finite.sorted()
    var prefix = [Double](repeating: 0, count: sorted.count + 1)
    for (i, v) in sorted.enumerated() { prefix[i + 1] = prefix[i] + Double(v) }
    let k = max(1, min(size, TMF.maxCodebookSize))
    let low = sorted.first ?? 0, high = sorted.last ?? 0
    var centroids = (0..<k).map { k == 1 ? low : low + (high - low) * Float($0) / Float(k - 1) }
    for _ in 0..<30 {
      var moved = false
      var start = 0
      for c in 0..<k {
        let end = c == k - 1 ? sorted.count : firstIndex(in: sorted, notBelow: (centroids[c] + centroids[c + 1]) / 2, from: start)
        if end > start {
          let mean = Float((prefix[end] - prefix[start]) / Double(end - start))
          if mean != centroids[c] { (centroids[c], moved) = (mean, true) }
        }
        start = end
      }
      centroids.sort()
      if !moved { break }
    }
    let bits = TMF.codebookIndexBits(k)
    var data = [UInt8](repeating: 0, count: TMF.encodedByteCount(.codebook, elements: values.count, quantCount: k) ?? 0)
    var decoded = [Float](repeating: 0, count: values.count)
    let midpoints = (0..<max(0, k - 1)).map { (centroids[$0] + centroids[$0 + 1]) / 2 }
    for (i, v) in finite.enumerated() {
      let index = firstIndex(in: midpoints, notBelow: v, from: 0)  // the centroids below v's midpoint
      decoded[i] = centroids[index]
      if bits == 8 {
        data[i] = UInt8(index)
      } else {
        data[i / 2] |= UInt8(index) << (i % 2 == 0 ? 0 : 4)
      }
    }
    return EncodedWeight(encoding: .codebook, data: data, axis: -1, parameters: centroids, decoded: decoded)
  }

  /// The first index at or after `from` whose element is ≥ `value` (`sorted` is ascending).
  private static func firstIndex(in sorted: [Float], notBelow value: Float, from: Int) -> Int {
    var lo = from, hi = sorted.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if sorted[mid] < value { lo = mid + 1 } else { hi = mid }
    }
    return lo
  }

  // MARK: Error

  /// ‖a − b‖ / ‖a‖ (‖a − b‖ when a is all zeros).
  static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    var difference = 0.0, norm = 0.0
    for (x, y) in zip(a, b) where x.isFinite {
      let d = Double(x) - Double(y)
      difference += d * d
      norm += Double(x) * Double(x)
    }
    return norm > 0 ? (difference / norm).squareRoot() : difference.squareRoot()
  }
}
