import Graph
import Runtime

/// An LRN after a MaxPool after a conv (+activations), GoogLeNet's `pool1/norm1`: the LRN is
/// moved before the pool and fitted into the conv, the pool kept.
///
///     a = [f](Conv(x, W, B)); p = MaxPool(a); y = LRN(p)
///       →  y ≈ MaxPool([f](Conv(x, W*, B*)))        with [f](Conv(x, W*, B*)) ≈ LRN(a)
///
/// LRN and MaxPool do not commute exactly: LRN scales each position by a function of the channel
/// energy around it, `(bias + α/size·Σ a²)^−β`, and the pool picks each channel's maximum over a
/// window, so `MaxPool(LRN(a))` equals `LRN(MaxPool(a))` where that scale is the same over the
/// window (α = 0 exactly; GoogLeNet's α = 1e-4 nearly). The conv is fitted as in `conv-lrn-fit`,
/// its targets the LRN applied to the original model's pre-pool value a (the LRN's own kernel);
/// the budget then measures the whole rewrite, commutation included, on the model's outputs.
/// `conv-maxpool-fit` takes the pool first where it fits within the budget (the pool comes first
/// in the sweep), and `conv-lrn-fit` the LRN after it; this rewrite is for the budgets that keep
/// the pool. The pool's output takes the LRN output's name; the conv's and activations' values
/// get `_merged` names.
struct ConvPoolLRNFit: FittedRewrite {
  static let name = "conv-maxpool-lrn-fit"
  static let rootOpTypes: Set<String> = [OpType.lrn]

  struct Match {
    let source: ActivatedConv
    let pool: Node
    let lrn: Node
    let gain: Double
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let gain = ConvLRNFit.lrnGain(node, in: graph), let pooled = node.input(0), graph.hasSingleUse(pooled),
      let pool = graph.producer(of: pooled), pool.opType == OpType.maxPool, OpType.isDefaultDomain(pool.domain),
      pool.inputs.count == 1, pool.outputs.count == 1,
      let source = ActivatedConv(feeding: pool.input(0), in: graph)
    else { return nil }
    return Match(source: source, pool: pool, lrn: node, gain: gain)
  }

  func describe(_ m: Match, in graph: Graph) -> String {
    "\(m.source.label(in: graph)) + \(graph.label(m.pool)) + \(graph.label(m.lrn)): the LRN moved before the pool "
      + "and fitted into \(graph.label(m.source.conv.node))"
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter, calibration: Calibration) throws -> [String: Double] {
    let graph = rewriter.graph
    guard let y = m.lrn.output(0), let p = m.pool.output(0) else { throw SlimFitError.shapes("the LRN lost its output") }
    let fit = try ConvLRNFit.layerFit(m.source, gain: m.gain, in: graph)
    let (lrn, opset) = (m.lrn.id, rewriter.opset)
    let result = try fit.fit(input: graph[m.source.conv.input].name, target: graph[m.source.output].name, rewriter, calibration) {
      a throws in
      guard let normalized = try KernelRegistry.standard.evaluate(lrn, in: graph, opset: opset, inputs: [a]).first else {
        throw SlimFitError.shapes("the LRN gave no output")
      }
      return normalized
    }
    let activated = m.source.output, lrnName = graph[y].name
    try m.source.installWeights(fit, result, window: nil, type: graph[activated].type, &rewriter)
    rewriter.rename(activated, to: rewriter.graph.uniqueName(graph[activated].name + "_merged"))
    rewriter.replaceAllUses(of: y, with: p)
    rewriter.erase(m.lrn.id)
    rewriter.rename(p, to: lrnName)
    return result.metrics
  }
}
