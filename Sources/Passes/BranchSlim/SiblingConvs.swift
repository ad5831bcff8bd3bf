import Graph

/// Sibling Convs reading the same value, stacked into one Conv (METHODS §1.7.5); see ``BranchSlim``.
///
///     a = Conv(x, Wa, ba); b = Conv(x, Wb)                 →  ab = Conv(x, [Wa; Wb], [ba; 0]); a, b = Split(ab)
///     y = Concat<axis = 1>(Relu(a), Relu(b))               →  y = Relu(Conv(x, [Wa; Wb], [ba; 0]))
///
/// The match starts from the first sibling of the group (in node order), so each group is merged
/// once; siblings the cost model leaves out are offered again on the next sweep.
struct SiblingConvs: RewritePattern {
  static let name = "sibling-convs"
  static let rootOpTypes: Set<String>? = [OpType.conv]

  let maxOverhead: Double
  let minSiblings: Int

  struct Match {
    let input: BranchInput
    /// The siblings, in the order their channels are stacked.
    let branches: [ConvBranch]
    let window: MergedWindow
    let outputExtents: [Int]
    let tail: ConcatTail?
    let macsBefore: Double, macsAfter: Double
  }

  /// The siblings' outputs, each through an identical elementwise op or not, as a run of one Concat's inputs.
  struct ConcatTail {
    let concat: Node
    /// One per branch, in branch order; empty when the convs feed the Concat directly.
    let activations: [Node]
    /// The run of the Concat's input slots the branches fill.
    let slots: Range<Int>
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let root = ConvBranch(node, in: graph), root.group == 1,
      let input = BranchInput(root.input, in: graph), input.channels == root.groupChannels,
      let extents = root.outputExtents(input.spatial)
    else { return nil }
    let siblings = siblingConvs(of: root, input: input, extents: extents, in: graph)
    guard let chosen = choose(siblings, input: input, extents: extents), chosen.first?.node.id == node.id else { return nil }
    let tail = concatTail(of: chosen, rank: input.spatial.count + 2, in: graph)
    var ordered = chosen
    if let tail {
      // Stack in the Concat's order.
      let position = { (b: ConvBranch) in tail.concat.inputs.firstIndex(of: tailValue(b, tail)) ?? 0 }
      ordered.sort { position($0) < position($1) }
    }
    guard
      let window = MergedWindow(
        ordered.map(\.window), spatial: input.spatial, outputs: extents, strides: root.strides, dilations: root.dilations)
    else { return nil }
    let before = ordered.reduce(0) { $0 + $1.macs(outputExtents: extents) }
    let after = macs(of: ordered, window: window, extents: extents)
    var orderedTail: ConcatTail?
    if let tail {
      let activations = ordered.compactMap { b in tail.activations.first { $0.input(0) == b.output } }
      guard activations.count == tail.activations.count else { return nil }
      orderedTail = ConcatTail(concat: tail.concat, activations: activations, slots: tail.slots)
    }
    return Match(
      input: input, branches: ordered, window: window, outputExtents: extents, tail: orderedTail,
      macsBefore: before, macsAfter: after)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let graph = rewriter.graph
    let labels = m.branches.map { graph.label($0.node) }.joined(separator: ", ")
    let name = BranchSlim.mergedName(m.branches.map(\.node), in: graph)
    let merged = try addMergedConv(m, name: name, &rewriter)
    let channels = m.branches.reduce(0) { $0 + $1.outChannels }
    let mergedLabel = rewriter.graph.label(rewriter.graph.producer(of: merged)!)
    let cost = "MACs \(BranchSlim.macsText(m.macsBefore)) → \(BranchSlim.macsText(m.macsAfter)) per item"
    if let tail = m.tail {
      try replaceConcat(tail, m, with: merged, &rewriter)
      return "\(labels) merged into \(mergedLabel) (\(channels) channels), \(graph.label(tail.concat)) removed; \(cost)"
    }
    // Each branch read only by the same per-element activation: apply it once, before the Split,
    // so the merged conv keeps its activation next to it (fuse-activation can then fuse them).
    let activations = m.branches.compactMap { graph.soleConsumer(of: $0.output) }
    let hoisted = activations.count == m.branches.count
      && zip(activations, m.branches).allSatisfy { isPerChannelElementwise($0, on: $1.output, in: graph) }
      && activations.allSatisfy { sameElementwise($0, activations[0]) && $0.output(0) != nil }
    var stacked = merged
    if hoisted {
      let first = activations[0]
      let node = try rewriter.addNode(
        first.opType, name: "\(name)_\(first.opType.lowercased())", inputs: [merged] + Array(first.inputs.dropFirst()),
        attributes: first.attributes)
      stacked = rewriter.graph[node].outputs[0]!
    }
    let sources = hoisted ? activations.map { $0.output(0)! } : m.branches.map(\.output)
    let parts = try rewriter.addBranchSplit(
      of: stacked, axis: 1, sizes: m.branches.map(\.outChannels), name: "\(name)_split",
      outputNames: sources.map { graph[$0].name + "_part" })
    for (index, part) in parts.enumerated() {
      rewriter.setType(graph[sources[index]].type, of: part)
      rewriter.replaceAllUses(of: sources[index], with: part)
      if hoisted { rewriter.erase(activations[index].id) }
      rewriter.erase(m.branches[index].node.id)
    }
    let activation = hoisted ? " + \(activations[0].opType)" : ""
    return "\(labels) merged into \(mergedLabel) (\(channels) channels)\(activation) + Split; \(cost)"
  }

