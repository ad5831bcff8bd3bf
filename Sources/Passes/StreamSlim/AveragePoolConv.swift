import Graph

/// AveragePool → Conv as one strided Conv (METHODS 1.7.6).
///
///     a = AveragePool<kernel k, stride s, pads 0>(x)
///     y = Conv<K2, stride s2, dilation d2, pads 0, group g>(a, W2, B)
///     →  y = Conv<kernel d2·s(K2−1)+k, stride s·s2, pads 0, group g>(x, W', B)
///        W'[o, c, u·d2·s + a, v·d2·s + b] += W2[o, c, u, v] / (kh·kw)
///
/// The conv's pads must be 0: the original pads the pool's output with zeros, the composite could
/// only pad x. The pool is per channel, so any group works.
struct AveragePoolConv: RewritePattern {
  static let name = "averagepool-conv"
  static let rootOpTypes: Set<String>? = [OpType.conv]

  let cost: StreamCostModel

  struct Match {
    let pool: PoolLayer
    let conv: ConvLayer
    let merged: Window2D
    let macsBefore: Double, macsAfter: Double
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let a = node.input(0), graph.hasSingleUse(a),
      let producer = graph.producer(of: a), let pool = PoolLayer(producer, in: graph),
      let conv = ConvLayer(node, in: graph), !conv.window.hasPads,
      conv.channels == pool.channels, conv.spatial == pool.outputSpatial
    else { return nil }
    let (w2, k, s) = (conv.window, pool.window.kernel, pool.window.strides)
    let merged = Window2D(
      kernel: (0..<2).map { w2.dilations[$0] * s[$0] * (w2.kernel[$0] - 1) + k[$0] },
      strides: (0..<2).map { s[$0] * w2.strides[$0] },
      dilations: [1, 1], pads: [0, 0, 0, 0], group: w2.group)
    guard merged.outputSize(pool.spatial) == conv.outputSpatial else { return nil }
    let macsBefore = pool.macs + conv.macs
    guard
      let macsAfter = StreamCostModel.convMACs(
        batch: conv.batch, outChannels: conv.outChannels, kernelChannels: conv.kernelChannels, kernel: merged.kernel,
        output: conv.outputSpatial),
      cost.accepts(macsBefore: macsBefore, macsAfter: macsAfter) else { return nil }
    return Match(pool: pool, conv: conv, merged: merged, macsBefore: macsBefore, macsAfter: macsAfter)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let graph = rewriter.graph
    let convLabel = graph.label(m.conv.node), poolLabel = graph.label(m.pool.node)
    guard let w2 = Kernel4(m.conv.weight), let weightName = m.conv.node.input(1).map({ graph[$0].name }) else {
      throw StreamSlimError.unreadable
    }
    let spread = (0..<2).map { m.conv.window.dilations[$0] * m.pool.window.strides[$0] }
    let composite = w2.boxed(m.pool.window.kernel, step: [1, 1], dilation: spread)
    let weight = rewriter.addInitializer(weightName + "_merged", composite.tensor)
    rewriter.setInputs(of: m.conv.node.id, [m.pool.input, weight] + (m.conv.bias.map { [$0] } ?? []))
    try rewriter.setAttributes(of: m.conv.node.id, m.merged.convAttributes)
    rewriter.erase(m.pool.node.id)
    return "\(poolLabel) + \(convLabel) merged into \(convLabel) (\(m.merged.summary)): "
      + StreamCostModel.describe(macsBefore: m.macsBefore, macsAfter: m.macsAfter)
  }
}
