import Graph

/// Conv → Conv with nothing between as one Conv (METHODS 1.7.4).
///
///     c = Conv<K1, stride s1, dilation d1, pads p>(x, W1, B1)
///     y = Conv<K2, stride s2, dilation d2, pads 0>(c, W2, B2)
///     →  y = Conv<kernel d1(K1−1)+1+d2·s1(K2−1), stride s1·s2, pads p>(x, W, B)
///        W[o, c, a·d2·s1 + u·d1, b·d2·s1 + v·d1] += Σ_m W2[o, m, a, b] · W1[m, c, u, v]
///        B[o] = B2[o] + Σ_{m,a,b} W2[o, m, a, b] · B1[m]
///
/// Both group 1. The second conv's pads must be 0: the original pads c with zeros, where the
/// composite would compute the first conv (and its bias). With a 1×1 second conv this is the
/// per-pixel matrix product W2·W1. Merging pays for a bottleneck (M2 ≤ M1), not for a widening
/// 1×1 after a 3×3: the cost model compares M2·C·K² with M1·C·K1²·s2² + M2·M1·K2² per pixel.
struct ConvConv: RewritePattern {
  static let name = "conv-conv"
  static let rootOpTypes: Set<String>? = [OpType.conv]

  let cost: StreamCostModel

  struct Match {
    let first: ConvLayer
    let second: ConvLayer
    let merged: Window2D
    let macsBefore: Double, macsAfter: Double
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let c = node.input(0), graph.hasSingleUse(c),
      let producer = graph.producer(of: c), let first = ConvLayer(producer, in: graph), first.window.group == 1,
      let second = ConvLayer(node, in: graph), second.window.group == 1, !second.window.hasPads,
      second.channels == first.outChannels, second.spatial == first.outputSpatial
    else { return nil }
    let (w1, w2) = (first.window, second.window)
    let merged = Window2D(
      kernel: (0..<2).map { w1.dilations[$0] * (w1.kernel[$0] - 1) + 1 + w2.dilations[$0] * w1.strides[$0] * (w2.kernel[$0] - 1) },
      strides: (0..<2).map { w1.strides[$0] * w2.strides[$0] },
      dilations: [1, 1], pads: w1.pads, group: 1)
    guard merged.outputSize(first.spatial) == second.outputSpatial else { return nil }
    let macsBefore = first.macs + second.macs
    guard
      let macsAfter = StreamCostModel.convMACs(
        batch: first.batch, outChannels: second.outChannels, kernelChannels: first.channels, kernel: merged.kernel,
        output: second.outputSpatial),
      cost.accepts(macsBefore: macsBefore, macsAfter: macsAfter) else { return nil }
    return Match(first: first, second: second, merged: merged, macsBefore: macsBefore, macsAfter: macsAfter)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let graph = rewriter.graph
    let firstLabel = graph.label(m.first.node), secondLabel = graph.label(m.second.node)
    guard let w1 = Kernel4(m.first.weight), let w2 = Kernel4(m.second.weight),
      let weightName = m.second.node.input(1).map({ graph[$0].name })
    else { throw StreamSlimError.unreadable }
    let composite = Kernel4.compose(
      outer: w2, outerDilation: m.second.window.dilations, inner: w1, innerStride: m.first.window.strides,
      innerDilation: m.first.window.dilations)
    let weight = rewriter.addInitializer(weightName + "_merged", composite.tensor)
    var inputs: [ValueID?] = [m.first.input, weight]
    if m.first.bias != nil || m.second.bias != nil {
      guard let bias = mergedBias(m, w2: w2, in: graph) else { throw StreamSlimError.unreadable }
      let base = m.second.bias.map { graph[$0].name } ?? weightName + "_bias"
      inputs.append(rewriter.addInitializer(base + "_merged", Tensor(floats: bias.map { Float($0) }, shape: [bias.count])))
    }
    rewriter.setInputs(of: m.second.node.id, inputs)
    try rewriter.setAttributes(of: m.second.node.id, m.merged.convAttributes)
    rewriter.erase(m.first.node.id)
    return "\(firstLabel) + \(secondLabel) merged into \(secondLabel) (\(m.merged.summary)): "
      + StreamCostModel.describe(macsBefore: m.macsBefore, macsAfter: m.macsAfter)
  }

  /// B[o] = B2[o] + Σ_{m,a,b} W2[o, m, a, b] · B1[m].
  private func mergedBias(_ m: Match, w2: Kernel4, in graph: Graph) -> [Double]? {
    let (m2, m1) = (w2.shape[0], w2.shape[1])
    let taps = w2.shape[2] * w2.shape[3]
    var bias = Array(repeating: 0.0, count: m2)
    if let b2 = m.second.bias {
      guard let values = graph.constant(b2)?.doubles, values.count == m2 else { return nil }
      bias = values
    }
    if let b1 = m.first.bias {
      guard let values = graph.constant(b1)?.doubles, values.count == m1 else { return nil }
      for o in 0..<m2 {
        for i in 0..<m1 where values[i] != 0 {
          var sum = 0.0
          for t in 0..<taps { sum += w2.values[(o * m1 + i) * taps + t] }
          bias[o] += sum * values[i]
        }
      }
    }
    return bias
  }
}
