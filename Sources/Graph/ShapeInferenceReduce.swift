/// Shape inference for reductions and resampling.
extension ShapeInference {
  static let reduceOps = [
    OpType.reduceL1, OpType.reduceL2, OpType.reduceLogSum, OpType.reduceLogSumExp, OpType.reduceMax,
    OpType.reduceMean, OpType.reduceMin, OpType.reduceProd, OpType.reduceSum, OpType.reduceSumSquare,
  ]

  static let reductionRules: [String: Rule] = {
    var rules: [String: Rule] = [:]
    for op in reduceOps { rules[op] = { $0.reduce($1) } }
    rules[OpType.argMax] = { $0.argReduce($1) }
    rules[OpType.argMin] = { $0.argReduce($1) }
    rules[OpType.resize] = { $0.resize($1) }
    rules[OpType.upsample] = { $0.upsample($1) }
    return rules
  }()

  /// Axes from the attribute, or from input 1 (ReduceSum from opset 13, the others from 18);
  /// none means all unless `noop_with_empty_axes`.
  mutating func reduce(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    let keep = (int(node, "keepdims") ?? 1) != 0
    guard let x = shape(node.input(0)) else { return [tensor(dtype, nil)] }
    let inputFrom: Int64 = node.opType == OpType.reduceSum ? 13 : 18
    var axes: [Int]
    switch intsOperand(node, "axes", inputFrom: inputFrom, slot: 1) {
    case .unknown: return [tensor(dtype, keep ? x.map { _ in .unknown } : nil)]
    case .known(let a) where !a.isEmpty:
      guard let n = normalize(axes: a, rank: x.count) else { return [tensor(dtype, nil)] }
      axes = n
    default:
      if (int(node, "noop_with_empty_axes") ?? 0) != 0 { return [tensor(dtype, x)] }
      axes = Array(x.indices)
    }
    return [tensor(dtype, reduced(x, axes: axes, keep: keep))]
  }

  func reduced(_ x: [Dim], axes: [Int], keep: Bool) -> [Dim] {
    keep ? x.indices.map { axes.contains($0) ? .value(1) : x[$0] } : x.indices.filter { !axes.contains($0) }.map { x[$0] }
  }

  mutating func argReduce(_ node: Node) -> [ValueType?] {
    guard let x = shape(node.input(0)) else { return [tensor(.int64, nil)] }
    guard let axis = normalize(axis: int(node, "axis") ?? 0, rank: x.count) else { return [tensor(.int64, nil)] }
    return [tensor(.int64, reduced(x, axes: [axis], keep: (int(node, "keepdims") ?? 1) != 0))]
  }

  /// Resize to `sizes` (input 3, from opset 11) or by `scales` (input 2; input 1 in opset 10),
  /// on `axes` (opset 18) or all axes.
  mutating func resize(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)) else { return [tensor(dtype, nil)] }
    var axes = Array(x.indices)
    if opset >= 18, let a = ints(node, "axes") {
      guard let n = normalize(axes: a, rank: x.count) else { return [tensor(dtype, x.map { _ in .unknown })] }
      axes = n
    }
    if opset >= 11, let sizes = elements(node.input(3)), !sizes.isEmpty {
      return [tensor(dtype, resized(x, axes: axes, sizes: sizes, policy: string(node, "keep_aspect_ratio_policy") ?? "stretch"))]
    }
    if let scales = doubles(node.input(opset < 11 ? 1 : 2)), !scales.isEmpty {
      return [tensor(dtype, scaled(x, axes: axes, scales: scales))]
    }
    return [tensor(dtype, x.indices.map { axes.contains($0) ? .unknown : x[$0] })]
  }

  mutating func upsample(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)) else { return [tensor(dtype, nil)] }
    let scales = opset < 9 ? node.attribute("scales")?.floats.map { $0.map(Double.init) } : doubles(node.input(1))
    guard let scales else { return [tensor(dtype, x.map { _ in .unknown })] }
    return [tensor(dtype, scaled(x, axes: Array(x.indices), scales: scales))]
  }

  /// ⌊d·scale⌋ on each of `axes`.
  mutating func scaled(_ x: [Dim], axes: [Int], scales: [Double]) -> [Dim] {
    guard scales.count == axes.count, scales.allSatisfy({ $0 > 0 && $0.isFinite }) else {
      report("scales \(scales) do not give a positive scale for each of \(axes.count) axes")
      return x.map { _ in .unknown }
    }
    var out = x
    for (a, scale) in zip(axes, scales) {
      if case .value(let k) = x[a] {
        let d = (Double(k) * scale).rounded(.down)
        out[a] = d <= Double(Self.maxDim) ? .value(Int(d)) : .unknown
      } else {
        out[a] = scale == 1 ? x[a] : .unknown
      }
    }
    return out
  }

  /// `sizes` on each of `axes`; with a keep-aspect-ratio policy, one scale for all of them.
  mutating func resized(_ x: [Dim], axes: [Int], sizes: [Dim], policy: String) -> [Dim] {
    guard sizes.count == axes.count, sizes.allSatisfy({ ($0.value ?? 0) >= 0 && ($0.value ?? 0) <= Self.maxDim }) else {
      report("sizes \(sizes) do not give an extent for each of \(axes.count) axes")
      return x.map { _ in .unknown }
    }
    var out = x
    guard policy == "not_larger" || policy == "not_smaller" else {
      for (a, size) in zip(axes, sizes) { out[a] = size }
      return out
    }
    var inputs: [Int] = []
    var ratios: [Double] = []
    for (a, s) in zip(axes, sizes) {
      guard let k = x[a].value, k > 0, let n = s.value else { return x.indices.map { axes.contains($0) ? .unknown : x[$0] } }
      inputs.append(k)
      ratios.append(Double(n) / Double(k))
    }
    guard let scale = policy == "not_larger" ? ratios.min() : ratios.max() else { return out }
    for (a, k) in zip(axes, inputs) {
      let d = (scale * Double(k)).rounded()
      out[a] = d.isFinite && d >= 0 && d <= Double(Self.maxDim) ? .value(Int(d)) : .unknown
    }
    return out
  }
}
