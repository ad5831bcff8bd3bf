import Graph

/// Sibling MatMuls (each optionally followed by Add of a constant bias) or Gemms with constant
/// weights reading the same value, stacked into one; see ``BranchSlim``.
///
///     q = Add(MatMul(x, Wq), bq); k = MatMul(x, Wk)          →  qk = Add(MatMul(x, [Wq | Wk]), [bq | 0]);
///                                                               q, k = Split<axis = -1>(qk)
///     a = Gemm<alpha, beta, transB>(x, Ba, Ca); b = Gemm(x, Bb)  →  ab = Gemm(x, [α·Ba' | Bb'], [β·Ca | 0]);
///                                                               a, b = Split<axis = 1>(ab)
///
/// `B'` is `B` transposed when `transB = 1`; Gemm needs `transA = 0` and a bias `C` that is a
/// scalar or one row (`[N]` or `[1, N]`). Weights are `[K, N]` float32 initializers.
struct SiblingLinears: RewritePattern {
  static let name = "sibling-linears"
  static let rootOpTypes: Set<String>? = [OpType.matMul, OpType.gemm]

  let minSiblings: Int

  struct Branch {
    let node: Node
    /// The Add of a constant bias after a MatMul, if any.
    let biasAdd: Node?
    /// `[K, N]`, row-major, scaled by Gemm's alpha.
    let weight: [Double]
    let inFeatures: Int, outFeatures: Int
    let bias: [Double]?
    /// The value the branch's readers read.
    var output: ValueID { (biasAdd ?? node).output(0)! }
  }

  struct Match {
    let x: ValueID
    let op: String
    let branches: [Branch]
    /// The axis the Split cuts: the last.
    let axis: Int
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let x = node.input(0), let rank = graph.shape(of: x)?.count, rank >= 1,
      node.opType == OpType.matMul || rank == 2,
      let root = branch(node, x: x, rank: rank, in: graph)
    else { return nil }
    var seen = Set<NodeID>(), branches: [Branch] = []
    for case .input(let id, 0) in graph.uses(of: x) where !seen.contains(id) {
      seen.insert(id)
      let n = graph[id]
      guard n.opType == node.opType, n.domain == node.domain, let b = branch(n, x: x, rank: rank, in: graph),
        b.inFeatures == root.inFeatures
      else { continue }
      branches.append(b)
    }
    branches.sort { $0.node.id < $1.node.id }
    guard branches.count >= minSiblings, branches[0].node.id == node.id else { return nil }
    return Match(x: x, op: node.opType, branches: branches, axis: rank - 1)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let graph = rewriter.graph
    let k = m.branches[0].inFeatures, n = m.branches.reduce(0) { $0 + $1.outFeatures }
    var weight = Array(repeating: 0.0, count: k * n), bias: [Double] = []
    var column = 0
    for b in m.branches {
      for r in 0..<k {
        for j in 0..<b.outFeatures { weight[r * n + column + j] = b.weight[r * b.outFeatures + j] }
      }
      bias += b.bias ?? Array(repeating: 0, count: b.outFeatures)
      column += b.outFeatures
    }
    let name = BranchSlim.mergedName(m.branches.map(\.node), in: graph)
    let w = rewriter.addInitializer("\(name)_weight", BranchSlim.float32Tensor(weight, shape: [k, n]))
    let hasBias = m.branches.contains { $0.bias != nil }
    let merged: NodeID
    var last: NodeID
    if m.op == OpType.gemm {
      var inputs: [ValueID?] = [m.x, w]
      if hasBias { inputs.append(rewriter.addInitializer("\(name)_bias", BranchSlim.float32Tensor(bias, shape: [n]))) }
      merged = try rewriter.addNode(OpType.gemm, name: name, inputs: inputs)
      last = merged
    } else {
      merged = try rewriter.addNode(OpType.matMul, name: name, inputs: [m.x, w])
      last = merged
      if hasBias {
        let b = rewriter.addInitializer("\(name)_bias", BranchSlim.float32Tensor(bias, shape: [n]))
        last = try rewriter.addNode(OpType.add, name: "\(name)_add", inputs: [rewriter.graph[merged].outputs[0]!, b])
      }
    }
    let stacked = rewriter.graph[last].outputs[0]!
    if var shape = graph.shape(of: m.branches[0].output) {
      shape[m.axis] = .value(n)
      rewriter.setType(.tensor(.float, shape: shape), of: stacked)
    }
    let parts = try rewriter.addBranchSplit(
      of: stacked, axis: m.axis, sizes: m.branches.map(\.outFeatures), name: "\(name)_split",
      outputNames: m.branches.map { graph[$0.output].name + "_part" })
    for (b, part) in zip(m.branches, parts) {
      rewriter.setType(graph[b.output].type, of: part)
      rewriter.replaceAllUses(of: b.output, with: part)
      if let add = b.biasAdd { rewriter.erase(add.id) }
      rewriter.erase(b.node.id)
    }
    let labels = m.branches.map { b in ([b.node] + (b.biasAdd.map { [$0] } ?? [])).map(graph.label).joined(separator: " + ") }
    let mergedLabel = rewriter.graph.label(rewriter.graph[merged])
    let biasNote = last == merged ? "" : " + Add"
    return "\(labels.joined(separator: ", ")) merged into \(mergedLabel) (\(n) features)\(biasNote) + Split"
  }