  // MARK: Matching

  /// The convs reading `root`'s input that could merge with it, in node order.
  private func siblingConvs(of root: ConvBranch, input: BranchInput, extents: [Int], in graph: Graph) -> [ConvBranch] {
    var seen = Set<NodeID>(), siblings: [ConvBranch] = []
    for case .input(let id, 0) in graph.uses(of: root.input) where !seen.contains(id) {
      seen.insert(id)
      guard let b = ConvBranch(graph[id], in: graph), b.slidesLike(root), b.outputExtents(input.spatial) == extents
      else { continue }
      siblings.append(b)
    }
    return siblings.sorted { $0.node.id < $1.node.id }
  }

  /// The siblings the cost model merges: all of them while the padding overhead fits the budget,
  /// else shedding the one whose removal lowers it most; nil when fewer than `minSiblings` are left.
  private func choose(_ siblings: [ConvBranch], input: BranchInput, extents: [Int]) -> [ConvBranch]? {
    var set = siblings
    while set.count >= minSiblings {
      guard let current = overhead(set, input: input, extents: extents) else { return nil }
      if current <= maxOverhead + 1e-12 { return set }
      var best: (index: Int, overhead: Double)?
      for i in set.indices.reversed() {
        var rest = set
        rest.remove(at: i)
        guard let o = overhead(rest, input: input, extents: extents) else { continue }
        if best == nil || o < best!.overhead { best = (i, o) }
      }
      guard let drop = best else { return nil }
      set.remove(at: drop.index)
    }
    return nil
  }

  /// Merged MACs over the branches' MACs, minus one; nil when the windows do not align.
  private func overhead(_ set: [ConvBranch], input: BranchInput, extents: [Int]) -> Double? {
    guard let first = set.first,
      let window = MergedWindow(
        set.map(\.window), spatial: input.spatial, outputs: extents, strides: first.strides, dilations: first.dilations)
    else { return nil }
    let before = set.reduce(0) { $0 + $1.macs(outputExtents: extents) }
    return before > 0 ? macs(of: set, window: window, extents: extents) / before - 1 : nil
  }

  private func macs(of set: [ConvBranch], window: MergedWindow, extents: [Int]) -> Double {
    let channels = set.reduce(0) { $0 + $1.outChannels }
    return Double(channels * (set.first?.groupChannels ?? 0)) * Double(window.kernel.reduce(1, *))
      * Double(extents.reduce(1, *))
  }

  /// The Concat all `branches` feed, directly or each through one identical elementwise op.
  private func concatTail(of branches: [ConvBranch], rank: Int, in graph: Graph) -> ConcatTail? {
    var activations: [Node] = [], values: [ValueID] = []
    for b in branches {
      guard let consumer = graph.soleConsumer(of: b.output) else { return nil }
      if consumer.opType == OpType.concat {
        values.append(b.output)
      } else {
        guard isPerChannelElementwise(consumer, on: b.output, in: graph), let out = consumer.output(0) else { return nil }
        activations.append(consumer)
        values.append(out)
      }
    }
    guard activations.isEmpty || activations.count == branches.count else { return nil }
    if let first = activations.first {
      guard activations.allSatisfy({ sameElementwise($0, first) }) else { return nil }
    }
    guard let concat = graph.soleConsumer(of: values[0]), concat.opType == OpType.concat,
      concat.domain.isEmpty || concat.domain == "ai.onnx", concat.outputs.count == 1,
      let axis = concat.attribute("axis")?.int, axis == 1 || axis == Int64(1 - rank),
      values.allSatisfy({ graph.soleConsumer(of: $0)?.id == concat.id })
    else { return nil }
    let slots = values.compactMap { concat.inputs.firstIndex(of: $0) }.sorted()
    guard slots.count == values.count, let low = slots.first, let high = slots.last, high - low + 1 == slots.count
    else { return nil }
    return ConcatTail(concat: concat, activations: activations, slots: low..<(high + 1))
  }

  private func tailValue(_ b: ConvBranch, _ tail: ConcatTail) -> ValueID {
    tail.activations.first { $0.input(0) == b.output }?.output(0) ?? b.output
  }

