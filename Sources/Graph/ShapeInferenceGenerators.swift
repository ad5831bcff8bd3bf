/// Shape inference for operators that make tensors from attributes or shapes: Constant,
/// ConstantOfShape, Shape, Size, Range.
extension ShapeInference {
  static let generatorRules: [String: Rule] = [
    OpType.constant: { $0.constant($1) },
    OpType.constantOfShape: { $0.constantOfShape($1) },
    OpType.shape: { $0.shapeOf($1) },
    OpType.size: { _, _ in [.tensor(.int64, shape: [])] },
    OpType.range: { $0.range($1) },
  ]

  mutating func constant(_ node: Node) -> [ValueType?] {
    guard let t = Self.constantValue(of: node) else {
      if node.attribute("sparse_value") == nil { report("has no value attribute") }
      return []
    }
    return [.tensor(t.dtype, shape: t.shape.map(Dim.value))]
  }

  mutating func constantOfShape(_ node: Node) -> [ValueType?] {
    let dtype = node.attribute("value")?.tensor?.dtype ?? .float
    guard let dims = elements(node.input(0)) else { return [tensor(dtype, unknownDims(lengthOf: node.input(0)))] }
    if dims.contains(where: { ($0.value ?? 0) < 0 }) {
      report("shape \(dims) has a negative extent")
      return [tensor(dtype, dims.map { _ in .unknown })]
    }
    return [tensor(dtype, dims.map { ($0.value ?? 0) > Self.maxDim ? .unknown : $0 })]
  }

  /// The dims Shape returns: `start` and `end` (opset 15) count from the end when negative and
  /// are clamped into the rank.
  func shapeRange(_ node: Node, rank: Int) -> Range<Int> {
    func clamp(_ i: Int) -> Int { Swift.min(Swift.max(i < 0 ? i + rank : i, 0), rank) }
    let start = clamp(int(node, "start") ?? 0)
    let end = clamp(int(node, "end") ?? rank)
    return start..<Swift.max(start, end)
  }

  mutating func shapeOf(_ node: Node) -> [ValueType?] {
    guard let x = shape(node.input(0)) else { return [.tensor(.int64, shape: [.unknown])] }
    return [.tensor(.int64, shape: [.value(shapeRange(node, rank: x.count).count)])]
  }

  /// ⌈(limit − start) / delta⌉ elements, at least 0.
  mutating func range(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0)) ?? constantTensor(node.input(0))?.dtype
    let unknown = [tensor(dtype, [.unknown])]
    if let start = ints(node.input(0)), let limit = ints(node.input(1)), let delta = ints(node.input(2)),
      start.count == 1, limit.count == 1, delta.count == 1
    {
      guard delta[0] != 0 else {
        report("delta is 0")
        return unknown
      }
      let (span, overflow) = limit[0].subtractingReportingOverflow(start[0])
      let (quotient, divisionOverflow) = span.dividedReportingOverflow(by: delta[0])
      guard !overflow, !divisionOverflow else { return unknown }
      let count = quotient + (span % delta[0] != 0 && (span > 0) == (delta[0] > 0) ? 1 : 0)
      return count > Self.maxDim ? unknown : [tensor(dtype, [.value(Swift.max(count, 0))])]
    }
    guard let start = doubles(node.input(0)), let limit = doubles(node.input(1)), let delta = doubles(node.input(2)),
      start.count == 1, limit.count == 1, delta.count == 1, delta[0] != 0
    else { return unknown }
    let count = Swift.max(((limit[0] - start[0]) / delta[0]).rounded(.up), 0)
    guard count.isFinite, count <= Double(Self.maxDim) else { return unknown }
    return [tensor(dtype, [.value(Int(count))])]
  }
}