  /// Reads `node` as a linear branch on `x` (of rank `rank`); nil on anything unusual.
  private func branch(_ node: Node, x: ValueID, rank: Int, in graph: Graph) -> Branch? {
    guard node.domain.isEmpty || node.domain == "ai.onnx", node.outputs.count == 1, let out = node.output(0),
      node.input(0) == x, let w = graph.constant(node.input(1)), w.dtype == .float, w.shape.count == 2,
      let values = w.doubles, w.shape.allSatisfy({ $0 > 0 })
    else { return nil }
    if node.opType == OpType.gemm {
      guard node.attribute("transA")?.int ?? 0 == 0 else { return nil }
      let transB = node.attribute("transB")?.int ?? 0 != 0
      let alpha = Double(node.attribute("alpha")?.float ?? 1), beta = Double(node.attribute("beta")?.float ?? 1)
      let (k, n) = transB ? (w.shape[1], w.shape[0]) : (w.shape[0], w.shape[1])
      var weight = Array(repeating: 0.0, count: k * n)
      for r in 0..<k { for j in 0..<n { weight[r * n + j] = alpha * (transB ? values[j * k + r] : values[r * n + j]) } }
      var bias: [Double]?
      if node.inputs.count > 2, let c = node.input(2) {
        guard let t = graph.constant(c), t.dtype == .float, let v = t.doubles, t.shape.count <= 2,
          t.shape.dropLast().allSatisfy({ $0 == 1 }), v.count == n || v.count == 1
        else { return nil }
        bias = v.count == n ? v.map { beta * $0 } : Array(repeating: beta * v[0], count: n)
      }
      return Branch(node: node, biasAdd: nil, weight: weight, inFeatures: k, outFeatures: n, bias: bias)
    }
    guard node.opType == OpType.matMul, node.inputs.count == 2 else { return nil }
    let n = w.shape[1]
    var biasAdd: Node?, bias: [Double]?
    if let add = graph.soleConsumer(of: out), add.opType == OpType.add, add.domain == node.domain,
      add.inputs.count == 2, add.outputs.count == 1, add.output(0) != nil
    {
      let other = add.input(0) == out ? add.input(1) : add.input(0)
      if let t = graph.constant(other), t.dtype == .float, t.shape.count <= rank, t.shape.last == n,
        t.shape.dropLast().allSatisfy({ $0 == 1 }), let v = t.doubles
      {
        biasAdd = add
        bias = v
      }
    }
    return Branch(node: node, biasAdd: biasAdd, weight: values, inFeatures: w.shape[0], outFeatures: n, bias: bias)
  }
}