  /// Whether `node` is a one-output elementwise op that acts on each element of `value` alone (so
  /// it can run once on the stacked channels).
  private func isPerChannelElementwise(_ node: Node, on value: ValueID, in graph: Graph) -> Bool {
    guard node.domain.isEmpty || node.domain == "ai.onnx", node.outputs.count == 1, node.input(0) == value,
      Self.elementwise.contains(node.opType)
    else { return false }
    if node.opType == OpType.clip {
      // min and max, when given, must be scalar constants (the same for every branch, checked after).
      return node.inputs.dropFirst().allSatisfy { $0 == nil || graph.constant($0)?.elementCount == 1 }
    }
    return node.inputs.count == 1
  }

  private func sameElementwise(_ a: Node, _ b: Node) -> Bool {
    a.opType == b.opType && Array(a.inputs.dropFirst()) == Array(b.inputs.dropFirst())
      && attributeText(a) == attributeText(b)
  }

  private func attributeText(_ node: Node) -> [String] {
    node.attributes.map { "\($0.name)=\($0.value)" }.sorted()
  }

  static let elementwise: Set<String> = [
    OpType.relu, OpType.leakyRelu, OpType.sigmoid, OpType.tanh, OpType.hardSigmoid, OpType.hardSwish, OpType.elu,
    OpType.selu, OpType.celu, OpType.softplus, OpType.softsign, OpType.clip, OpType.thresholdedRelu, OpType.mish,
  ]

  // MARK: Rewriting

  /// Adds the stacked Conv; returns its output.
  private func addMergedConv(_ m: Match, name: String, _ rewriter: inout Rewriter) throws -> ValueID {
    let channels = m.branches.reduce(0) { $0 + $1.outChannels }
    let c = m.branches[0].groupChannels
    var weight = Array(repeating: 0.0, count: channels * c * m.window.kernel.reduce(1, *))
    var bias: [Double] = []
    var first = 0
    for (i, b) in m.branches.enumerated() {
      m.window.place(
        b.weight, kernel: b.kernel, offset: m.window.offsets[i], channels: b.outChannels, groupChannels: c,
        firstChannel: first, into: &weight)
      bias += b.bias ?? Array(repeating: 0, count: b.outChannels)
      first += b.outChannels
    }
    let w = rewriter.addInitializer("\(name)_weight", BranchSlim.float32Tensor(weight, shape: [channels, c] + m.window.kernel))
    var inputs: [ValueID?] = [m.input.value, w]
    if m.branches.contains(where: { $0.bias != nil }) {
      inputs.append(rewriter.addInitializer("\(name)_bias", BranchSlim.float32Tensor(bias, shape: [channels])))
    }
    let root = m.branches[0]
    var attributes: [Attribute] = []
    if root.dilations.contains(where: { $0 != 1 }) { attributes.append(Attribute("dilations", .ints(root.dilations.map(Int64.init)))) }
    attributes.append(Attribute("kernel_shape", .ints(m.window.kernel.map(Int64.init))))
    attributes.append(Attribute("pads", .ints(m.window.pads)))
    if root.strides.contains(where: { $0 != 1 }) { attributes.append(Attribute("strides", .ints(root.strides.map(Int64.init)))) }
    let node = try rewriter.addNode(OpType.conv, name: name, inputs: inputs, attributes: attributes)
    let output = rewriter.graph[node].outputs[0]!
    let shape: [Dim] = [m.input.batch, .value(channels)] + m.outputExtents.map { Dim.value($0) }
    rewriter.setType(.tensor(.float, shape: shape), of: output)
    return output
  }

  /// Feeds the merged output (through the kept elementwise op) to the Concat in place of the run,
  /// or in place of the Concat when the run was all of it.
  private func replaceConcat(_ tail: ConcatTail, _ m: Match, with merged: ValueID, _ rewriter: inout Rewriter) throws {
    var value = merged
    if let act = tail.activations.first {
      let node = try rewriter.addNode(
        act.opType, name: BranchSlim.mergedName(tail.activations, in: rewriter.graph), inputs: [merged] + act.inputs.dropFirst(),
        attributes: act.attributes)
      value = rewriter.graph[node].outputs[0]!
      rewriter.setType(rewriter.graph[merged].type, of: value)
    }
    let concatOutput = tail.concat.output(0)!
    if tail.slots.count == tail.concat.inputs.count {
      rewriter.replaceAllUses(of: concatOutput, with: value)
      rewriter.erase(tail.concat.id)
    } else {
      var inputs = tail.concat.inputs
      inputs.replaceSubrange(tail.slots, with: [value])
      rewriter.setInputs(of: tail.concat.id, inputs)
    }
    for act in tail.activations { rewriter.erase(act.id) }
    for b in m.branches { rewriter.erase(b.node.id) }
  }
}
