/// Shape inference for operators that select or join parts of tensors: Concat, Split, Slice,
/// Gather, Pad, TopK, NonZero.
extension ShapeInference {
  static let indexingRules: [String: Rule] = [
    OpType.concat: { $0.concat($1) },
    OpType.split: { $0.split($1) },
    OpType.slice: { $0.slice($1) },
    OpType.gather: { $0.gather($1) },
    OpType.gatherElements: { [$0.tensor($0.dtype($1.input(0)), $0.shape($1.input(1)))] },
    OpType.pad: { $0.pad($1) },
    OpType.topK: { $0.topK($1) },
    OpType.nonZero: { [$0.tensor(.int64, $0.shape($1.input(0)).map { [.value($0.count), .unknown] })] },
  ]

  mutating func concat(_ node: Node) -> [ValueType?] {
    let inputs = node.inputs.compactMap { $0 }
    let dtype = inputs.compactMap { self.dtype($0) }.first
    let shapes = inputs.map { shape($0) }
    guard let rank = shapes.compactMap({ $0?.count }).first else { return [tensor(dtype, nil)] }
    guard shapes.allSatisfy({ $0 == nil || $0!.count == rank }) else {
      report("inputs have different ranks")
      return [tensor(dtype, nil)]
    }
    guard let attribute = int(node, "axis"), let axis = normalize(axis: attribute, rank: rank) else {
      if node.attribute("axis") == nil { report("attribute 'axis' is missing") }
      return [tensor(dtype, nil)]
    }
    var out = [Dim](repeating: .unknown, count: rank)
    for i in 0..<rank where i != axis {
      let dims = shapes.compactMap { $0?[i] }
      guard let first = dims.first else { continue }
      out[i] = dims.dropFirst().reduce(first) { DimArithmetic.unify($0, $1) ?? .unknown }
      if dims.contains(where: { DimArithmetic.unify(first, $0) == nil }) { report("inputs differ along axis \(i)") }
    }
    let parts = shapes.compactMap { $0?[axis] }
    out[axis] = parts.count == shapes.count ? DimArithmetic.sum(parts) : .unknown
    return [tensor(dtype, out)]
  }

  /// Split sizes from the `split` input (attribute before opset 13), else equal parts
  /// (`num_outputs` from opset 18: ⌈d/n⌉ each, the last smaller).
  mutating func split(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    let n = node.outputs.count
    guard n > 0, let x = shape(node.input(0)), let axis = normalize(axis: int(node, "axis") ?? 0, rank: x.count) else {
      return Array(repeating: tensor(dtype, nil), count: n)
    }
    let sizes: [Dim]
    switch intsOperand(node, "split", inputFrom: 13, slot: 1) {
    case .unknown: sizes = Array(repeating: .unknown, count: n)
    case .known(let s):
      guard s.count == n, s.allSatisfy({ $0 >= 0 && $0 <= Self.maxDim }) else {
        report("split \(s) does not give \(n) non-negative sizes")
        return Array(repeating: tensor(dtype, x.map { _ in .unknown }), count: n)
      }
      if let d = x[axis].value, d != s.reduce(0, &+) { report("split \(s) does not add up to \(d)") }
      sizes = s.map(Dim.value)
    case .absent: sizes = evenSplit(x[axis], parts: n, uneven: node.attribute("num_outputs") != nil)
    }
    return sizes.map { size in
      var out = x
      out[axis] = size
      return tensor(dtype, out)
    }
  }

  mutating func evenSplit(_ dim: Dim, parts n: Int, uneven: Bool) -> [Dim] {
    guard case .value(let d) = dim else { return Array(repeating: n == 1 ? dim : .unknown, count: n) }
    if uneven {
      let chunk = (d + n - 1) / n
      let last = d - chunk * (n - 1)
      guard last >= 0 else {
        report("cannot split \(d) into \(n) parts of \(chunk)")
        return Array(repeating: .unknown, count: n)
      }
      return Array(repeating: .value(chunk), count: n - 1) + [.value(last)]
    }
    guard d % n == 0 else {
      report("cannot split \(d) evenly into \(n) parts")
      return Array(repeating: .unknown, count: n)
    }
    return Array(repeating: .value(d / n), count: n)
  }

  /// One axis of a slice: where it starts, where it ends (exclusive) and the step.
  struct SliceAxis {
    var axis: Int
    var start: Int
    var end: Int
    var step: Int

    /// The first index and the number of indices the slice visits along an axis of extent `dim`.
    func range(in dim: Int) -> (first: Int, count: Int) {
      var s = start < 0 ? start + dim : start
      var e = end < 0 ? end + dim : end
      if step > 0 {
        s = Swift.min(Swift.max(s, 0), dim)
        e = Swift.min(Swift.max(e, 0), dim)
        return (s, e > s ? (e - s - 1) / step + 1 : 0)
      }
      s = Swift.min(Swift.max(s, 0), dim - 1)
      e = Swift.min(Swift.max(e, -1), dim - 1)
      return (s, s > e ? (s - e - 1) / -step + 1 : 0)
    }

