import Graph

/// Multi-head self-attention from its Q/K/V projections to the merged heads; see ``FuseAttention``.
struct SelfAttention: RewritePattern {
  static let name = "self-attention"
  static let rootOpTypes: Set<String>? = [OpType.reshape]
  let opset: Int

  /// One of the Q, K, V projections: `Reshape(x·W + b, [B,S,H,D])`.
  struct Projection {
    let input: ValueID
    let weight: Tensor
    let bias: Tensor?
    /// The shape of the heads, [B,S,H,D].
    let heads: [Dim]
    /// Reshape, Add, MatMul.
    let nodes: [Node]
  }

  /// The scores before Softmax: `MatMul(q, k)·scale (+ mask)`.
  struct Scores {
    let qk: Node
    var scale: Double
    var mask: ValueID?
    /// Add, Div or Mul, MatMul.
    var nodes: [Node]
  }

  struct Match {
    let root: Node
    let input: ValueID
    let inputWidth: Int
    let heads: Int
    let headSize: Int
    /// The `scale` attribute: nil when the graph's scale is 1/√D.
    let scale: Float?
    /// The additive mask, and the [B or 1, 1, S, S] it is expanded to when its third axis is 1.
    let mask: ValueID?
    let maskExpansion: [Int64]?
    /// Q, K, V.
    let projections: [Projection]
    /// Every node of the pattern but the projections, each before the nodes it reads.
    let nodes: [Node]
    let outputType: ValueType?
  }

  func match(_ root: Node, in graph: Graph) -> Match? {
    guard root.inputs.count == 2, let output = root.output(0), let merged = graph.shape(of: output),
      let ctxT = graph.soleProducer(of: root.input(0), OpType.transpose), perm(ctxT) == [0, 2, 1, 3],
      let ctx = graph.soleProducer(of: ctxT.input(0), OpType.matMul),
      let probs = graph.soleProducer(of: ctx.input(0), OpType.softmax), softmaxOnLastAxis(probs),
      let scores = scores(probs.input(0), in: graph),
      let qT = graph.soleProducer(of: scores.qk.input(0), OpType.transpose), perm(qT) == [0, 2, 1, 3],
      let key = keyHeads(scores.qk.input(1), in: graph),
      let vT = graph.soleProducer(of: ctx.input(1), OpType.transpose), perm(vT) == [0, 2, 1, 3],
      let q = projection(qT.input(0), in: graph), let k = projection(key.heads, in: graph),
      let v = projection(vT.input(0), in: graph)
    else { return nil }
    // One input x [B,S,Nin], one head split [B,S,H,D] for Q, K and V, merged back to [B,S,H·D].
    guard q.input == k.input, k.input == v.input, graph.elementType(of: q.input) == .float,
      let x = graph.shape(of: q.input), x.count == 3, case .value(let width) = x[2],
      q.heads.count == 4, q.heads == k.heads, k.heads == v.heads,
      case .value(let heads) = q.heads[2], case .value(let headSize) = q.heads[3], heads > 0, headSize > 0,
      isKnown(q.heads[0], equalTo: x[0]), isKnown(q.heads[1], equalTo: x[1]),
      merged.count == 3, isKnown(merged[0], equalTo: x[0]), isKnown(merged[1], equalTo: x[1]),
      merged[2] == .value(heads * headSize),
      [q, k, v].allSatisfy({ $0.weight.shape == [width, heads * headSize] })
    else { return nil }
    var expansion: [Int64]?
    if let mask = scores.mask {
      guard let shape = maskShape(mask, batch: x[0], heads: heads, sequence: x[1], in: graph) else { return nil }
      expansion = shape
    }
    let defaultScale = 1 / Double(headSize).squareRoot()
    return Match(
      root: root, input: q.input, inputWidth: width, heads: heads, headSize: headSize,
      scale: isClose(scores.scale, to: defaultScale) ? nil : Float(scores.scale), mask: scores.mask,
      maskExpansion: expansion, projections: [q, k, v],
      nodes: [root, ctxT, ctx, probs] + scores.nodes + [qT] + key.nodes + [vT], outputType: graph[output].type)
  }

  // MARK: Pieces

  private func perm(_ node: Node) -> [Int64]? { node.attribute("perm")?.ints }

