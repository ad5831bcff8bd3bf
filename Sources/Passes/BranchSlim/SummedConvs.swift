import Graph

/// Convs on the same input whose outputs are added (RepVGG, ACNet), one Add at a time; see ``BranchSlim``.
///
///     y = Add(Conv(x, W3, b3), Conv(x, W1, b1))   →  y = Conv(x, W3 + pad(W1), b3 + b1)
///     y = Add(Conv(x, W, b), x)                   →  y = Conv(x, W + I, b)
///
/// `pad` places the smaller kernel in the larger window (METHODS §1.7.5); the identity `I` is a 1
/// at the window's centre tap `(m, m mod C/g)` and needs stride 1, and as many output as input
/// channels. Groups must be equal (the kernels add group by group). A chain of Adds merges one
/// Add per change, the greedy driver going on with the merged conv.
struct SummedConvs: RewritePattern {
  static let name = "summed-convs"
  static let rootOpTypes: Set<String>? = [OpType.add]

  let maxOverhead: Double

  struct Match {
    let add: Node
    let input: BranchInput
    /// The conv branches (one or two), and whether the other addend is the input itself.
    let convs: [ConvBranch]
    let identity: Bool
    let window: MergedWindow
    let outputExtents: [Int]
    let macsBefore: Double, macsAfter: Double
  }

  func match(_ add: Node, in graph: Graph) -> Match? {
    guard add.inputs.count == 2, add.outputs.count == 1, let a = add.input(0), let b = add.input(1), a != b,
      add.output(0) != nil
    else { return nil }
    let branches = [a, b].map { v -> ConvBranch? in
      guard let p = graph.producer(of: v), graph.hasSingleUse(v) else { return nil }
      return ConvBranch(p, in: graph)
    }
    let convs = branches.compactMap { $0 }
    guard let first = convs.first else { return nil }
    let x = first.input
    var identity = false
    if convs.count == 1 {
      // The other addend must be the conv's own input.
      guard (branches[0] == nil ? a : b) == x else { return nil }
      identity = true
    }
    guard let input = BranchInput(x, in: graph), input.channels == first.groupChannels * first.group,
      let extents = first.outputExtents(input.spatial),
      convs.allSatisfy({ $0.input == x && $0.slidesLike(first) && $0.outChannels == first.outChannels }),
      convs.allSatisfy({ $0.outputExtents(input.spatial) == extents })
    else { return nil }
    var windows = convs.map(\.window)
    if identity {
      guard first.strides.allSatisfy({ $0 == 1 }), first.outChannels == input.channels, extents == input.spatial
      else { return nil }
      windows.append(.identity(rank: input.spatial.count))
    }
    guard
      let window = MergedWindow(
        windows, spatial: input.spatial, outputs: extents, strides: first.strides, dilations: first.dilations)
    else { return nil }
    let before = convs.reduce(0) { $0 + $1.macs(outputExtents: extents) }
    let after = Double(first.outChannels * first.groupChannels) * Double(window.kernel.reduce(1, *))
      * Double(extents.reduce(1, *))
    guard before > 0, after / before - 1 <= maxOverhead + 1e-12 else { return nil }
    return Match(
      add: add, input: input, convs: convs, identity: identity, window: window, outputExtents: extents,
      macsBefore: before, macsAfter: after)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let graph = rewriter.graph
    let first = m.convs[0]
    let channels = first.outChannels, c = first.groupChannels, taps = m.window.kernel.reduce(1, *)
    var weight = Array(repeating: 0.0, count: channels * c * taps)
    var bias = Array(repeating: 0.0, count: channels)
    for (i, conv) in m.convs.enumerated() {
      m.window.place(
        conv.weight, kernel: conv.kernel, offset: m.window.offsets[i], channels: channels, groupChannels: c,
        firstChannel: 0, into: &weight)
      for (j, v) in (conv.bias ?? []).enumerated() { bias[j] += v }
    }
    if m.identity {
      // A 1 at the identity window's tap, input channel m mod C/g of output channel m.
      let offset = m.window.offsets[m.convs.count]
      var tap = 0
      for a in 0..<offset.count { tap = tap * m.window.kernel[a] + offset[a] }
      for o in 0..<channels { weight[(o * c + o % c) * taps + tap] += 1 }
    }
    let name = BranchSlim.mergedName(m.convs.map(\.node), in: graph) + (m.identity ? "_identity" : "")
    let w = rewriter.addInitializer("\(name)_weight", BranchSlim.float32Tensor(weight, shape: [channels, c] + m.window.kernel))
    var inputs: [ValueID?] = [m.input.value, w]
    if m.convs.contains(where: { $0.bias != nil }) {
      inputs.append(rewriter.addInitializer("\(name)_bias", BranchSlim.float32Tensor(bias, shape: [channels])))
    }
    var attributes: [Attribute] = []
    if first.dilations.contains(where: { $0 != 1 }) { attributes.append(Attribute("dilations", .ints(first.dilations.map(Int64.init)))) }
    if first.group != 1 { attributes.append(Attribute("group", .int(Int64(first.group)))) }
    attributes.append(Attribute("kernel_shape", .ints(m.window.kernel.map(Int64.init))))
    attributes.append(Attribute("pads", .ints(m.window.pads)))
    if first.strides.contains(where: { $0 != 1 }) { attributes.append(Attribute("strides", .ints(first.strides.map(Int64.init)))) }
    let node = try rewriter.addNode(OpType.conv, name: name, inputs: inputs, attributes: attributes)
    let output = rewriter.graph[node].outputs[0]!
    rewriter.setType(graph[m.add.output(0)!].type, of: output)
    rewriter.replaceAllUses(of: m.add.output(0)!, with: output)
    rewriter.erase(m.add.id)
    for conv in m.convs { rewriter.erase(conv.node.id) }
    let parts = m.convs.map { graph.label($0.node) } + (m.identity ? ["identity"] : [])
    return "\(parts.joined(separator: " + ")) summed by \(graph.label(m.add)) merged into \(rewriter.graph.label(rewriter.graph[node])); "
      + "MACs \(BranchSlim.macsText(m.macsBefore)) → \(BranchSlim.macsText(m.macsAfter)) per item"
  }
}
