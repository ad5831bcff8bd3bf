/// The sliding-window attributes Conv and the pooling operators share (`auto_pad`, `pads`,
/// `strides`, `dilations`, `kernel_shape`, `ceil_mode`), read once per node.
struct WindowAttributes: Sendable {
  enum AutoPad: String, Sendable {
    case notSet = "NOTSET"
    case sameUpper = "SAME_UPPER"
    case sameLower = "SAME_LOWER"
    case valid = "VALID"
  }

  let autoPad: AutoPad
  let kernelShape: [Int]?
  let strides: [Int]?
  let dilations: [Int]?
  /// Begin pads for every spatial axis, then end pads.
  let pads: [Int]?
  let ceilMode: Bool
  /// Pooling accepts a window larger than the padded input as onnxruntime does (see `resolve`).
  let pooling: Bool

  /// Reads the attributes; `hasDilations` and `hasCeilMode` say whether the operator (at this
  /// opset) defines them, so that a node carrying one it does not define is an error.
  init(_ builder: KernelBuilder, hasDilations: Bool, hasCeilMode: Bool, pooling: Bool = false) throws {
    self.pooling = pooling
    let autoPadName = try builder.string("auto_pad", default: "NOTSET")
    guard let autoPad = AutoPad(rawValue: autoPadName) else {
      throw builder.unsupported("auto_pad", "'\(autoPadName)'")
    }
    self.autoPad = autoPad
    kernelShape = try builder.optionalInts("kernel_shape")
    strides = try builder.optionalInts("strides")
    dilations = hasDilations ? try builder.optionalInts("dilations") : nil
    pads = try builder.optionalInts("pads")
    ceilMode = hasCeilMode ? try builder.int("ceil_mode", default: 0) != 0 : false
    if let k = kernelShape, k.contains(where: { $0 <= 0 }) {
      throw builder.attributeError("kernel_shape", "must be positive, got \(k)")
    }
    if let s = strides, s.contains(where: { $0 <= 0 }) {
      throw builder.attributeError("strides", "must be positive, got \(s)")
    }
    if let d = dilations, d.contains(where: { $0 <= 0 }) {
      throw builder.attributeError("dilations", "must be positive, got \(d)")
    }
    if let p = pads, p.contains(where: { $0 < 0 }) {
      throw builder.attributeError("pads", "must not be negative, got \(p)")
    }
    if autoPad != .notSet, let p = pads, p.contains(where: { $0 != 0 }) {
      throw builder.attributeError("pads", "cannot be combined with auto_pad \(autoPad.rawValue)")
    }
  }

  /// The geometry for spatial input extents `input` and window `kernel` (the attribute's, or the
  /// weight's for Conv).
  func resolve(input: [Int], kernel: [Int], label: NodeLabel) throws(RuntimeError) -> WindowGeometry {
    let rank = input.count
    func check(_ values: [Int]?, _ name: String, count: Int) throws(RuntimeError) -> [Int]? {
      guard let values else { return nil }
      guard values.count == count else {
        throw label.attributeError(name, "has \(values.count) values; the input has \(rank) spatial axes")
      }
      return values
    }
    guard kernel.count == rank else {
      throw label.error("the window has \(kernel.count) axes; the input has \(rank) spatial axes")
    }
    let strides = try check(strides, "strides", count: rank) ?? Array(repeating: 1, count: rank)
    let dilations = try check(dilations, "dilations", count: rank) ?? Array(repeating: 1, count: rank)
    var begin = [Int](repeating: 0, count: rank)
    var end = [Int](repeating: 0, count: rank)
    var output = [Int](repeating: 0, count: rank)
    if let pads = try check(pads, "pads", count: 2 * rank), autoPad == .notSet {
      begin = Array(pads[0..<rank])
      end = Array(pads[rank...])
    }
    for i in 0..<rank {
      let extent = (kernel[i] - 1) * dilations[i] + 1
      switch autoPad {
      case .notSet, .valid:
        let span = input[i] + begin[i] + end[i] - extent
        if span < 0 && pooling {
          // A window larger than the padded input: onnxruntime's pools compute the extent in
          // float, `(int)(span / stride + 1)` (ceil of it with ceil_mode), which is 0 — an empty
          // output — when span > −stride, or 1 with ceil_mode. Windows then pool their taps inside.
          let q = Float(span) / Float(strides[i]) + 1
          let size = ceilMode ? Int(q.rounded(.up)) : Int(q)
          if size >= 0 {
            output[i] = size
            continue
          }
        }
        if span < 0 {
          throw label.error(
            "the window (\(extent) wide) is larger than the padded input (\(input[i] + begin[i] + end[i])) on axis \(i + 2)"
          )
        }
        output[i] = (ceilMode ? (span + strides[i] - 1) / strides[i] : span / strides[i]) + 1
        // With ceil_mode, the last window must start inside the input or its begin padding.
        if ceilMode && (output[i] - 1) * strides[i] >= input[i] + begin[i] { output[i] -= 1 }
      case .sameUpper, .sameLower:
        output[i] = (input[i] + strides[i] - 1) / strides[i]
        let total = max(0, (output[i] - 1) * strides[i] + extent - input[i])
        begin[i] = autoPad == .sameUpper ? total / 2 : total - total / 2
        end[i] = total - begin[i]
      }
    }
    return WindowGeometry(
      input: input, kernel: kernel, strides: strides, dilations: dilations, padsBegin: begin, padsEnd: end,
      output: output)
  }
}

/// A resolved sliding window over the spatial axes of one input.
struct WindowGeometry: Sendable, Equatable {
  let input: [Int]
  let kernel: [Int]
  let strides: [Int]
  let dilations: [Int]
  let padsBegin: [Int]
  let padsEnd: [Int]
  let output: [Int]

  var rank: Int { input.count }
  var inputSize: Int { ShapeArithmetic.product(input) }
  var outputSize: Int { ShapeArithmetic.product(output) }
  var kernelSize: Int { ShapeArithmetic.product(kernel) }

  /// For each output position along `axis`, the first and last-plus-one window taps that fall
  /// inside the input: tap t reads input `o·stride − padBegin + t·dilation`.
  func validTaps(axis i: Int) -> [(first: Int, end: Int)] {
    (0..<output[i]).map { o in
      let start = o * strides[i] - padsBegin[i]
      // first tap with start + t·d >= 0; end: first tap with start + t·d >= input.
      let first = start >= 0 ? 0 : (-start + dilations[i] - 1) / dilations[i]
      let end = start >= input[i] ? 0 : min(kernel[i], (input[i] - start + dilations[i] - 1) / dilations[i])
      return (min(first, end), end)
    }
  }

  /// For each output position along `axis`, the number of taps inside the padded input
  /// (`-padBegin ..< input + padEnd`), which `count_include_pad` divides by.
  func paddedTapCounts(axis i: Int) -> [Int] {
    (0..<output[i]).map { o in
      let start = o * strides[i] - padsBegin[i]
      let limit = input[i] + padsEnd[i]
      let end = start >= limit ? 0 : min(kernel[i], (limit - start + dilations[i] - 1) / dilations[i])
      return end
    }
  }
}
