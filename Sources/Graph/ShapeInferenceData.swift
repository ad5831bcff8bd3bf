/// Data propagation: the elements of small integer tensors that describe shapes (the output of
/// Shape, and what Gather, Slice, Concat, Unsqueeze and integer arithmetic make of it), so that
/// Reshape, Expand, ConstantOfShape, ... can use shapes computed inside the graph, symbolic dims
/// included.
///
///     s = Shape(x)             x: float[N,3,8,8]  →  s = [N,3,8,8]
///     n = Gather(s, 0)                            →  n = [N]
///     t = Concat(Unsqueeze(n, [0]), [-1])          →  t = [N,-1]
///     y = Reshape(x, t)                           →  y: float[N,192]
extension ShapeInference {
  /// The most elements a propagated tensor may have.
  static let maxDataElements = 64

  mutating func propagateData(_ node: Node) {
    guard OpType.isDefaultDomain(node.domain), let out = node.output(0), (shape(out)?.count ?? 2) <= 1 else { return }
    var result: [Dim]?
    switch node.opType {
    case OpType.shape: result = shape(node.input(0)).map { Array($0[shapeRange(node, rank: $0.count)]) }
    case OpType.size: result = shape(node.input(0)).map { [DimArithmetic.product($0)] }
    case OpType.identity, OpType.squeeze, OpType.unsqueeze, OpType.reshape: result = elements(node.input(0))
    case OpType.cast:
      let to = node.attribute("to")?.int
      result = to == Int64(DType.int64.rawValue) || to == Int64(DType.int32.rawValue) ? elements(node.input(0)) : nil
    case OpType.gather: result = gatherData(node)
    case OpType.concat:
      let parts = node.inputs.map { elements($0) }
      result = parts.contains { $0 == nil } ? nil : parts.flatMap { $0 ?? [] }
    case OpType.slice: result = sliceData(node)
    case OpType.add, OpType.sub, OpType.mul, OpType.div: result = arithmeticData(node)
    default: result = nil
    }
    if let result, result.count <= Self.maxDataElements { data[out] = result }
  }

  private func gatherData(_ node: Node) -> [Dim]? {
    guard (int(node, "axis") ?? 0) == 0 || int(node, "axis") == -1, let source = elements(node.input(0)),
      let indices = ints(node.input(1))
    else { return nil }
    var picked: [Dim] = []
    for i in indices {
      let j = i < 0 ? i + source.count : i
      guard j >= 0 && j < source.count else { return nil }
      picked.append(source[j])
    }
    return picked
  }

  /// A 1-D slice along axis 0, with inputs (opset 10 on) or attributes.
  private func sliceData(_ node: Node) -> [Dim]? {
    guard let source = elements(node.input(0)) else { return nil }
    let old = opset < 10
    guard let starts = old ? ints(node, "starts") : ints(node.input(1)),
      let ends = old ? ints(node, "ends") : ints(node.input(2)), starts.count == 1, ends.count == 1
    else { return nil }
    let axes = old ? ints(node, "axes") : (has(node, 3) ? ints(node.input(3)) : [0])
    let steps = old ? [1] : (has(node, 4) ? ints(node.input(4)) : [1])
    guard axes == [0] || axes == [-1] || (old && axes == nil), let step = steps?.first, steps?.count == 1,
      step != 0, step != Int.min
    else { return nil }
    let slice = SliceAxis(axis: 0, start: starts[0], end: ends[0], step: step)
    let (first, count) = slice.range(in: source.count)
    return (0..<count).map { source[first + $0 * step] }
  }

  /// Elementwise Add, Sub, Mul, Div on propagated data (a single element broadcasts).
  private func arithmeticData(_ node: Node) -> [Dim]? {
    guard let a = elements(node.input(0)), let b = elements(node.input(1)), !a.isEmpty, !b.isEmpty,
      a.count == b.count || a.count == 1 || b.count == 1
    else { return nil }
    let n = Swift.max(a.count, b.count)
    return (0..<n).map { i in
      Self.combine(a[a.count == 1 ? 0 : i], b[b.count == 1 ? 0 : i], node.opType)
    }
  }

  static func combine(_ a: Dim, _ b: Dim, _ op: String) -> Dim {
    switch (op, a, b) {
    case (OpType.add, .value(let x), .value(let y)): return checked(x.addingReportingOverflow(y))
    case (OpType.sub, .value(let x), .value(let y)): return checked(x.subtractingReportingOverflow(y))
    case (OpType.mul, .value(let x), .value(let y)): return checked(x.multipliedReportingOverflow(by: y))
    case (OpType.div, .value(let x), .value(let y)): return y == 0 || (x == Int.min && y == -1) ? .unknown : .value(x / y)
    case (OpType.add, _, .value(0)), (OpType.sub, _, .value(0)), (OpType.mul, _, .value(1)), (OpType.div, _, .value(1)):
      return a
    case (OpType.add, .value(0), _), (OpType.mul, .value(1), _): return b
    default: return .unknown
    }
  }

  private static func checked(_ result: (partialValue: Int, overflow: Bool)) -> Dim {
    result.overflow ? .unknown : .value(result.partialValue)
  }
}
