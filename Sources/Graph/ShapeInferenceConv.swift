/// Shape inference for convolutions and pooling.
extension ShapeInference {
  static let convolutionRules: [String: Rule] = [
    OpType.conv: { $0.conv($1) },
    OpType.convTranspose: { $0.convTranspose($1) },
    OpType.maxPool: { $0.pool($1, indices: true) },
    OpType.averagePool: { $0.pool($1, indices: false) },
    OpType.lpPool: { $0.pool($1, indices: false) },
    OpType.globalAveragePool: { $0.globalPool($1) },
    OpType.globalMaxPool: { $0.globalPool($1) },
    OpType.globalLpPool: { $0.globalPool($1) },
  ]

  /// The sliding-window attributes of a Conv or pooling node, validated.
  struct Window {
    var kernel: [Int]
    var strides: [Int]
    var dilations: [Int]
    /// Begins, then ends.
    var pads: [Int]
    var autoPad: String
    var ceilMode: Bool

    /// The extent one kernel application covers along `axis`.
    func span(_ axis: Int) -> Int { dilations[axis] * (kernel[axis] - 1) + 1 }
  }

  static let autoPadModes: Set<String> = ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]

  /// Reads and checks the window attributes of `node` for `kernel`; nil (reported) when malformed.
  mutating func window(_ node: Node, kernel: [Int]) -> Window? {
    let n = kernel.count
    let bound = Self.maxAttribute
    guard kernel.allSatisfy({ $0 >= 1 && $0 <= Self.maxDim }) else {
      report("kernel shape \(kernel) has an extent below 1")
      return nil
    }
    guard let strides = boundedInts(node, "strides", count: n, in: 1...bound, fallback: 1),
      let dilations = boundedInts(node, "dilations", count: n, in: 1...bound, fallback: 1),
      let pads = boundedInts(node, "pads", count: 2 * n, in: 0...bound, fallback: 0)
    else { return nil }
    let autoPad = string(node, "auto_pad") ?? "NOTSET"
    guard Self.autoPadModes.contains(autoPad) else {
      report("auto_pad '\(autoPad)' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
      return nil
    }
    let ceilMode = (int(node, "ceil_mode") ?? 0) != 0
    return Window(kernel: kernel, strides: strides, dilations: dilations, pads: pads, autoPad: autoPad, ceilMode: ceilMode)
  }

  /// The output extent along spatial `axis` of a convolution or pooling window over `input`.
  mutating func outputDim(_ input: Dim, axis: Int, _ w: Window) -> Dim {
    let s = w.strides[axis]
    if w.autoPad.hasPrefix("SAME") {
      if case .value(let k) = input { return .value((k + s - 1) / s) }
      return s == 1 ? input : .unknown
    }
    let valid = w.autoPad == "VALID"
    let begin = valid ? 0 : w.pads[axis]
    let end = valid ? 0 : w.pads[axis + w.kernel.count]
    guard case .value(let k) = input else {
      return s == 1 && begin + end - w.span(axis) + 1 == 0 ? input : .unknown
    }
    let total = k + begin + end - w.span(axis)
    guard total >= 0 else {
      report("window of extent \(w.span(axis)) is larger than the padded input \(k + begin + end)")
      return .unknown
    }
    var out = (w.ceilMode ? (total + s - 1) / s : total / s) + 1
    // In ceil mode the last window must start inside the input or its leading padding.
    if w.ceilMode && (out - 1) * s >= k + begin { out -= 1 }
    return .value(out)
  }

  mutating func conv(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0)) ?? dtype(node.input(1))
    let w = shape(node.input(1)).flatMap { $0.count >= 2 ? $0 : nil }
    guard let x = shape(node.input(0)) ?? w.map({ Array(repeating: Dim.unknown, count: $0.count) }) else {
      return [tensor(dtype, nil)]
    }
    guard x.count >= 3 else {
      report("input has rank \(x.count); Conv needs at least 3")
      return [tensor(dtype, nil)]
    }
    let spatial = x.count - 2
    if let w, w.count != x.count { report("weight has rank \(w.count) but input has rank \(x.count)") }
    let group = self.group(node)
    if let c = x[1].value, let wc = w?[1].value, c != wc * group {
      report("input has \(c) channels but weight expects \(wc) × group \(group)")
    }
    let outChannels = w?.first ?? .unknown
    let unknownSpatial = [Dim](repeating: .unknown, count: spatial)
    guard let kernel = kernelShape(node, weight: w, spatial: spatial), let window = window(node, kernel: kernel) else {
      return [tensor(dtype, [x[0], outChannels] + unknownSpatial)]
    }
    let out = (0..<spatial).map { outputDim(x[2 + $0], axis: $0, window) }
    return [tensor(dtype, [x[0], outChannels] + out)]
  }

  /// The `group` attribute; 1 (reported) when it is not positive.
  mutating func group(_ node: Node) -> Int {
    let group = int(node, "group") ?? 1
    guard group >= 1 && group <= Self.maxAttribute else {
      report("group \(group) is not positive")
      return 1
    }
    return group
  }

  /// `kernel_shape`, or the spatial extents of the weight.
  func kernelShape(_ node: Node, weight: [Dim]?, spatial: Int) -> [Int]? {
    if let k = ints(node, "kernel_shape") { return k.count == spatial ? k : nil }
    guard let weight, weight.count == spatial + 2 else { return nil }
    let k = weight.dropFirst(2).compactMap(\.value)
    return k.count == spatial ? k : nil
  }

  mutating func convTranspose(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0)) ?? dtype(node.input(1))
    let w = shape(node.input(1))
    guard let x = shape(node.input(0)), x.count >= 3 else { return [tensor(dtype, nil)] }
    let spatial = x.count - 2
    let group = self.group(node)
    let outChannels = w.map { $0.count > 1 ? DimArithmetic.multiply($0[1], by: group) : .unknown } ?? .unknown
    if let outputShape = ints(node, "output_shape"), outputShape.count == spatial || outputShape.count == spatial + 2,
      outputShape.allSatisfy({ $0 >= 0 && $0 <= Self.maxDim })
    {
      return [tensor(dtype, [x[0], outChannels] + outputShape.suffix(spatial).map(Dim.value))]
    }
    guard let kernel = kernelShape(node, weight: w, spatial: spatial), let window = window(node, kernel: kernel),
      let outputPadding = boundedInts(node, "output_padding", count: spatial, in: 0...Self.maxAttribute, fallback: 0)
    else { return [tensor(dtype, [x[0], outChannels] + Array(repeating: .unknown, count: spatial))] }
    let out = (0..<spatial).map { transposedDim(x[2 + $0], axis: $0, window, outputPadding: outputPadding[$0]) }
    return [tensor(dtype, [x[0], outChannels] + out)]
  }

  /// `stride·(in − 1) + output_padding + span − pads`, or `in·stride` for SAME padding.
  mutating func transposedDim(_ input: Dim, axis: Int, _ w: Window, outputPadding: Int) -> Dim {
    let s = w.strides[axis]
    if w.autoPad.hasPrefix("SAME") { return DimArithmetic.multiply(input, by: s) }
    let valid = w.autoPad == "VALID"
    let pads = valid ? 0 : w.pads[axis] + w.pads[axis + w.kernel.count]
    let offset = outputPadding + w.span(axis) - 1 - pads
    guard case .value(let k) = input else { return s == 1 && offset == 0 ? input : .unknown }
    let out = s * (k - 1) + 1 + offset
    guard out >= 0 else {
      report("output extent \(out) along spatial axis \(axis) is negative")
      return .unknown
    }
    return .value(out)
  }

  mutating func pool(_ node: Node, indices: Bool) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)) else { return [tensor(dtype, nil)] + (indices ? [tensor(.int64, nil)] : []) }
    guard x.count >= 3 else {
      report("input has rank \(x.count); pooling needs at least 3")
      return [tensor(dtype, nil)]
    }
    let spatial = x.count - 2
    var out = [x[0], x[1]] + Array(repeating: Dim.unknown, count: spatial)
    if let kernel = ints(node, "kernel_shape"), kernel.count == spatial, let window = window(node, kernel: kernel) {
      for i in 0..<spatial { out[2 + i] = outputDim(x[2 + i], axis: i, window) }
    } else {
      report("attribute 'kernel_shape' is missing or does not have \(spatial) entries")
    }
    return [tensor(dtype, out)] + (indices ? [tensor(.int64, out)] : [])
  }

  mutating func globalPool(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)), x.count >= 2 else { return [tensor(dtype, nil)] }
    return [tensor(dtype, [x[0], x[1]] + Array(repeating: .value(1), count: x.count - 2))]
  }
}
