import Graph
import Linalg

/// How factorize-kronecker writes a Kronecker sum into the graph (METHODS §3.3): Reshape, MatMul,
/// Transpose and Reshape only, so any ONNX runtime computes it without the dense weight.
struct KroneckerLowering {
  let layer: EligibleLayer
  /// Leading dims of x (its rank minus one).
  let leading: Int
  /// The Gemm's bias C, as the Add after the product reads it: the value itself (beta 1) or
  /// beta·C as a new constant.
  enum Bias { case none, value(ValueID), scaled(Tensor) }
  let bias: Bias

  /// Nil when x's rank is unknown or a Gemm bias cannot be carried (beta ≠ 1 on a non-constant C).
  init?(_ layer: EligibleLayer, in graph: Graph) {
    let node = layer.node
    guard let x = node.input(0), let rank = graph.shape(of: x)?.count, rank >= 1 else { return nil }
    if case .gemm = layer.kind, rank != 2 { return nil }
    leading = rank - 1
    self.layer = layer
    if node.opType == OpType.gemm, let c = node.input(2) {
      let beta = node.attribute("beta")?.float ?? 1
      if beta == 1 {
        bias = .value(c)
      } else {
        guard beta.isFinite, let t = graph.constant(c), t.dtype == .float, let v = t.floats else { return nil }
        bias = .scaled(Tensor(floats: v.map { $0 * beta }, shape: t.shape))
      }
    } else {
      bias = .none
    }
  }

  /// Rewrites the layer as `sum` (plus `doping`); the original node becomes the last op, so the
  /// output keeps its name and consumers.
  func rewrite(_ sum: KroneckerSum, doping: KroneckerDoping?, _ rewriter: inout Rewriter) throws {
    let node = layer.node, s = sum.split, r = sum.terms
    let base = node.name.isEmpty ? rewriter.graph[layer.weight].name : node.name
    guard let x = node.input(0) else { return }
    let keep = [Int](repeating: 0, count: leading)
    var step = 0
    func add(_ op: String, _ inputs: [ValueID?], _ attributes: [Attribute] = []) throws -> ValueID {
      step += 1
      let id = try rewriter.addNode(op, name: "\(base)_kron\(step)", inputs: inputs, attributes: attributes)
      return rewriter.graph[id].output(0)!
    }
    func shape(_ dims: [Int]) -> ValueID {
      rewriter.addInitializer(base + "_kron_shape", Tensor(int64s: (keep + dims).map(Int64.init), shape: [leading + dims.count]))
    }
    func constant(_ suffix: String, _ m: Matrix) -> ValueID {
      rewriter.addInitializer(base + suffix, Tensor(floats: m.elements, shape: [m.rows, m.columns]))
    }
    let swapLast = Attribute("perm", .ints((Array(0..<leading) + [leading + 1, leading]).map(Int64.init)))
    // First factor F contracts c, then G contracts s (the r terms summed inside that product).
    let aFirst = s.aFirst
    let (sRows, f) = aFirst ? (s.p2, s.q1) : (s.p1, s.q2)
    var t = try add(OpType.reshape, [x, shape([s.p1, s.p2])])
    if aFirst { t = try add(OpType.transpose, [t], [swapLast]) }  // [..., p2, p1]
    t = try add(OpType.matMul, [t, constant(aFirst ? "_kron_a" : "_kron_b", aFirst ? sum.concatenatedA : sum.concatenatedB)])
    if r > 1 {
      t = try add(OpType.reshape, [t, shape([sRows, r, f])])
      let perm = Array(0..<leading) + [leading + 2, leading + 1, leading]
      t = try add(OpType.transpose, [t], [Attribute("perm", .ints(perm.map(Int64.init)))])
      t = try add(OpType.reshape, [t, shape([f, r * sRows])])
    } else {
      t = try add(OpType.transpose, [t], [swapLast])
    }
    t = try add(OpType.matMul, [t, constant(aFirst ? "_kron_b" : "_kron_a", aFirst ? sum.stackedB : sum.stackedA)])
    if !aFirst { t = try add(OpType.transpose, [t], [swapLast]) }  // [..., q1, q2]
    // The terms still to add: the doping correction and the bias.
    var addends: [ValueID] = []
    if let d = doping {
      let rows = rewriter.addInitializer(base + "_dope_rows", Tensor(int64s: d.rows.map(Int64.init), shape: [d.rows.count]))
      let gathered = try add(OpType.gather, [x, rows], [Attribute("axis", .int(-1))])
      addends.append(try add(OpType.matMul, [gathered, constant("_dope", d.values)]))
    }
    switch bias {
    case .none: break
    case .value(let v): addends.append(v)
    case .scaled(let tensor): addends.append(rewriter.addInitializer(base + "_bias", tensor))
    }
    let final = shape([s.q1 * s.q2])
    if addends.isEmpty {
      try become(OpType.reshape, inputs: [t, final], &rewriter)
      return
    }
    var y = try add(OpType.reshape, [t, final])
    for a in addends.dropLast() { y = try add(OpType.add, [y, a]) }
    try become(OpType.add, inputs: [y, addends.last!], &rewriter)
  }

  /// Turns the original node into `op` reading `inputs`, without attributes.
  private func become(_ op: String, inputs: [ValueID], _ rewriter: inout Rewriter) throws {
    rewriter.setOpType(op, of: layer.node.id)
    rewriter.setInputs(of: layer.node.id, inputs)
    try rewriter.setAttributes(of: layer.node.id, [])
  }
}