  /// Softmax over the last axis of the rank-4 scores: axis −1 or 3 (before opset 13 the axis
  /// flattens, which on the last axis is the same).
  private func softmaxOnLastAxis(_ node: Node) -> Bool {
    let axis = node.attribute("axis")?.int ?? (opset < 13 ? 1 : -1)
    return axis == -1 || axis == 3
  }

  /// Two dims that are surely equal: the same known extent or the same name.
  private func isKnown(_ a: Dim, equalTo b: Dim) -> Bool {
    switch (a, b) {
    case (.value(let p), .value(let q)): return p == q
    case (.param(let p), .param(let q)): return p == q
    default: return false
    }
  }

  /// `[MatMul(q, k)] [· s | / c] [+ mask]`, the mask on either side of the Add.
  private func scores(_ value: ValueID?, in graph: Graph) -> Scores? {
    guard let add = graph.soleProducer(of: value, OpType.add) else { return scaled(value, in: graph) }
    guard add.inputs.count == 2 else { return nil }
    for (s, m) in [(0, 1), (1, 0)] {
      guard var inner = scaled(add.input(s), in: graph), let mask = add.input(m) else { continue }
      inner.mask = mask
      inner.nodes.insert(add, at: 0)
      return inner
    }
    return nil
  }

  /// `MatMul(q, k)`, divided by or multiplied with a constant scalar, or not scaled.
  private func scaled(_ value: ValueID?, in graph: Graph) -> Scores? {
    if let qk = graph.soleProducer(of: value, OpType.matMul) { return Scores(qk: qk, scale: 1, nodes: [qk]) }
    if let div = graph.soleProducer(of: value, OpType.div), div.inputs.count == 2,
      let c = graph.scalarConstant(div.input(1), maxRank: 4), c != 0,
      let qk = graph.soleProducer(of: div.input(0), OpType.matMul)
    {
      return Scores(qk: qk, scale: 1 / c, nodes: [div, qk])
    }
    guard let mul = graph.soleProducer(of: value, OpType.mul), mul.inputs.count == 2 else { return nil }
    for (s, c) in [(0, 1), (1, 0)] {
      // 0 is out: onnxruntime reads a scale of 0 as "the default".
      if let c = graph.scalarConstant(mul.input(c), maxRank: 4), c != 0,
        let qk = graph.soleProducer(of: mul.input(s), OpType.matMul)
      {
        return Scores(qk: qk, scale: c, nodes: [mul, qk])
      }
    }
    return nil
  }

  /// K's heads, transposed to [B,H,D,S]: one Transpose [0,2,3,1], or [0,2,1,3] then [0,1,3,2].
  private func keyHeads(_ value: ValueID?, in graph: Graph) -> (nodes: [Node], heads: ValueID?)? {
    guard let t = graph.soleProducer(of: value, OpType.transpose) else { return nil }
    if perm(t) == [0, 2, 3, 1] { return ([t], t.input(0)) }
    guard perm(t) == [0, 1, 3, 2], let inner = graph.soleProducer(of: t.input(0), OpType.transpose),
      perm(inner) == [0, 2, 1, 3]
    else { return nil }
    return ([t, inner], inner.input(0))
  }

  /// `Reshape(MatMul(x, W) [+ b], [B,S,H,D])`, W [Nin, N] and b [N] constant float32.
  private func projection(_ heads: ValueID?, in graph: Graph) -> Projection? {
    guard let reshape = graph.soleProducer(of: heads, OpType.reshape), let shape = graph.shape(of: heads) else {
      return nil
    }
    var nodes = [reshape], value = reshape.input(0), bias: Tensor?
    if let add = graph.soleProducer(of: value, OpType.add) {
      guard add.inputs.count == 2 else { return nil }
      let b = graph.constant(add.input(1)) != nil ? 1 : 0
      guard let t = graph.constant(add.input(b)), t.dtype == .float, t.shape.count <= 3, let n = t.shape.last,
        t.elementCount == n
      else { return nil }
      (bias, value) = (t, add.input(1 - b))
      nodes.append(add)
    }
    guard let matMul = graph.soleProducer(of: value, OpType.matMul), let x = matMul.input(0),
      let w = graph.constant(matMul.input(1)), w.dtype == .float, w.shape.count == 2,
      bias.map({ $0.elementCount == w.shape[1] }) ?? true
    else { return nil }
    return Projection(input: x, weight: w, bias: bias, heads: shape, nodes: nodes + [matMul])
  }

