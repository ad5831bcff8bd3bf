import Graph

/// The erf Gelu `x·½·(1 + erf(x/√2))` spelled out in Mul, Add, Erf and Div (or Mul by 1/√2);
/// see ``FuseAttention``.
///
/// The root Mul's two operands, with one of them opened when it is a single-use Mul, must be the
/// three factors x, ½ and `Add(Erf(x/√2), 1)`, in any order: `(x·(1+erf))·½`, `x·((1+erf)·½)`,
/// `(x·½)·(1+erf)`, …
struct ErfGelu: RewritePattern {
  static let name = "erf-gelu"
  static let rootOpTypes: Set<String>? = [OpType.mul]
  let opset: Int

  struct Match {
    let root: Node
    let x: ValueID
    /// The inner Mul (if any), Add, Erf, Div or Mul: every node but the root.
    let nodes: [Node]
  }

  func match(_ root: Node, in graph: Graph) -> Match? {
    guard root.inputs.count == 2, root.outputs.count == 1, root.output(0) != nil, let a = root.input(0),
      let b = root.input(1)
    else { return nil }
    // The three factors: both operands of the root, one of them opened when it is a Mul.
    var candidates: [([ValueID], Node?)] = [([a, b], nil)]
    for (open, keep) in [(a, b), (b, a)] {
      if let inner = graph.soleProducer(of: open, OpType.mul), inner.inputs.count == 2, let p = inner.input(0),
        let q = inner.input(1)
      {
        candidates.append(([p, q, keep], inner))
      }
    }
    for (factors, inner) in candidates where factors.count == 3 {
      if let m = gelu(factors, in: graph) { return Match(root: root, x: m.x, nodes: (inner.map { [$0] } ?? []) + m.nodes) }
    }
    return nil
  }

  /// x, ½ and `Add(Erf(x/√2), 1)` among `factors`.
  private func gelu(_ factors: [ValueID], in graph: Graph) -> (x: ValueID, nodes: [Node])? {
    for (i, factor) in factors.enumerated() {
      guard let add = graph.soleProducer(of: factor, OpType.add), add.inputs.count == 2 else { continue }
      for (e, one) in [(0, 1), (1, 0)] {
        guard let erf = graph.soleProducer(of: add.input(e), OpType.erf), erf.inputs.count == 1,
          let scaled = scaledInput(erf.input(0), in: graph), let rank = graph.shape(of: scaled.x)?.count,
          graph.elementType(of: scaled.x) == .float, isClose(graph.scalarConstant(add.input(one), maxRank: rank), to: 1)
        else { continue }
        let rest = factors.enumerated().filter { $0.offset != i }.map(\.element)
        guard rest.contains(scaled.x), case let half = rest[0] == scaled.x ? rest[1] : rest[0],
          isClose(graph.scalarConstant(half, maxRank: rank), to: 0.5), scaled.maxRank <= rank
        else { continue }
        return (scaled.x, [add, erf, scaled.node])
      }
    }
    return nil
  }

  /// `Div(x, √2)` or `Mul(x, 1/√2)` (either side), with the rank of its constant.
  private func scaledInput(_ value: ValueID?, in graph: Graph) -> (x: ValueID, node: Node, maxRank: Int)? {
    if let div = graph.soleProducer(of: value, OpType.div), div.inputs.count == 2, let x = div.input(0),
      let r = graph.constant(div.input(1))?.shape.count, isClose(graph.scalarConstant(div.input(1), maxRank: r), to: 2.0.squareRoot())
    {
      return (x, div, r)
    }
    guard let mul = graph.soleProducer(of: value, OpType.mul), mul.inputs.count == 2 else { return nil }
    for (s, c) in [(0, 1), (1, 0)] {
      if let x = mul.input(s), let r = graph.constant(mul.input(c))?.shape.count,
        isClose(graph.scalarConstant(mul.input(c), maxRank: r), to: 0.5.squareRoot())
      {
        return (x, mul, r)
      }
    }
    return nil
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let output = m.root.outputs[0]!, graph = rewriter.graph
    let outputName = graph[output].name, outputType = graph[output].type
    // The standard Gelu (opset 20) computes the same; earlier opsets need the contrib one.
    let standard = opset >= 20
    let gelu = try rewriter.addNode(
      standard ? OpType.gelu : OpType.Contrib.gelu, name: "gelu", inputs: [m.x], outputs: [outputName + "_gelu"],
      domain: standard ? "" : OpType.Contrib.domain)
    let fused = rewriter.graph[gelu].outputs[0]!
    rewriter.setType(outputType, of: fused)
    rewriter.replaceAllUses(of: output, with: fused)
    for node in [m.root] + m.nodes { rewriter.erase(node.id) }
    rewriter.rename(fused, to: outputName)
    if !standard { rewriter.importDomain(OpType.Contrib.domain, version: OpType.Contrib.version) }
    return "erf Gelu (\(m.nodes.count + 1) nodes) fused into \(standard ? "Gelu" : OpType.Contrib.domain + ".Gelu")"
  }
}
