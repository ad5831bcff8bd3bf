import Graph

/// Conv → AveragePool as one strided Conv (METHODS 1.7.2, worked example 1.7.3).
///
///     c = Conv<K1, stride s1, dilation d1, pads p, group g>(x, W1, B)
///     y = AveragePool<kernel k, stride s, pads 0>(c)
///     →  y = Conv<kernel d1(K1−1)+1+(k−1)s1, stride s1·s, pads p, group g>(x, W', B)
///        W'[m, c, a·s1 + u·d1, b·s1 + v·d1] += W1[m, c, u, v] / (kh·kw)
///
/// The bias stays (the average of a constant is the constant) and so do the conv's pads, even
/// asymmetric ones: the composite pads x exactly as the conv did. The pool is per channel, so any
/// group works. Pool pads would average the conv's zero-padded output, which the composite cannot.
struct ConvAveragePool: RewritePattern {
  static let name = "conv-averagepool"
  static let rootOpTypes: Set<String>? = [OpType.averagePool]

  let cost: StreamCostModel

  struct Match {
    let conv: ConvLayer
    let pool: PoolLayer
    let merged: Window2D
    let macsBefore: Double, macsAfter: Double
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let c = node.input(0), graph.hasSingleUse(c),
      let producer = graph.producer(of: c), let conv = ConvLayer(producer, in: graph),
      let pool = PoolLayer(node, in: graph), pool.channels == conv.outChannels, pool.spatial == conv.outputSpatial
    else { return nil }
    let (w1, k, s1, d1) = (conv.window, pool.window.kernel, conv.window.strides, conv.window.dilations)
    let merged = Window2D(
      kernel: (0..<2).map { d1[$0] * (w1.kernel[$0] - 1) + 1 + (k[$0] - 1) * s1[$0] },
      strides: (0..<2).map { s1[$0] * pool.window.strides[$0] },
      dilations: [1, 1], pads: w1.pads, group: w1.group)
    guard merged.outputSize(conv.spatial) == pool.outputSpatial else { return nil }
    let macsBefore = conv.macs + pool.macs
    guard
      let macsAfter = StreamCostModel.convMACs(
        batch: conv.batch, outChannels: conv.outChannels, kernelChannels: conv.kernelChannels, kernel: merged.kernel,
        output: pool.outputSpatial),
      cost.accepts(macsBefore: macsBefore, macsAfter: macsAfter) else { return nil }
    return Match(conv: conv, pool: pool, merged: merged, macsBefore: macsBefore, macsAfter: macsAfter)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let graph = rewriter.graph
    let convLabel = graph.label(m.conv.node), poolLabel = graph.label(m.pool.node)
    guard let c = m.conv.node.output(0), let y = m.pool.node.output(0), let w1 = Kernel4(m.conv.weight),
      let weightName = m.conv.node.input(1).map({ graph[$0].name })
    else { throw StreamSlimError.unreadable }
    let composite = w1.boxed(m.pool.window.kernel, step: m.conv.window.strides, dilation: m.conv.window.dilations)
    let weight = rewriter.addInitializer(weightName + "_merged", composite.tensor)
    rewriter.setInput(1, of: m.conv.node.id, to: weight)
    try rewriter.setAttributes(of: m.conv.node.id, m.merged.convAttributes)
    rewriter.setType(graph[y].type, of: c)
    rewriter.replaceAllUses(of: y, with: c)
    rewriter.erase(m.pool.node.id)
    return "\(convLabel) + \(poolLabel) merged into \(convLabel) (\(m.merged.summary)): "
      + StreamCostModel.describe(macsBefore: m.macsBefore, macsAfter: m.macsAfter)
  }
}

/// A weight the match accepted could not be read back in the rewrite (rolled back).
enum StreamSlimError: Error, CustomStringConvertible {
  case unreadable
  var description: String { "a weight could not be read" }
}