  /// The mask must be float [B or 1, 1 or H, S or 1, S]; onnxruntime wants its third axis S, so a
  /// third axis of 1 is expanded (to the returned shape, S known); nil for any other mask.
  private func maskShape(_ mask: ValueID, batch: Dim, heads: Int, sequence: Dim, in graph: Graph) -> [Int64]?? {
    guard graph.elementType(of: mask) == .float, let m = graph.shape(of: mask), m.count == 4,
      m[0] == .value(1) || isKnown(m[0], equalTo: batch), m[1] == .value(1) || m[1] == .value(heads),
      isKnown(m[3], equalTo: sequence)
    else { return nil }
    if isKnown(m[2], equalTo: sequence) { return .some(nil) }
    guard m[2] == .value(1), case .value(let s) = sequence else { return nil }
    return .some([1, 1, Int64(s), Int64(s)])
  }

  // MARK: Rewrite

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let n = m.heads * m.headSize
    var weights = [Float](repeating: 0, count: m.inputWidth * 3 * n)
    var biases = [Float](repeating: 0, count: 3 * n)
    for (j, p) in m.projections.enumerated() {
      guard let w = p.weight.floats, w.count == m.inputWidth * n else { throw FuseAttentionError("unreadable weight") }
      for r in 0..<m.inputWidth { for c in 0..<n { weights[r * 3 * n + j * n + c] = w[r * n + c] } }
      guard let bias = p.bias else { continue }
      guard let b = bias.floats, b.count == n else { throw FuseAttentionError("unreadable bias") }
      for c in 0..<n { biases[j * n + c] = b[c] }
    }
    let graph = rewriter.graph
    let output = m.root.outputs[0]!, outputName = graph[output].name
    let weightValue = rewriter.addInitializer("attention_qkv_weight", Tensor(floats: weights, shape: [m.inputWidth, 3 * n]))
    let biasValue = rewriter.addInitializer("attention_qkv_bias", Tensor(floats: biases, shape: [3 * n]))
    var inputs: [ValueID?] = [m.input, weightValue, biasValue]
    if let mask = m.mask {
      inputs += [nil, nil, try expanded(mask, to: m.maskExpansion, &rewriter)]
    }
    var attributes = [Attribute("num_heads", .int(Int64(m.heads)))]
    if let scale = m.scale { attributes.append(Attribute("scale", .float(scale))) }
    let attention = try rewriter.addNode(
      OpType.Contrib.attention, name: "attention", inputs: inputs, outputs: [outputName + "_attention"],
      attributes: attributes, domain: OpType.Contrib.domain)
    let fused = rewriter.graph[attention].outputs[0]!
    rewriter.setType(m.outputType, of: fused)
    rewriter.replaceAllUses(of: output, with: fused)
    for node in m.nodes + m.projections.flatMap(\.nodes) { rewriter.erase(node.id) }
    rewriter.rename(fused, to: outputName)
    rewriter.importDomain(OpType.Contrib.domain, version: OpType.Contrib.version)
    let scale = m.scale.map { ", scale \($0)" } ?? ""
    return "self-attention with \(m.heads) heads of \(m.headSize) (\(m.nodes.count + m.projections.flatMap(\.nodes).count) nodes\(scale)"
      + (m.mask == nil ? "" : ", with its mask") + ") fused into \(OpType.Contrib.domain).Attention"
  }

  /// `mask`, or `Expand(mask, shape)`, reusing an Expand of `mask` to `shape` made before (each
  /// layer of an encoder reads the same mask).
  private func expanded(_ mask: ValueID, to shape: [Int64]?, _ rewriter: inout Rewriter) throws -> ValueID {
    guard let shape else { return mask }
    let graph = rewriter.graph
    for case .input(let id, 0) in graph.uses(of: mask) {
      let node = graph[id]
      if node.opType == OpType.expand, OpType.isDefaultDomain(node.domain), graph.constantInts(node.input(1)) == shape,
        let out = node.output(0)
      {
        return out
      }
    }
    let target = rewriter.addInitializer("attention_mask_shape", Tensor(int64s: shape, shape: [4]))
    let expand = try rewriter.addNode(OpType.expand, name: "attention_mask_expand", inputs: [mask, target])
    let out = rewriter.graph[expand].outputs[0]!
    if let m = rewriter.graph.shape(of: mask) {
      rewriter.setType(.tensor(.float, shape: [m[0], .value(1), .value(Int(shape[2])), .value(Int(shape[3]))]), of: out)
    }
    return out
  }
}

struct FuseAttentionError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}