    /// The extent along an axis of extent `dim`; a symbolic extent survives a full slice.
    func extent(of dim: Dim) -> Dim {
      if case .value(let k) = dim { return .value(range(in: k).count) }
      let whole = step == 1 && start == 0 && end >= ShapeInference.maxDim
      let reversed = step == -1 && start == -1 && end <= -ShapeInference.maxDim
      return whole || reversed ? dim : .unknown
    }
  }

  enum SliceOperands {
    case known([SliceAxis])
    /// The listed axes (all, when nil) change in ways not known.
    case unknown(axes: [Int]?)
  }

  /// The slice parameters: attributes before opset 10, inputs from it.
  mutating func sliceOperands(_ node: Node, rank: Int) -> SliceOperands? {
    let old = opset < 10
    let starts = old ? ints(node, "starts") : ints(node.input(1))
    let ends = old ? ints(node, "ends") : ints(node.input(2))
    let axesOperand: IntsOperand = old ? (ints(node, "axes").map(IntsOperand.known) ?? .absent) : inputOperand(node, 3)
    let stepsOperand: IntsOperand = old ? .absent : inputOperand(node, 4)
    var axes: [Int]?
    switch axesOperand {
    case .known(let a): axes = normalize(axes: a, rank: rank)
      if axes == nil { return nil }
    case .absent:
      axes = starts.map { Array(0..<$0.count) }
      if let a = axes, a.count > rank {
        report("\(a.count) starts for rank \(rank)")
        return nil
      }
    case .unknown: axes = nil
    }
    guard let starts, let ends, let axes, case let steps? = stepsOperand.values(default: starts.count) else {
      return .unknown(axes: axes)
    }
    guard starts.count == ends.count, starts.count == axes.count, steps.count == starts.count,
      steps.allSatisfy({ $0 != 0 && $0 != Int.min })
    else {
      report("starts, ends, axes and steps disagree in length, or a step is 0")
      return nil
    }
    return .known(axes.indices.map { SliceAxis(axis: axes[$0], start: starts[$0], end: ends[$0], step: steps[$0]) })
  }

  mutating func slice(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)) else { return [tensor(dtype, nil)] }
    switch sliceOperands(node, rank: x.count) {
    case nil: return [tensor(dtype, x.map { _ in .unknown })]
    case .unknown(let axes)?:
      return [tensor(dtype, x.indices.map { axes?.contains($0) == false ? x[$0] : .unknown })]
    case .known(let slices)?:
      var out = x
      for s in slices { out[s.axis] = s.extent(of: x[s.axis]) }
      return [tensor(dtype, out)]
    }
  }

  /// data[:axis] + indices.shape + data[axis+1:].
  mutating func gather(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let data = shape(node.input(0)), let indices = shape(node.input(1)) else { return [tensor(dtype, nil)] }
    guard let axis = normalize(axis: int(node, "axis") ?? 0, rank: data.count) else { return [tensor(dtype, nil)] }
    return [tensor(dtype, Array(data[..<axis]) + indices + Array(data[(axis + 1)...]))]
  }

  /// Pads from the `pads` input (attribute before opset 11), optionally on `axes` (opset 18).
  mutating func pad(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)) else { return [tensor(dtype, nil)] }
    let padsOperand: IntsOperand = opset < 11
      ? ((ints(node, "pads") ?? ints(node, "paddings")).map(IntsOperand.known) ?? .absent)
      : inputOperand(node, 1)
    var axes = Array(x.indices)
    switch inputOperand(node, 3) {
    case .known(let a) where opset >= 18:
      guard let n = normalize(axes: a, rank: x.count) else { return [tensor(dtype, x.map { _ in .unknown })] }
      axes = n
    case .unknown where opset >= 18: return [tensor(dtype, x.map { _ in .unknown })]
    default: break
    }
    guard case .known(let pads) = padsOperand else {
      return [tensor(dtype, x.indices.map { axes.contains($0) ? .unknown : x[$0] })]
    }
    guard pads.count == 2 * axes.count, pads.allSatisfy({ (-Self.maxDim...Self.maxDim).contains($0) }) else {
      report("pads has \(pads.count) entries for \(axes.count) axes")
      return [tensor(dtype, x.map { _ in .unknown })]
    }
    var out = x
    for (i, a) in axes.enumerated() {
      out[a] = DimArithmetic.add(x[a], pads[i] + pads[i + axes.count])
      if let k = out[a].value, k < 0 { report("padding makes axis \(a) negative") }
    }
    return [tensor(dtype, out)]
  }

  mutating func topK(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)), let axis = normalize(axis: int(node, "axis") ?? -1, rank: x.count) else {
      return [tensor(dtype, nil), tensor(.int64, nil)]
    }
    let k = opset < 10 ? int(node, "k") : ints(node.input(1))?.first
    if let k, k < 0 || k > Self.maxDim { report("k \(k) is invalid") }
    var out = x
    out[axis] = k.flatMap { $0 >= 0 && $0 <= Self.maxDim ? Dim.value($0) : nil } ?? .unknown
    return [tensor(dtype, out), tensor(.int64, out)]
  }
}

extension ShapeInference.IntsOperand {
  /// The values, `count` 1s when absent, nil when unknown.
  func values(default count: Int) -> [Int]? {
    switch self {
    case .known(let v): return v
    case .absent: return Array(repeating: 1, count: count)
    case .unknown: return nil
    }
  }
}
